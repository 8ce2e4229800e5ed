/**
 * The command line's small promises (issue 19, item 5), against a store of its own (--state-dir,
 * no agent, no nftables), so a demo or an agent running on this host cannot change the answers:
 * exit 2 for a missing subcommand, one line for an unknown option, exit 2 for an --agent that is
 * not a URL, a blocked CIDR answering for the addresses inside it, a manual re-block that is no
 * new offence, and `blocks --contains`.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { runCli } from './cli';

let dir: string;
let local: string[];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'portsnare-cli-points-'));
  const config = join(dir, 'agent.yaml');
  writeFileSync(config, ['enforce: { nftables: { enabled: false } }', 'guard: { blockableSpecialCidrs: ["198.51.100.0/24"] }', 'sinks: []', `stateDirectory: ${join(dir, 'state')}`, ''].join('\n'));
  local = ['--config', config, '--state-dir', join(dir, 'state')];
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

it('no command and a command group without its subcommand exit 2 with the usage on stderr', async () => {
  for (const args of [[], ['allow']]) {
    const result = await runCli(args);
    expect(result.code, args.join(' ')).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/^Usage: portsnare/);
  }
});

it('an unknown option is one line on stderr and exit 2', async () => {
  const result = await runCli(['blocks', '--bogus']);
  expect(result).toEqual({ code: 2, stdout: '', stderr: "error: unknown option '--bogus'\n" });
});

it('--agent that is neither a URL nor a socket is a usage error (exit 2), not "agent unhealthy"', async () => {
  const result = await runCli(['blocks', '--agent', 'notaurl']);
  expect(result).toEqual({ code: 2, stdout: '', stderr: 'portsnare: --agent: "notaurl" is not an http:// URL or a control socket (unix:/path)\n' });
});

it('history, unblock and blocks --contains of an address inside a blocked CIDR name the CIDR', async () => {
  expect((await runCli(['block', '198.51.100.0/24', ...local])).code).toBe(0);

  const history = await runCli(['history', '198.51.100.7', '--json', ...local]);
  expect(history.code, history.stderr).toBe(0);
  expect(JSON.parse(history.stdout)).toMatchObject({ target: '198.51.100.7', coveredBy: '198.51.100.0/24', current: { target: '198.51.100.0/24', active: true } });

  const unblock = await runCli(['unblock', '198.51.100.7', ...local]);
  expect(unblock.code).toBe(4);
  expect(unblock.stderr).toContain('198.51.100.7 is not blocked itself: it is inside the block of 198.51.100.0/24');

  const contains = await runCli(['blocks', '--contains', '198.51.100.7', '--json', ...local]);
  expect((JSON.parse(contains.stdout) as Array<{ target: string }>).map((b) => b.target)).toEqual(['198.51.100.0/24']);
  const outside = await runCli(['blocks', '--contains', '198.51.101.7', ...local]);
  expect(outside.stdout).toMatch(/^no active block holds 198\.51\.101\.7/);
});

it('a manual re-block of an active block is no new offence', async () => {
  for (let i = 0; i < 3; i++) expect((await runCli(['block', '198.51.100.9', ...local])).code).toBe(0);
  const blocks = JSON.parse((await runCli(['blocks', '--json', ...local])).stdout) as Array<{ target: string; offences: number }>;
  expect(blocks).toMatchObject([{ target: '198.51.100.9', offences: 1 }]);
});
