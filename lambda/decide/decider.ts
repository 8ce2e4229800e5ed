/**
 * decide: one EventBridge event → desired state. Validation, the policy and the decision use
 * case are core's: interpret (core/intake.ts) → the decision service (core/decisions.ts: guard →
 * policy refusal → read record → policy → burst breaker (new blocks only) → conditional write,
 * retried on a lost race → history), the same the host agent runs → wake the enforce function.
 * This file hands the service its ports (the repository, BurstGate, the clock), logs and counts
 * its outcomes, and lifts records on Unblock Requested.
 *
 * Concurrency: several sensors report one attacker at once, so many invocations race on one
 * record. A lost conditional write re-reads and decides again after a jittered pause
 * (exponential backoff, full jitter, MAX_WRITE_ATTEMPTS); the winner's block turns the others'
 * decisions into refreshes, and an event another invocation already counted is `unchanged`.
 * The burst breaker counts each new attacker once (burst.ts), whoever wins.
 *
 * Nothing is dropped silently:
 * - breaker open: the other sightings of the event are still written and enforce is woken, then
 *   the invocation fails (BreakerOpenError), so Lambda retries the event later (asynchronous
 *   invocation retries, a new minute) and, should the breaker stay open, the event lands in the
 *   function's on-failure queue, alarmed; the breaker's own metric and error log say why.
 * - the wake-up cannot be sent: the record is saved, the invocation fails, and the retried event
 *   (now `unchanged`, already counted) sends the wake-up again: an event whose record is active
 *   always wakes enforce, as does an unblock of a record that is already lifted.
 * https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html
 */
import { NeverBlockGuard } from '../../core/guard';
import { interpretEvent } from '../../core/intake';
import { type DecisionStorePort, DecisionService } from '../../core/decisions';
import { type BlockRecord, isActive, lift, type Sighting } from '../../core/policy';
import type { PipelineSettings } from '../../core/settings';
import type { Clock } from '../../aws/clock';
import type { Observability } from '../../aws/observability';
import type { EnforceQueue } from '../shared/queue';
import type { BlockRepository } from '../../aws/repository';
import { backoffMs } from '../../aws/retry';
import type { BurstGate } from './burst';

/** conditional writes of one record before the invocation gives up (and Lambda retries it) */
export const MAX_WRITE_ATTEMPTS = 16;
/** the pause after a lost race: full jitter over min(cap, base × 2^attempt) */
export const WRITE_BACKOFF_BASE_MS = 20;
export const WRITE_BACKOFF_CAP_MS = 1_000;

export interface DeciderDeps {
  readonly repo: BlockRepository;
  readonly queue: EnforceQueue;
  readonly burst: BurstGate;
  readonly settings: PipelineSettings;
  readonly obs: Observability;
  readonly clock: Clock;
  readonly random?: () => number;
}

export type Outcome = 'malformed' | 'ignored' | 'alerted' | 'refused' | 'blocked' | 'refreshed' | 'unchanged' | 'breaker-open' | 'unblocked' | 'not-blocked';

/** The invocation fails on purpose: a new block was refused by the burst breaker and must be retried. */
export class BreakerOpenError extends Error {
  override readonly name = 'CircuitBreakerOpen';
  constructor(
    readonly targets: readonly string[],
    readonly outcomes: readonly Outcome[],
  ) {
    super(`burst circuit breaker open: new block of ${targets.join(', ')} not added yet; failing so that the event is retried`);
  }
}

interface Result {
  readonly outcome: Outcome;
  /** enforce must run: a block was written, or the record this event counted is active */
  readonly wake: boolean;
}

export class Decider {
  private readonly service: DecisionService;

  constructor(private readonly deps: DeciderDeps) {
    const guard = new NeverBlockGuard(deps.settings.guard);
    this.service = new DecisionService({
      store: repositoryStore(deps.repo, deps.obs),
      breaker: deps.burst,
      clock: deps.clock,
      guard: () => guard,
      policy: () => deps.settings.policy,
      maxAttempts: MAX_WRITE_ATTEMPTS,
      pause: (attempt) => this.pause(attempt),
    });
  }

  /** Handles one event; never throws for a bad event (it is logged and dropped). */
  async handle(event: unknown): Promise<Outcome[]> {
    const { obs, clock, queue } = this.deps;
    const intake = interpretEvent(event, clock.now());
    switch (intake.kind) {
      case 'malformed':
        obs.count('MalformedEvents');
        obs.log.warn('malformed event dropped', { reason: intake.reason, eventId: (event as { id?: unknown } | null)?.id });
        return ['malformed'];
      case 'ignored':
        obs.log.info('event ignored', { reason: intake.reason });
        return ['ignored'];
      case 'alert':
        // One of our instances scans out (GuardDuty Recon:EC2/Portscan): an alarm about it, never a
        // block of its remote address, which is the victim.
        obs.count('OwnInstanceScanning');
        obs.log.error('one of our instances is port scanning: investigate it (nothing blocked)', {
          alert: intake.alert,
          instanceId: intake.instanceId,
          remote: intake.remote,
          findingId: intake.findingId,
        });
        return ['alerted'];
      case 'unblock': {
        const result = await this.unblock(intake.target, intake.requestedBy);
        if (result.wake) await queue.wake('enforce', clock.now());
        return [result.outcome];
      }
      case 'sightings': {
        const results: Array<Result & { target: string }> = [];
        for (const sighting of intake.sightings) results.push({ ...(await this.sighting(sighting)), target: sighting.target });
        if (results.some((r) => r.wake)) await queue.wake('enforce', clock.now());
        const outcomes = results.map((r) => r.outcome);
        const refused = results.filter((r) => r.outcome === 'breaker-open').map((r) => r.target);
        if (refused.length) throw new BreakerOpenError(refused, outcomes);
        return outcomes;
      }
    }
  }

  private async pause(attempt: number): Promise<void> {
    const random = this.deps.random ?? Math.random;
    await this.deps.clock.sleep(Math.max(1, backoffMs(attempt, WRITE_BACKOFF_BASE_MS, WRITE_BACKOFF_CAP_MS, random)));
  }

  private async sighting(sighting: Sighting): Promise<Result> {
    const { obs, settings } = this.deps;
    obs.count('Detections');
    const result = await this.service.decide(sighting);
    switch (result.outcome) {
      case 'refused':
        obs.count('Refused');
        obs.log.warn(result.by === 'guard' ? 'refused: never-block rule' : 'refused: policy', { attacker: sighting.target, rule: result.rule, reason: sighting.reason, eventId: sighting.eventId });
        return { outcome: 'refused', wake: false };
      case 'unchanged':
        // Counted already (a redelivery, or a racing invocation of the same event): the block it
        // made may still lack its wake-up (a send that failed), so an active one wakes enforce.
        obs.log.info('no change', { attacker: sighting.target, decision: 'ignore', why: result.why, eventId: sighting.eventId });
        return { outcome: 'unchanged', wake: result.counted && result.current !== undefined && isActive(result.current, result.at) };
      case 'breaker-open':
        obs.count('CircuitBreakerOpen');
        obs.log.error('burst circuit breaker open: new block not added; the event will be retried', {
          attacker: sighting.target,
          limitPerMinute: settings.policy.burstLimitPerMinute,
          eventId: sighting.eventId,
        });
        return { outcome: 'breaker-open', wake: false };
      case 'blocked':
      case 'refreshed':
        obs.log.info(result.outcome, {
          attacker: sighting.target,
          decision: result.decision.action,
          why: result.decision.why,
          reason: sighting.reason,
          offences: result.decision.record.offences,
          expiresAt: new Date(result.decision.record.expiresAt).toISOString(),
          eventId: sighting.eventId,
          attempts: result.attempts,
        });
        return { outcome: result.outcome, wake: true };
    }
  }

  private async unblock(target: string, requestedBy: string): Promise<Result> {
    const { repo, obs, clock } = this.deps;
    for (let attempt = 0; attempt < MAX_WRITE_ATTEMPTS; attempt++) {
      if (attempt > 0) await this.pause(attempt - 1);
      const now = clock.now();
      const stored = await repo.get(target);
      if (!stored || !stored.record.active) {
        obs.log.info('unblock requested for a target that is not blocked', { attacker: target, requestedBy });
        // A lifted record may still be enforced if the wake-up of its lift was lost: wake anyway.
        return { outcome: 'not-blocked', wake: stored !== undefined };
      }
      const lifted: BlockRecord = lift(stored.record, `unblock by ${requestedBy}`);
      if (await repo.save(lifted, stored.version, now)) {
        await repo.appendHistory(lifted, 'unblock', now, { requestedBy });
        obs.log.info('unblocked', { attacker: target, requestedBy });
        return { outcome: 'unblocked', wake: true };
      }
    }
    throw new Error(`could not lift the record of ${target} after ${MAX_WRITE_ATTEMPTS} attempts`);
  }
}

/**
 * The decision service's store port over the table: a conditional write on the record's version,
 * then its history entry (core/decisions.ts DecisionStorePort).
 */
export function repositoryStore(repo: BlockRepository, obs?: Observability): DecisionStorePort {
  return {
    read: (target) => repo.get(target),
    async save(record, expected, action, now, eventId) {
      if (!(await repo.save(record, expected?.version as number | undefined, now))) {
        obs?.log.debug('record changed since read; deciding again', { attacker: record.target });
        return false;
      }
      await repo.appendHistory(record, action, now, { eventId });
      return true;
    },
  };
}
