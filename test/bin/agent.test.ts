/**
 * The local commands against a running agent's control API: the demo agent as a real process,
 * log-only (run as an unprivileged user when the tests run as root, so it never touches
 * nftables), on a free control port, in a network namespace of its own: its decoy ports and its
 * attacker 127.66.0.9 never meet a `portsnare demo` or an agent running on this host (which may
 * hold the same decoy ports and block 127.66.x in the host's `table inet portsnare`). The CLI
 * reaches it through its control socket (a path in the file system, the same from any network
 * namespace); the probe runs inside the namespace (nsenter). Needs root; skipped otherwise.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { skipOutsideCi } from '../sensor/helpers';
import { BIN, type CliResult, runCli, runCommand, testEnv } from './cli';

const root = process.getuid?.() === 0;
const canDrop = root && spawnSync('setpriv', ['--version']).status === 0;

/** Why the agent cannot run in a network namespace of its own here; undefined when it can. */
function namespaceUnavailable(): string | undefined {
  if (process.platform !== 'linux') return `needs Linux network namespaces (this is ${process.platform})`;
  if (!root) return 'needs root for a network namespace of its own (outside one, a demo running on this host could hold its decoy ports and block its attacker)';
  const unshare = spawnSync('unshare', ['--net', 'true'], { encoding: 'utf8' });
  if (unshare.status !== 0) return `unshare --net fails here: ${(unshare.stderr || unshare.error?.message || `exit ${unshare.status}`).trim()} (Debian package util-linux)`;
  if (spawnSync('nsenter', ['--version']).status !== 0) return 'needs nsenter (Debian package util-linux)';
  return undefined;
}
const skip = skipOutsideCi(namespaceUnavailable());

let dir: string;
let agent: ChildProcess;
let url: string;
let output = '';

describe.skipIf(skip)('against a running agent, in a network namespace of its own', () => {
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'portsnare-agent-cli-'));
    await chmod(dir, 0o777);
    const drop = canDrop ? 'setpriv --reuid=65534 --regid=65534 --clear-groups ' : '';
    // unshare and sh exec: the agent's pid is the child's, its /proc/PID/ns/net the new namespace
    const script = `ip link set lo up && exec ${drop}"${process.execPath}" "${BIN}" demo --no-probe --health-port 0 --state-dir "${join(dir, 'state')}"`;
    agent = spawn('unshare', ['--net', 'sh', '-c', script], { env: { ...testEnv(), HOME: dir }, stdio: ['ignore', 'pipe', 'pipe'] });
    agent.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    url = await new Promise<string>((resolve, reject) => {
      agent.stdout?.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        const match = /control API\s+(http:\/\/127\.0\.0\.1:\d+)/.exec(output);
        if (match?.[1]) resolve(match[1]);
      });
      agent.once('exit', (code) => reject(new Error(`the demo agent exited (${code}): ${output}`)));
    });
  });

  afterAll(async () => {
    if (agent && agent.exitCode === null) {
      const exited = new Promise((resolve) => agent.once('exit', resolve));
      agent.kill('SIGTERM');
      await exited;
    }
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** The CLI against the demo's control socket (changes over TCP need the token, see sensor/health.ts). */
  function cli(args: string[]): Promise<CliResult> {
    return runCli([...args, '--agent', control()]);
  }

  function control(): string {
    return `unix:${join(dir, 'state', 'control.sock')}`;
  }

  /** Polls until `check` passes (the agent decides asynchronously), at most 10 s. */
  async function eventually<T>(read: () => Promise<T>, check: (value: T) => boolean): Promise<T> {
    const until = Date.now() + 10_000;
    for (;;) {
      const value = await read();
      if (check(value) || Date.now() > until) return value;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  it('runs in a namespace of its own: its control port is not on this host\'s loopback', async () => {
    const fromHost = await fetch(`${url}/healthz`).then(
      (response) => `answered ${response.status}`,
      (error: Error & { cause?: { code?: string } }) => error.cause?.code ?? error.message,
    );
    const fromInside = await runCommand('nsenter', [`--net=/proc/${agent.pid}/ns/net`, 'curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', `${url}/healthz`]);

    // (refused, unless some service of this host happens to hold the same port number)
    expect(fromHost).not.toBe('answered 200');
    expect(fromInside.stdout).toBe('200');
  });

  it('status reports the agent healthy, what it watches, log-only enforcement and the counts', async () => {
    const result = await cli(['status']);

    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`portsnare status — agent ${control()}`);
    expect(result.stdout).toMatch(new RegExp(`agent\\s+running, healthy — ${control()} \\(sensor portsnare-demo, up \\d+s\\)`));
    expect(result.stdout).toMatch(/watching\s+tcp [\d,-]+, udp [\d,-]+ on 127\.0\.0\.1/);
    if (canDrop || !root) expect(result.stdout).toMatch(/enforcement\s+LOG-ONLY/);
    expect(result.stdout).toMatch(/detections\s+\d+ \(from \d+ probes/);
    expect(result.stdout).toMatch(/circuit breaker\s+closed\n/);
    expect(result.stdout).toMatch(/spool depth\s+no spool \(no eventbridge sink\)/);
  });

  it('status --json carries the agent\'s own status', async () => {
    const result = await cli(['status', '--json']);

    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ where: `agent ${control()}`, healthy: true, backend: 'agent', spoolDepth: 0, circuitBreakerOpen: false, status: { sensorId: 'portsnare-demo' } });
  });

  it('blocks, lists, shows the history of and unblocks an address', async () => {
    const blocked = await cli(['block', '127.66.1.1', '--ttl', '5m', '--reason', 'manual test']);
    const listed = await cli(['blocks']);
    const json = await cli(['blocks', '--json']);
    const history = await cli(['history', '127.66.1.1']);
    const unblocked = await cli(['unblock', '127.66.1.1']);
    const again = await cli(['unblock', '127.66.1.1']);

    expect(blocked.code).toBe(0);
    expect(blocked.stdout).toMatch(new RegExp(`^blocked 127\\.66\\.1\\.1 for (5m|4m \\d+s) \\(until \\S+\\), offence 1, enforced in \\S.* — agent ${control()}\\n$`));
    expect(listed.stdout).toMatch(/127\.66\.1\.1\s+manual\s+1\s+0\s+(5m|4m \d+s)\s+.*requested by uid=0\(root\) portsnare-cli:\S+: manual test/);
    expect((JSON.parse(json.stdout) as Array<{ target: string }>).map((b) => b.target)).toContain('127.66.1.1');
    expect(history.stdout).toMatch(/^127\.66\.1\.1: blocked for/);
    expect(history.stdout).toMatch(/\n\S+Z\s+block\s+reason manual, offence 1/);
    expect(unblocked).toEqual({ code: 0, stdout: `unblocked 127.66.1.1 — agent ${control()}\n`, stderr: '' });
    expect(again.code).toBe(4);
    expect(again.stderr).toBe('portsnare: no active block for 127.66.1.1\n');
  });

  it('refuses the host\'s own address and special ranges with exit 3 and the agent\'s rule', async () => {
    const own = await cli(['block', '127.0.0.1']);
    const special = await cli(['block', '10.1.2.3']);

    expect(own.code).toBe(3);
    expect(own.stderr).toBe('portsnare: refused: never blocked: protected network 127.0.0.1/32\n');
    expect(special.code).toBe(3);
    expect(special.stderr).toBe('portsnare: refused: never blocked: special-purpose range private 10.0.0.0/8\n');
  });

  it('sees a probe: the attacker shows up in blocks with reason sensor', async () => {
    // inside the agent's namespace: its loopback, its decoy ports
    const probe = await runCommand('nsenter', [`--net=/proc/${agent.pid}/ns/net`, process.execPath, BIN, 'probe', '--from', '127.66.0.9', '--agent', url]);

    expect(probe.code).toBe(0);
    expect(probe.stdout).toContain(`the ports the agent at ${url} watches`);
    const blocks = await eventually(
      () => cli(['blocks', '--json']),
      (result) => result.stdout.includes('127.66.0.9'),
    );
    const attacker = (JSON.parse(blocks.stdout) as Array<{ target: string; reason: string; hitCount: number }>).find((b) => b.target === '127.66.0.9');
    expect(attacker).toMatchObject({ reason: 'sensor' });
    expect(attacker?.hitCount).toBeGreaterThan(0);
  });
});
