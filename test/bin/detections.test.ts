/**
 * The operator commands against a real agent process on loopback: `detections` in monitor mode
 * (enforcement off), `reload` (ignore and guard at run time, an invalid file refused), and what
 * the commands say when no agent answers. The agent watches a free port on 127.0.0.1 and is
 * probed from 127.99.0.x (loopback; this host's own address 127.0.0.1 is never reported).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePorts, tcpProbe, tempDir, until } from '../sensor/helpers';
import { BIN, runCli, testEnv } from './cli';

let dir: { path: string; remove: () => void };
let agent: ChildProcess;
let log = '';
let url = '';
let decoy = 0;
let configPath = '';

function writeConfig(extra: string[] = []): void {
  writeFileSync(
    configPath,
    [`sensorId: det-test`, 'listen: [127.0.0.1]', `tcpPorts: "${decoy}"`, 'udpPorts: []', 'sinks: []', 'dedupeSeconds: 0', `stateDirectory: ${join(dir.path, 'state')}`, 'health: {port: 0}', ...extra, ''].join('\n'),
  );
}

beforeAll(async () => {
  dir = tempDir('detections');
  [decoy] = (await freePorts(1)) as [number];
  configPath = join(dir.path, 'agent.yaml');
  writeConfig();
  agent = spawn(process.execPath, [BIN, 'agent', '--config', configPath], { env: testEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  agent.stderr?.on('data', (chunk: Buffer) => (log += chunk.toString()));
  await until(() => /"agent started".*"health":"(http:\/\/127\.0\.0\.1:\d+)"/.test(log), 30_000, 'the agent to start');
  url = /"health":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(log)![1]!;
});

afterAll(async () => {
  if (agent.exitCode === null) {
    const exited = new Promise((resolve) => agent.once('exit', resolve));
    agent.kill('SIGTERM');
    await exited;
  }
  dir.remove();
});

async function probeAndWait(source: string): Promise<void> {
  const before = (log.match(/"scan detected"/g) ?? []).length;
  const { socket } = await tcpProbe('127.0.0.1', decoy, source);
  socket.destroy();
  await until(() => (log.match(/"scan detected"/g) ?? []).length > before, 5000, `a detection of ${source}`);
}

describe('portsnare detections (monitor mode)', () => {
  it('lists the detection with its evidence while nothing is blocked, and --json carries the same', async () => {
    await probeAndWait('127.99.0.21');

    const text = await runCli(['detections', '--agent', url]);
    const json = await runCli(['detections', '--agent', url, '--json', '--since', '1h']);

    expect(text.stderr).toBe('');
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(new RegExp(`127\\.99\\.0\\.21\\s+1\\s+yes\\s+tcp/${decoy} connect\\s+det-test\\s+reported \\(monitor mode\\)`));
    expect(json.code).toBe(0);
    const body = JSON.parse(json.stdout) as { enforcement: string; detections: Array<{ attacker: string; handshake: boolean; probes: unknown[]; sensorId: string }> };
    expect(body.enforcement).toBe('off');
    expect(body.detections[0]).toMatchObject({ attacker: '127.99.0.21', handshake: true, sensorId: 'det-test', probes: [{ protocol: 'tcp', port: decoy, kind: 'connect' }] });
  });

  it('--since leaves out what is older, and a bad --since is a usage error', async () => {
    const bad = await runCli(['detections', '--agent', url, '--since', 'yesterday']);
    const future = await runCli(['detections', '--agent', url, '--since', '1s'], { now: () => Date.now() + 3_600_000 });

    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('invalid --since "yesterday"');
    expect(future.code).toBe(0);
    expect(future.stdout).toMatch(/^no detections in the last 1s \(agent http:\/\/127\.0\.0\.1:\d+; \d+ since the agent started\)/);
  });

  it('says no agent answers (exit 6) instead of printing nothing', async () => {
    const [closed] = (await freePorts(1)) as [number];
    const result = await runCli(['detections', '--agent', `http://127.0.0.1:${closed}`]);

    expect(result.code).toBe(6);
    expect(result.stderr).toMatch(/^portsnare: no agent answers at http:\/\/127\.0\.0\.1:\d+/);
  });
});

describe('portsnare reload', () => {
  it('applies a new ignore list at once and names the keys that need a restart; blocks and detections stay', async () => {
    writeConfig(['ignore: ["127.99.0.22"]']);
    const reload = await runCli(['reload', '--agent', url, '--config', configPath]);
    expect(reload.stderr).toBe('');
    expect(reload.code).toBe(0);
    expect(reload.stdout).toMatch(/applied\s+ignore/);

    const { socket } = await tcpProbe('127.0.0.1', decoy, '127.99.0.22');
    socket.destroy();
    await probeAndWait('127.99.0.23'); // a later detection: the ignored probe was handled before it
    const json = JSON.parse((await runCli(['detections', '--agent', url, '--json'])).stdout) as { detections: Array<{ attacker: string }> };
    expect(json.detections.map((d) => d.attacker)).toContain('127.99.0.23');
    expect(json.detections.map((d) => d.attacker)).not.toContain('127.99.0.22');

    writeConfig(['ignore: ["127.99.0.22"]', 'logLevel: debug']);
    const restart = await runCli(['reload', '--agent', url, '--config', configPath]);
    expect(restart.stdout).toMatch(/needs a restart\s+logLevel/);
  });

  it('refuses an invalid file naming the key, and keeps running with the old config', async () => {
    writeConfig(['ignore: ["not-an-address"]']);
    const result = await runCli(['reload', '--agent', url, '--config', configPath]);

    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/ignore\.0: "not-an-address" is not an IPv4\/IPv6 address or CIDR/);
    await probeAndWait('127.99.0.24');
  });
});

describe('portsnare status', () => {
  it('shows how full each bounded set is against its limit', async () => {
    const result = await runCli(['status', '--agent', url]);
    const json = JSON.parse((await runCli(['status', '--agent', url, '--json'])).stdout) as { usage: Array<{ name: string; used: number; limit: number }> };

    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^limits\s+tracked sources \d+\/100000, decoy sockets open \d+\/512, detections kept [1-9]\d*\/1000$/m);
    expect(json.usage.map((u) => u.name)).toEqual(['tracked sources', 'decoy sockets open', 'detections kept']);
  });
});

