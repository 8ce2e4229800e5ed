/**
 * The decision use case, once, for the host and the cloud (ARCHITECTURE.md "The decision
 * service"): one sighting → never-block guard → policy refusal → read the current record →
 * policy decide → burst breaker (new, non-manual blocks only) → conditional save with its
 * history entry. The host pipeline (sensor/local/pipeline.ts, the file store) and the decide
 * function (lambda/decide/decider.ts, DynamoDB) differ only in the ports they hand in, so the
 * rules cannot drift between them.
 *
 * Rules both sides get from here:
 * - A manual block counts no hits (an operator's request is no probe) and is never held by the
 *   breaker; neither is a block the host's kernel already made (`alreadyEnforced`).
 * - A manual re-block of an active block without `replace` keeps the later expiry and the note,
 *   and adds the new note after "; again" (core/policy.ts decide keeps the rest); with `replace`
 *   the new expiry and note stand, even when that shortens the block (`block --replace`).
 * - An event already counted is `unchanged`; `counted` says whether this event is in the record.
 *
 * Pure of I/O itself: the ports do it. Concurrency is the store port's: the host holds its
 * writer lock across the whole call (a lost race cannot happen there), the cloud's conditional
 * write may lose, and the service then reads and decides again, up to `maxAttempts`.
 */
import type { NeverBlockGuard } from './guard';
import { prefixSighting } from './prefix';
import { type BlockRecord, type Decision, decide, isActive, minuteOf, type PolicySettings, policyRefusal, type Sighting } from './policy';

/** The current record of a target and the version a conditional save compares against. */
export interface CurrentRecord {
  readonly record: BlockRecord;
  /** opaque to the service: the store's version (DynamoDB's counter, the host's record itself) */
  readonly version: unknown;
}

/** The desired-state store: DynamoDB through aws/repository.ts, or the host's FileStore. */
export interface DecisionStorePort {
  read(target: string): Promise<CurrentRecord | undefined>;
  /**
   * Writes `record` unless the target's record changed since `expected` was read (undefined:
   * there was none), and appends the history entry (`action`, `eventId`). False when it changed:
   * nothing was written, the service reads and decides again.
   */
  save(record: BlockRecord, expected: CurrentRecord | undefined, action: 'block' | 'refresh', now: number, eventId: string): Promise<boolean>;
}

export type Admission = 'admitted' | 'open';

/** The burst circuit breaker: the host's sliding minute in memory, the cloud's per-minute claims in the table. */
export interface BreakerPort {
  /** Admits `target` as one of the new blocks of the minute at `now`, or says the breaker is open. */
  admit(target: string, now: number, limitPerMinute: number): Promise<Admission>;
}

export interface ClockPort {
  now(): number;
}

export interface DecisionServiceDeps {
  readonly store: DecisionStorePort;
  readonly breaker: BreakerPort;
  readonly clock: ClockPort;
  /** read at every decision: a reload (host) or a test may replace them */
  readonly guard: () => NeverBlockGuard;
  readonly policy: () => PolicySettings;
  /** conditional saves of one record before giving up (default 1: the store's lock makes a loss a bug) */
  readonly maxAttempts?: number;
  /** the pause before attempt `attempt + 1` after a lost race (the cloud's jittered backoff) */
  readonly pause?: (attempt: number) => Promise<void>;
}

export interface DecideOptions {
  /** the block already exists where it is enforced (the host's kernel made it): the breaker cannot hold it back */
  readonly alreadyEnforced?: boolean;
}

export type DecisionResult =
  | { readonly outcome: 'refused'; readonly by: 'guard' | 'policy'; readonly target: string; readonly rule: string }
  | { readonly outcome: 'breaker-open'; readonly target: string; readonly limitPerMinute: number }
  /** nothing written; `current` is the record as read, `counted` whether this event is already in it */
  | { readonly outcome: 'unchanged'; readonly target: string; readonly why: string; readonly current: BlockRecord | undefined; readonly counted: boolean; readonly at: number }
  | {
      readonly outcome: 'blocked' | 'refreshed';
      readonly target: string;
      readonly decision: Extract<Decision, { action: 'block' | 'refresh' }>;
      readonly previous: BlockRecord | undefined;
      readonly attempts: number;
      readonly at: number;
    };

export class LostRaceError extends Error {
  override readonly name = 'LostRace';
  constructor(
    readonly target: string,
    readonly attempts: number,
  ) {
    super(`could not write the record of ${target} after ${attempts} attempts`);
  }
}

/**
 * THE place where what is blocked and for how long is settled, for both sides: the target the
 * guard and the store see, and the decision (with its TTL) the policy makes of the current
 * record: the IPv6 prefix step (an address to its /64, core/prefix.ts) is `sighting`'s; the TTL
 * jitter (policy.ttlJitterPercent) is core/policy.ts decide's, inside `decision`.
 */
export const shaping = {
  /** a detected IPv6 address → its prefix, or the address with the reason (core/prefix.ts) */
  sighting(sighting: Sighting, policy: PolicySettings, guard: NeverBlockGuard): Sighting {
    return prefixSighting(sighting, policy, guard);
  },
  decision(previous: BlockRecord | undefined, sighting: Sighting, now: number, policy: PolicySettings): Decision {
    return decide(previous, sighting, now, policy);
  },
};

export class DecisionService {
  private readonly maxAttempts: number;

  constructor(private readonly deps: DecisionServiceDeps) {
    this.maxAttempts = Math.max(1, deps.maxAttempts ?? 1);
  }

  /** Decides on one sighting and records the decision. Throws only when the store does (or every attempt lost its race). */
  async decide(input: Sighting, opts: DecideOptions = {}): Promise<DecisionResult> {
    const { store, breaker, clock } = this.deps;
    const policy = this.deps.policy();
    const manual = input.reason === 'manual';
    const sighting = shaping.sighting(manual && input.hits !== 0 ? { ...input, hits: 0 } : input, policy, this.deps.guard());
    const target = sighting.target;
    const verdict = this.deps.guard().check(target);
    if (!verdict.blockable) return { outcome: 'refused', by: 'guard', target, rule: verdict.rule };
    const rule = policyRefusal(sighting, policy);
    if (rule) return { outcome: 'refused', by: 'policy', target, rule };
    const breakerApplies = !manual && opts.alreadyEnforced !== true;
    let admittedMinute: number | undefined;
    for (let attempt = 0; attempt < this.maxAttempts; attempt++) {
      if (attempt > 0) await this.deps.pause?.(attempt - 1);
      const now = clock.now();
      const current = await store.read(target);
      const previous = current?.record;
      const decision = shaping.decision(previous, withNoteOf(previous, sighting, now), now, policy);
      if (decision.action === 'ignore') {
        return { outcome: 'unchanged', target, why: decision.why, current: previous, counted: previous?.eventIds.includes(sighting.eventId) ?? false, at: now };
      }
      const newBlock = decision.action === 'block' && !(previous && isActive(previous, now));
      if (newBlock && breakerApplies && admittedMinute !== minuteOf(now)) {
        if ((await breaker.admit(target, now, policy.burstLimitPerMinute)) === 'open') {
          return { outcome: 'breaker-open', target, limitPerMinute: policy.burstLimitPerMinute };
        }
        admittedMinute = minuteOf(now);
      }
      if (await store.save(decision.record, current, decision.action, now, sighting.eventId)) {
        return { outcome: decision.action === 'block' ? 'blocked' : 'refreshed', target, decision, previous, attempts: attempt + 1, at: now };
      }
    }
    throw new LostRaceError(target, this.maxAttempts);
  }
}

/**
 * A manual re-block of an active block, without `replace`, keeps its note and adds who asked
 * again: "known bad; again requested by ops".
 */
function withNoteOf(previous: BlockRecord | undefined, sighting: Sighting, now: number): Sighting {
  if (sighting.reason !== 'manual' || sighting.replace === true || sighting.note === undefined) return sighting;
  if (previous?.note === undefined || !isActive(previous, now)) return sighting;
  return { ...sighting, note: `${previous.note}; again ${sighting.note}`.slice(0, 1024) };
}
