import { spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { type AddressInfo, connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BIN, type CliResult, runBin, runCli, runCommand } from './cli';
import { skipOutsideCi, testSource } from '../sensor/helpers';
import { isRoot, namespaceNftUnavailable, runnable } from './prereq';

/** A network namespace of its own keeps the demo's nftables table and ports away from the host's. */
const canUnshare = isRoot && spawnSync('unshare', ['--net', 'true']).status === 0;
const nftDemo = runnable('test/bin/demo.test.ts (the demo with nftables)', namespaceNftUnavailable());

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'portsnare-demo-'));
  await chmod(dir, 0o777);
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** `portsnare demo --once` in a fresh network namespace (lo up), optionally as an unprivileged user. */
function demoInNamespace(args: string[], options: { user?: 'nobody' } = {}): Promise<CliResult> {
  const drop = options.user ? `setpriv --reuid=65534 --regid=65534 --clear-groups env HOME=${dir} ` : '';
  const script = `ip link set lo up && exec ${drop}"${process.execPath}" "${BIN}" demo --once --health-port 0 --state-dir "${join(dir, 'state')}" ${args.join(' ')}`;
  return runCommand('unshare', ['--net', 'sh', '-c', script], { timeoutMs: 60_000 });
}

/** The demo's attacker and its unprivileged decoy ports (bin/commands/probe.ts), written out: the test's own copy. */
const DEMO_ATTACKER = '127.66.0.7';
const UNPRIVILEGED_DECOYS = [2323, 3389, 5900, 6379, 9200];

/** Whether a TCP connect from `from` to 127.0.0.1:port gets an answer (accepted or reset) within `ms`. */
function answers(from: string, port: number, ms = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port, localAddress: from });
    const done = (answered: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(answered);
    };
    const timer = setTimeout(() => done(false), ms);
    socket.once('connect', () => done(true));
    socket.once('error', (error: NodeJS.ErrnoException) => done(error.code === 'ECONNREFUSED'));
  });
}

/**
 * Why the demo cannot run on this host's loopback now, or undefined: a demo or agent already
 * running here holds every unprivileged decoy port, or drops the demo attacker in the kernel.
 */
async function hostCollision(): Promise<string | undefined> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const reachable = await answers(DEMO_ATTACKER, (server.address() as AddressInfo).port);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (!reachable) return `${DEMO_ATTACKER} gets no answer on this host's loopback (a running portsnare demo or agent blocks it); as root the test runs in a namespace of its own`;
  const free = await Promise.all(UNPRIVILEGED_DECOYS.map((port) => answers('127.0.0.1', port, 500).then((taken) => !taken)));
  if (!free.includes(true)) return `every decoy port (${UNPRIVILEGED_DECOYS.join(', ')}) is taken on 127.0.0.1 (a portsnare demo runs here?); as root the test runs in a namespace of its own`;
  return undefined;
}

describe('portsnare demo (npm start)', () => {
  it.runIf(nftDemo)('as root with nft: detects the scan, blocks the attacker in nftables, and the block holds', async () => {
    const result = await demoInNamespace([]);

    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/enforcement\s+nftables — a blocked source is dropped in the kernel/);
    expect(result.stdout).toMatch(/decoy ports\s+tcp 23,135,445,1433,2323,3389,5900,6379,9200, udp 161,1900,5060 on 127\.0\.0\.1/);
    expect(result.stdout).toMatch(/DETECTED {2}127\.66\.0\.7 probed tcp\/\d+ connect.*handshake yes/);
    expect(result.stdout).toMatch(/BLOCKED {3}127\.66\.0\.7 for 2m \(offence 1\) — dropped by nftables from now on/);
    expect(result.stdout).toMatch(/the attacker tries tcp\/23 again: no answer — the kernel drops every packet from it now/);
    expect(result.stdout).toMatch(/this host \(127\.0\.0\.1\) connects to tcp\/23: open/);
  });

  it.runIf(nftDemo)('keeps running until Ctrl-C, then stops and deletes the nftables table it made', async () => {
    const out = join(dir, 'demo.out');
    const script = [
      `"${process.execPath}" "${BIN}" demo --health-port 0 --state-dir "${join(dir, 'state')}" > "${out}" 2>&1 &`,
      'pid=$!',
      // wait (bounded) for the demo to finish its first round and say how to stop it
      `for i in $(seq 300); do grep -q 'Ctrl-C stops the demo' "${out}" && break; sleep 0.1; done`,
      'echo "before: $(nft list tables)"',
      'kill -INT $pid; wait $pid; echo "exit $?"',
      'echo "after: $(nft list tables)"',
    ].join('\n');
    const result = await runCommand('unshare', ['--net', 'sh', '-c', `ip link set lo up\n${script}`], { timeoutMs: 60_000 });
    const demo = readFileSync(out, 'utf8');

    expect(result.stdout).toContain('before: table inet portsnare');
    expect(result.stdout).toContain('exit 0');
    expect(result.stdout).toMatch(/after: $/m);
    expect(demo).toMatch(/BLOCKED {3}127\.66\.0\.7/);
    expect(demo).toMatch(/\d\d:\d\d:\d\d {2}stopping\n/);
  });

  it('without root: says LOG-ONLY plainly, uses ports >= 1024, and still decides the block', async (ctx) => {
    // as root: an unprivileged user in a namespace of its own; otherwise this user, here, where a
    // demo or agent already running may hold every decoy port or drop the demo attacker
    if (!canUnshare && skipOutsideCi(await hostCollision())) return ctx.skip();
    const result = canUnshare
      ? await demoInNamespace([], { user: 'nobody' })
      : await runBin(['demo', '--once', '--health-port', '0', '--state-dir', join(dir, 'state')], { timeoutMs: 60_000 });

    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/WARNING {3}enforcement is LOG-ONLY: needs root or CAP_NET_ADMIN/);
    expect(result.stdout).toMatch(/enforcement\s+LOG-ONLY — blocks are decided and recorded but nothing is dropped/);
    // a port some service of this host holds is skipped, so outside a namespace only the form is fixed
    expect(result.stdout).toMatch(canUnshare ? /decoy ports\s+tcp 2323,3389,5900,6379,9200, udp 1900,5060 on 127\.0\.0\.1 \(not root: ports >= 1024 only\)/ : /decoy ports\s+tcp [\d,-]+, udp [\d,-]+ on 127\.0\.0\.1 \(not root: ports >= 1024 only\)/);
    expect(result.stdout).toMatch(/BLOCKED {3}127\.66\.0\.7 for 2m \(offence 1\) — LOG-ONLY: recorded, not dropped/);
    expect(result.stdout).toMatch(/the attacker tries tcp\/\d+ again: open — log-only: nothing is dropped/);
  });
});

describe('portsnare probe', () => {
  it('connects from the --from address and sends UDP from it; the default --from is the demo attacker', async () => {
    const seen: string[] = [];
    const tcp = createServer((socket) => {
      seen.push(`tcp ${socket.remoteAddress}`);
      socket.destroy();
    });
    await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', resolve));
    const udp = createSocket('udp4');
    const datagram = new Promise<string>((resolve) => udp.once('message', (_message, remote) => resolve(`udp ${remote.address}`)));
    await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve));
    const tcpPort = (tcp.address() as AddressInfo).port;
    const udpPort = udp.address().port;

    // a source of the unit tests' own, which a demo running on this host never blocks
    const result = await runCli(['probe', '--from', testSource(7), '--tcp', String(tcpPort), '--udp', String(udpPort)]);
    const help = await runCli(['probe', '--help']);

    seen.push(await datagram);
    tcp.close();
    udp.close();
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`tcp/${tcpPort} open`);
    expect(result.stdout).toContain(`udp/${udpPort} datagram sent`);
    expect(seen).toEqual([`tcp ${testSource(7)}`, `udp ${testSource(7)}`]);
    expect(help.stdout).toMatch(new RegExp(`--from <address>[\\s\\S]*\\(default: "${DEMO_ATTACKER.replace(/\./g, '\\.')}"\\)`));
  });

  it('reports a closed port as closed', async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    await new Promise<void>((resolve) => server.close(() => resolve()));

    const result = await runCli(['probe', '--from', testSource(8), '--tcp', String(port), '--udp', '']);

    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`tcp/${port} closed (reset)`);
  });

  it('exits 2 on an invalid source address or port list', async () => {
    const badFrom = await runCli(['probe', '--from', '127.66.0.300']);
    const badPorts = await runCli(['probe', '--tcp', '70000']);

    expect(badFrom.code).toBe(2);
    expect(badFrom.stderr).toBe('portsnare: invalid --from "127.66.0.300": not an IP address\n');
    expect(badPorts.code).toBe(2);
    expect(badPorts.stderr).toContain('invalid --tcp "70000": "70000" is not a port (1-65535)');
  });
});
