/**
 * `sudo portsnare block` when no agent runs and the config enables enforcement: the command
 * writes the store and puts the block into nftables itself, and `unblock` takes it out. In a
 * network namespace of its own, so the host's nftables are never touched.
 */
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { BIN, runBin, runCommand, testEnv } from './cli';
import { isRoot, namespaceNftUnavailable, runnable } from './prereq';

const canRun = runnable('test/bin/local-nft.test.ts (block and unblock in nftables)', namespaceNftUnavailable());
/** The command line only decides to use nft as root (or with CAP_NET_ADMIN). */
const canUseNft = runnable('test/bin/local-nft.test.ts (a failing nft list)', isRoot ? undefined : 'needs root: without it the command line does not use nft at all');

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'portsnare-local-nft-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Runs a shell script in a fresh network namespace; `$P` is the portsnare command. */
function inNamespace(script: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return runCommand('unshare', ['--net', 'sh', '-c', `set -e; ip link set lo up; P="${process.execPath} ${BIN}"; ${script}`], { timeoutMs: 60_000 });
}

it.runIf(canRun)('blocks in nftables when enforcement is on and no agent runs, and unblock removes it', async () => {
  const config = join(dir, 'agent.yaml');
  await writeFile(
    config,
    [`stateDirectory: ${join(dir, 'state')}`, 'enforce: { nftables: { enabled: true } }', 'guard: { blockableSpecialCidrs: ["203.0.113.0/24"] }', 'health: { port: 9466 }', ''].join('\n'),
  );

  const result = await inNamespace(
    [
      `$P block 203.0.113.7 --ttl 10m --config ${config}`,
      `$P block 203.0.113.64/26 --config ${config}`,
      `echo ---; nft list set inet portsnare blocked4; nft list set inet portsnare blockednet4`,
      `echo ---; $P blocks --config ${config}`,
      `echo ---; $P unblock 203.0.113.7 --config ${config}`,
      `echo ---; nft list set inet portsnare blocked4`,
    ].join(' && '),
  );

  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  const [blocked, sets, listed, unblocked, after] = result.stdout.split('---\n');
  expect(blocked).toMatch(/^blocked 203\.0\.113\.7 for (10m|9m \d+s) .* enforced in nftables — local store /);
  expect(blocked).toMatch(/\nblocked 203\.0\.113\.64\/26 for (1h|59m \d+s) .* enforced in nftables/);
  expect(sets).toMatch(/elements = \{ 203\.0\.113\.7 counter packets 0 bytes 0 timeout \S+ expires \S+ \}/); // each element counts what it drops
  expect(sets).toMatch(/elements = \{ 203\.0\.113\.64\/26 counter packets 0 bytes 0 timeout \S+ expires \S+ \}/);
  expect(listed).toMatch(/203\.0\.113\.7\s+manual\s+1\s+0\s+(10m|9m \d+s)\s+nftables/);
  expect(unblocked).toMatch(/^unblocked 203\.0\.113\.7 — local store /);
  expect(after).not.toContain('203.0.113.7');
});

it.runIf(canUseNft)('shows a failed nft list as that error, not as "store only"', async () => {
  // an `nft` that lists tables (so enforcement is on) but fails to list portsnare's table; the
  // real nft is never called, so this needs no namespace
  const fakeBin = join(dir, 'bin');
  await mkdir(fakeBin);
  const fakeNft = join(fakeBin, 'nft');
  await writeFile(
    fakeNft,
    ['#!/bin/sh', 'if [ "$1" = "--version" ] || [ "$*" = "list tables" ]; then exit 0; fi', 'echo "Error: Could not process rule: Operation not permitted" >&2', 'exit 1', ''].join('\n'),
  );
  await chmod(fakeNft, 0o755);
  const state = join(dir, 'state');
  const logOnly = join(dir, 'log-only.yaml');
  const enforcing = join(dir, 'enforcing.yaml');
  await writeFile(logOnly, [`stateDirectory: ${state}`, 'enforce: { nftables: { enabled: false } }', 'guard: { blockableSpecialCidrs: ["203.0.113.0/24"] }', ''].join('\n'));
  await writeFile(enforcing, [`stateDirectory: ${state}`, 'enforce: { nftables: { enabled: true } }', 'guard: { blockableSpecialCidrs: ["203.0.113.0/24"] }', ''].join('\n'));
  const env = testEnv({ PATH: `${fakeBin}:${process.env.PATH ?? ''}` });

  const blocked = await runBin(['block', '203.0.113.7', '--ttl', '10m', '--state-dir', state, '--config', logOnly], { env });
  const listed = await runBin(['blocks', '--state-dir', state, '--config', enforcing], { env });
  const status = await runBin(['status', '--state-dir', state, '--config', enforcing], { env });

  expect(blocked.stderr).toBe('');
  expect(blocked.code).toBe(0);
  expect(listed.code).toBe(0);
  expect(listed.stdout).toMatch(/^203\.0\.113\.7\s+manual\s+.*unknown: nft list failed: nft -j list table inet portsnare failed \(exit 1\): Error: Could not process rule: Operation not permitted {2}/m);
  expect(listed.stdout).not.toContain('store only');
  expect(status.stdout).toMatch(/enforcement\s+nftables \(table inet portsnare\), kernel set unreadable: nft list failed: .*Operation not permitted/);
});
