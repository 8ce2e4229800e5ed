/**
 * expiry — every minute (EventBridge Scheduler): lifts every record whose time is up (GSI
 * `active`, expiresAt <= now) and keeps it as history (DynamoDB TTL deletes it 90 days later; TTL
 * is not the expiry mechanism). When any is due it wakes the enforce function with
 * {"kind":"expire"} FIRST, then lifts: the enforce function leaves expired records out of the
 * desired state by their time, lifted or not, so the wake-up need not wait for the lifts; and a
 * wake-up that cannot be sent fails the run before anything is lifted, so the retry (or the next
 * minute) finds the same records due and sends it again. (Lift first and a lost wake-up would
 * leave nothing due to wake for: the blocks would stay until the 5-minute reconcile.)
 * Env: TABLE_NAME, ENFORCE_QUEUE_URL.
 */
import { lift } from '../../core/policy';
import { documentClient } from '../shared/clients/dynamodb';
import { sqsClient } from '../shared/clients/sqs';
import { type Clock, systemClock } from '../shared/clock';
import { entryPoint, instrument, type ScheduledInvocation } from '../shared/handler';
import { type Observability, powertoolsObservability } from '../shared/observability';
import { digestOf, EnforceQueue } from '../shared/queue';
import { BlockRepository } from '../shared/repository';
import { FUNCTION_ENV, requireEnv } from '../shared/env';

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
    const due = (await repo.listActive(now)).filter((stored) => stored.record.expiresAt <= now);
    // the due records make the wake-up distinct: a late tick and the next one in the same minute are two wake-ups
    if (due.length > 0) await queue.wake('expire', now, digestOf(due.map((stored) => `${stored.record.target}@${stored.record.expiresAt}`)));
    let lifted = 0;
    for (const stored of due) {
      const record = lift(stored.record, 'expiry');
      // Conditional on the version: a decide that re-blocked it meanwhile wins.
      if (await repo.save(record, stored.version, now)) {
        await repo.appendHistory(record, 'expire', now);
        obs.log.info('expired', { attacker: record.target, expiresAt: new Date(record.expiresAt).toISOString(), offences: record.offences });
        lifted++;
      }
    }
    return { lifted };
  });
}

export function defaultDeps(env: NodeJS.ProcessEnv = process.env, obs: Observability = powertoolsObservability(), clock: Clock = systemClock): ExpiryDeps {
  return {
    repo: new BlockRepository(documentClient(), requireEnv(FUNCTION_ENV.table, env)),
    queue: new EnforceQueue(sqsClient(), requireEnv(FUNCTION_ENV.enforceQueueUrl, env)),
    obs,
    clock,
  };
}

export const handler = entryPoint(() => createHandler(defaultDeps()));
