/**
 * expiry — every minute (EventBridge Scheduler): lifts every record whose time is up (GSI
 * `active`, expiresAt <= now) and keeps it as history (DynamoDB TTL deletes it 90 days later; TTL
 * is not the expiry mechanism). When any is due it wakes the enforce function FIRST, then lifts: a
 * wake-up that cannot be sent fails the run before anything is lifted, so the retry (or the next
 * minute) finds the same records due and sends it again. (Lift first and a lost wake-up would
 * leave nothing due to wake for: the blocks would stay until the next reconcile.)
 *
 * The wake-up is decide's (lambda/shared/queue.ts wakeUp 'enforce'): one per WAKE_WINDOW_MS
 * window, deduplicated by the window, read SETTLE_MS after the window closes. So an expiry and
 * the decisions of the same window are one enforce run (in an organization: one delivery to each
 * plane, one run of each), not two: at 100,000 blocks lifts fall in most windows, and a wake-up
 * of their own doubled every plane's runs (docs/scale.md). The run reads after the window: the
 * lifts saved right after the wake-up are in it; a run whose saves end in a later window sends
 * that window's wake-up too, so the run that reads its lifts comes after them. A late delivery
 * waits no longer for the window (the window is over by then), so the lift figures of issue 17
 * are unchanged in the worst case.
 *
 * Timers (issue 17, lift after TTL ≤ 60 s): the scheduler fires each tick up to ±30 s off, so two
 * ticks may be 120 s apart and a block would wait for the next one. So every run (a tick or a
 * timer) then sends, for the active records expiring in (now, now + LOOKAHEAD_MS], one message
 * per distinct expiry second to the timer queue (lambda/shared/timer-queue.ts) with DelaySeconds =
 * ceil((expiresAt − now) / 1000): the message wakes this function again when they are due. The
 * function consumes that queue (lib/DecisionCore.ts) and runs the same logic. Duplicate timers are
 * harmless: a run reads what is due from the table, and a lifted record is no longer active. A
 * timer that cannot be sent is logged and counted (ExpiryTimersUnsent) and does not fail the run:
 * its lifts are done, and the next tick (within LOOKAHEAD_MS) sends it again or lifts the record.
 * A timer message that is not one is logged and dropped (the run goes on as a tick).
 *
 * Change-log backfill (issue 20): records saved before the change log existed carry no stamp, so
 * they are not on the `changes` index. Until its marker exists, every run ends with one bounded
 * step of BlockRepository.backfillChanges (a few pages of the `active` index, each unstamped record
 * stamped conditionally, so a concurrent save wins); the marker is written after a pass finds none
 * and one more pass after BACKFILL_SETTLE_MS finds none either. A failed step is logged and does
 * not fail the run (its lifts are done; the next run resumes from the saved position); until the
 * marker exists a full enforce run also reads the `active` index (listEnforced), so nothing is lost
 * meanwhile but reads.
 * Env: TABLE_NAME, ENFORCE_QUEUE_URL, EXPIRY_TIMER_QUEUE_URL.
 */
import { lift } from '../../core/policy';
import { documentClient } from '../../aws/clients/dynamodb';
import { sqsClient } from '../../aws/clients/sqs';
import { type Clock, systemClock } from '../../aws/clock';
import { entryPoint, instrument, type ScheduledInvocation } from '../shared/handler';
import { type Observability, powertoolsObservability } from '../../aws/observability';
import { EnforceQueue, wakeWindowOf } from '../shared/queue';
import { BlockRepository } from '../../aws/repository';
import { FUNCTION_ENV, requireEnv } from '../shared/env';
import { parseTimer, TimerQueue, timersFor } from '../shared/timer-queue';

/**
 * How far ahead a run sends timers: at least the largest gap between two ticks (60 s period, each
 * tick up to ±30 s off: 120 s) plus a minute's margin for a late or failed tick, so every record
 * gets a timer from some tick before it is due; within SQS's 900 s message timer.
 */
export const LOOKAHEAD_MS = 180_000;

export interface ExpiryDeps {
  readonly repo: BlockRepository;
  readonly queue: EnforceQueue;
  readonly obs: Observability;
  readonly clock: Clock;
  /** the timer queue; without it (a caller that does not model it) a run sends no timers */
  readonly timers?: TimerQueue;
  /** false: no change-log backfill step (default: one per run until its marker exists) */
  readonly backfill?: boolean;
}

export function createHandler(deps: ExpiryDeps): ScheduledInvocation<{ lifted: number; timers: number }> {
  const { repo, queue, obs, clock, timers } = deps;
  // this handler's own: once the marker is seen, later runs of the container skip the step
  let backfilled = deps.backfill === false;
  return instrument(obs, async (event: unknown) => {
    for (const record of timerRecords(event)) {
      if (!parseTimer(record.body)) obs.log.warn('not an expiry timer: dropped', { messageId: record.messageId, body: record.body.slice(0, 200) });
    }
    const now = clock.now();
    const listed = await repo.listActive(timers ? now + LOOKAHEAD_MS : now);
    const due = listed.filter((stored) => stored.record.expiresAt <= now);
    // one wake-up per window, shared with decide's: the run reads after the window, so it sees these lifts
    if (due.length > 0) await queue.wake('enforce', now);
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
    // lifts saved after the window of the wake-up above (a long run): the next window's run reads them
    const end = clock.now();
    if (lifted > 0 && wakeWindowOf(end) !== wakeWindowOf(now)) await queue.wake('enforce', end);
    let sent = 0;
    if (timers) {
      const wanted = timersFor(listed.map((stored) => stored.record.expiresAt), now, LOOKAHEAD_MS);
      if (wanted.length > 0) {
        const result = await timers.send(wanted);
        sent = result.sent;
        if (result.failed > 0) {
          // not fatal: the lifts are done, and the next tick (or timer) covers these records
          obs.log.error('expiry timers not sent', { failed: result.failed, errors: result.errors.slice(0, 5) });
          obs.count('ExpiryTimersUnsent', result.failed);
        }
      }
    }
    if (!backfilled) {
      try {
        const step = await repo.backfillChanges(now);
        backfilled = step.done;
        if (step.found > 0 || step.done || step.passEnded) obs.log.info('change log backfill', { ...step });
      } catch (error) {
        obs.log.error('change log backfill step failed: the next run resumes it', { error: error instanceof Error ? error.message : String(error) });
      }
    }
    return { lifted, timers: sent };
  });
}

/** The SQS records of a timer delivery; none for a scheduled tick. */
function timerRecords(event: unknown): Array<{ messageId: string; body: string }> {
  const records = (event as { Records?: unknown } | null | undefined)?.Records;
  if (!Array.isArray(records)) return [];
  return records.map((r: { messageId?: unknown; body?: unknown }) => ({ messageId: String(r?.messageId ?? ''), body: typeof r?.body === 'string' ? r.body : String(r?.body) }));
}

export function defaultDeps(env: NodeJS.ProcessEnv = process.env, obs: Observability = powertoolsObservability(), clock: Clock = systemClock): ExpiryDeps {
  return {
    repo: new BlockRepository(documentClient(), requireEnv(FUNCTION_ENV.table, env)),
    queue: new EnforceQueue(sqsClient(), requireEnv(FUNCTION_ENV.enforceQueueUrl, env)),
    timers: new TimerQueue(sqsClient(), requireEnv(FUNCTION_ENV.expiryTimerQueueUrl, env)),
    obs,
    clock,
  };
}

export const handler = entryPoint(() => createHandler(defaultDeps()));
