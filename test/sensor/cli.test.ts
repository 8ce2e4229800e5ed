import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { FakePutEvents } from './fake-putevents';
import { freePorts, tcpProbe, tempDir, until } from './helpers';

const BIN = join(__dirname, '..', '..', 'bin', 'portsnare.js');

function run(args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  const out = { stdout: '', stderr: '', code: undefined as number | null | undefined };
  child.stdout.on('data', (chunk: Buffer) => (out.stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (out.stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve((out.code = code))));
  return { child, out, exited };
}

describe('portsnare agent / import-portsentry (a real process)', () => {
  const dirs: Array<{ remove: () => void }> = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) dir.remove();
  });

  it('runs the agent, prints one JSON line per event on stdout, and stops cleanly on SIGTERM', async () => {
    const dir = tempDir('cli');
    dirs.push(dir);
    const [tcp] = await freePorts(1);
    const config = join(dir.path, 'agent.yaml');
    writeFileSync(config, `sensorId: cli\nlisten: [127.0.0.1]\ntcpPorts: "${tcp}"\nudpPorts: []\nstateDirectory: ${dir.path}\nhealth: {port: 0}\n`);

    const agent = run(['agent', '--config', config, '--stop-deadline', '3000']);
    await until(() => agent.out.stderr.includes('"agent started"'), 30_000, 'the agent to start');
    await tcpProbe('127.0.0.1', tcp!, '127.99.0.7');
    await until(() => agent.out.stdout.includes('\n'), 5000, 'an event on stdout');
    const stopAt = Date.now();
    agent.child.kill('SIGTERM');
    const code = await agent.exited;

    expect(code).toBe(0);
    expect(Date.now() - stopAt).toBeLessThan(4000);
    expect(JSON.parse(agent.out.stdout.trim())).toMatchObject({ version: 1, sensorId: 'cli', attacker: '127.99.0.7', handshake: true });
    expect(agent.out.stderr).toContain('"agent stopped"');
  }, 60_000);

  it('publishes to EventBridge from a real process and still exits promptly on SIGTERM', async () => {
    const dir = tempDir('cli');
    dirs.push(dir);
    const service = new FakePutEvents();
    const endpoint = await service.start();
    try {
      const [tcp] = await freePorts(1);
      const config = join(dir.path, 'agent.json');
      writeFileSync(
        config,
        JSON.stringify({ listen: ['127.0.0.1'], tcpPorts: [tcp], udpPorts: [], stateDirectory: dir.path, health: { port: 0 }, sinks: [{ type: 'eventbridge', busName: 'bus', region: 'eu-west-1', endpoint }] }),
      );
      const agent = run(['agent', '--config', config, '--stop-deadline', '3000'], { AWS_ACCESS_KEY_ID: 'AKIDTEST', AWS_SECRET_ACCESS_KEY: 'secret' });
      await until(() => agent.out.stderr.includes('"agent started"'), 30_000, 'the agent to start');
      await tcpProbe('127.0.0.1', tcp!, '127.99.0.7');
      await service.waitForAccepted(1);
      const stopAt = Date.now();
      agent.child.kill('SIGTERM');
      expect(await agent.exited).toBe(0);
      expect(Date.now() - stopAt).toBeLessThan(4000);
      expect(service.details()[0]).toMatchObject({ attacker: '127.99.0.7' });
    } finally {
      await service.stop();
    }
  }, 60_000);

  it('fails fast on a bad config, naming the key and the value', async () => {
    const dir = tempDir('cli');
    dirs.push(dir);
    const config = join(dir.path, 'agent.yaml');
    writeFileSync(config, 'tcpPorts: "70000"\n');
    const agent = run(['agent', '--config', config]);
    // README.md "Exit codes": an invalid config file is 2, for the agent as for every command
    expect(await agent.exited).toBe(2);
    expect(agent.out.stderr).toContain('tcpPorts: "70000" is not a port (1-65535)');
  }, 60_000);

  // As root chmod stops nothing: a regular file where the directory should be, and a path under
  // /proc, are unwritable for anyone.
  for (const [label, where] of [
    ['a regular file', (dir: string) => join(dir, 'file')],
    ['a path under /proc', () => `/proc/portsnare-${process.pid}/state`],
  ] as const) {
    it(`--check and the start fail on a stateDirectory that is ${label}, naming the key, the path and the error`, async () => {
      const dir = tempDir('cli');
      dirs.push(dir);
      writeFileSync(join(dir.path, 'file'), 'not a directory');
      const state = where(dir.path);
      const config = join(dir.path, 'agent.yaml');
      // a free port: should the start ever get past the state directory, it binds nobody's port
      const [decoy] = await freePorts(1);
      writeFileSync(config, `listen: [127.0.0.1]\ntcpPorts: "${decoy}"\nudpPorts: []\nsinks: []\nstateDirectory: ${state}\nenforce: {nftables: {enabled: true}}\nhealth: {port: 0}\n`);

      const check = run(['agent', '--config', config, '--check']);
      const start = run(['agent', '--config', config]);
      const [checkCode, startCode] = await Promise.all([check.exited, start.exited]);

      const expected = new RegExp(`stateDirectory: "${state.replace(/[/.]/g, '\\$&')}" is not a writable directory: .*(ENOTDIR|not a directory|ENOENT|EACCES|EPERM)`);
      expect(checkCode).toBe(1);
      expect(check.out.stdout).toBe('');
      expect(check.out.stderr).toMatch(expected);
      expect(startCode).toBe(1);
      expect(start.out.stderr).toMatch(expected);
      expect(start.out.stderr).not.toContain('"agent started"');
    }, 60_000);
  }

  it('--check prints the config with every default filled in', async () => {
    const dir = tempDir('cli');
    dirs.push(dir);
    const config = join(dir.path, 'agent.json');
    writeFileSync(config, JSON.stringify({ tcpPorts: '23,2323' }));
    const check = run(['agent', '--config', config, '--check']);
    expect(await check.exited).toBe(0);
    expect(parse(check.out.stdout)).toMatchObject({ tcpPorts: [23, 2323], dedupeSeconds: 60, health: { port: 9466 } });
  }, 60_000);

  it('import-portsentry prints YAML on stdout and warnings on stderr', async () => {
    const dir = tempDir('cli');
    dirs.push(dir);
    const conf = join(dir.path, 'portsentry.conf');
    writeFileSync(conf, `TCP_PORTS="1,11,15"\nUDP_PORTS="7"\nIGNORE_FILE="${join(dir.path, 'missing.ignore')}"\nKILL_ROUTE="/sbin/route add -host $TARGET$ reject"\n`);
    const imported = run(['import-portsentry', conf]);
    expect(await imported.exited).toBe(0);
    expect(parse(imported.out.stdout)).toEqual({ tcpPorts: '1,11,15', udpPorts: '7' });
    expect(imported.out.stderr).toMatch(/^warning: IGNORE_FILE .*missing\.ignore: cannot read it/m);
    expect(imported.out.stderr).toMatch(/^warning: KILL_ROUTE has no equivalent/m);
  }, 60_000);
});
