/**
 * `portsnare demo` (what `npm start` runs): the agent on decoy ports on loopback with the local
 * pipeline — file store, nftables enforcement when this process may use nft (root or
 * CAP_NET_ADMIN, nft installed), log-only otherwise, said plainly at start — then a scan from
 * the demo attacker 127.66.0.7, so a newcomer sees a detection and a block within seconds.
 * It keeps running (Ctrl-C stops it) for `npm run probe` and `npx portsnare status|blocks|history`
 * from another terminal; `--once` stops after the first round (tests, CI).
 */
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { Command } from 'commander';
import type { ScanDetected } from '../../core/event';
import { Agent, type AgentStartReport } from '../../sensor/agent';
import { parseAgentConfig } from '../../sensor/config';
import { compactPorts } from '../../sensor/listeners';
import { NftEnforcer, NftError, run as runCommand } from '../../sensor/local/nft';
import type { LocalDecision } from '../../sensor/local/pipeline';
import type { Logger } from '../../sensor/log';
import { stopOnSignals } from '../../sensor/main';
import type { CliDeps } from './context';
import { CliError, EXIT } from './errors';
import { humanDuration } from './output';
import {
  DEMO_ATTACKER,
  DEMO_ATTACKER_CIDR,
  DEMO_HEALTH_PORT,
  DEMO_TARGET,
  builtinProbe,
  demoPorts,
  describeResult,
  isRoot,
  nmapArgs,
  nmapAvailable,
  nmapPortLines,
  runProgram,
  tcpConnect,
} from './probe';

/** Blocks in the demo last this long (the policy's minimum is 60 s); repeat offences double it. */
export const DEMO_TTL_SECONDS = 120;
/** After a Ctrl-C the demo stops within this long, its table deleted, even when something hangs. */
export const DEMO_STOP_DEADLINE_MS = 8000;

export interface DemoOptions {
  readonly stateDir?: string;
  readonly healthPort?: string;
  readonly probe: boolean;
  readonly once: boolean;
  readonly nmap?: boolean;
  readonly stealth?: boolean;
}

function clock(): string {
  return new Date().toTimeString().slice(0, 8);
}

/** `.portsnare/demo` in the current directory, emptied (every demo starts clean); a temporary directory when that is not writable. */
async function demoStateDirectory(): Promise<string> {
  const directory = join(process.cwd(), '.portsnare', 'demo');
  try {
    await rm(directory, { recursive: true, force: true });
    await mkdir(directory, { recursive: true });
    return directory;
  } catch {
    return mkdtemp(join(tmpdir(), 'portsnare-demo-'));
  }
}

/** Whether the port is free on loopback now (the control API's default may be taken). */
async function portFree(port: number): Promise<boolean> {
  const server = createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/**
 * Whether the agent's table is there before the demo starts (then the demo leaves it at the end).
 * Only nft's "no such table" answer means absent: any other failure stops the demo, which would
 * otherwise delete a table it did not make.
 */
async function nftTableExists(): Promise<boolean> {
  try {
    await runCommand('nft', ['list', 'table', 'inet', 'portsnare']);
    return true;
  } catch (error) {
    if (error instanceof NftError && /No such file or directory/.test(error.stderr)) return false;
    throw new CliError(`cannot tell whether nftables already has the table inet portsnare: ${error instanceof Error ? error.message : String(error)}`, EXIT.failure);
  }
}

/** The agent's log as short human lines; what the demo prints itself (detections, blocks) is left out. */
function humanLogger(print: (line: string) => void): Logger {
  const quiet = new Set(['scan detected', 'blocked', 'agent started', 'manual block', 'ignored', 'refreshed']);
  let last = '';
  const show = (level: string, msg: string, fields: Record<string, unknown> = {}): void => {
    if (level === 'debug' || quiet.has(msg) || msg.startsWith('block decision')) return;
    if (msg === 'restored blocks' && fields['count'] === 0) return;
    let line: string;
    if (msg === 'refused') line = `REFUSED   ${String(fields['target'])}: ${String(fields['why'])}`;
    else if (msg === 'unblocked') line = `UNBLOCKED ${String(fields['target'])} (by ${String(fields['requestedBy'])})`;
    else if (msg === 'expired') line = `EXPIRED   ${String(fields['target'])}: the block ended (offence ${String(fields['offences'])})`;
    else {
      const extra = Object.entries(fields)
        .filter(([key, value]) => value !== undefined && !['level', 'msg', 'time'].includes(key) && !msg.includes(String(value)))
        .map(([key, value]) => `${key} ${typeof value === 'object' ? JSON.stringify(value) : String(value)}`)
        .join(', ');
      line = `${level === 'warn' ? 'WARNING   ' : level === 'error' ? 'ERROR     ' : ''}${msg}${extra ? ` (${extra})` : ''}`;
    }
    if (line === last) return; // the agent and its pipeline both log an unblock
    last = line;
    print(`${clock()}  ${line}`);
  };
  return {
    debug: () => undefined,
    info: (msg, fields) => show('info', msg, fields),
    warn: (msg, fields) => show('warn', msg, fields),
    error: (msg, fields) => show('error', msg, fields),
    line: (fields) => {
      const f = fields as Record<string, unknown>;
      show(typeof f['level'] === 'string' ? f['level'] : 'info', typeof f['msg'] === 'string' ? f['msg'] : 'pipeline', f);
    },
  };
}

function describeDetection(event: ScanDetected): string {
  const shown = event.probes.slice(0, 4).map((p) => `${p.protocol}/${p.port} ${p.kind}`);
  const more = event.probes.length > shown.length ? ` (+${event.probes.length - shown.length} more)` : '';
  return `${clock()}  DETECTED  ${event.attacker} probed ${shown.join(', ')}${more}; ${event.probeCount} probe${event.probeCount === 1 ? '' : 's'}, handshake ${event.handshake ? 'yes (source proven)' : 'no (could be forged)'}`;
}

function describeDecision(event: ScanDetected, decision: LocalDecision, enforcement: string): string | undefined {
  if (decision.action === 'block') {
    const record = decision.record;
    const where = enforcement === 'nftables' ? 'dropped by nftables from now on' : 'LOG-ONLY: recorded, not dropped';
    return `${clock()}  BLOCKED   ${record.target} for ${humanDuration((record.expiresAt - record.blockedAt) / 1000)} (offence ${record.offences}) — ${where}`;
  }
  if (decision.action === 'refused') return undefined; // the pipeline's own "refused" line says why
  if (decision.action === 'refresh') return `${clock()}  still blocked ${event.attacker} (${decision.why})`;
  return `${clock()}  not blocked ${event.attacker}: ${decision.why}`;
}

export async function runDemo(options: DemoOptions, deps: CliDeps, signal?: AbortSignal): Promise<void> {
  const io = deps.io;
  const root = isRoot();
  const ports = demoPorts(root);
  const available = await NftEnforcer.available();
  const tableExisted = available.ok ? await nftTableExists() : false;
  const stateDirectory = options.stateDir ?? (await demoStateDirectory());

  let healthPort = options.healthPort !== undefined ? Number(options.healthPort) : DEMO_HEALTH_PORT;
  if (!Number.isInteger(healthPort) || healthPort < 0 || healthPort > 65535) throw new CliError(`invalid --health-port ${JSON.stringify(options.healthPort)}`, EXIT.usage);
  let portNote = '';
  if (healthPort !== 0 && !(await portFree(healthPort))) {
    portNote = ` (port ${healthPort} is taken — another agent? — so a free one was picked)`;
    healthPort = 0;
  }

  const parsed = parseAgentConfig({
    sensorId: 'portsnare-demo',
    listen: [DEMO_TARGET],
    tcpPorts: ports.tcp,
    udpPorts: ports.udp,
    trigger: 1,
    dedupeSeconds: 10,
    banner: 'SSH-2.0-OpenSSH_8.9p1\r\n',
    stealth: options.stealth === true,
    enforce: { nftables: { enabled: true, policy: { baseTtlSeconds: DEMO_TTL_SECONDS } } },
    // 127.66.0.0/16 is loopback (special-purpose, never blocked by default): the demo opens it
    guard: { blockableSpecialCidrs: [DEMO_ATTACKER_CIDR] },
    sinks: [],
    stateDirectory,
    health: { port: healthPort },
    logLevel: 'info',
  });
  if (!parsed.ok) throw new CliError(`demo config: ${parsed.error}`, EXIT.failure);

  io.out(`${clock()}  starting the agent (${root ? 'root' : 'not root'}; nftables ${available.ok ? 'available' : `unavailable: ${available.why}`})`);
  const agent = new Agent({ config: parsed.value, logger: humanLogger((line) => io.out(line)), publishers: [] });
  /** the demo made the table (or will): it deletes it at the end, whatever the number of signals */
  const ownsTable = available.ok && !tableExisted;
  const cleanup = async (): Promise<void> => {
    await agent.stop(3000);
    if (!available.ok) return;
    try {
      if (ownsTable) await new NftEnforcer().destroy(); // leave nothing behind
      else for (const entry of await new NftEnforcer().list()) if (entry.target.startsWith('127.66.')) await new NftEnforcer().unblock(entry.target);
    } catch (error) {
      if (ownsTable && error instanceof NftError && /No such file or directory/.test(error.stderr)) return; // never made (start failed early)
      io.err(`portsnare demo: could not clean up nftables: ${error instanceof Error ? error.message : String(error)} (run: nft delete table inet portsnare)`);
    }
  };
  // Installed before the agent starts and kept until the cleanup has finished: Ctrl-C under npm
  // delivers SIGINT twice (the terminal and npm), and neither may end the process before the
  // table is gone. Past the deadline the table is deleted synchronously and the process exits.
  let stopWhenSignalled: () => void = () => undefined;
  const stopRequested = new Promise<void>((resolve) => {
    signal?.addEventListener('abort', () => resolve(), { once: true });
    stopWhenSignalled = resolve;
  });
  const signals = stopOnSignals(
    async () => {
      stopWhenSignalled();
      await finished;
    },
    {
      deadlineMs: DEMO_STOP_DEADLINE_MS,
      log: (line) => io.out(`${clock()}  ${line}`),
      onDeadline: () => {
        if (ownsTable) spawnSync('nft', ['delete', 'table', 'inet', 'portsnare'], { stdio: 'ignore', timeout: 2000 });
      },
    },
  );
  let markFinished: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => (markFinished = resolve));
  try {
    await runStarted();
  } finally {
    markFinished();
    signals.dispose();
  }

  async function runStarted(): Promise<void> {
  let report: AgentStartReport;
  try {
    const started = await Promise.race([agent.start(), stopRequested.then(() => undefined)]);
    if (!started) {
      await cleanup();
      return;
    }
    report = started;
  } catch (error) {
    await cleanup();
    throw new CliError(`the demo agent did not start: ${error instanceof Error ? error.message : String(error)}`, EXIT.failure);
  }
  const agentUrl = `http://127.0.0.1:${report.healthPort ?? healthPort}`;
  const enforcementLine =
    report.enforcement === 'nftables'
      ? 'nftables — a blocked source is dropped in the kernel (table inet portsnare, chain block)'
      : `LOG-ONLY — blocks are decided and recorded but nothing is dropped: ${available.ok ? 'nftables unavailable' : available.why}. Run as root (sudo npm start) with nftables installed to enforce.`;
  io.out('portsnare demo: the host agent on loopback with the local pipeline (no AWS)');
  io.out(`  decoy ports   tcp ${compactPorts(report.listeners.tcp) || 'none'}, udp ${compactPorts(report.listeners.udp) || 'none'} on ${DEMO_TARGET}${root ? '' : ' (not root: ports >= 1024 only)'}`);
  io.out(`  enforcement   ${enforcementLine}`);
  io.out(`  policy        first offence blocked ${humanDuration(DEMO_TTL_SECONDS)}, each repeat offence doubles it`);
  io.out(`  state         ${stateDirectory} (the file store)`);
  io.out(`  control API   ${agentUrl}${portNote} (read-only; changes through the socket ${join(stateDirectory, 'control.sock')})`);
  io.out(`  attacker      ${DEMO_ATTACKER}, a loopback address the demo may block (guard.blockableSpecialCidrs ${DEMO_ATTACKER_CIDR}); this host's own 127.0.0.1 is never reported`);

  let detections = 0;
  let blocks = 0;
  const blocked = new Promise<void>((resolve) => {
    agent.on('detection', (event: ScanDetected) => {
      detections++;
      io.out(describeDetection(event));
    });
    agent.on('decision', (event: ScanDetected, decision: LocalDecision) => {
      const line = describeDecision(event, decision, report.enforcement);
      if (line) io.out(line);
      if (decision.action === 'block') {
        blocks++;
        resolve();
      }
    });
  });

  try {
    if (options.probe) {
      const round = demoRound({ ports: { tcp: report.listeners.tcp, udp: report.listeners.udp }, root, useNmap: options.nmap === true, enforcement: report.enforcement, blocked, io });
      if ((await Promise.race([round.then(() => 'done' as const), stopRequested.then(() => 'stop' as const)])) === 'stop') {
        io.out(`${clock()}  stopping`);
        return;
      }
    }
    if (options.once) {
      if (options.probe && (detections === 0 || blocks === 0)) throw new CliError(`the demo saw ${detections} detections and ${blocks} blocks`, EXIT.failure);
      return;
    }
    io.out('');
    io.out('The agent keeps running. In another terminal:');
    io.out('  npm run probe                      scan again (from 127.66.0.7; --from 127.66.0.8 for a fresh attacker)');
    io.out(`  npx portsnare status               agent and pipeline health`);
    io.out(`  npx portsnare blocks               what is blocked, why, until when`);
    io.out(`  npx portsnare history ${DEMO_ATTACKER}   what happened to the attacker`);
    io.out(`  npx portsnare unblock ${DEMO_ATTACKER}   lift the block`);
    io.out('Ctrl-C stops the demo.');
    await stopRequested;
    io.out(`${clock()}  stopping`);
  } finally {
    await cleanup();
  }
  }
}

/** One scan from the demo attacker, the block, then proof that the block holds. */
async function demoRound(args: {
  ports: { tcp: number[]; udp: number[] };
  root: boolean;
  useNmap: boolean;
  enforcement: string;
  blocked: Promise<void>;
  io: CliDeps['io'];
}): Promise<void> {
  const { ports, root, io } = args;
  io.out('');
  if (args.useNmap && (await nmapAvailable())) {
    const nmap = nmapArgs(DEMO_ATTACKER, DEMO_TARGET, ports, root);
    io.out(`${clock()}  the attacker scans: nmap ${nmap.join(' ')}`);
    const result = await runProgram('nmap', nmap, 60_000);
    if (result.code !== 0) io.out(`${clock()}  nmap failed (exit ${result.code}): ${result.stderr.trim().split('\n')[0] ?? ''}`);
    const lines = nmapPortLines(result.stdout);
    if (lines.length > 0) io.out(`${clock()}  nmap reports:\n${lines.map((line) => `            ${line}`).join('\n')}`);
  } else {
    io.out(`${clock()}  the attacker scans: built-in TCP connect + UDP probe from ${DEMO_ATTACKER}${args.useNmap ? ' (nmap is not installed)' : ''}`);
    const results = await builtinProbe(DEMO_ATTACKER, DEMO_TARGET, ports);
    io.out(results.map((result) => `            ${describeResult(result)}`).join('\n'));
  }
  const timeout = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 10_000).unref());
  if ((await Promise.race([args.blocked.then(() => 'blocked' as const), timeout])) === 'timeout') {
    io.out(`${clock()}  no block within 10 s: see the lines above (a refused block says why)`);
    return;
  }
  const port = ports.tcp[0];
  if (port === undefined) return;
  const again = await tcpConnect(DEMO_ATTACKER, DEMO_TARGET, port, 2000);
  io.out(
    `${clock()}  the attacker tries tcp/${port} again: ${
      again.outcome === 'dropped'
        ? 'no answer — the kernel drops every packet from it now'
        : `${again.outcome}${args.enforcement === 'nftables' ? '' : ' — log-only: nothing is dropped'}`
    }`,
  );
  const own = await tcpConnect(DEMO_TARGET, DEMO_TARGET, port, 2000);
  io.out(`${clock()}  this host (127.0.0.1) connects to tcp/${port}: ${own.outcome} — its own addresses are never reported or blocked`);
}

export function registerDemo(program: Command, deps: CliDeps): void {
  program
    .command('demo')
    .summary('run the agent on loopback decoy ports and scan it: a detection and a block in seconds (npm start)')
    .description(
      'Runs the host agent on decoy ports on 127.0.0.1 with the local pipeline (file store; nftables enforcement when root and nft are present, log-only otherwise), ' +
        `scans it from the demo attacker ${DEMO_ATTACKER} (a built-in TCP connect and UDP probe, or nmap with --nmap), and prints detections and blocks as they happen. ` +
        `Decoy ports: ${demoPorts(false).tcp.join(',')} TCP and ${demoPorts(false).udp.join(',')} UDP; as root also ${demoPorts(true).tcp.slice(0, 4).join(',')} TCP and 161 UDP. ` +
        'It keeps running for `npm run probe` and `npx portsnare status|blocks|history` until Ctrl-C; the nftables table it made is deleted on exit.',
    )
    .option('--state-dir <dir>', 'the file store (default .portsnare/demo, emptied at start)')
    .option('--health-port <port>', `the control API port (default ${DEMO_HEALTH_PORT}; a free one when taken)`)
    .option('--no-probe', 'do not scan at start (run `npm run probe` yourself)')
    .option('--nmap', 'scan with nmap -sT instead of the built-in probe (see README: nmap resets each connection at once, which the socket listeners can miss on loopback)')
    .option('--stealth', 'also watch the decoy ports in the kernel (SYN, FIN, NULL, XMAS, ACK, … and UDP probes; root and nft), e.g. for `npm run probe -- --nmap`')
    .option('--once', 'stop after the first scan and its block (exit 1 when there was none)')
    .action(async (options: DemoOptions) => {
      await runDemo(options, deps);
    });
}
