/**
 * Block policy and the desired-state record (BlockRecord) every enforcer converges to: how long
 * a block lasts, how repeat offences raise it, when a source may be blocked at all (the spoof
 * guard, README.md "Security model"), and the burst circuit breaker.
 * Pure: the caller supplies the clock and the previous record.
 */
import { z } from 'zod';
import { type Family, tryParseCidr } from './address';

/** the widest prefix `ipv6BlockPrefix` may ask for (a /48 is one site); NACL entries this narrow are portsnare's shape (core/nacl.ts) */
export const MIN_IPV6_BLOCK_PREFIX = 48;
/** `ipv6BlockPrefix` when it is not set (unless widestIpv6Prefix is narrower) */
export const DEFAULT_IPV6_BLOCK_PREFIX = 64;

export const PolicySettingsSchema = z.strictObject({
  /** TTL of a first offence, seconds */
  baseTtlSeconds: z.number().int().min(60).max(365 * 86400).default(3600),
  /** each repeat offence multiplies the TTL by this */
  escalationFactor: z.number().min(1).max(100).default(2),
  /** the TTL never exceeds this, seconds */
  maxTtlSeconds: z.number().int().min(60).max(365 * 86400).default(7 * 86400),
  /** an offence more than this long after the previous one starts the count again at 1, seconds */
  offenceWindowSeconds: z.number().int().min(60).max(10 * 365 * 86400).default(30 * 86400),
  /** block on probes that completed no TCP handshake (UDP, stealth): forgeable, so off by default */
  blockUnverified: z.boolean().default(false),
  /** more new blocks than this within a minute opens the circuit breaker: stop adding, alarm */
  burstLimitPerMinute: z.number().int().min(1).max(100_000).default(100),
  /**
   * a CIDR wider than this is refused, whoever asks (a /16 is 65,536 addresses); WAF IP sets take
   * nothing wider than /1, so 0.0.0.0/0 could never be enforced anyway
   */
  widestIpv4Prefix: z.number().int().min(1).max(32).default(16),
  /** the same for IPv6 (a /48 is one site) */
  widestIpv6Prefix: z.number().int().min(1).max(128).default(48),
  /** a manual block asking for a longer TTL than this is refused, seconds */
  maxManualTtlSeconds: z.number().int().min(60).max(365 * 86400).default(30 * 86400),
  /**
   * a detected IPv6 attacker is blocked by this prefix, narrowed to the address when the prefix
   * holds a protected one (core/prefix.ts); 128 blocks the address alone. Unset: /64 (one LAN,
   * what one host picks its addresses from), or widestIpv6Prefix when that is narrower
   * (`ipv6BlockPrefixOf`), so a settings document without the key keeps working.
   */
  ipv6BlockPrefix: z.number().int().min(MIN_IPV6_BLOCK_PREFIX).max(128).optional(),
  /**
   * each policy TTL gets a uniformly random extra 0–N % of itself, so a scanner cannot time its
   * return; unset or 0: off. The extra comes on top of maxTtlSeconds
   */
  ttlJitterPercent: z.number().min(0).max(100).optional(),
}).superRefine((policy, ctx) => {
  // a prefix block wider than the widest prefix allowed would be refused by policyRefusal
  // (only when both are in bounds: zod runs this check even after a field failed its own)
  const prefix = policy.ipv6BlockPrefix;
  const inBounds = prefix !== undefined && prefix >= MIN_IPV6_BLOCK_PREFIX && policy.widestIpv6Prefix >= 1;
  if (inBounds && prefix < policy.widestIpv6Prefix) {
    ctx.addIssue({
      code: 'custom',
      path: ['ipv6BlockPrefix'],
      message: `ipv6BlockPrefix ${policy.ipv6BlockPrefix} is wider than widestIpv6Prefix ${policy.widestIpv6Prefix}: every prefix block would be refused`,
      params: { hasValue: true },
    });
  }
});
export type PolicySettings = z.output<typeof PolicySettingsSchema>;

export const DEFAULT_POLICY: PolicySettings = PolicySettingsSchema.parse({});

export const BLOCK_REASONS = ['sensor', 'manual', 'guardduty', 'flowlogs'] as const;
export type BlockReason = (typeof BLOCK_REASONS)[number];

/**
 * Simulation (README.md "Simulation"): blocks are decided and recorded as always, and an
 * enforcement point leaves out the simulated ones. `all`: every block (the WAF rules count instead
 * of block, core/waf.ts; no NACL entry, no nftables element); `inputs`: the blocks decided from
 * those inputs (kept out of the WAF sets too). Decided at enforcement time from the record's
 * `reason`, so switching back to enforce applies whatever is still active on the next run.
 */
export const SimulationSettingsSchema = z.strictObject({
  all: z.boolean().default(false),
  inputs: z.array(z.enum(BLOCK_REASONS)).default([]),
});
export type SimulationSettings = z.output<typeof SimulationSettingsSchema>;
export const NO_SIMULATION: SimulationSettings = { all: false, inputs: [] };

/** How a record is simulated: `all`, `input` (its reason is a simulated input), or undefined (enforced). */
export function simulationOf(record: { readonly reason?: BlockReason }, simulation: SimulationSettings | undefined): 'all' | 'input' | undefined {
  if (!simulation) return undefined;
  if (simulation.all) return 'all';
  return record.reason !== undefined && simulation.inputs.includes(record.reason) ? 'input' : undefined;
}

/** One blocked address or CIDR: the desired state every enforcer converges to. Times are epoch ms. */
export interface BlockRecord {
  /** canonical address ("198.51.100.7") or CIDR ("198.51.100.0/24") */
  readonly target: string;
  readonly family: Family;
  readonly reason: BlockReason;
  readonly firstSeen: number;
  readonly lastSeen: number;
  /** probes counted over the record's life */
  readonly hitCount: number;
  /** offences within the offence window; raises the TTL */
  readonly offences: number;
  /** start of the current offence */
  readonly blockedAt: number;
  readonly expiresAt: number;
  /** false once expired or lifted: the record stays as history */
  readonly active: boolean;
  /** ids of the events that counted, newest last (bounded), so a redelivered event is one offence */
  readonly eventIds: readonly string[];
  readonly sensors: readonly string[];
  /** the last distinct decoy ports probed, newest last (at most MAX_REMEMBERED_PORTS): what a digest ranks ports by (core/digest.ts) */
  readonly ports?: readonly number[];
  readonly note?: string;
  /** why the block was lifted early, when it was */
  readonly liftedBy?: string;
}

/**
 * What enforcement reads of a record: the change log's projection (core/table.ts
 * CHANGES_PROJECTION), so a run reads about half the bytes of a whole record.
 */
export type EnforcementRecord = Pick<BlockRecord, 'target' | 'lastSeen' | 'blockedAt' | 'expiresAt' | 'active'> & {
  /** what decided the block (simulation is decided from it: simulationOf); absent when the item holds none of BLOCK_REASONS */
  readonly reason?: BlockReason;
};

/** A record as the change log holds it: its last change, at `changedAt` (epoch ms). */
export interface ChangedRecord extends EnforcementRecord {
  readonly changedAt: number;
}

export const MAX_REMEMBERED_EVENT_IDS = 20;
/** a record keeps this many distinct decoy ports: 10 numbers add at most ~50 bytes to the item (docs/scale.md) */
export const MAX_REMEMBERED_PORTS = 10;

/** `previous` then `seen`, each port once (a port seen again moves to the end), the newest MAX_REMEMBERED_PORTS. */
export function rememberPorts(previous: readonly number[] | undefined, seen: readonly number[] | undefined): number[] {
  const ports = [...(previous ?? [])];
  for (const port of seen ?? []) {
    const at = ports.indexOf(port);
    if (at >= 0) ports.splice(at, 1);
    ports.push(port);
  }
  return ports.slice(-MAX_REMEMBERED_PORTS);
}

/**
 * The TTL with its jitter: `ttlSeconds` plus a uniformly random extra of 0 to
 * `ttlJitterPercent` % of it (whole seconds). `random` returns [0, 1), as Math.random does.
 */
export function jitteredTtlSeconds(ttlSeconds: number, policy: Pick<PolicySettings, 'ttlJitterPercent'>, random: () => number): number {
  const percent = policy.ttlJitterPercent ?? 0;
  if (percent <= 0) return ttlSeconds;
  const r = Math.min(Math.max(random(), 0), 1);
  return ttlSeconds + Math.floor(ttlSeconds * (percent / 100) * r);
}

/** The prefix a detected IPv6 attacker is blocked by: `ipv6BlockPrefix`, else /64 or widestIpv6Prefix if narrower. */
export function ipv6BlockPrefixOf(policy: Pick<PolicySettings, 'ipv6BlockPrefix' | 'widestIpv6Prefix'>): number {
  return policy.ipv6BlockPrefix ?? Math.max(DEFAULT_IPV6_BLOCK_PREFIX, policy.widestIpv6Prefix);
}

/** base × factor^(n−1), capped; n < 1 counts as 1. Monotone in n. */
export function ttlSecondsFor(offences: number, policy: PolicySettings): number {
  const n = Math.max(1, Math.floor(offences));
  const raw = policy.baseTtlSeconds * Math.pow(policy.escalationFactor, n - 1);
  return Math.min(policy.maxTtlSeconds, Number.isFinite(raw) ? Math.round(raw) : policy.maxTtlSeconds);
}

export interface Sighting {
  readonly target: string;
  readonly family: Family;
  readonly reason: BlockReason;
  /** an id unique to the event (EventBridge id, GuardDuty finding id + updatedAt, …) */
  readonly eventId: string;
  readonly sensorId: string;
  readonly firstSeen: number;
  readonly lastSeen: number;
  readonly hits: number;
  /** the source address is proven (TCP handshake), or the block is manual */
  readonly verified: boolean;
  /** manual blocks may set their own TTL, seconds */
  readonly ttlSeconds?: number;
  readonly note?: string;
  /**
   * a manual re-block replaces the active block's expiry and note even when that shortens it
   * (`block --replace`); otherwise a re-block never shortens a block nor drops its note
   */
  readonly replace?: boolean;
  /** the decoy ports the event's probes hit (a Scan Detected event's `probes`) */
  readonly ports?: readonly number[];
}

/**
 * Why policy refuses a sighting whatever the guard says, or undefined: a CIDR wider than the
 * widest prefix allowed, or a manual TTL past the maximum. (A compromised sensor or a mistyped
 * command must not block an eighth of IPv4 for a year.)
 */
export function policyRefusal(sighting: Pick<Sighting, 'target' | 'ttlSeconds'>, policy: PolicySettings): string | undefined {
  const cidr = tryParseCidr(sighting.target, false);
  if (!cidr) return `not an address or CIDR: ${JSON.stringify(sighting.target)}`;
  const widest = cidr.family === 'ipv4' ? policy.widestIpv4Prefix : policy.widestIpv6Prefix;
  if (cidr.prefix < widest) return `CIDR ${cidr.text} is wider than /${widest} (policy.widest${cidr.family === 'ipv4' ? 'Ipv4' : 'Ipv6'}Prefix)`;
  if (sighting.ttlSeconds !== undefined && sighting.ttlSeconds > policy.maxManualTtlSeconds) {
    return `TTL ${sighting.ttlSeconds}s is longer than ${policy.maxManualTtlSeconds}s (policy.maxManualTtlSeconds)`;
  }
  return undefined;
}

/** A counter kept exact: DynamoDB and JSON hold integers exactly only up to 2^53 − 1. */
function addCount(a: number, b: number): number {
  return Math.min(Number.MAX_SAFE_INTEGER, a + b);
}

export type Decision =
  /** a new offence: the record is (again) active with a fresh expiry */
  | { readonly action: 'block'; readonly record: BlockRecord; readonly why: string }
  /** more hits during an active block: counts change, expiry does not */
  | { readonly action: 'refresh'; readonly record: BlockRecord; readonly why: string }
  /** nothing to write */
  | { readonly action: 'ignore'; readonly why: string };

/**
 * What one sighting does to the desired state. `previous` is the stored record for the same
 * target, if any. Never-block rules and the circuit breaker are the caller's (see guard.ts and
 * BurstBreaker), so this stays a function of the record, the sighting, the clock and — only
 * when `policy.ttlJitterPercent` is set — the random source.
 */
export function decide(previous: BlockRecord | undefined, sighting: Sighting, now: number, policy: PolicySettings, random: () => number = Math.random): Decision {
  if (!sighting.verified && !policy.blockUnverified) {
    return { action: 'ignore', why: 'unverified source (no TCP handshake) and blockUnverified is off' };
  }
  if (previous?.eventIds.includes(sighting.eventId)) {
    return { action: 'ignore', why: `event ${sighting.eventId} already counted` };
  }
  const eventIds = [...(previous?.eventIds ?? []), sighting.eventId].slice(-MAX_REMEMBERED_EVENT_IDS);
  const sensors = previous?.sensors.includes(sighting.sensorId) ? previous.sensors : [...(previous?.sensors ?? []), sighting.sensorId].slice(-10);
  const firstSeen = Math.min(previous?.firstSeen ?? sighting.firstSeen, sighting.firstSeen);
  const lastSeen = Math.max(previous?.lastSeen ?? sighting.lastSeen, sighting.lastSeen);
  const hitCount = addCount(previous?.hitCount ?? 0, sighting.hits);
  const remembered = rememberPorts(previous?.ports, sighting.ports);
  const ports = remembered.length ? { ports: remembered } : {};

  if (previous && previous.active && previous.expiresAt > now && sighting.reason !== 'manual') {
    return {
      action: 'refresh',
      record: { ...previous, lastSeen, hitCount, eventIds, sensors, ...ports },
      why: `already blocked until ${new Date(previous.expiresAt).toISOString()}`,
    };
  }

  const withinWindow = previous !== undefined && now - previous.blockedAt <= policy.offenceWindowSeconds * 1000;
  // A manual re-block of an active block is no new offence: the address did nothing new, an
  // operator asked again (the sighting's reason is 'manual' here: others refreshed above).
  const again = previous !== undefined && isActive(previous, now);
  const offences = again ? previous.offences : withinWindow ? previous.offences + 1 : 1;
  // an operator's own TTL is taken as asked; the policy's gets its jitter (policy.ttlJitterPercent)
  const ttlSeconds = sighting.ttlSeconds ?? jitteredTtlSeconds(ttlSecondsFor(offences, policy), policy, random);
  // A manual re-block of an active block keeps the later expiry and the note it had, unless it
  // asks to replace them: `block X` after `block X --ttl 7d --reason "known bad"` must not
  // shorten the week to the policy's two hours.
  const keep = again && sighting.replace !== true;
  const expiresAt = keep ? Math.max(previous.expiresAt, now + ttlSeconds * 1000) : now + ttlSeconds * 1000;
  const note = sighting.note ?? (keep ? previous.note : undefined);
  const record: BlockRecord = {
    target: sighting.target,
    family: sighting.family,
    reason: keep ? previous.reason : sighting.reason,
    firstSeen,
    lastSeen,
    hitCount,
    offences,
    blockedAt: keep ? previous.blockedAt : now,
    expiresAt,
    active: true,
    eventIds,
    sensors,
    ...ports,
    ...(note !== undefined ? { note } : {}),
  };
  return { action: 'block', record, why: `offence ${offences}, blocked for ${Math.round((expiresAt - now) / 1000)}s` };
}

/** True when the record is to be enforced at `now`. */
export function isActive(record: Pick<BlockRecord, 'active' | 'expiresAt'>, now: number): boolean {
  return record.active && record.expiresAt > now;
}

/** The record after its expiry or an early lift: kept as history, enforced nowhere. */
export function lift(record: BlockRecord, liftedBy: string): BlockRecord {
  return { ...record, active: false, liftedBy };
}

/**
 * The burst circuit breaker: at most `limit` new blocks in any sliding minute. Past that it
 * opens — new blocks are refused (existing ones stay) — until the minute has drained.
 * In-memory (the host agent's). The cloud counts per calendar minute instead: decide's
 * conditional counter item in the table (core/table.ts `burstKey`, keyed by `minuteOf`).
 */
export class BurstBreaker {
  private readonly admitted: number[] = [];

  constructor(private readonly limitPerMinute: number) {}

  /** Records a new block at `now` when the breaker is closed; false when it is open. `limit` overrides the constructor's (a reload). */
  tryAdmit(now: number, limit = this.limitPerMinute): boolean {
    this.drain(now);
    if (this.admitted.length >= limit) return false;
    this.admitted.push(now);
    return true;
  }

  isOpen(now: number, limit = this.limitPerMinute): boolean {
    this.drain(now);
    return this.admitted.length >= limit;
  }

  private drain(now: number): void {
    while (this.admitted.length > 0 && (this.admitted[0] ?? 0) <= now - 60_000) this.admitted.shift();
  }
}

/** The start of the minute `now` falls in: the key of the cloud's per-minute burst counter. */
export function minuteOf(now: number): number {
  return Math.floor(now / 60_000) * 60_000;
}
