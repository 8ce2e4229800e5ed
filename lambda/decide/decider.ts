/**
 * decide: one EventBridge event → desired state. Validation and the policy are core's; this
 * file orders the steps and the writes:
 *   interpret → never-block guard → read record → policy → burst breaker (new blocks only) →
 *   conditional write (retry on a lost race) → history → wake the enforce function.
 */
import { NeverBlockGuard } from '../../core/guard';
import { interpretEvent } from '../../core/intake';
import { type BlockRecord, decide, isActive, lift, policyRefusal, type Sighting } from '../../core/policy';
import type { PipelineSettings } from '../../core/settings';
import type { Clock } from '../shared/clock';
import type { Observability } from '../shared/observability';
import type { EnforceQueue } from '../shared/queue';
import type { BlockRepository } from '../shared/repository';

export const MAX_WRITE_ATTEMPTS = 5;

export interface DeciderDeps {
  readonly repo: BlockRepository;
  readonly queue: EnforceQueue;
  readonly settings: PipelineSettings;
  readonly obs: Observability;
  readonly clock: Clock;
}

export type Outcome = 'malformed' | 'ignored' | 'alerted' | 'refused' | 'blocked' | 'refreshed' | 'unchanged' | 'breaker-open' | 'unblocked' | 'not-blocked';

export class Decider {
  private readonly guard: NeverBlockGuard;

  constructor(private readonly deps: DeciderDeps) {
    this.guard = new NeverBlockGuard(deps.settings.guard);
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
        const outcome = await this.unblock(intake.target, intake.requestedBy);
        if (outcome === 'unblocked') await queue.wake('enforce', clock.now());
        return [outcome];
      }
      case 'sightings': {
        const outcomes: Outcome[] = [];
        for (const sighting of intake.sightings) outcomes.push(await this.sighting(sighting));
        if (outcomes.some((o) => o === 'blocked' || o === 'refreshed')) await queue.wake('enforce', clock.now());
        return outcomes;
      }
    }
  }

  private async sighting(sighting: Sighting): Promise<Outcome> {
    const { repo, obs, clock, settings } = this.deps;
    obs.count('Detections');
    const verdict = this.guard.check(sighting.target);
    if (!verdict.blockable) {
      obs.count('Refused');
      obs.log.warn('refused: never-block rule', { attacker: sighting.target, rule: verdict.rule, reason: sighting.reason, eventId: sighting.eventId });
      return 'refused';
    }
    const refusal = policyRefusal(sighting, settings.policy);
    if (refusal) {
      obs.count('Refused');
      obs.log.warn('refused: policy', { attacker: sighting.target, rule: refusal, reason: sighting.reason, eventId: sighting.eventId });
      return 'refused';
    }
    let admitted = false;
    for (let attempt = 1; attempt <= MAX_WRITE_ATTEMPTS; attempt++) {
      const now = clock.now();
      const stored = await repo.get(sighting.target);
      const decision = decide(stored?.record, sighting, now, settings.policy);
      if (decision.action === 'ignore') {
        obs.log.info('no change', { attacker: sighting.target, decision: 'ignore', why: decision.why, eventId: sighting.eventId });
        return 'unchanged';
      }
      const newBlock = decision.action === 'block' && !(stored && isActive(stored.record, now));
      if (newBlock && sighting.reason !== 'manual' && !admitted) {
        if (!(await repo.admitBurst(now, settings.policy.burstLimitPerMinute))) {
          obs.count('CircuitBreakerOpen');
          obs.log.error('burst circuit breaker open: new block not added', {
            attacker: sighting.target,
            limitPerMinute: settings.policy.burstLimitPerMinute,
            eventId: sighting.eventId,
          });
          return 'breaker-open';
        }
        admitted = true;
      }
      if (await repo.save(decision.record, stored?.version, now)) {
        await repo.appendHistory(decision.record, decision.action, now, { eventId: sighting.eventId });
        obs.log.info(decision.action === 'block' ? 'blocked' : 'refreshed', {
          attacker: sighting.target,
          decision: decision.action,
          why: decision.why,
          reason: sighting.reason,
          offences: decision.record.offences,
          expiresAt: new Date(decision.record.expiresAt).toISOString(),
          eventId: sighting.eventId,
        });
        return decision.action === 'block' ? 'blocked' : 'refreshed';
      }
      obs.log.debug('record changed since read; deciding again', { attacker: sighting.target, attempt });
    }
    throw new Error(`could not write the record of ${sighting.target} after ${MAX_WRITE_ATTEMPTS} attempts`);
  }

  private async unblock(target: string, requestedBy: string): Promise<Outcome> {
    const { repo, obs, clock } = this.deps;
    for (let attempt = 1; attempt <= MAX_WRITE_ATTEMPTS; attempt++) {
      const now = clock.now();
      const stored = await repo.get(target);
      if (!stored || !stored.record.active) {
        obs.log.info('unblock requested for a target that is not blocked', { attacker: target, requestedBy });
        return 'not-blocked';
      }
      const lifted: BlockRecord = lift(stored.record, `unblock by ${requestedBy}`);
      if (await repo.save(lifted, stored.version, now)) {
        await repo.appendHistory(lifted, 'unblock', now, { requestedBy });
        obs.log.info('unblocked', { attacker: target, requestedBy });
        return 'unblocked';
      }
    }
    throw new Error(`could not lift the record of ${target} after ${MAX_WRITE_ATTEMPTS} attempts`);
  }
}
