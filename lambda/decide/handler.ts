/**
 * decide — EventBridge target for `Scan Detected` (portsnare.sensor, portsnare.cli),
 * `Block Requested` / `Unblock Requested` (portsnare.cli) and GuardDuty Recon:EC2 findings.
 * Writes the desired state and wakes the enforce function; a malformed event is logged and
 * dropped (returning normally, so it is not retried). An invocation fails — so Lambda retries
 * the event, then keeps it in the on-failure queue — when the burst breaker refused a new block,
 * when the wake-up could not be sent, or when contention outlasted every write attempt.
 * Env (core/environment.ts): PORTSNARE_SETTINGS, TABLE_NAME, ENFORCE_QUEUE_URL.
 */
import { FUNCTION_ENV } from '../../core/environment';
import { documentClient } from '../../aws/clients/dynamodb';
import { sqsClient } from '../../aws/clients/sqs';
import { type Clock, systemClock } from '../../aws/clock';
import { entryPoint, instrument, type Invocation } from '../shared/handler';
import { type Observability, powertoolsObservability } from '../../aws/observability';
import { EnforceQueue } from '../shared/queue';
import { BlockRepository } from '../../aws/repository';
import { loadSettings, requireEnv } from '../shared/settings';
import { BurstGate } from './burst';
import { Decider, type DeciderDeps, type Outcome } from './decider';

export function createHandler(deps: DeciderDeps): Invocation<unknown, Outcome[]> {
  const decider = new Decider(deps);
  return instrument(deps.obs, (event) => decider.handle(event));
}

export function defaultDeps(env: NodeJS.ProcessEnv = process.env, obs: Observability = powertoolsObservability(), clock: Clock = systemClock): DeciderDeps {
  const tableName = requireEnv(FUNCTION_ENV.table, env);
  return {
    repo: new BlockRepository(documentClient(), tableName),
    burst: new BurstGate(documentClient(), tableName, clock),
    queue: new EnforceQueue(sqsClient(), requireEnv(FUNCTION_ENV.enforceQueueUrl, env)),
    settings: loadSettings(env),
    obs,
    clock,
  };
}

export const handler = entryPoint(() => createHandler(defaultDeps()));
