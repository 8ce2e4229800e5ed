/**
 * `portsnare probe`: the demo's attacker. Probes the decoy ports of this host from a demo
 * attacker address on loopback (127.66.0.7: on Linux all of 127.0.0.0/8 is this host, so any
 * 127.x address can be a source without configuring anything; the host's own 127.0.0.1 is
 * always ignored by the agent). A built-in TCP connect and UDP probe, or nmap (`-sT`, and `-sU`
 * as root) with --nmap. Not nmap by default: `nmap -sT` resets each connection right after the
 * handshake, and on loopback the reset beats the agent's accept(), so its socket listeners can
 * miss the source (the kernel detector, `stealth: true`, sees those probes).
 */
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import type { Command } from 'commander';
import { isAddress } from '../../core/address';
import { parsePortList } from '../../sensor/config';
import type { CliDeps } from './context';
import { CliError, EXIT } from './errors';

export const DEMO_ATTACKER = '127.66.0.7';
export const DEMO_ATTACKER_CIDR = '127.66.0.0/16';
export const DEMO_TARGET = '127.0.0.1';
export const DEMO_HEALTH_PORT = 9466;

/**
 * The demo's decoy ports. Unprivileged (≥ 1024) for everyone: services scanners look for on
 * high ports (telnet-alt, RDP, VNC, Redis, Elasticsearch, SSDP, SIP). As root also the classic
 * low ones (telnet, MS RPC, SMB, MSSQL, SNMP), which is where real scans start.
 */
export function demoPorts(root: boolean): { tcp: number[]; udp: number[] } {
  const tcp = [2323, 3389, 5900, 6379, 9200];
  const udp = [1900, 5060];
  return root ? { tcp: [23, 135, 445, 1433, ...tcp], udp: [161, ...udp] } : { tcp, udp };
}

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

export type TcpOutcome = 'open' | 'closed' | 'dropped' | 'error';

export interface ProbeResult {
  readonly protocol: 'tcp' | 'udp';
  readonly port: number;
  readonly outcome: TcpOutcome | 'sent';
  readonly detail?: string;
}

/** One TCP connect from `from` to target:port: open (handshake), closed (RST), dropped (no answer). */
export function tcpConnect(from: string, target: string, port: number, timeoutMs = 1500): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const socket = connect({ host: target, port, localAddress: from, timeout: timeoutMs });
    const done = (outcome: TcpOutcome, detail?: string): void => {
      socket.destroy();
      resolve({ protocol: 'tcp', port, outcome, ...(detail ? { detail } : {}) });
    };
    socket.once('connect', () => done('open'));
    socket.once('timeout', () => done('dropped', `no answer within ${timeoutMs} ms`));
    socket.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ECONNREFUSED') done('closed');
      else if (error.code === 'EADDRNOTAVAIL') done('error', `cannot send from ${from} (EADDRNOTAVAIL): on macOS run \`sudo ifconfig lo0 alias ${from}\``);
      else done('error', error.message);
    });
  });
}

/** One UDP datagram from `from` to target:port. UDP has no handshake: it is sent, not answered. */
export function udpSend(from: string, target: string, port: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const socket = createSocket(target.includes(':') ? 'udp6' : 'udp4');
    const finish = (result: ProbeResult): void => {
      socket.close();
      resolve(result);
    };
    socket.once('error', (error) => finish({ protocol: 'udp', port, outcome: 'error', detail: error.message }));
    socket.bind({ address: from, port: 0 }, () => {
      socket.send(Buffer.from('portsnare demo probe\n'), port, target, (error) => {
        finish(error ? { protocol: 'udp', port, outcome: 'error', detail: error.message } : { protocol: 'udp', port, outcome: 'sent' });
      });
    });
  });
}

/** The built-in probe: every TCP port at once (as a scanner does), then the UDP ports. */
export async function builtinProbe(from: string, target: string, ports: { tcp: readonly number[]; udp: readonly number[] }, timeoutMs = 1500): Promise<ProbeResult[]> {
  const tcp = await Promise.all(ports.tcp.map((port) => tcpConnect(from, target, port, timeoutMs)));
  const udp: ProbeResult[] = [];
  for (const port of ports.udp) udp.push(await udpSend(from, target, port));
  return [...tcp, ...udp];
}

export async function nmapAvailable(): Promise<boolean> {
  return (await runProgram('nmap', ['--version'], 5000).catch(() => undefined))?.code === 0;
}

/** nmap from `from`: a connect scan (a completed handshake proves the source), plus UDP as root. */
export function nmapArgs(from: string, target: string, ports: { tcp: readonly number[]; udp: readonly number[] }, root: boolean): string[] {
  const udp = root && ports.udp.length > 0;
  const list = [...ports.tcp.map((p) => `T:${p}`), ...(udp ? ports.udp.map((p) => `U:${p}`) : [])].join(',');
  return ['-Pn', '-n', '-sT', ...(udp ? ['-sU'] : []), '-S', from, '-e', 'lo', '--max-retries', '1', '--host-timeout', '30s', '-p', list, target];
}

export function runProgram(program: string, args: readonly string[], timeoutMs: number): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, stdout, stderr });
    });
  });
}

/** The lines of nmap's port table ("2323/tcp open  3d-nfsd"), and its verdict line. */
export function nmapPortLines(stdout: string): string[] {
  return stdout.split('\n').filter((line) => /^\d+\/(tcp|udp)\s/.test(line) || /^Not shown:|^All \d+ scanned ports/.test(line));
}

export function describeResult(result: ProbeResult): string {
  const what = {
    open: 'open — the decoy answered (handshake complete: the source is proven)',
    closed: 'closed (reset)',
    dropped: 'no answer — dropped',
    error: 'error',
    sent: 'datagram sent',
  }[result.outcome];
  return `${result.protocol}/${result.port} ${what}${result.detail && result.outcome !== 'dropped' ? `: ${result.detail}` : ''}`;
}

/** The ports the running agent watches, from its control API; undefined when none answers. */
export async function watchedPorts(agentUrl: string): Promise<{ tcp: number[]; udp: number[] } | undefined> {
  try {
    const response = await fetch(new URL('/status', agentUrl), { signal: AbortSignal.timeout(1000) });
    if (!response.ok) return undefined;
    const status = (await response.json()) as { watching?: { tcp?: unknown; udp?: unknown } };
    const parse = (value: unknown): number[] => {
      const parsed = parsePortList(typeof value === 'string' && value !== '' ? value : [], false);
      return parsed.ok && parsed.value !== 'all-unused' ? parsed.value : [];
    };
    return { tcp: parse(status.watching?.tcp), udp: parse(status.watching?.udp) };
  } catch {
    return undefined;
  }
}

interface ProbeOptions {
  readonly from: string;
  readonly target: string;
  readonly tcp?: string;
  readonly udp?: string;
  readonly nmap?: boolean;
  readonly agent: string;
}

function portsOption(name: string, value: string): number[] {
  const parsed = parsePortList(value, false);
  if (!parsed.ok || parsed.value === 'all-unused') throw new CliError(`invalid ${name} ${JSON.stringify(value)}: ${parsed.ok ? 'a list of ports' : parsed.error}`, EXIT.usage);
  return parsed.value;
}

export function registerProbe(program: Command, deps: CliDeps): void {
  program
    .command('probe')
    .summary('scan this host\'s decoy ports from a demo attacker address (the demo\'s companion)')
    .description(
      `Scan the decoy ports of this host from a demo attacker address on loopback (default ${DEMO_ATTACKER}), the way a scanner would: ` +
        'a built-in TCP connect and UDP probe, or with --nmap nmap -sT (and -sU as root). ' +
        'The ports are those the running agent watches (asked from its control API), or the demo\'s. ' +
        `Run it while \`npm start\` runs; the agent detects the scan and blocks ${DEMO_ATTACKER}.`,
    )
    .option('--from <address>', 'the attacker address (any 127.x address on Linux)', DEMO_ATTACKER)
    .option('--target <address>', 'the host to probe', DEMO_TARGET)
    .option('--tcp <ports>', 'TCP ports, e.g. "2323,3389,5900-5901" (default: what the agent watches)')
    .option('--udp <ports>', 'UDP ports (default: what the agent watches)')
    .option('--nmap', 'scan with nmap (-sT, and -sU as root) instead of the built-in probe')
    .option('--agent <url>', 'the agent whose watched ports to probe', `http://127.0.0.1:${DEMO_HEALTH_PORT}`)
    .action(async (options: ProbeOptions) => {
      if (!isAddress(options.from)) throw new CliError(`invalid --from ${JSON.stringify(options.from)}: not an IP address`, EXIT.usage);
      if (!isAddress(options.target)) throw new CliError(`invalid --target ${JSON.stringify(options.target)}: not an IP address`, EXIT.usage);
      const watched = options.tcp === undefined || options.udp === undefined ? await watchedPorts(options.agent) : undefined;
      const fallback = demoPorts(isRoot());
      const ports = {
        tcp: options.tcp !== undefined ? portsOption('--tcp', options.tcp) : (watched?.tcp ?? fallback.tcp),
        udp: options.udp !== undefined ? portsOption('--udp', options.udp) : (watched?.udp ?? fallback.udp),
      };
      const io = deps.io;
      const source = watched ? `the ports the agent at ${options.agent} watches` : 'the demo\'s ports (no agent answered)';
      if (options.nmap && !(await nmapAvailable())) throw new CliError('--nmap: nmap is not installed (Debian: apt-get install nmap); without --nmap the built-in probe runs', EXIT.usage);
      if (options.nmap) {
        const args = nmapArgs(options.from, options.target, ports, isRoot());
        io.out(`probing ${options.target} from ${options.from}, ${source}: nmap ${args.join(' ')}`);
        const result = await runProgram('nmap', args, 60_000);
        if (result.code !== 0) throw new CliError(`nmap failed (exit ${result.code}): ${result.stderr.trim().split('\n')[0] ?? ''}`, EXIT.failure);
        for (const line of nmapPortLines(result.stdout)) io.out(`  ${line}`);
        io.out('"filtered" = no answer: the agent blocked the attacker mid-scan and the kernel drops it now.');
        return;
      }
      io.out(`probing ${options.target} from ${options.from}, ${source}: built-in TCP connect${ports.udp.length > 0 ? ' and UDP' : ''} probe`);
      const results = await builtinProbe(options.from, options.target, ports);
      for (const result of results) io.out(`  ${describeResult(result)}`);
      const errors = results.filter((r) => r.outcome === 'error');
      if (errors.length === results.length && results.length > 0) throw new CliError(`every probe failed: ${errors[0]?.detail ?? ''}`, EXIT.failure);
    });
}
