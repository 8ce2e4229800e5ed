/**
 * enforce — the one writer of WAF and NACL state. Consumes the FIFO queue (every message in group
 * "enforce", so one invocation at a time; a batch is one run). Messages are wake-ups:
 * {"kind":"enforce"|"expire"|"reconcile"}. A batch of only "reconcile" messages is a full run in
 * reconcile mode (every change logged and counted as a repair); any other batch is an
 * incremental run when the container is warm (lambda/shared/enforcer.ts: the changes since the
 * cursor), else a full one. The container's state (cursor, cached IP sets) lives in the
 * handler's deps (`state`), one per handler: nothing module-global.
 *
 * A run that could not enforce everything (lambda/shared/enforcer.ts: each WAF set and each ACL
 * on its own, so the others are enforced) never holds the queue for the visibility timeout:
 * - only permanent failures (a set or ACL that does not exist, a permission or limit): the batch
 *   succeeds — a retry within minutes would fail the same way and hold every new block behind
 *   it; the failure is logged and counted (EnforcementFailures, WafSetMissing), and every later
 *   run, at the latest the 5-minute reconcile, tries again;
 * - a transient failure (throttling past the retries, an internal error, the deadline): the
 *   batch is made visible again in RETRY_AFTER_SECONDS (ChangeMessageVisibility; a FIFO queue
 *   takes no per-message delay) and the invocation fails, so SQS delivers it again then, not
 *   after the queue's 360 s visibility timeout; after maxReceiveCount receives it is set aside in
 *   the dead-letter queue (alarmed) and the group moves on. (Lambda leaves a failed batch in
 *   flight until its visibility timeout is over; a function error does not delete it.)
 *   https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html
 *
 * In an organization's enforcement plane (core/org.ts) TABLE_NAME is the decision table's ARN in
 * the security account (read-only: its `changes` and `active` indexes), the placement ledger lives in the
 * plane's own table (LEDGER_TABLE_NAME), and a run writes the plane's report (PLANE_ID) into
 * the decision plane's reports table (REPORTS_TABLE_NAME) when it changed or a minute after the
 * last write (aws/plane-reports.ts ReportThrottle), a run that could not read the desired
 * state always (not converged, failure `table:desired-state`), so `status --org` shows the plane
 * lagging rather than healthy; a report that cannot be written is logged, never fails the run.
 * Env: PORTSNARE_SETTINGS, TABLE_NAME, ENFORCE_QUEUE_URL (optional: else from the records' ARN),
 * LEDGER_TABLE_NAME (optional: else TABLE_NAME), PLANE_ID and REPORTS_TABLE_NAME (optional, both
 * or neither: no report without them).
 */
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { SQSEvent } from 'aws-lambda';
import { documentClient } from '../../aws/clients/dynamodb';
import { ec2Client } from '../../aws/clients/ec2';
import { sqsClient } from '../../aws/clients/sqs';
import { wafClients } from '../../aws/clients/wafv2';
import { type Clock, DeadlineClock, systemClock } from '../../aws/clock';
import { enforce, type EnforceMode, type EnforcerDeps, type EnforcerState, type EnforceSummary, newEnforcerState } from '../shared/enforcer';
import { NaclAdapter } from '../../aws/nacl-adapter';
import { entryPoint, instrument, type Invocation } from '../shared/handler';
import { type Observability, powertoolsObservability } from '../../aws/observability';
import { PlaneReports, ReportThrottle } from '../../aws/plane-reports';
import { EnforceQueue, parseEnforceMessage, queueUrlFromArn, WAKE_WINDOW_MS } from '../shared/queue';
import { BlockRepository, PlacementLedger } from '../../aws/repository';
import { enforceEnvironmentOf } from '../shared/env';
import { loadSettings } from '../shared/settings';
import { WafAdapter } from '../../aws/waf-adapter';

/** never wait longer than this for a wake-up's window to close (clock skew guard; a window and its settle take 3 s) */
export const MAX_WAIT_MS = 5_000;
/** stop pausing for retries this long before the function's timeout, to fail cleanly */
export const DEADLINE_MARGIN_MS = 5_000;

/** a failed batch is delivered again this much later (instead of the queue's visibility timeout) */
export const RETRY_AFTER_SECONDS = 30;

export interface EnforceHandlerDeps extends EnforcerDeps {
  /** to shorten a failed batch's visibility timeout; without it the batch waits the queue's timeout */
  readonly sqs?: SQSClient;
  /** the enforce queue; default: from the records' eventSourceARN */
  readonly queueUrl?: string;
  /** an organization's enforcement plane: where it reports each run, under which id */
  readonly plane?: { readonly id: string; readonly reports: PlaneReports };
}

export type EnforceHandler = Invocation<SQSEvent, EnforceSummary>;

/** Asks SQS to deliver the batch again in RETRY_AFTER_SECONDS; a failure to ask is logged, not thrown. */
async function retrySoon(deps: EnforceHandlerDeps, event: SQSEvent): Promise<void> {
  const records = event.Records ?? [];
  const arn = records[0]?.eventSourceARN;
  if (!deps.sqs || records.length === 0 || (!deps.queueUrl && !arn)) {
    deps.obs.log.warn('no queue to shorten the retry with; the batch comes back after the visibility timeout', {});
    return;
  }
  try {
    const queue = new EnforceQueue(deps.sqs, deps.queueUrl ?? queueUrlFromArn(arn ?? ''));
    await queue.retryIn(
      records.map((r) => r.receiptHandle),
      RETRY_AFTER_SECONDS,
    );
  } catch (error) {
    deps.obs.log.error('could not shorten the retry of the failed batch; it comes back after the visibility timeout', { error: String(error) });
  }
}

/**
 * A plane is busy while its runs come at most this far apart (three wake windows): wake-ups are
 * then coming anyway, and it sends itself none (wakeForPending).
 */
export const BUSY_GAP_MS = 3 * WAKE_WINDOW_MS;

/**
 * A run that leaves WAF removals pending (lambda/shared/enforcer.ts EnforcerState.wafPending)
 * in a plane that is not busy (its previous run more than BUSY_GAP_MS before this one) makes sure
 * the plane runs again before their deadline even if nothing else wakes it: it sends its own
 * queue a wake-up for the next window (lambda/shared/queue.ts selfWakeUp), unless one it sent is
 * still on its way (its notBefore not yet come: that one's run comes first, and the deadlines
 * were planned against it, enforcer.ts wafWriteBy).
 *
 * A busy plane sends none. A wake-up of its own reaches the queue at once, ahead of the fan-out's
 * (which the decision plane delays by a window), so the run it brings sleeps, paid, until its
 * notBefore: measured at ≈ 3 s a run when busy planes woke themselves (bench/incremental.bench.ts),
 * the largest cost of the whole organization (docs/scale.md). What a busy plane gives up: when
 * the decisions and the lifts both stop right after a run that left removals pending, they wait
 * for the plane's next wake-up of any kind (a decision, a lift, an expiry) or its reconcile
 * (`reconcileMinutes`) instead of their deadline. Removals are deferred only when a family has
 * several full sets, i.e. more than 10,000 blocked sources, whose expiries alone wake the plane
 * every few seconds (docs/scale.md). How it coalesces
 * depends on the queue: an organization plane (PLANE_ID set: `deps.plane`) gets its wake-ups from
 * a bus rule that can set no deduplication id, so its queue deduplicates by content and this one
 * is sent without an id and with the rule's body; the single-account queue's wake-ups carry
 * decide's id, so this one carries the same. A failed send is logged and never fails the run: the
 * next run sends again, and the reconcile writes everything.
 */
async function wakeForPending(deps: EnforceHandlerDeps, event: SQSEvent, busy: boolean): Promise<void> {
  const state = deps.state;
  if (!state || ![...state.wafPending.values()].some((set) => set.size > 0)) return;
  if (busy) return;
  const now = deps.clock.now();
  if (state.selfWake && state.selfWake.notBefore > now) return;
  const arn = event.Records?.[0]?.eventSourceARN;
  const pendingRemovals = [...state.wafPending.values()].reduce((sum, set) => sum + set.size, 0);
  try {
    if (!deps.sqs || (!deps.queueUrl && !arn)) throw new Error('no SQS client or enforce queue to send to');
    const queue = new EnforceQueue(deps.sqs, deps.queueUrl ?? queueUrlFromArn(arn ?? ''));
    const notBefore = await queue.wakeSelf(now, deps.plane !== undefined);
    state.selfWake = { sentAt: now, notBefore };
    deps.obs.log.info('WAF removals pending: woke this plane for its next window', { pendingRemovals, notBefore });
  } catch (error) {
    // none on its way: the next run plans as if it sends one, and sends it
    state.selfWake = undefined;
    deps.obs.log.error('could not send the wake-up for pending WAF removals; a later run or the reconcile writes them', { pendingRemovals, error: String(error) });
  }
}

/** the failed point of a run that could not read the desired state (core/org.ts PlaneReport.failures) */
export const DESIRED_STATE_UNREADABLE = 'table:desired-state';

/**
 * The plane's report of this run (organization topology only), when the throttle says it is due
 * (aws/plane-reports.ts ReportThrottle: a change, a reconcile, or a minute since the last write);
 * a failed write is logged, not thrown, and the next run writes again.
 */
async function reportRun(deps: EnforceHandlerDeps, throttle: ReportThrottle, summary: EnforceSummary | 'unreadable', mode: EnforceMode): Promise<void> {
  if (!deps.plane) return;
  try {
    const at = deps.clock.now();
    if (!throttle.due(summary, mode, at)) return;
    if (summary === 'unreadable') await deps.plane.reports.recordUnreadable(deps.plane.id, DESIRED_STATE_UNREADABLE, mode, at);
    else await deps.plane.reports.record(deps.plane.id, summary, mode, at, summary.converged ? undefined : throttle.lastConvergedAt());
    throttle.written(summary, at);
  } catch (error) {
    deps.obs.log.error('could not write this plane\'s report to the decision table; status --org shows it silent', { planeId: deps.plane.id, error: String(error) });
  }
}

export function createHandler(handlerDeps: EnforceHandlerDeps): EnforceHandler {
  // the container's state (cursor, cached IP sets): one per handler, never module-global
  const deps: EnforceHandlerDeps = { ...handlerDeps, state: handlerDeps.state ?? newEnforcerState() };
  const { obs, clock } = deps;
  const reports = new ReportThrottle();
  return instrument(obs, async (event, context) => {
    // busy: the previous invocation came at most BUSY_GAP_MS before this one (wakeForPending)
    const invoked = clock.now();
    const state = deps.state as EnforcerState;
    const busy = state.lastInvokedAt !== undefined && invoked - state.lastInvokedAt <= BUSY_GAP_MS;
    state.lastInvokedAt = invoked;
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
    let summary: EnforceSummary;
    try {
      summary = await enforce(deps, mode);
    } catch (error) {
      // The desired state could not be read: nothing to enforce against. Retry soon.
      obs.count('EnforcementFailures');
      obs.log.error('enforcement run failed', { mode, error: String(error), retryInSeconds: RETRY_AFTER_SECONDS });
      await reportRun(deps, reports, 'unreadable', mode);
      await retrySoon(deps, event);
      throw error;
    }
    await reportRun(deps, reports, summary, mode);
    await wakeForPending(deps, event, busy);
    const failures = summary.failures.map((f) => `${f.point}: ${f.error}: ${f.message}`);
    obs.log.info('enforcement run', { mode, kinds: [...kinds], ...summary, failures });
    if (summary.failures.length === 0) return summary;
    obs.count('EnforcementFailures', summary.failures.length);
    if (!summary.failures.some((f) => f.transient)) {
      obs.log.error('enforcement incomplete: the points below need an operator; every other point is enforced, and every run retries them', { failures });
      return summary;
    }
    obs.log.error('enforcement incomplete; the batch is retried shortly', { failures, retryInSeconds: RETRY_AFTER_SECONDS });
    await retrySoon(deps, event);
    // Fail so that Lambda does not delete the batch: SQS delivers it again in RETRY_AFTER_SECONDS.
    throw new Error(`enforcement incomplete (retried in ${RETRY_AFTER_SECONDS} s): ${failures.join('; ')}`);
  });
}

export function defaultDeps(
  env: NodeJS.ProcessEnv = process.env,
  obs: Observability = powertoolsObservability(),
  clock: Clock = new DeadlineClock(systemClock),
): EnforceHandlerDeps {
  const { table: tableName, ledgerTable, enforceQueueUrl: queueUrl, plane } = enforceEnvironmentOf(env);
  const settings = loadSettings(env);
  return {
    sqs: sqsClient(),
    ...(queueUrl ? { queueUrl } : {}),
    ...(plane ? { plane: { id: plane.id, reports: new PlaneReports(documentClient(), plane.reportsTable) } } : {}),
    repo: new BlockRepository(documentClient(), tableName, {
      onForeignItem: (key) => obs.log.warn('an item on the active index that is not a block record is not desired state: ignored', { pk: String(key.pk), sk: String(key.sk) }),
    }),
    // ownership of NACL entries: this stack's (or plane's) placement ledger in its own table (lambda/README.md)
    nacl: new NaclAdapter(ec2Client(), clock, obs, Math.random, new PlacementLedger(documentClient(), ledgerTable), settings.nacl.ruleRange),
    waf: new WafAdapter(wafClients(), clock, obs),
    settings,
    state: newEnforcerState(),
    obs,
    clock,
  };
}

export const handler = entryPoint(() => createHandler(defaultDeps()));
