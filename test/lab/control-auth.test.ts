/**
 * Who may change this host's state (issue 19): the real agent (root, its own network namespace so
 * a demo on the host is never touched) with its control socket in a temporary state directory and
 * `control.group` a group this test creates. Two users this test creates, run with setpriv:
 * - an outsider (not in the group): every state-changing request is refused — on the socket (the
 *   kernel refuses connect(2)), over TCP (403 without the token) and through the CLI (exit 7) —
 *   and nothing changed;
 * - a member of the group: the CLI and the socket work, and the history names the member's real
 *   uid, as the kernel reported it (SO_PEERCRED), whatever the client claims.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { labReady, ROOT } from './netns';

const ready = labReady('test/lab/control-auth.test.ts') && (() => {
  const missing = ['useradd', 'groupadd', 'setpriv', 'curl'].filter((program) => spawnSync('sh', ['-c', `command -v ${program}`]).status !== 0);
  if (missing.length === 0) return true;
  if (process.env.CI) throw new Error(`test/lab/control-auth.test.ts needs ${missing.join(', ')} (Debian packages passwd, util-linux, curl)`);
  console.warn(`SKIPPED test/lab/control-auth.test.ts: needs ${missing.join(', ')}`);
  return false;
})();

const BIN = join(ROOT, 'bin', 'portsnare.js');
const tag = `${process.pid % 100000}`;
const ns = `psn-ctl-${tag}`;
const group = `psnctl${tag}`;
const outsider = `psnout${tag}`;
const member = `psnmem${tag}`;
let dir: string;
let config: string;
let socket: string;
let port: number;
let agent: ChildProcess | undefined;

function sh(program: string, args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(program, args, { encoding: 'utf8', timeout: 60_000, cwd: ROOT });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function uidOf(user: string): number {
  return Number(sh('id', ['-u', user]).stdout.trim());
}

/** A command as `user` (its own groups only), inside the agent's namespace (for TCP on its loopback). */
function as(user: string, program: string, args: string[]): { status: number | null; stdout: string; stderr: string } {
  return sh('ip', ['netns', 'exec', ns, 'setpriv', `--reuid=${user}`, `--regid=${user}`, '--init-groups', '--reset-env', 'env', `PATH=${process.env.PATH ?? '/usr/bin:/bin'}`, `HOME=${dir}`, program, ...args]);
}

function cli(user: string, args: string[]): { status: number | null; stdout: string; stderr: string } {
  return as(user, process.execPath, [BIN, ...args, '--config', config]);
}

function curl(user: string, method: string, path: string, options: { socket?: boolean; body?: unknown } = {}): { status: number | null; stdout: string; stderr: string } {
  const args = ['-s', '-o', '/dev/stderr', '-w', '%{http_code}', '-X', method, ...(options.body !== undefined ? ['-H', 'content-type: application/json', '--data', JSON.stringify(options.body)] : [])];
  return options.socket ? as(user, 'curl', [...args, '--unix-socket', socket, `http://localhost${path}`]) : as(user, 'curl', [...args, `http://127.0.0.1:${port}${path}`]);
}

beforeAll(async () => {
  if (!ready) return;
  dir = mkdtempSync(join(tmpdir(), 'portsnare-ctl-'));
  chmodSync(dir, 0o755);
  socket = join(dir, 'state', 'control.sock');
  config = join(dir, 'agent.yaml');
  writeFileSync(
    config,
    [
      'listen: ["127.0.0.1"]',
      'tcpPorts: "2323"',
      'udpPorts: ""',
      'sinks: []',
      `stateDirectory: ${join(dir, 'state')}`,
      'enforce: { nftables: { enabled: true } }',
      'guard: { blockableSpecialCidrs: ["198.51.100.0/24"] }',
      // the namespace is this test's own: the default port cannot collide, and the CLI finds it as an operator's would
      'health: { port: 9466 }',
      `control: { group: ${group} }`,
      '',
    ].join('\n'),
  );
  chmodSync(config, 0o644);
  expect(sh('groupadd', [group]).status).toBe(0);
  expect(sh('useradd', ['--no-create-home', '--shell', '/usr/sbin/nologin', outsider]).status).toBe(0);
  expect(sh('useradd', ['--no-create-home', '--shell', '/usr/sbin/nologin', '--groups', group, member]).status).toBe(0);
  expect(sh('ip', ['netns', 'add', ns]).status).toBe(0);
  expect(sh('ip', ['netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up']).status).toBe(0);
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, BIN, 'agent', '--config', config], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  agent = child;
  port = await new Promise<number>((resolve, reject) => {
    let output = '';
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      const match = /"health":"http:\/\/127\.0\.0\.1:(\d+)"/.exec(output);
      if (match) resolve(Number(match[1]));
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => reject(new Error(`the agent exited (${code}): ${output}`)));
  });
});

afterAll(async () => {
  if (!ready) return;
  if (agent && agent.exitCode === null) {
    const exited = new Promise((resolve) => agent!.once('exit', resolve));
    agent.kill('SIGTERM');
    await exited;
  }
  sh('ip', ['netns', 'delete', ns]);
  for (const user of [outsider, member]) sh('userdel', [user]);
  sh('groupdel', [group]);
  rmSync(dir, { recursive: true, force: true });
});

it.runIf(ready)('an outsider is refused every change (socket, TCP, CLI) and changes nothing; reads over TCP work', () => {
  // the socket: the kernel refuses connect(2) (curl exit 7, "couldn't connect")
  for (const [method, path, body] of [['POST', '/blocks', { target: '198.51.100.20' }], ['POST', '/allow', { target: '198.51.100.0/28' }], ['POST', '/reload', {}], ['DELETE', '/blocks/198.51.100.20', undefined]] as const) {
    const viaSocket = curl(outsider, method, path, { socket: true, ...(body !== undefined ? { body } : {}) });
    expect(viaSocket.status, `${method} ${path} on the socket`).toBe(7);
    const viaTcp = curl(outsider, method, path, body !== undefined ? { body } : {});
    expect(viaTcp.stdout, `${method} ${path} over TCP: ${viaTcp.stderr}`).toBe('403');
  }
  // a forged requester changes nothing either
  const forged = as(outsider, 'curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-X', 'DELETE', '-H', 'x-requested-by: root', `http://127.0.0.1:${port}/blocks/198.51.100.20`]);
  expect(forged.stdout).toBe('403');

  for (const args of [['block', '198.51.100.20'], ['unblock', '198.51.100.20'], ['allow', 'add', '198.51.100.0/28'], ['allow', 'remove', '198.51.100.0/28'], ['reload']]) {
    const result = cli(outsider, args);
    expect(result.status, `portsnare ${args.join(' ')}: ${result.stderr}`).toBe(7);
    expect(result.stderr).toMatch(/^portsnare: not permitted: /);
  }
  // reads are open over TCP
  expect(curl(outsider, 'GET', '/status').stdout).toBe('200');
  const blocks = cli(outsider, ['blocks', '--json']);
  expect(blocks.status, blocks.stderr).toBe(0);
  expect(JSON.parse(blocks.stdout)).toEqual([]);
  expect((JSON.parse(cli(outsider, ['allow', 'list', '--json']).stdout) as { entries: unknown[] }).entries).toEqual([]);
});

it.runIf(ready)('a member of the group changes state through the CLI and the socket; the history names the real uid', () => {
  const uid = uidOf(member);
  const blocked = cli(member, ['block', '198.51.100.21', '--reason', 'lab']);
  expect(blocked.status, blocked.stderr).toBe(0);
  const viaSocket = curl(member, 'POST', '/blocks', { socket: true, body: { target: '198.51.100.22', requestedBy: 'root' } });
  expect(viaSocket.stdout, viaSocket.stderr).toBe('201');

  const history = cli(member, ['history', '198.51.100.21', '--json']);
  expect(history.status, history.stderr).toBe(0);
  expect(history.stdout).toContain(`uid=${uid}(${member})`);
  const claimed = JSON.parse(cli(member, ['history', '198.51.100.22', '--json']).stdout) as { current?: { note?: string } };
  // what the client claimed comes after what the kernel said
  expect(claimed.current?.note).toMatch(new RegExp(`^requested by uid=${uid}\\(${member}\\) root`));

  const unblocked = cli(member, ['unblock', '198.51.100.21']);
  expect(unblocked.status, unblocked.stderr).toBe(0);
});
