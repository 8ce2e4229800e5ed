/**
 * The host agent's figures (issue 3, item 11):
 * - agent_hits_per_s, agent_p99_ms: monitor mode, TCP connects to decoys from many 127.x source
 *   addresses (one attacker each, so every hit is an event); the load comes from a child process,
 *   closed loop (a fixed number of probes in flight), and latency is hit (client connect()
 *   called) → `Scan Detected` emitted, on the monotonic clock both processes share. Bounded: N
 *   probes, a time limit.
 * - agent_rss_mb_1000_ports: resident memory of the agent (the esbuild bundle the container runs)
 *   with 1000 TCP decoys on 127.0.0.1 and ::1 (2000 listening sockets), after start.
 * - agent_rss_mb_all_unused: the same with tcpPorts/udpPorts "all-unused" (kernel detection) in a
 *   network namespace of its own, so the host's nftables are not touched; agent + its NFLOG reader.
 * - agent_rss_mb_idle, agent_rss_mb_flood_1000, agent_flood_reported: the bundled agent as it runs
 *   in production (20 decoy ports, file sink, control API on), peak resident memory (VmHWM) idle,
 *   then after 10 s of TCP connects from 1,000 distinct 127.x sources round-robin over the 20
 *   ports (a child process, 64 in flight), and how many of the 1,000 sources were reported.
 * The bundled agent is built by sensor/bundle.ts and started as the systemd unit and the
 * Dockerfile start it: node with AGENT_NODE_FLAGS, AGENT_NODE_ENV in its environment.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from '../sensor/agent';
import { AGENT_NODE_ENV, AGENT_NODE_FLAGS, BUNDLE_ENTRY, buildAgentBundle } from '../sensor/bundle';
import { parseAgentConfig } from '../sensor/config';
import { KernelDetector } from '../sensor/kernel/detector';
import { jsonLogger } from '../sensor/log';
import { countersOnly, type Publisher } from '../sensor/publish/types';
import type { BenchSuite, Figure } from './suite';

const PROBES = 4000;
const CONCURRENCY = 48;
const TIME_LIMIT_MS = 60_000;

/** The load generator (plain JS, run by node in a child): connects from one source per probe. */
const GENERATOR = `
const net = require('node:net');
const [port, count, concurrency] = process.argv.slice(2).map(Number);
const sent = {};
let next = 0, done = 0, errors = 0;
function source(i) { return '127.' + (70 + Math.floor(i / 62500)) + '.' + (Math.floor(i / 250) % 250) + '.' + ((i % 250) + 1); }
function one() {
  if (next >= count) return;
  const i = next++;
  const src = source(i);
  sent[src] = Number(process.hrtime.bigint());
  const s = net.connect({ host: '127.0.0.1', port, localAddress: src });
  const fin = () => { s.destroy(); if (++done === count) { process.stdout.write(JSON.stringify({ sent, errors })); process.exit(0); } one(); };
  // closed loop: the next probe starts when the agent has closed this one (it closes at once,
  // after reporting), so at most \`concurrency\` hits are in flight and latency is not queueing
  let finished = false;
  const once = () => { if (!finished) { finished = true; fin(); } };
  s.on('close', once); s.on('error', () => { errors++; once(); });
}
for (let k = 0; k < concurrency; k++) one();
`;

async function freePort(): Promise<number> {
  const net = await import('node:net');
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as import('node:net').AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function hitsAndLatency(work: string): Promise<Figure[]> {
  const port = await freePort();
  const parsed = parseAgentConfig({ sensorId: 'bench', listen: ['127.0.0.1'], tcpPorts: [port], udpPorts: [], stateDirectory: work, health: { enabled: false }, limits: { maxSockets: 4096 } });
  if (!parsed.ok) throw new Error(parsed.error);
  const seen = new Map<string, number>();
  const sink: Publisher = {
    name: 'bench',
    start: () => Promise.resolve(),
    stop: () => Promise.resolve(),
    publish: () => Promise.resolve(true),
    describe: () => countersOnly('bench', { published: seen.size, dropped: 0, errors: 0 }),
  };
  // the real log line per detection, written nowhere
  const agent = new Agent({ config: parsed.value, logger: jsonLogger('info', () => undefined), publishers: [sink] });
  agent.on('detection', (event: { attacker: string }) => seen.set(event.attacker, Number(process.hrtime.bigint())));
  await agent.start();
  try {
    const script = join(work, 'generator.js');
    writeFileSync(script, GENERATOR);
    const started = Number(process.hrtime.bigint());
    const child = spawn(process.execPath, [script, String(port), String(PROBES), String(CONCURRENCY)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const code = await exited(child, TIME_LIMIT_MS);
    if (code !== 0) throw new Error(`load generator exited with ${code}`);
    const { sent, errors } = JSON.parse(output) as { sent: Record<string, number>; errors: number };
    const deadline = Date.now() + 30_000;
    while (seen.size < Object.keys(sent).length - errors && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    const latencies: number[] = [];
    let last = started;
    for (const [source, at] of Object.entries(sent)) {
      const got = seen.get(source);
      if (got === undefined) continue;
      latencies.push((got - at) / 1e6);
      last = Math.max(last, got);
    }
    latencies.sort((a, b) => a - b);
    const p = (q: number): number => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN;
    const seconds = (last - started) / 1e9;
    const rate = Math.round(latencies.length / seconds);
    return [
      {
        name: 'agent_hits_per_s',
        value: rate,
        unit: 'hits/s',
        note: `${latencies.length}/${PROBES} TCP connects from ${PROBES} distinct 127.x sources (closed loop, ${CONCURRENCY} in flight, load in a child process; load average ${loadavg()[0]!.toFixed(1)} on ${cpus().length} CPUs), each one Scan Detected; monitor mode; ${errors} connect errors`,
      },
      {
        name: 'agent_p99_ms',
        value: round(p(0.99), 2),
        unit: 'ms',
        note: `hit (client connect() called) to event emitted, same run; p50 ${round(p(0.5), 2)} ms, max ${round(latencies[latencies.length - 1] ?? NaN, 2)} ms`,
      },
    ];
  } finally {
    await agent.stop(2000);
  }
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

function exited(child: ChildProcess, ms: number): Promise<number | null> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), ms);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

/** The bundle the container and the EC2 sensor run (sensor/bundle.ts), for this machine's node. */
export async function bundle(work: string): Promise<string> {
  const outputDir = join(work, 'bundle');
  await buildAgentBundle({ root: join(__dirname, '..'), outputDir, target: `node${process.versions.node.split('.')[0]}`, sourcemap: false });
  return join(outputDir, BUNDLE_ENTRY);
}

/** How production starts the bundled agent: node, its flags, the bundle; the environment beside. */
function agentCommand(agentJs: string): string[] {
  return [process.execPath, ...AGENT_NODE_FLAGS, agentJs];
}

const AGENT_ENV = { ...process.env, ...AGENT_NODE_ENV };
const LAUNCH = `node ${AGENT_NODE_FLAGS.join(' ')}, ${Object.entries(AGENT_NODE_ENV).map(([k, v]) => `${k}=${v}`).join(' ')}`;

function rssKb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
}

function childrenOf(pid: number): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .filter((name) => {
      try {
        const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid;
      } catch {
        return false;
      }
    })
    .map(Number);
}

/** Starts the bundled agent, waits for "agent started", lets it settle, and reads its memory. */
async function measureRss(command: string[], config: object, work: string, name: string): Promise<{ agentKb: number; childrenKb: number; started: Record<string, unknown> }> {
  const path = join(work, `${name}.json`);
  writeFileSync(path, JSON.stringify(config));
  const child = spawn(command[0]!, [...command.slice(1), 'agent', '--config', path], { stdio: ['ignore', 'ignore', 'pipe'], env: AGENT_ENV });
  let stderr = '';
  const startedLine = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name}: the agent did not start within 60 s: ${stderr.slice(-500)}`)), 60_000);
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      const line = stderr.split('\n').find((l) => l.includes('"agent started"'));
      if (line) {
        clearTimeout(timer);
        resolve(JSON.parse(line) as Record<string, unknown>);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name}: the agent exited (${code}) before starting: ${stderr.slice(-500)}`));
    });
  });
  await new Promise((resolve) => setTimeout(resolve, 3000)); // settle: start-up garbage collected, heap stable
  const agentKb = rssKb(child.pid!);
  const childrenKb = childrenOf(child.pid!).reduce((sum, pid) => sum + (rssKb(pid) || 0), 0);
  child.kill('SIGTERM');
  await exited(child, 15_000);
  return { agentKb, childrenKb, started: startedLine };
}

async function rss1000(agentJs: string, work: string): Promise<Figure> {
  const base = 47000;
  const config = (tcpPorts: string, name: string) => ({
    sensorId: 'bench',
    listen: ['127.0.0.1', '::1'],
    tcpPorts,
    udpPorts: [],
    stateDirectory: join(work, `state-${name}`),
    health: { port: 0 },
    sinks: [{ type: 'file', path: join(work, `events-${name}.jsonl`) }],
  });
  const one = await measureRss(agentCommand(agentJs), config(String(base), 'one'), work, 'rss-1');
  const measured = await measureRss(agentCommand(agentJs), config(`${base}-${base + 999}`, '1000'), work, 'rss-1000');
  return {
    name: 'agent_rss_mb_1000_ports',
    value: round(measured.agentKb / 1024, 1),
    unit: 'MB',
    note: `VmRSS of the agent run from the bundled CLI (as in the Docker image: ${LAUNCH}; node ${process.version}) 3 s after start, TCP ${String(measured.started.tcp)} on 127.0.0.1 and ::1 (2000 listening sockets); the same with 1 decoy port: ${round(one.agentKb / 1024, 1)} MB`,
  };
}

async function rssAllUnused(agentJs: string, work: string): Promise<Figure> {
  const available = await KernelDetector.available();
  if (!available.ok) {
    return { name: 'agent_rss_mb_all_unused', value: NaN, unit: 'MB', note: `not measured: all-unused needs kernel detection, unavailable here (${available.why})` };
  }
  const ns = `psn-bench-${process.pid}`;
  const ip = (...args: string[]) => {
    const result = spawnSync('ip', args, { encoding: 'utf8' });
    if (result.status !== 0) throw new Error(`ip ${args.join(' ')}: ${result.stderr}`);
  };
  ip('netns', 'add', ns);
  try {
    ip('-n', ns, 'link', 'set', 'lo', 'up');
    const config = {
      sensorId: 'bench',
      listen: ['127.0.0.1'],
      tcpPorts: 'all-unused',
      udpPorts: 'all-unused',
      stealth: true,
      stateDirectory: join(work, 'state-all'),
      health: { port: 0 },
      sinks: [{ type: 'file', path: join(work, 'events-all.jsonl') }],
    };
    const measured = await measureRss(['ip', 'netns', 'exec', ns, ...agentCommand(agentJs)], config, work, 'rss-all');
    return {
      name: 'agent_rss_mb_all_unused',
      value: round((measured.agentKb + measured.childrenKb) / 1024, 1),
      unit: 'MB',
      note: `tcpPorts and udpPorts all-unused with stealth, in a network namespace of its own: agent ${round(measured.agentKb / 1024, 1)} MB + NFLOG reader (tcpdump) ${round(measured.childrenKb / 1024, 1)} MB; no sockets per port, the kernel watches`,
    };
  } finally {
    spawnSync('ip', ['netns', 'del', ns]);
  }
}

/** The flood: connects from `sources` distinct 127.x addresses to the ports, round-robin, for `seconds`. */
const FLOOD = `
const net = require('node:net');
const [first, portCount, sources, seconds, concurrency] = process.argv.slice(2).map(Number);
const until = Date.now() + seconds * 1000;
let i = 0, connects = 0, errors = 0, live = 0;
function source(k) { return '127.' + (90 + Math.floor(k / 62500)) + '.' + (Math.floor(k / 250) % 250) + '.' + ((k % 250) + 1); }
function one() {
  if (Date.now() >= until) { if (--live === 0) { process.stdout.write(JSON.stringify({ connects, errors })); process.exit(0); } return; }
  const k = i++;
  const s = net.connect({ host: '127.0.0.1', port: first + (k % portCount), localAddress: source(k % sources) });
  let done = false;
  const next = () => { if (!done) { done = true; s.destroy(); one(); } };
  s.on('connect', () => connects++);
  s.on('close', next); s.on('error', () => { errors++; next(); });
}
for (let c = 0; c < concurrency; c++) { live++; one(); }
`;

/** user + system CPU of a process, in clock ticks (1/100 s on Linux) */
function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

function vmHwmKb(pid: number): number {
  return Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);
}

/** agent_rss_mb_idle, agent_rss_mb_flood_1000, agent_flood_reported (see the header). */
export async function footprint(agentJs: string, work: string): Promise<Figure[]> {
  const first = 47200;
  const events = join(work, 'events-flood.jsonl');
  const path = join(work, 'flood.json');
  writeFileSync(path, JSON.stringify({ sensorId: 'bench', listen: ['127.0.0.1'], tcpPorts: `${first}-${first + 19}`, udpPorts: [], stateDirectory: join(work, 'state-flood'), health: { port: 0 }, sinks: [{ type: 'file', path: events }] }));
  const [node, ...args] = agentCommand(agentJs);
  const child = spawn(node!, [...args, 'agent', '--config', path], { stdio: ['ignore', 'ignore', 'pipe'], env: AGENT_ENV });
  try {
    let stderr = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the agent did not start: ${stderr.slice(-300)}`)), 60_000);
      child.stderr!.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
        if (stderr.includes('"agent started"')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code) => reject(new Error(`the agent exited (${code}): ${stderr.slice(-300)}`)));
    });
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const idleKb = vmHwmKb(child.pid!);
    const script = join(work, 'flood.js');
    writeFileSync(script, FLOOD);
    const cpuBefore = cpuTicks(child.pid!);
    const load = spawn(process.execPath, [script, String(first), '20', '1000', '10', '64'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let output = '';
    load.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    if ((await exited(load, 60_000)) !== 0) throw new Error('the flood generator failed');
    const { connects, errors } = JSON.parse(output) as { connects: number; errors: number };
    // what each connect cost the agent (user + system CPU), whatever else the machine runs
    const cpuMsPer1000 = round(((cpuTicks(child.pid!) - cpuBefore) * 10 * 1000) / Math.max(1, connects), 0);
    const reported = (): number => {
      try {
        return new Set(readFileSync(events, 'utf8').split('\n').filter(Boolean).map((line) => (JSON.parse(line) as { detail?: { attacker?: string }; attacker?: string }).detail?.attacker ?? (JSON.parse(line) as { attacker?: string }).attacker)).size;
      } catch {
        return 0;
      }
    };
    const deadline = Date.now() + 15_000;
    while (reported() < 1000 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
    const floodKb = vmHwmKb(child.pid!);
    const note = `bundled CLI as production starts it (${LAUNCH}; node ${process.version}), 20 decoys on 127.0.0.1, file sink, control API on`;
    return [
      { name: 'agent_rss_mb_idle', value: round(idleKb / 1024, 1), unit: 'MB', note: `peak VmHWM 3 s after start; ${note}` },
      { name: 'agent_rss_mb_flood_1000', value: round(floodKb / 1024, 1), unit: 'MB', note: `peak VmHWM after 10 s of connects from 1,000 sources to 20 ports (${connects} connects, ${errors} errors, 64 in flight; agent CPU ${cpuMsPer1000} ms per 1,000 connects); ${note}` },
      { name: 'agent_flood_reported', value: reported(), unit: 'of 1000', note: 'distinct sources in the file sink after the flood (goal: all 1,000)' },
    ];
  } finally {
    child.kill('SIGTERM');
    await exited(child, 15_000);
  }
}

export const suite: BenchSuite = {
  title: 'host agent: hit→event throughput and latency, memory with 1000 decoys and all-unused',
  async run(): Promise<Figure[]> {
    const work = mkdtempSync(join(tmpdir(), 'portsnare-bench-agent-'));
    try {
      const figures = await hitsAndLatency(work);
      const agentJs = await bundle(work);
      figures.push(...(await footprint(agentJs, work)));
      figures.push(await rss1000(agentJs, work));
      figures.push(await rssAllUnused(agentJs, work).catch((error: unknown) => ({ name: 'agent_rss_mb_all_unused', value: NaN, unit: 'MB', note: `not measured: ${(error as Error).message.slice(0, 200)}` })));
      return figures;
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  },
};
