/**
 * Per-attacker aggregation (ARCHITECTURE.md, "sensor/"): hits from the sockets and the kernel become
 * at most one `Scan Detected` event per attacker per dedupe window — never one per probe.
 *
 * - ignore list (addresses and CIDRs, IPv4 and IPv6) and the host's own addresses: dropped first;
 * - trigger: `hits` within `windowSeconds` before a source counts (Portsentry's SCAN_TRIGGER, with
 *   a window so counts do not grow forever);
 * - dedupe: the first event goes out at once (blocking speed matters); hits during the next
 *   `dedupeSeconds` are summed and go out as one event when the window ends, so nothing seen is
 *   lost and nothing is reported twice. One exception: the first completed handshake of a source
 *   whose event said `handshake: false` (a kernel SYN seen before the socket's accept) goes out
 *   at once, since a verified source may be blocked;
 * - one connect, one event: with `proofGraceMs` (the agent sets it with stealth on), a first event
 *   that a kernel SYN triggered waits up to that long for the handshake of the same connect
 *   (kernel `connect`, socket accept), so the source goes out once, proven, rather than twice
 *   (unproven, then proven at once). Inside a dedupe window a later view (`echo`) of a probe
 *   already reported is not news and makes no event of its own;
 * - memory: at most `maxTrackedSources` sources (least recently seen dropped; a source with
 *   unsent hits is flushed before it is dropped), at most 32 distinct probes per event. A probe is
 *   keyed by a number and its object shared by every source that sent it (ProbeTable), so a
 *   source's state holds no strings of its own: a flood from many sources to the same decoys
 *   costs a few hundred bytes a source, and a hit allocates nothing to be looked up.
 */
import { CidrList, tryCanonicalAddress } from '../../core/address';
import { MAX_PROBES, PROBE_KINDS, parseScanDetected, type Probe, type ProbeKind, type Protocol, type ScanDetected } from '../../core/event';
import type { Hit } from '../listeners';

const KIND_INDEX = new Map<ProbeKind, number>(PROBE_KINDS.map((kind, index) => [kind, index]));

/** (protocol, port, kind) as one number: port in the low 16 bits, then protocol, then kind. */
export function probeKey(protocol: Protocol, port: number, kind: ProbeKind): number {
  return ((KIND_INDEX.get(kind) ?? PROBE_KINDS.length) * 2 + (protocol === 'udp' ? 1 : 0)) * 65_536 + port;
}

/** Shared, frozen probe objects, at most `limit` of them (beyond, each caller gets its own). */
export class ProbeTable {
  private readonly probes = new Map<number, Probe>();

  constructor(private readonly limit = 4096) {}

  get(key: number, protocol: Protocol, port: number, kind: ProbeKind): Probe {
    const known = this.probes.get(key);
    if (known) return known;
    const probe: Probe = Object.freeze({ protocol, port, kind });
    if (this.probes.size < this.limit) this.probes.set(key, probe);
    return probe;
  }

  get size(): number {
    return this.probes.size;
  }
}

export interface AggregatorOptions {
  readonly sensorId: string;
  readonly trigger: { readonly hits: number; readonly windowSeconds: number };
  readonly dedupeSeconds: number;
  readonly ignore: readonly string[];
  /** exact addresses of this host (canonical); refreshed with setOwnAddresses */
  readonly ownAddresses?: Iterable<string>;
  readonly maxTrackedSources: number;
  /** how long a first event triggered by a SYN waits for that connect's handshake, ms (default 0) */
  readonly proofGraceMs?: number;
  readonly onEvent: (event: ScanDetected) => void;
  /** a built event failed validation (a bug): reported, never published */
  readonly onInvalid?: (error: string, candidate: unknown) => void;
  readonly now?: () => number;
}

export interface AggregatorStats {
  readonly hits: number;
  readonly ignored: number;
  readonly own: number;
  readonly events: number;
  readonly tracked: number;
  readonly evicted: number;
  readonly invalid: number;
}

interface Pending {
  firstSeen: number;
  lastSeen: number;
  count: number;
  handshake: boolean;
  probes: Map<number, Probe>;
}

interface SourceState {
  /** times of the latest hits, at most trigger.hits of them (ring, oldest first) */
  recent: number[];
  /** before a trigger: the distinct probes lately seen, with when (at most 32) */
  candidates?: Map<number, { probe: Probe; at: number; handshake: boolean }>;
  /** inside a dedupe window: hits not yet reported */
  pending?: Pending;
  /** no event before this time (dedupe); 0 when not in a dedupe window */
  quietUntil: number;
  /** an event of the current dedupe window already said handshake: true */
  verified: boolean;
  /** a triggered first event waits for its handshake until then (proofGraceMs); 0 when not */
  holdUntil: number;
  /** the probes the events of the current dedupe window reported */
  reported?: Set<number>;
  lastSeen: number;
}

export class Aggregator {
  private readonly sources = new Map<string, SourceState>();
  private ignore: CidrList;
  private own = new Set<string>();
  private readonly now: () => number;
  private counts = { hits: 0, ignored: 0, own: 0, events: 0, evicted: 0, invalid: 0 };
  private readonly probes = new ProbeTable();

  constructor(private readonly options: AggregatorOptions) {
    this.ignore = new CidrList(options.ignore);
    this.now = options.now ?? Date.now;
    this.setOwnAddresses(options.ownAddresses ?? []);
  }

  /** Replaces the ignore list (a config reload). */
  setIgnore(ignore: readonly string[]): void {
    this.ignore = new CidrList(ignore);
  }

  setOwnAddresses(addresses: Iterable<string>): void {
    const own = new Set<string>();
    for (const address of addresses) {
      const canonical = tryCanonicalAddress(address);
      if (canonical) own.add(canonical);
    }
    this.own = own;
  }

  stats(): AggregatorStats {
    return { ...this.counts, tracked: this.sources.size };
  }

  /** One probe. Emits (synchronously) when it completes a trigger outside a dedupe window. */
  add(hit: Hit): void {
    this.counts.hits++;
    const source = tryCanonicalAddress(hit.source);
    if (source === undefined) return;
    if (this.own.has(source)) {
      this.counts.own++;
      return;
    }
    if (this.ignore.match(source)) {
      this.counts.ignored++;
      return;
    }
    const at = hit.at;
    let state = this.sources.get(source);
    if (state) this.sources.delete(source); // re-insert: Map order is recency
    else {
      state = { recent: [], quietUntil: 0, verified: false, holdUntil: 0, lastSeen: at };
      this.evictIfFull();
    }
    this.sources.set(source, state);
    state.lastSeen = Math.max(state.lastSeen, at);

    const { hits: needed, windowSeconds } = this.options.trigger;
    if (!hit.echo) {
      state.recent.push(at);
      if (state.recent.length > needed) state.recent.shift();
    }

    const key = probeKey(hit.protocol, hit.port, hit.kind);
    if (state.holdUntil !== 0) {
      // a first event waiting for its handshake: the proof sends it at once
      state.pending = this.addToPending(state.pending, hit, key, at);
      if (hit.handshake) this.emit(source, state, at);
      return;
    }
    if (state.quietUntil !== 0) {
      // another view of a probe this window already reported: nothing new to say
      if (hit.echo && state.reported?.has(key) && !(hit.handshake && !state.verified)) return;
      // inside a dedupe window: collected, sent when it ends (see tick) — except the first
      // proof of the source address (a handshake), which may allow a block: sent at once
      state.pending = this.addToPending(state.pending, hit, key, at);
      if (hit.handshake && !state.verified) this.emit(source, state, at);
      return;
    }
    const windowStart = at - windowSeconds * 1000;
    const candidates = (state.candidates ??= new Map());
    const known = candidates.get(key);
    if (known) {
      known.at = Math.max(known.at, at);
      known.handshake ||= hit.handshake;
    } else {
      if (candidates.size >= MAX_PROBES) for (const [k, c] of candidates) if (c.at < windowStart) candidates.delete(k);
      if (candidates.size < MAX_PROBES) candidates.set(key, { probe: this.probes.get(key, hit.protocol, hit.port, hit.kind), at, handshake: hit.handshake });
    }
    const triggered = state.recent.length >= needed && state.recent[0]! >= windowStart;
    if (!triggered) return;
    const inWindow = [...candidates].filter(([, c]) => c.at >= state.recent[0]!);
    state.pending = {
      firstSeen: state.recent[0]!,
      lastSeen: at,
      count: state.recent.length,
      handshake: inWindow.some(([, c]) => c.handshake),
      probes: new Map(inWindow.map(([k, c]) => [k, c.probe])),
    };
    state.candidates = undefined;
    const grace = this.options.proofGraceMs ?? 0;
    if (grace > 0 && !state.pending.handshake && hit.protocol === 'tcp' && hit.kind === 'syn') {
      state.holdUntil = at + grace;
      return;
    }
    this.emit(source, state, at);
  }

  /**
   * Ends the dedupe windows that are over: unsent hits go out as one event; quiet sources with
   * nothing pending are forgotten. Call about once a second.
   */
  tick(): void {
    const now = this.now();
    const keep = Math.max(this.options.trigger.windowSeconds, this.options.dedupeSeconds) * 1000;
    for (const [source, state] of this.sources) {
      if (state.holdUntil !== 0) {
        if (now >= state.holdUntil) this.emit(source, state, now);
        continue;
      }
      if (state.quietUntil !== 0 && now >= state.quietUntil) {
        if (state.pending) this.emit(source, state, now);
        else {
          state.quietUntil = 0;
          state.verified = false;
          state.reported = undefined;
        }
      }
      if (state.quietUntil === 0 && now - state.lastSeen > keep) this.sources.delete(source);
    }
  }

  /** Sends every pending hit now (at stop), ignoring dedupe windows. */
  flush(): void {
    const now = this.now();
    for (const [source, state] of this.sources) if (state.pending && (state.quietUntil !== 0 || state.holdUntil !== 0)) this.emit(source, state, now);
  }

  private emit(source: string, state: SourceState, now: number): void {
    const pending = state.pending;
    state.pending = undefined;
    state.recent = [];
    state.holdUntil = 0;
    if (!pending) return;
    if (state.quietUntil === 0) state.reported = undefined;
    state.quietUntil = this.options.dedupeSeconds > 0 ? Math.max(now, pending.lastSeen) + this.options.dedupeSeconds * 1000 : 0;
    const candidate = {
      version: 1 as const,
      sensorId: this.options.sensorId,
      attacker: source,
      probes: [...pending.probes.values()],
      // an echo adds a kind without a count: the contract wants at least one count per probe
      probeCount: Math.max(pending.count, pending.probes.size),
      handshake: pending.handshake,
      proof: pending.handshake ? ('handshake' as const) : ('none' as const),
      firstSeen: new Date(pending.firstSeen).toISOString(),
      lastSeen: new Date(pending.lastSeen).toISOString(),
    };
    const parsed = parseScanDetected(candidate);
    if (!parsed.ok) {
      this.counts.invalid++;
      this.options.onInvalid?.(parsed.error, candidate);
      return;
    }
    this.counts.events++;
    state.verified ||= parsed.value.handshake;
    const reported = (state.reported ??= new Set());
    for (const p of parsed.value.probes) reported.add(probeKey(p.protocol, p.port, p.kind));
    this.options.onEvent(parsed.value);
  }

  private addToPending(pending: Pending | undefined, hit: Hit, key: number, at: number): Pending {
    const p = pending ?? { firstSeen: at, lastSeen: at, count: 0, handshake: false, probes: new Map<number, Probe>() };
    p.firstSeen = Math.min(p.firstSeen, at);
    p.lastSeen = Math.max(p.lastSeen, at);
    if (!hit.echo || p.count === 0) p.count++;
    p.handshake ||= hit.handshake;
    if (p.probes.size < MAX_PROBES && !p.probes.has(key)) p.probes.set(key, this.probes.get(key, hit.protocol, hit.port, hit.kind));
    return p;
  }

  private evictIfFull(): void {
    while (this.sources.size >= this.options.maxTrackedSources) {
      const oldest = this.sources.keys().next();
      if (oldest.done) return;
      const state = this.sources.get(oldest.value)!;
      // Already a scanner with unsent hits: report them rather than lose them.
      if (state.pending && (state.quietUntil !== 0 || state.holdUntil !== 0)) this.emit(oldest.value, state, this.now());
      this.sources.delete(oldest.value);
      this.counts.evicted++;
    }
  }
}
