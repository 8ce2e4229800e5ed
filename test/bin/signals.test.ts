/**
 * Stopping cleanly whatever the signals and whatever was killed before: real processes, real
 * nftables, each in a network namespace of its own (`ip netns add`, a unique name) so the host's
 * tables and NFLOG groups are never touched.
 * - Ctrl-C under `npm start` delivers SIGINT twice (terminal and npm): the demo must still delete
 *   its `inet portsnare` table.
 * - an agent killed with SIGKILL leaves its tcpdump child reading the NFLOG group: the next agent
 *   must start all the same.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { BIN, testEnv } from './cli';
import { namespaceNftUnavailable, runnable } from './prereq';

const why = namespaceNftUnavailable() ?? (spawnSync('tcpdump', ['--version']).status === 0 ? undefined : 'needs tcpdump (Debian package tcpdump) for kernel detection');
const canRun = runnable('test/bin/signals.test.ts (signals and a killed agent, in a network namespace)', why);

let ns: string;
let dir: string;
let counter = 0;
const children: ChildProcess[] = [];

beforeEach(async () => {
  ns = `psn-sig-${process.pid}-${++counter}`;
  dir = await mkdtemp(join(tmpdir(), 'portsnare-signals-'));
  if (canRun) {
    expect(spawnSync('ip', ['netns', 'add', ns]).status).toBe(0);
    expect(spawnSync('ip', ['netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up']).status).toBe(0);
  }
});

afterEach(async () => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  if (canRun) {
    // anything still in the namespace (a stray tcpdump) dies with it
    const pids = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
    for (const pid of pids) spawnSync('kill', ['-9', pid]);
    spawnSync('ip', ['netns', 'delete', ns]);
  }
  await rm(dir, { recursive: true, force: true });
});

function inNs(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync('ip', ['netns', 'exec', ns, ...args], { encoding: 'utf8' });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Starts `portsnare ARGS` in the namespace; resolves once `ready` appears in its output. */
function startInNs(args: string[], ready: RegExp): Promise<{ child: ChildProcess; output: () => string; exited: Promise<number | null> }> {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, BIN, ...args], { env: testEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let output = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      if (ready.test(output)) resolve({ child, output: () => output, exited });
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    void exited.then((code) => reject(new Error(`exited (${code}) before it was ready:\n${output}`)));
  });
}

/** Two SIGINTs 1 ms apart, as a terminal and npm deliver them. */
async function doubleInterrupt(child: ChildProcess): Promise<void> {
  child.kill('SIGINT');
  await new Promise((resolve) => setTimeout(resolve, 1));
  child.kill('SIGINT');
}

it.runIf(canRun)('the demo deletes its nftables table after two SIGINTs 1 ms apart', async () => {
  const demo = await startInNs(['demo', '--no-probe', '--health-port', '0', '--state-dir', join(dir, 'state')], /Ctrl-C stops the demo/);
  expect(inNs(['nft', 'list', 'table', 'inet', 'portsnare']).status).toBe(0);

  await doubleInterrupt(demo.child);
  const code = await demo.exited;

  expect(demo.output()).toMatch(/stopping/);
  expect(code).toBe(0);
  const after = inNs(['nft', 'list', 'table', 'inet', 'portsnare']);
  expect(after.status).not.toBe(0);
  expect(after.stderr).toMatch(/No such file or directory/);
});

it.runIf(canRun)('the demo deletes its table after two SIGINTs while the first scan still runs', async () => {
  const demo = await startInNs(['demo', '--health-port', '0', '--state-dir', join(dir, 'state')], /the attacker scans/);

  await doubleInterrupt(demo.child);
  await demo.exited;

  expect(inNs(['nft', 'list', 'table', 'inet', 'portsnare']).status).not.toBe(0);
});

async function stealthConfig(): Promise<string> {
  const config = join(dir, 'agent.yaml');
  await writeFile(
    config,
    ['listen: ["127.0.0.1"]', 'tcpPorts: "2323,3389"', 'udpPorts: "1900"', 'stealth: true', 'sinks: []', `stateDirectory: ${join(dir, 'state')}`, 'enforce: { nftables: { enabled: true } }', 'health: { port: 0 }', ''].join('\n'),
  );
  return config;
}

/** tcpdump NFLOG readers in this namespace (`ip netns pids`: the host's other processes share the pid namespace). */
function tcpdumpReaders(): string[] {
  const pids = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
  return pids.map((pid) => spawnSync('cat', [`/proc/${pid}/cmdline`], { encoding: 'utf8' }).stdout.replace(/\0/g, ' ')).filter((line) => /tcpdump .*nflog:/.test(line));
}

it.runIf(canRun)('an agent killed with SIGKILL does not keep the next one from starting (its tcpdump child)', async () => {
  const config = await stealthConfig();
  const first = await startInNs(['agent', '--config', config], /"agent started"/);
  expect(first.output()).toMatch(/"stealth":"on"/);
  expect(tcpdumpReaders()).toHaveLength(1);

  first.child.kill('SIGKILL');
  await first.exited;

  const second = await startInNs(['agent', '--config', config], /"agent started"/);
  expect(second.output()).toMatch(/"stealth":"on"/);
  expect(tcpdumpReaders()).toHaveLength(1);

  await doubleInterrupt(second.child);
  expect(await second.exited).toBe(0);
  expect(second.output()).toMatch(/"agent stopped"/);
  expect(tcpdumpReaders()).toHaveLength(0);
});

/**
 * Ctrl-C as a terminal sends it: SIGINT to the whole foreground process group (the agent and any
 * nft it runs at that moment), twice, 0–100 ms apart, 20 times. An nft child in the agent's group
 * would die half-way through the cleanup's transaction and leave the table behind (issue 19).
 */
it.runIf(canRun)('Ctrl-C twice to the process group, 0–100 ms apart, 20 times: no table left, no cleanup error', async () => {
  const rounds = 20;
  const failures: string[] = [];
  for (let round = 0; round < rounds; round++) {
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, BIN, 'demo', '--no-probe', '--health-port', '0', '--state-dir', join(dir, `state-${round}`)], {
      env: testEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // a process group of its own, as a shell's foreground job
    });
    children.push(child);
    let output = '';
    child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | string | null>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal)));
    // the first Ctrl-C at a random moment of the start or after it (the table exists from early on)
    const readyOrTime = new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        if (/Ctrl-C stops the demo/.test(output)) {
          clearInterval(timer);
          resolve();
        }
      }, 5);
      void exited.then(() => clearInterval(timer));
    });
    await readyOrTime;
    const spacing = Math.floor(Math.random() * 101);
    process.kill(-child.pid!, 'SIGINT');
    await new Promise((resolve) => setTimeout(resolve, spacing));
    try {
      process.kill(-child.pid!, 'SIGINT');
    } catch {
      // the group has already exited
    }
    const code = await exited;
    const table = inNs(['nft', 'list', 'table', 'inet', 'portsnare']);
    if (table.status === 0) failures.push(`round ${round} (${spacing} ms): table inet portsnare left behind`);
    if (/could not clean up|cleanup failed|stop failed/i.test(output)) failures.push(`round ${round} (${spacing} ms): ${output.split('\n').find((line) => /clean up|failed/i.test(line))}`);
    // a second Ctrl-C landing after the cleanup has finished may end the process as SIGINT does (130)
    if (code !== 0 && !(code === 'SIGINT' && /agent stopped/.test(output))) failures.push(`round ${round} (${spacing} ms): exit ${code}`);
    if (table.status === 0) inNs(['nft', 'delete', 'table', 'inet', 'portsnare']);
  }
  expect(failures).toEqual([]);
}, 300_000);
