/**
 * expiry — every minute (EventBridge Scheduler): lifts every record whose time is up (GSI
 * `active`, expiresAt <= now), keeps it as history (DynamoDB TTL deletes it 90 days later; TTL is
 * not the expiry mechanism), then, when it lifted any, wakes the enforce function with
 * {"kind":"expire"}. (Between runs the enforce function already leaves expired records out of
 * the desired state, so a block ends at its minute even if a lift is late.)
 * Env: TABLE_NAME, ENFORCE_QUEUE_URL.
 */
import { lift } from '../../core/policy';
import { documentClient, sqsClient } from '../shared/clients';
import { type Clock, systemClock } from '../shared/clock';
import { entryPoint, instrument, type ScheduledInvocation } from '../shared/handler';
import { type Observability, powertoolsObservability } from '../shared/observability';
import { EnforceQueue } from '../shared/queue';
import { BlockRepository } from '../shared/repository';
import { requireEnv } from '../shared/env';

export interface ExpiryDeps {
  readonly repo: BlockRepository;
  readonly queue: EnforceQueue;
  readonly obs: Observability;
  readonly clock: Clock;
}

export function createHandler(deps: ExpiryDeps): ScheduledInvocation<{ lifted: number }> {
  const { repo, queue, obs, clock } = deps;
  return instrument(obs, async () => {
    const now = clock.now();
    let lifted = 0;
    for (const stored of await repo.listActive(now)) {
      if (stored.record.expiresAt > now) continue;
      const record = lift(stored.record, 'expiry');
      // Conditional on the version: a decide that re-blocked it meanwhile wins.
      if (await repo.save(record, stored.version, now)) {
        await repo.appendHistory(record, 'expire', now);
        obs.log.info('expired', { attacker: record.target, expiresAt: new Date(record.expiresAt).toISOString(), offences: record.offences });
        lifted++;
      }
    }
    if (lifted > 0) await queue.wake('expire', now);
    return { lifted };
  });
}

export function defaultDeps(env: NodeJS.ProcessEnv = process.env, obs: Observability = powertoolsObservability(), clock: Clock = systemClock): ExpiryDeps {
  return {
    repo: new BlockRepository(documentClient(), requireEnv('TABLE_NAME', env)),
    queue: new EnforceQueue(sqsClient(), requireEnv('ENFORCE_QUEUE_URL', env)),
    obs,
    clock,
  };
}

export const handler = entryPoint(() => createHandler(defaultDeps()));
