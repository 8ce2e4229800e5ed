/**
 * findings — every minute (EventBridge Scheduler), only when `securityHub.enabled`: the blocks
 * changed since the cursor become AWS Security Hub findings (lambda/findings/exporter.ts; the
 * mapping is core/findings.ts). Runs where the decision table is: the single-account stack and the
 * organization's decision plane (lib/DecisionCore.ts).
 * Env: TABLE_NAME (the decision table; also the finding ids' scope), FINDINGS_PRODUCT_ARN (the
 * account's default product, `arn:<partition>:securityhub:<region>:<account>:product/<account>/default`).
 */
import { parseProductArn } from '../../core/findings';
import { documentClient } from '../../aws/clients/dynamodb';
import { securityHubClient } from '../../aws/clients/securityhub';
import { type Clock, DeadlineClock, systemClock } from '../../aws/clock';
import { FUNCTION_ENV, requireEnv } from '../shared/env';
import { entryPoint, instrument, type ScheduledInvocation } from '../shared/handler';
import { type Observability, powertoolsObservability } from '../../aws/observability';
import { BlockRepository } from '../../aws/repository';
import { DynamoCursorStore } from './cursor';
import { type ExportResult, exportFindings, type ExporterDeps } from './exporter';

export type FindingsDeps = ExporterDeps;

export function createHandler(deps: FindingsDeps): ScheduledInvocation<ExportResult> {
  return instrument(deps.obs, async (_event, context) => {
    // pacing and throttling retries give up with a clean error before the function's timeout
    const clock = new DeadlineClock(deps.clock);
    if (context) clock.deadline = Date.now() + context.getRemainingTimeInMillis() - 3_000;
    const result = await exportFindings({ ...deps, clock });
    deps.obs.log.info('findings exported', { ...result });
    return result;
  });
}

export function defaultDeps(env: NodeJS.ProcessEnv = process.env, obs: Observability = powertoolsObservability(), clock: Clock = systemClock): FindingsDeps {
  const table = requireEnv(FUNCTION_ENV.table, env);
  const productArn = requireEnv(FUNCTION_ENV.findingsProductArn, env);
  const where = parseProductArn(productArn);
  if (!where) throw new Error(`environment variable ${FUNCTION_ENV.findingsProductArn} is not a default product ARN (arn:<partition>:securityhub:<region>:<account>:product/<account>/default): ${productArn}`);
  const client = documentClient();
  return {
    source: new BlockRepository(client, table),
    cursor: new DynamoCursorStore(client, table),
    hub: securityHubClient(),
    target: { ...where, scope: table },
    clock,
    obs,
  };
}

export const handler = entryPoint(() => createHandler(defaultDeps()));
