/**
 * reconcile — every 5 minutes (EventBridge Scheduler). It only sends {"kind":"reconcile"} to the
 * enforce queue: the repair itself runs inside the enforce function, so there stays exactly one
 * writer of WAF and NACL state (two writers would race on LockTokens and rule numbers, and a
 * repair could undo a block being applied). The enforce function, seeing a reconcile-only batch,
 * logs each change it makes as a repair and counts it (metric Repairs).
 * Env: ENFORCE_QUEUE_URL.
 */
import { sqsClient } from '../../aws/clients/sqs';
import { type Clock, systemClock } from '../../aws/clock';
import { entryPoint, instrument, type ScheduledInvocation } from '../shared/handler';
import { type Observability, powertoolsObservability } from '../../aws/observability';
import { EnforceQueue } from '../shared/queue';
import { FUNCTION_ENV, requireEnv } from '../shared/env';

export interface ReconcileDeps {
  readonly queue: EnforceQueue;
  readonly obs: Observability;
  readonly clock: Clock;
}

export function createHandler(deps: ReconcileDeps): ScheduledInvocation<void> {
  return instrument(deps.obs, async () => {
    await deps.queue.wake('reconcile', deps.clock.now());
    deps.obs.log.info('reconcile requested');
  });
}

export function defaultDeps(env: NodeJS.ProcessEnv = process.env, obs: Observability = powertoolsObservability(), clock: Clock = systemClock): ReconcileDeps {
  return { queue: new EnforceQueue(sqsClient(), requireEnv(FUNCTION_ENV.enforceQueueUrl, env)), obs, clock };
}

export const handler = entryPoint(() => createHandler(defaultDeps()));
