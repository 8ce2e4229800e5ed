/**
 * enforce — the one writer of WAF and NACL state. Consumes the FIFO queue (every message in group
 * "enforce", so one invocation at a time; a batch is one run). Messages are wake-ups:
 * {"kind":"enforce"|"expire"|"reconcile"}; each run diffs the whole desired state. A batch of
 * only "reconcile" messages runs in reconcile mode (every change logged and counted as a repair).
 * Env: PORTSNARE_SETTINGS, TABLE_NAME.
 */
import type { SQSEvent } from 'aws-lambda';
import { documentClient, ec2Client, wafClients } from '../shared/clients';
import { type Clock, DeadlineClock, systemClock } from '../shared/clock';
import { enforce, type EnforceMode, type EnforcerDeps, type EnforceSummary } from '../shared/enforcer';
import { NaclAdapter } from '../shared/nacl-adapter';
import { entryPoint, instrument, type Invocation } from '../shared/handler';
import { type Observability, powertoolsObservability } from '../shared/observability';
import { parseEnforceMessage } from '../shared/queue';
import { BlockRepository } from '../shared/repository';
import { loadSettings, requireEnv } from '../shared/settings';
import { WafAdapter } from '../shared/waf-adapter';

/** never wait longer than this for a wake-up's second to close (clock skew guard) */
export const MAX_WAIT_MS = 5_000;
/** stop pausing for retries this long before the function's timeout, to fail cleanly */
export const DEADLINE_MARGIN_MS = 5_000;

export type EnforceHandler = Invocation<SQSEvent, EnforceSummary>;

export function createHandler(deps: EnforcerDeps): EnforceHandler {
  const { obs, clock } = deps;
  return instrument(obs, async (event, context) => {
    if (clock instanceof DeadlineClock) {
      clock.deadline = context ? clock.now() + context.getRemainingTimeInMillis() - DEADLINE_MARGIN_MS : undefined;
    }
    const kinds = new Set<string>();
    let notBefore = 0;
    for (const record of event.Records ?? []) {
      const message = parseEnforceMessage(record.body);
      if (!message) {
        obs.log.warn('unknown enforce message ignored', { messageId: record.messageId });
        continue;
      }
      kinds.add(message.kind);
      notBefore = Math.max(notBefore, message.notBefore ?? 0);
    }
    const wait = Math.min(MAX_WAIT_MS, notBefore - clock.now());
    if (wait > 0) await clock.sleep(wait);
    const mode: EnforceMode = kinds.size === 1 && kinds.has('reconcile') ? 'reconcile' : 'enforce';
    const summary = await enforce(deps, mode);
    obs.log.info('enforcement run', { mode, kinds: [...kinds], ...summary });
    if (summary.failures.length) {
      // Let SQS deliver the batch again (visibility timeout); the next run diffs from scratch.
      throw new Error(`enforcement incomplete: ${summary.failures.join('; ')}`);
    }
    return summary;
  });
}

export function defaultDeps(
  env: NodeJS.ProcessEnv = process.env,
  obs: Observability = powertoolsObservability(),
  clock: Clock = new DeadlineClock(systemClock),
): EnforcerDeps {
  return {
    repo: new BlockRepository(documentClient(), requireEnv('TABLE_NAME', env)),
    nacl: new NaclAdapter(ec2Client(), clock, obs),
    waf: new WafAdapter(wafClients(), clock, obs),
    settings: loadSettings(env),
    obs,
    clock,
  };
}

export const handler = entryPoint(() => createHandler(defaultDeps()));
