/**
 * Local enforcement in the kernel: portsnare's own nftables table `inet portsnare`.
 *
 * Layout (this module owns the table, the blocked sets and the `block` chain; the kernel
 * detector adds its own sets and chains to the same table and removes them on stop):
 *
 *   table inet portsnare {
 *     set blocked4    { type ipv4_addr; flags dynamic,timeout; counter; }   # addresses (the kernel adds here too)
 *     set blocked6    { type ipv6_addr; flags dynamic,timeout; counter; }
 *     set blockednet4 { type ipv4_addr; flags interval,timeout; counter; }  # CIDRs (manual blocks, IPv6 prefixes)
 *     set blockednet6 { type ipv6_addr; flags interval,timeout; counter; }
 *     chain block { type filter hook prerouting priority -300; policy accept;
 *       ip saddr @blocked4 drop; ip6 saddr @blocked6 drop; ip saddr @blockednet4 drop; ip6 saddr @blockednet6 drop }
 *   }
 *
 * Why prerouting at -300 (raw): it runs before connection tracking (-200) and before every
 * filter chain (0), so a blocked source opens no new connection to any real service, creates no
 * conntrack entry (cheap under a flood) and reaches forwarded workloads (containers) no more than
 * local ones. Dropping everything from the source — not only new connections — is what
 * Portsentry's KILL_ROUTE and fail2ban's default do. Other tables are never read or written.
 * Dynamic sets cannot be interval sets, hence the separate `blockednet*` sets for CIDRs.
 *
 * Proof of effect: every element carries its own counter (the sets' `counter`), which the
 * kernel increments on each packet the element's lookup drops — `list()` reports it per block.
 * A table made by a version without counters keeps its sets as they are (`add set` must repeat a
 * set's declaration exactly): their elements have no counter until the table is made again
 * (a reboot, `portsnare uninstall`).
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { isHostCidr, targetOf, tryParseCidr } from '../../core/address';

export type Availability = { ok: true } | { ok: false; why: string };

export const TABLE = 'portsnare';
export const FAMILY = 'inet';
export const TABLE_REF = `${FAMILY} ${TABLE}`;
export const BLOCK_PRIORITY = -300;
/** elements the kernel's address sets (blocked4, blocked6) hold at most */
export const ADDRESS_SET_SIZE = 65535;

export class NftError extends Error {
  constructor(
    message: string,
    readonly stderr: string,
    /** the signal that ended the program, when one did */
    readonly signal?: string,
  ) {
    super(message);
    this.name = 'NftError';
  }
}

export interface RunResult {
  readonly stdout: string;
  readonly stderr: string;
}

/** Signals a terminal or a supervisor sends to a whole process group, never sent by `run` itself. */
const GROUP_SIGNALS = new Set(['SIGINT', 'SIGQUIT', 'SIGHUP', 'SIGTERM']);

/**
 * Runs a program with `input` on stdin, in its own process group; rejects with its stderr when it
 * exits non-zero.
 *
 * detached: the child is a session of its own, so the terminal's Ctrl-C (SIGINT to the foreground
 * group) reaches the agent only, never an nft half-way through the cleanup. One window remains:
 * between fork and setsid (milliseconds for a large parent) the child is still in the parent's
 * group with every signal blocked, and a Ctrl-C then kills it as it unblocks them, before exec —
 * so it ran nothing. A child killed that way is started again (at most twice).
 */
export async function run(program: string, args: readonly string[], input?: string, timeoutMs = 15_000): Promise<RunResult> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await runOnce(program, args, input, timeoutMs);
    } catch (error) {
      if (!(error instanceof NftError && error.signal !== undefined && GROUP_SIGNALS.has(error.signal)) || attempt >= 2) throw error;
    }
  }
}

function runOnce(program: string, args: readonly string[], input: string | undefined, timeoutMs: number): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const stdout = Buffer.concat(out).toString('utf8');
      const stderr = Buffer.concat(err).toString('utf8');
      if (code === 0) resolve({ stdout, stderr });
      else reject(new NftError(`${program} ${args.join(' ')} failed (${signal ?? `exit ${code}`}): ${stderr.trim().split('\n')[0] ?? ''}`, stderr, signal ?? undefined));
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(input ?? '');
  });
}

/** Applies an nft script as one transaction (all or nothing). */
export async function nftScript(script: string): Promise<void> {
  await run('nft', ['-f', '-'], script);
}

/** `nft -j ARGS…` parsed; the `nftables` array of the JSON output. */
export async function nftJson(args: readonly string[]): Promise<NftJsonItem[]> {
  const { stdout } = await run('nft', ['-j', ...args]);
  const parsed = JSON.parse(stdout) as { nftables?: NftJsonItem[] };
  return parsed.nftables ?? [];
}

export interface NftJsonSetElem {
  readonly val: unknown;
  readonly timeout?: number;
  readonly expires?: number;
  /** the element's own counter, in a set declared with `counter` */
  readonly counter?: { readonly packets: number; readonly bytes: number };
}

export interface NftJsonItem {
  readonly set?: { readonly name: string; readonly elem?: ReadonlyArray<unknown>; readonly stmt?: ReadonlyArray<unknown> };
  readonly table?: { readonly family: string; readonly name: string };
  readonly chain?: { readonly family: string; readonly table: string; readonly name: string };
  readonly limit?: { readonly name: string };
}

/** True when the process holds CAP_NET_ADMIN (root has it). */
export async function hasNetAdmin(): Promise<boolean> {
  try {
    const status = await readFile('/proc/self/status', 'utf8');
    const line = status.split('\n').find((l) => l.startsWith('CapEff:'));
    if (!line) return process.getuid?.() === 0;
    const caps = BigInt(`0x${line.slice('CapEff:'.length).trim()}`);
    return (caps & (1n << 12n)) !== 0n;
  } catch {
    return process.getuid?.() === 0;
  }
}

/** Whether `program --version` runs. */
export async function hasProgram(program: string, args: readonly string[] = ['--version']): Promise<boolean> {
  try {
    await run(program, args, undefined, 5_000);
    return true;
  } catch {
    return false;
  }
}

export const BLOCKED_SETS = ['blocked4', 'blocked6', 'blockednet4', 'blockednet6'] as const;
export type BlockedSet = (typeof BLOCKED_SETS)[number];

/**
 * The `nft` statements that create the table, the blocked sets and the block chain (idempotent).
 * `uncounted`: blocked sets that exist without element counters (an older table), declared as
 * they are.
 */
export function baseScript(uncounted: ReadonlySet<BlockedSet> = new Set()): string {
  const counter = (set: BlockedSet): string => (uncounted.has(set) ? '' : ' counter;');
  return [
    `add table ${TABLE_REF}`,
    `add set ${TABLE_REF} blocked4 { type ipv4_addr; flags dynamic,timeout; size ${ADDRESS_SET_SIZE};${counter('blocked4')} }`,
    `add set ${TABLE_REF} blocked6 { type ipv6_addr; flags dynamic,timeout; size ${ADDRESS_SET_SIZE};${counter('blocked6')} }`,
    `add set ${TABLE_REF} blockednet4 { type ipv4_addr; flags interval,timeout;${counter('blockednet4')} }`,
    `add set ${TABLE_REF} blockednet6 { type ipv6_addr; flags interval,timeout;${counter('blockednet6')} }`,
    `add chain ${TABLE_REF} block { type filter hook prerouting priority ${BLOCK_PRIORITY}; policy accept; }`,
    `flush chain ${TABLE_REF} block`,
    `add rule ${TABLE_REF} block ip saddr @blocked4 counter drop comment "portsnare: blocked address"`,
    `add rule ${TABLE_REF} block ip6 saddr @blocked6 counter drop comment "portsnare: blocked address"`,
    `add rule ${TABLE_REF} block ip saddr @blockednet4 counter drop comment "portsnare: blocked network"`,
    `add rule ${TABLE_REF} block ip6 saddr @blockednet6 counter drop comment "portsnare: blocked network"`,
    '',
  ].join('\n');
}

/** The blocked sets that exist without element counters (`nft -j list table`'s items). */
export function uncountedSets(items: readonly NftJsonItem[]): Set<BlockedSet> {
  const out = new Set<BlockedSet>();
  for (const item of items) {
    const set = item.set;
    if (!set || !(BLOCKED_SETS as readonly string[]).includes(set.name)) continue;
    if (!(set.stmt ?? []).some((stmt) => stmt !== null && typeof stmt === 'object' && 'counter' in stmt)) out.add(set.name as BlockedSet);
  }
  return out;
}

/** The items of `nft -j list table inet portsnare`; [] when the table does not exist. */
export async function tableItems(): Promise<NftJsonItem[]> {
  try {
    return await nftJson(['list', 'table', FAMILY, TABLE]);
  } catch (error) {
    if (error instanceof NftError && /No such file or directory/.test(error.stderr)) return [];
    throw error;
  }
}

/** baseScript() for the table as it is now: sets an older version made keep their declaration. */
export async function currentBaseScript(): Promise<string> {
  return baseScript(uncountedSets(await tableItems()));
}

interface Placement {
  readonly set: BlockedSet;
  /** the element as nft spells it */
  readonly element: string;
  /** canonical target: an address, or a CIDR for networks */
  readonly target: string;
}

/** Which set a target (address or CIDR) lives in. Throws on anything else. */
export function placementOf(target: string): Placement {
  const cidr = tryParseCidr(target, false);
  if (!cidr) throw new Error(`not an IP address or CIDR: ${JSON.stringify(target)}`);
  const v4 = cidr.family === 'ipv4';
  const canonical = targetOf(cidr);
  // nft spells a host element as the bare address and a network as its CIDR: the target's text
  if (isHostCidr(cidr)) return { set: v4 ? 'blocked4' : 'blocked6', element: canonical, target: canonical };
  return { set: v4 ? 'blockednet4' : 'blockednet6', element: canonical, target: canonical };
}

/** An nft time spelling of a positive number of milliseconds, whole seconds, at least 1s. */
export function nftSeconds(ms: number): string {
  return `${Math.max(1, Math.ceil(ms / 1000))}s`;
}

/** Reads an element of `nft -j list set` into a target text; undefined for shapes we do not write. */
function elemTarget(val: unknown): string | undefined {
  if (typeof val === 'string') return val;
  if (val && typeof val === 'object' && 'prefix' in val) {
    const prefix = (val as { prefix: { addr: string; len: number } }).prefix;
    return `${prefix.addr}/${prefix.len}`;
  }
  if (val && typeof val === 'object' && 'range' in val) {
    const range = (val as { range: [string, string] }).range;
    return `${range[0]}-${range[1]}`;
  }
  return undefined;
}

/** One element of a blocked set. */
export interface KernelBlock {
  /** canonical text as nft prints it: an address, or a CIDR for networks */
  readonly target: string;
  readonly expiresAt: number;
  /** packets and bytes the element dropped; absent in a set without counters */
  readonly dropped?: { readonly packets: number; readonly bytes: number };
}

/** The blocked sets' elements in `nft -j list table` items (pure). */
export function kernelBlocks(items: readonly NftJsonItem[], now: number): KernelBlock[] {
  const out: KernelBlock[] = [];
  for (const item of items) {
    const set = item.set;
    if (!set || !(BLOCKED_SETS as readonly string[]).includes(set.name)) continue;
    for (const raw of set.elem ?? []) {
      const elem: NftJsonSetElem = raw && typeof raw === 'object' && 'elem' in raw ? (raw as { elem: NftJsonSetElem }).elem : { val: raw };
      const target = elemTarget(elem.val);
      if (target === undefined) continue;
      const expiresAt = typeof elem.expires === 'number' ? now + elem.expires * 1000 : Number.POSITIVE_INFINITY;
      const counter = elem.counter;
      const dropped = counter && Number.isFinite(counter.packets) && Number.isFinite(counter.bytes) ? { packets: counter.packets, bytes: counter.bytes } : undefined;
      out.push({ target, expiresAt, ...(dropped ? { dropped } : {}) });
    }
  }
  return out;
}

export interface NftEnforcerOptions {
  /** clock for list()'s expiresAt; defaults to Date.now */
  readonly now?: () => number;
}

export class NftEnforcer {
  private readonly now: () => number;

  constructor(options: NftEnforcerOptions = {}) {
    this.now = options.now ?? Date.now;
  }

  /** Root or CAP_NET_ADMIN, and `nft` present and able to list tables. */
  static async available(): Promise<Availability> {
    if (process.platform !== 'linux') return { ok: false, why: `nftables needs Linux (this is ${process.platform})` };
    if (!(await hasNetAdmin())) return { ok: false, why: 'needs root or CAP_NET_ADMIN to manage nftables' };
    if (!(await hasProgram('nft'))) return { ok: false, why: 'the nft program (Debian package nftables) is not installed' };
    try {
      await run('nft', ['list', 'tables']);
    } catch (error) {
      return { ok: false, why: `nft cannot list tables: ${(error as Error).message}` };
    }
    return { ok: true };
  }

  /** Creates the table, sets and chain when missing; rewrites the chain's rules; keeps set elements. */
  async ensure(): Promise<void> {
    await nftScript(await currentBaseScript());
  }

  /** Blocks `target` until `expiresAt` (epoch ms): the element's timeout is the remaining TTL. */
  async block(target: string, expiresAt: number): Promise<void> {
    await this.blockMany([{ target, expiresAt }]);
  }

  /**
   * Blocks several targets in one transaction. An element already present gets the new timeout
   * (add, delete, add again: `add` alone would keep the old one). Expired entries are skipped.
   */
  async blockMany(entries: ReadonlyArray<{ target: string; expiresAt: number }>): Promise<void> {
    const now = this.now();
    const lines: string[] = [];
    for (const { target, expiresAt } of entries) {
      if (expiresAt <= now) continue;
      const p = placementOf(target);
      const set = `${TABLE_REF} ${p.set}`;
      lines.push(`add element ${set} { ${p.element} }`, `delete element ${set} { ${p.element} }`, `add element ${set} { ${p.element} timeout ${nftSeconds(expiresAt - now)} }`);
    }
    if (lines.length === 0) return;
    await nftScript(lines.join('\n') + '\n');
  }

  /** Removes `target` from its set; nothing happens when it is not there. */
  async unblock(target: string): Promise<void> {
    const p = placementOf(target);
    const set = `${TABLE_REF} ${p.set}`;
    await nftScript(`add element ${set} { ${p.element} }\ndelete element ${set} { ${p.element} }\n`);
  }

  /**
   * Every element of the four blocked sets with its expiry (epoch ms; +Infinity when it has no
   * timeout) and, in a set with counters, what it dropped.
   */
  async list(): Promise<KernelBlock[]> {
    return kernelBlocks(await tableItems(), this.now());
  }

  /** Deletes the whole `inet portsnare` table (blocks and, if running, the detector's rules). */
  async destroy(): Promise<void> {
    // `add` first so deleting a missing table is not an error
    await nftScript(`add table ${TABLE_REF}\ndelete table ${TABLE_REF}\n`);
  }
}
