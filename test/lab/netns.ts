/**
 * Network-namespace labs: two hosts joined by a veth pair, TEST-NET addresses only, the real
 * agent in one and real nmap in the other.
 *
 *   sensor  (psn-<tag>-<pid>-s)  198.51.100.1/24   2001:db8:1::1/64
 *   attacker(psn-<tag>-<pid>-a)  198.51.100.66/24  2001:db8:1::66/64  (+ more addresses on demand)
 *
 * Every lab file uses its own tag and every run its process id (psn-<tag>-<pid>-s), so namespaces
 * never collide, between files nor with a second test run on the same host; destroy() deletes
 * them (and with them the veth pair and every nftables table inside) and kills what the lab
 * started. create() first removes this tag's namespaces left by a run whose process is gone.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import ipaddr from 'ipaddr.js';
import type { ScanDetected } from '../../core/event';

export const ROOT = resolve(__dirname, '..', '..');
export const SENSOR4 = '198.51.100.1';
export const SENSOR6 = '2001:db8:1::1';
export const ATTACKER4 = '198.51.100.66';
export const ATTACKER6 = '2001:db8:1::66';
export const TESTNET = ['192.0.2.0/24', '198.51.100.0/24', '203.0.113.0/24', '2001:db8::/32'];

const NEEDED = [
  ['ip', 'iproute2'],
  ['nft', 'nftables'],
  ['nmap', 'nmap'],
  ['tcpdump', 'tcpdump'],
] as const;

/** Why the labs cannot run here, or undefined when they can. */
export function labUnavailable(): string | undefined {
  if (process.platform !== 'linux') return `labs need Linux network namespaces (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'labs need root (network namespaces, nftables, raw nmap scans)';
  const missing = NEEDED.filter(([program]) => spawnSync('sh', ['-c', `command -v ${program}`]).status !== 0).map(([p, pkg]) => `${p} (Debian package ${pkg})`);
  if (missing.length) return `labs need ${missing.join(', ')}: run scripts/setup-system.sh`;
  return undefined;
}

/**
 * True when the labs can run. When they cannot: in CI (process.env.CI set) this throws — there
 * the labs must run, not skip; elsewhere it prints why and the lab file skips.
 */
export function labReady(file: string): boolean {
  const why = labUnavailable();
  if (why === undefined) return true;
  if (process.env.CI) throw new Error(`${file}: lab prerequisites missing in CI (they must run there): ${why}`);
  console.warn(`SKIPPED ${file}: ${why}`);
  return false;
}

export interface RunOutput {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a program to completion (bounded by timeoutMs); never rejects on a non-zero exit. */
export function runProgram(program: string, args: readonly string[], timeoutMs = 60_000): Promise<RunOutput> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(program, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.setEncoding('utf8').on('data', (t: string) => (stdout += t));
    child.stderr.setEncoding('utf8').on('data', (t: string) => (stderr += t));
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolvePromise({ code, stdout, stderr });
    });
  });
}

async function must(program: string, args: readonly string[]): Promise<string> {
  const out = await runProgram(program, args);
  if (out.code !== 0) throw new Error(`${program} ${args.join(' ')} failed (${out.code}): ${out.stderr.trim()}`);
  return out.stdout;
}

/** The ports nmap reports open in its normal output. */
export function openPorts(nmapOutput: string): number[] {
  return [...nmapOutput.matchAll(/^(\d+)\/(?:tcp|udp)\s+open\s/gm)].map((m) => Number(m[1]));
}

/** State nmap reports for one port ("open", "filtered", "closed", …), or undefined. */
export function portState(nmapOutput: string, port: number, protocol: 'tcp' | 'udp' = 'tcp'): string | undefined {
  return new RegExp(`^${port}/${protocol}\\s+(\\S+)`, 'm').exec(nmapOutput)?.[1];
}

export class Lab {
  readonly sensorNs: string;
  readonly attackerNs: string;
  readonly sensorIf: string;
  readonly attackerIf: string;
  readonly dir: string;
  private readonly children = new Set<ChildProcess>();

  private constructor(readonly tag: string) {
    this.sensorNs = `psn-${tag}-${process.pid}-s`;
    this.attackerNs = `psn-${tag}-${process.pid}-a`;
    this.sensorIf = `ps${tag}s`;
    this.attackerIf = `ps${tag}a`;
    this.dir = mkdtempSync(join(tmpdir(), `portsnare-lab-${tag}-`));
  }

  /** Builds the two hosts. `tag`: 1–8 letters/digits, unique per lab file. */
  static async create(tag: string): Promise<Lab> {
    if (!/^[a-z0-9]{1,8}$/.test(tag)) throw new Error(`lab tag must be 1-8 lowercase letters/digits: ${tag}`);
    const lab = new Lab(tag);
    await removeOrphans(tag); // leftovers of a crashed run (never another live run's)
    try {
      const s = lab.sensorNs;
      const a = lab.attackerNs;
      await must('ip', ['netns', 'add', s]);
      await must('ip', ['netns', 'add', a]);
      await must('ip', ['link', 'add', lab.sensorIf, 'netns', s, 'type', 'veth', 'peer', 'name', lab.attackerIf, 'netns', a]);
      for (const [ns, dev, v4, v6] of [
        [s, lab.sensorIf, `${SENSOR4}/24`, `${SENSOR6}/64`],
        [a, lab.attackerIf, `${ATTACKER4}/24`, `${ATTACKER6}/64`],
      ] as const) {
        await must('ip', ['-n', ns, 'addr', 'add', v4, 'dev', dev]);
        await must('ip', ['-n', ns, 'addr', 'add', v6, 'dev', dev, 'nodad']);
        await must('ip', ['-n', ns, 'link', 'set', dev, 'up']);
        await must('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      }
    } catch (error) {
      await lab.destroy();
      throw error;
    }
    return lab;
  }

  /** Another source address for the attacker (IPv4 /24 or IPv6 /64 in the lab subnets). */
  async addAttackerAddress(address: string): Promise<void> {
    const cidr = address.includes(':') ? `${address}/64` : `${address}/24`;
    await must('ip', ['-n', this.attackerNs, 'addr', 'add', cidr, 'dev', this.attackerIf, ...(address.includes(':') ? ['nodad'] : [])]);
  }

  inSensor(program: string, args: readonly string[], timeoutMs?: number): Promise<RunOutput> {
    return runProgram('ip', ['netns', 'exec', this.sensorNs, program, ...args], timeoutMs);
  }

  inAttacker(program: string, args: readonly string[], timeoutMs?: number): Promise<RunOutput> {
    return runProgram('ip', ['netns', 'exec', this.attackerNs, program, ...args], timeoutMs);
  }

  /** nmap from the attacker: numeric, no host discovery, one retry; returns its normal output. */
  async nmap(args: readonly string[], timeoutMs = 120_000): Promise<string> {
    const out = await this.inAttacker('nmap', ['-n', '-Pn', '--max-retries', '1', ...args], timeoutMs);
    if (out.code !== 0) throw new Error(`nmap ${args.join(' ')} failed (${out.code}): ${out.stderr.trim()}`);
    return out.stdout;
  }

  /** nmap from an extra attacker address (raw scans: -S plus -e; connect scans bind to it). */
  nmapFrom(source: string, args: readonly string[], timeoutMs?: number): Promise<string> {
    return this.nmap(['-S', source, '-e', this.attackerIf, ...args], timeoutMs);
  }

  /**
   * One TCP connection from the attacker namespace, bound to `source`, held 50 ms, then closed
   * like a client would (nmap -sT resets at once, which a userspace accept() may not see).
   * Resolves true when it connected.
   */
  async connectFrom(source: string, target: string, port: number): Promise<boolean> {
    const script = `
      const s = require('net').connect({ host: ${JSON.stringify(target)}, port: ${port}, localAddress: ${JSON.stringify(source)} }, () => {
        setTimeout(() => { s.end(); console.log('connected'); }, 50);
      });
      s.on('error', (e) => { console.log('error ' + e.code); });
      s.setTimeout(5000, () => s.destroy());`;
    const out = await this.inAttacker('node', ['-e', script], 10_000);
    return out.stdout.includes('connected');
  }

  /** Plain TCP services in the sensor namespace (a greeting, then close), listening on every address. */
  async startServices(ports: readonly number[]): Promise<void> {
    const script = `
      const net = require('net');
      const ports = ${JSON.stringify(ports)};
      let up = 0;
      for (const port of ports) {
        const server = net.createServer((s) => { s.on('error', () => {}); s.end('real service ' + port + '\\n'); });
        server.listen({ port, host: '::', ipv6Only: false }, () => { if (++up === ports.length) console.log('ready'); });
      }`;
    const child = this.spawnInSensor('node', ['-e', script]);
    await new Promise<void>((resolvePromise, reject) => {
      let out = '';
      child.stdout!.setEncoding('utf8').on('data', (t: string) => {
        out += t;
        if (out.includes('ready')) resolvePromise();
      });
      child.on('exit', (code) => reject(new Error(`services exited (${code}) before listening`)));
    });
  }

  spawnInSensor(program: string, args: readonly string[]): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', this.sensorNs, program, ...args], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    this.children.add(child);
    child.on('exit', () => this.children.delete(child));
    return child;
  }

  /** Starts `node bin/portsnare.js agent --config FILE` in the sensor namespace; resolves once it has started. */
  async startAgent(config: Record<string, unknown>, name = 'agent'): Promise<AgentProcess> {
    const path = join(this.dir, `${name}.json`);
    const full = { sensorId: `lab-${this.tag}`, stateDirectory: join(this.dir, 'state'), sinks: [{ type: 'stdout' }], ...config };
    writeFileSync(path, JSON.stringify(full, null, 2));
    const child = this.spawnInSensor('node', [join(ROOT, 'bin', 'portsnare.js'), 'agent', '--config', path]);
    const agent = new AgentProcess(child);
    await agent.started();
    return agent;
  }

  /**
   * Starts test/lab/drivers/kernel-host.ts (detector + enforcer + pipeline, no agent) in the
   * sensor namespace; resolves once its rules are loaded. Its JSON lines land in `lines`.
   */
  async startKernelHost(options: Record<string, unknown>): Promise<DriverProcess> {
    const child = this.spawnInSensor('node', ['--require', 'tsx/cjs', join(ROOT, 'test', 'lab', 'drivers', 'kernel-host.ts'), JSON.stringify(options)]);
    const driver = new DriverProcess(child);
    await driver.waitFor((l) => l.type === 'ready', 'the kernel host to load its rules', 60_000);
    return driver;
  }

  /** nftables state of the sensor: the elements of the blocked sets (empty when there is no table). */
  async blockedInKernel(): Promise<string[]> {
    const out = await this.inSensor('nft', ['-j', 'list', 'table', 'inet', 'portsnare']);
    if (out.code !== 0) return [];
    const items = (JSON.parse(out.stdout) as { nftables: Array<{ set?: { name: string; elem?: unknown[] } }> }).nftables;
    const targets: string[] = [];
    for (const item of items) {
      if (!item.set || !item.set.name.startsWith('blocked')) continue;
      for (const raw of item.set.elem ?? []) {
        const val = raw && typeof raw === 'object' && 'elem' in raw ? (raw as { elem: { val: unknown } }).elem.val : raw;
        if (typeof val === 'string') targets.push(val);
        else if (val && typeof val === 'object' && 'prefix' in val) {
          const p = (val as { prefix: { addr: string; len: number } }).prefix;
          targets.push(`${p.addr}/${p.len}`);
        }
      }
    }
    return targets;
  }

  async destroy(): Promise<void> {
    for (const child of this.children) child.kill('SIGKILL');
    this.children.clear();
    await this.removeNamespaces();
    rmSync(this.dir, { recursive: true, force: true });
  }

  private async removeNamespaces(): Promise<void> {
    for (const ns of [this.sensorNs, this.attackerNs]) await removeNamespace(ns);
  }
}

/** Kills what runs inside the namespace `ns`, then deletes it. */
async function removeNamespace(ns: string): Promise<void> {
  const pids = await runProgram('ip', ['netns', 'pids', ns]);
  for (const pid of pids.stdout.split(/\s+/).filter(Boolean)) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      // gone already
    }
  }
  await runProgram('ip', ['netns', 'delete', ns]);
}

/** Whether process `pid` still exists (signal 0 checks without sending). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes the namespaces of `tag` whose run (the pid in their name) is gone; a live run's are left alone. */
async function removeOrphans(tag: string): Promise<void> {
  const listed = await runProgram('ip', ['netns', 'list']);
  const pattern = new RegExp(`^psn-${tag}-(\\d+)-[sa]$`);
  for (const line of listed.stdout.split('\n')) {
    const name = line.split(/\s+/)[0] ?? '';
    const pid = pattern.exec(name)?.[1];
    if (pid !== undefined && !alive(Number(pid))) await removeNamespace(name);
  }
}

export interface LogLine {
  readonly level: string;
  readonly msg: string;
  readonly [key: string]: unknown;
}

/** Calls `onJson` with each JSON line `stream` prints; other lines go to `onOther`. */
function jsonLines(stream: NodeJS.ReadableStream, onJson: (value: unknown) => void, onOther: (line: string) => void = () => undefined): void {
  let rest = '';
  stream.setEncoding('utf8');
  stream.on('data', (text: string) => {
    rest += text;
    let nl: number;
    while ((nl = rest.indexOf('\n')) >= 0) {
      const line = rest.slice(0, nl);
      rest = rest.slice(nl + 1);
      if (!line.trim()) continue;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        onOther(line);
        continue;
      }
      onJson(value);
    }
  });
}

/**
 * A lab child process whose output is awaited by predicate: it emits 'change' on every line it
 * reads and on exit; `until` resolves when a check passes, rejects on exit or timeout.
 */
abstract class WatchedChild extends EventEmitter {
  exitCode: number | null | undefined;
  protected stderrTail = '';

  constructor(
    readonly child: ChildProcess,
    private readonly name: string,
  ) {
    super();
    this.setMaxListeners(100);
    // a non-JSON stderr line (a crash trace) stays visible in the errors below
    child.stderr!.on('data', (text: Buffer | string) => (this.stderrTail = (this.stderrTail + text.toString()).slice(-4000)));
    child.on('exit', (code) => {
      this.exitCode = code;
      this.emit('change');
    });
  }

  /** What an error message shows of the output so far. */
  protected abstract recent(): string;

  /** Resolves with `check`'s first defined value; rejects after timeoutMs or when the child exits. */
  protected until<T>(check: () => T | undefined, what: string, timeoutMs: number): Promise<T> {
    return new Promise((resolvePromise, reject) => {
      const test = (): boolean => {
        const value = check();
        if (value !== undefined) {
          done();
          resolvePromise(value);
          return true;
        }
        if (this.exitCode !== undefined) {
          done();
          reject(new Error(`${this.name} exited (${this.exitCode}) while waiting for ${what}; ${this.recent()}; stderr: ${this.stderrTail}`));
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; ${this.recent()}`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        this.off('change', test);
      };
      if (!test()) this.on('change', test);
    });
  }

  /** SIGTERM, then SIGKILL after deadlineMs; resolves with the exit code. */
  async stop(deadlineMs = 15_000): Promise<number | null> {
    if (this.exitCode !== undefined) return this.exitCode;
    const exited = new Promise<number | null>((resolvePromise) => this.child.once('exit', (code) => resolvePromise(code)));
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), deadlineMs);
    const code = await exited;
    clearTimeout(timer);
    return code;
  }
}

/** The agent child: its stdout events and stderr log lines, awaited by predicate. */
export class AgentProcess extends WatchedChild {
  readonly events: ScanDetected[] = [];
  /** when each event arrived (epoch ms), same index as events */
  readonly arrivals: number[] = [];
  readonly logs: LogLine[] = [];
  /** when each log line arrived (epoch ms), same index as logs */
  readonly logArrivals: number[] = [];

  constructor(child: ChildProcess) {
    super(child, 'agent');
    jsonLines(child.stdout!, (value) => {
      this.events.push(value as ScanDetected); // stdout carries only events
      this.arrivals.push(Date.now());
      this.emit('change');
    });
    jsonLines(child.stderr!, (value) => {
      this.logs.push(value as LogLine);
      this.logArrivals.push(Date.now());
      this.emit('change');
    });
  }

  protected recent(): string {
    return `events: ${JSON.stringify(this.events).slice(-1500)}`;
  }

  /** Resolves when `check` returns a value; rejects after timeoutMs or when the agent exits. */
  waitFor<T>(check: () => T | undefined, what: string, timeoutMs = 20_000): Promise<T> {
    return this.until(check, what, timeoutMs);
  }

  /** The first event from `attacker` containing a probe of this protocol/port/kind. */
  waitForProbe(attacker: string, protocol: 'tcp' | 'udp', port: number, kind: string, timeoutMs?: number): Promise<ScanDetected> {
    return this.waitFor(
      () => this.events.find((e) => e.attacker === attacker && e.probes.some((p) => p.protocol === protocol && p.port === port && p.kind === kind)),
      `an event from ${attacker} with ${protocol}/${port}/${kind}`,
      timeoutMs,
    );
  }

  waitForLog(match: (line: LogLine) => boolean, what: string, timeoutMs?: number): Promise<LogLine> {
    return this.waitFor(() => this.logs.find(match), what, timeoutMs);
  }

  started(): Promise<LogLine> {
    return this.waitForLog((l) => l.msg === 'agent started', 'the agent to start', 60_000);
  }
}

export interface DriverLine {
  readonly type: string;
  readonly [key: string]: unknown;
}

/** The kernel-host driver child: its JSON lines, awaited by predicate. */
export class DriverProcess extends WatchedChild {
  readonly lines: DriverLine[] = [];

  constructor(child: ChildProcess) {
    super(child, 'kernel host');
    jsonLines(child.stdout!, (value) => {
      this.lines.push(value as DriverLine);
      this.emit('change');
    });
  }

  protected recent(): string {
    return `lines: ${JSON.stringify(this.lines.slice(-10))}`;
  }

  /** Sends one command line to the driver's stdin. */
  send(command: object): void {
    this.child.stdin!.write(JSON.stringify(command) + '\n');
  }

  probes(): Array<DriverLine & { source: string; port: number; kind: string; protocol: string; blockedByKernel: boolean }> {
    return this.lines.filter((l) => l.type === 'probe') as never;
  }

  waitFor(match: (line: DriverLine) => boolean, what: string, timeoutMs = 20_000): Promise<DriverLine> {
    return this.until(() => this.lines.find(match), what, timeoutMs);
  }

  override stop(deadlineMs = 10_000): Promise<number | null> {
    return super.stop(deadlineMs);
  }
}

/** An address the kernel holds in one set of the sensor's `inet portsnare` table, with its remaining seconds. */
export interface KernelSetHold {
  address: string;
  remainingSeconds: number;
}

/** The elements of one set of the sensor's `inet portsnare` table, read with nft -j (not the code under test). */
export async function kernelSet(lab: Lab, set: string): Promise<KernelSetHold[]> {
  const out = await lab.inSensor('nft', ['-j', 'list', 'set', 'inet', 'portsnare', set]);
  if (out.code !== 0) return [];
  const items = (JSON.parse(out.stdout) as { nftables: Array<{ set?: { elem?: unknown[] } }> }).nftables;
  const holds: KernelSetHold[] = [];
  for (const item of items) {
    for (const raw of item.set?.elem ?? []) {
      const e = (raw as { elem?: { val: string; expires?: number } }).elem;
      holds.push(e ? { address: e.val, remainingSeconds: e.expires ?? Infinity } : { address: raw as string, remainingSeconds: Infinity });
    }
  }
  return holds;
}

/**
 * Every block the kernel holds, as written by nft: addresses of blocked4/blocked6 and the
 * CIDRs of the interval sets blockednet4/blockednet6 (an IPv6 attacker's /64 lands there), so a
 * check for forged blocks cannot miss one that was widened to its prefix.
 */
export async function kernelBlocks(lab: Lab): Promise<string[]> {
  const out: string[] = [];
  for (const set of ['blocked4', 'blocked6', 'blockednet4', 'blockednet6']) {
    for (const hold of await kernelSet(lab, set)) {
      const val = hold.address as unknown;
      if (typeof val === 'string') out.push(val);
      else if (val && typeof val === 'object' && 'prefix' in val) {
        const prefix = (val as { prefix: { addr: string; len: number } }).prefix;
        out.push(`${prefix.addr}/${prefix.len}`);
      } else if (val && typeof val === 'object' && 'range' in val) {
        const range = (val as { range: [string, string] }).range;
        out.push(`${range[0]}-${range[1]}`);
      }
    }
  }
  return out;
}

/** The addresses of `candidates` that one of `blocks` (addresses, CIDRs or a-b ranges from kernelBlocks) covers. */
export function coveredAddresses(candidates: Iterable<string>, blocks: readonly string[]): string[] {
  const covers = (block: string, address: string): boolean => {
    const a = ipaddr.parse(address);
    if (block.includes('/')) {
      const [net, len] = ipaddr.parseCIDR(block);
      return net.kind() === a.kind() && a.match(net, len);
    }
    if (block.includes('-')) {
      const [lo, hi] = block.split('-').map((x) => ipaddr.parse(x).toByteArray());
      const b = a.toByteArray();
      if (b.length !== lo!.length) return false;
      const cmp = (x: number[], y: number[]): number => x.reduce((r, v, i) => (r !== 0 ? r : v - y[i]!), 0);
      return cmp(b, lo!) >= 0 && cmp(b, hi!) <= 0;
    }
    return ipaddr.parse(block).toNormalizedString() === a.toNormalizedString();
  };
  return [...candidates].filter((address) => blocks.some((block) => covers(block, address)));
}

/**
 * The most real services ONE nmap --top-ports scan may reveal in these labs. nmap probes 28
 * popular ports first in random order (nmap.cc random_port_cheat); 6 of the 8 lab services are
 * among them, and every unused one is a decoy, so the services probed before the first decoy
 * answer: k or more with probability 6/28 × 5/27 × … (k factors): 2 or more one scan in 25 (seen
 * in CI), 3 or more one in 160, 4 or more one in 1,400. The issue's goal (≤ 1) is a median of 5
 * scans, measured by bench/enumeration.bench.ts; each of the labs' six single scans is held to 3,
 * so a correct build fails CI about once in 200 runs, while a quarantine that does not hold
 * (7 or 8 revealed) always fails.
 */
export const ONE_SCAN_REVEALS_AT_MOST = 3;

/** Polls an async check every 100 ms until it gives a value. */
export async function eventually<T>(check: () => Promise<T | undefined>, what: string, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** True when `program` is on PATH. */
export function hasProgram(program: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${program}`]).status === 0;
}

/**
 * From the attacker, bound to `source`: a TCP connection to target:port every 100 ms (each
 * attempt given 400 ms) until one completes; resolves with the ms from start to success.
 */
export async function reachAgain(lab: Lab, source: string, target: string, port: number, giveUpMs: number): Promise<number> {
  const script = `
    const net = require('net');
    const start = Date.now();
    const attempt = () => {
      if (Date.now() - start > ${giveUpMs}) { console.log('gave up'); process.exit(1); }
      const s = net.connect({ host: ${JSON.stringify(target)}, port: ${port}, localAddress: ${JSON.stringify(source)} });
      const t = setTimeout(() => { s.destroy(); setTimeout(attempt, 100); }, 400);
      s.on('connect', () => { clearTimeout(t); console.log('reached ' + (Date.now() - start)); s.destroy(); process.exit(0); });
      s.on('error', () => { clearTimeout(t); setTimeout(attempt, 100); });
    };
    attempt();`;
  const out = await lab.inAttacker('node', ['-e', script], giveUpMs + 10_000);
  const m = /reached (\d+)/.exec(out.stdout);
  if (!m) throw new Error(`${source} never reached ${target}:${port}: ${out.stdout} ${out.stderr}`);
  return Number(m[1]);
}

/** Forged SYNs (hping3 -a) from the attacker namespace to SENSOR4:port, `count(i)` per source, 50 senders at a time. */
export async function forgeSyns(lab: Lab, sources: readonly string[], port: number, count: (i: number) => number): Promise<void> {
  const lines = sources.map((s, i) => `hping3 -q -S -c ${count(i)} -i u20000 -p ${port} -a ${s} ${SENSOR4} >/dev/null 2>&1 &${i % 50 === 49 ? '\nwait' : ''}`);
  const out = await lab.inAttacker('sh', ['-c', [...lines, 'wait'].join('\n')], 120_000);
  if (out.code !== 0) throw new Error(`hping3 failed: ${out.stderr}`);
}

/** What test/lab/drivers/forge.py takes (see its docstring): forged TCP from a raw socket. */
export type ForgeOptions =
  | { mode: 'syn'; dst: string; dport: number; sources: readonly string[]; copies: number; gapMs?: number; seed: number }
  | { mode: 'spray'; dst: string; dport: number; sources: readonly string[]; attempts: number; seed: number }
  | { mode: 'mix'; dst: string; dport: number; sources: readonly string[]; seed: number };

/** Runs the raw-socket forger in the attacker namespace; resolves with what it sent. */
export async function forge(lab: Lab, options: ForgeOptions, timeoutMs = 240_000): Promise<{ sent: number; seconds: number }> {
  const out = await lab.inAttacker('python3', [join(ROOT, 'test', 'lab', 'drivers', 'forge.py'), JSON.stringify(options)], timeoutMs);
  if (out.code !== 0) throw new Error(`forge.py ${options.mode} failed (${out.code}): ${out.stderr.trim()}`);
  return JSON.parse(out.stdout.trim().split('\n').pop()!) as { sent: number; seconds: number };
}

/**
 * From the attacker namespace: one real connection per source to target:port, in turn, `gapMs`
 * apart; the epoch ms each completed (a source that failed is missing).
 */
export async function connectEach(lab: Lab, sources: readonly string[], target: string, port: number, gapMs = 100): Promise<Map<string, number>> {
  const script = `
    const net = require('net');
    const sources = ${JSON.stringify(sources)};
    (async () => {
      for (const source of sources) {
        await new Promise((done) => {
          const s = net.connect({ host: ${JSON.stringify(target)}, port: ${port}, localAddress: source });
          const t = setTimeout(() => { s.destroy(); console.log(JSON.stringify({ source, failed: true })); done(); }, 3000);
          s.on('connect', () => { clearTimeout(t); console.log(JSON.stringify({ source, at: Date.now() })); s.end(); setTimeout(done, ${gapMs}); });
          s.on('error', () => { clearTimeout(t); console.log(JSON.stringify({ source, failed: true })); done(); });
        });
      }
    })();`;
  const out = await lab.inAttacker('node', ['-e', script], sources.length * (4000 + gapMs) + 10_000);
  const times = new Map<string, number>();
  for (const line of out.stdout.trim().split('\n')) {
    const r = JSON.parse(line) as { source: string; at?: number };
    if (r.at !== undefined) times.set(r.source, r.at);
  }
  return times;
}

/** Routes the TEST-NET blocks forged sources come from back into the attacker namespace (where replies die). */
export async function routeForgedBack(lab: Lab, nets: readonly string[] = ['203.0.113.0/24', '192.0.2.0/24']): Promise<void> {
  for (const net of nets) {
    const out = await lab.inSensor('ip', [...(net.includes(':') ? ['-6'] : []), 'route', 'replace', net, 'via', net.includes(':') ? ATTACKER6 : ATTACKER4]);
    if (out.code !== 0) throw new Error(`route ${net}: ${out.stderr}`);
  }
}

/**
 * masscan SENSOR4 ports 1-10000 at 2000/s from `source`: the open ports it reports. masscan
 * 1.3.2 may never end its --wait phase ("waiting -107-secs": its receive thread only sees the
 * stop flag when a packet arrives, and nothing does once the sensor holds the source). So its
 * output is line-buffered (stdbuf) and it is killed 12 s after its 5 s send if still waiting; the
 * run counts when it reported "100.00% done" (every probe sent, the --wait begun).
 */
export async function masscanFrom(lab: Lab, source: string): Promise<number[]> {
  const link = await lab.inSensor('ip', ['-j', 'link', 'show', 'dev', lab.sensorIf]);
  const mac = (JSON.parse(link.stdout) as Array<{ address: string }>)[0]!.address;
  const args = [SENSOR4, '-p', '1-10000', '--rate', '2000', '--wait', '2', '-e', lab.attackerIf, '--source-ip', source, '--router-mac', mac];
  const out = await lab.inAttacker('sh', ['-c', `cd "$1" && shift && exec timeout -s KILL 17 stdbuf -oL masscan "$@"`, 'masscan', lab.dir, ...args], 60_000);
  const finished = out.code === 0 || out.stderr.includes('100.00% done');
  if (!finished) throw new Error(`masscan failed (${out.code}): ${out.stderr.slice(-2000)}`);
  return [...out.stdout.matchAll(/Discovered open port (\d+)\/tcp/g)].map((m) => Number(m[1]));
}

/**
 * The exempt control's masscan: the union of up to 3 runs, stopping once every one of `expected`
 * was seen. masscan sends each SYN once and keeps no retry state, so on a loaded 2-core machine
 * one answer in a run can be lost (seen once in CI: 8443 missing from 8). The control proves the
 * services are reachable from the lab, so a lost answer must not read as a missing service; the
 * attacker's scan stays a single run, as a real scanner's would.
 */
export async function masscanControl(lab: Lab, source: string, expected: readonly number[]): Promise<number[]> {
  const seen = new Set<number>();
  for (let run = 0; run < 3 && !expected.every((p) => seen.has(p)); run++) {
    for (const port of await masscanFrom(lab, source)) if (expected.includes(port)) seen.add(port);
  }
  return [...seen].sort((a, b) => a - b);
}
