/**
 * The expiry timers: an SQS STANDARD queue whose messages each carry their own DelaySeconds, so
 * a message becomes visible (and the expiry function, its consumer, runs) at the second a block
 * expires — independent of the EventBridge Scheduler's minute tick and its jitter. Per-message
 * delays (message timers, 0 to 900 s) are supported on standard queues, not on FIFO queues (which
 * take only the queue's delay), hence a queue of its own next to the FIFO enforce queue.
 * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-message-timers.html
 * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-delay-queues.html
 * A batch send takes at most 10 entries.
 * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessageBatch.html
 *
 * A timer is a wake-up, not a work item: the expiry run it starts reads what is due from the
 * table. So a duplicate (standard queues deliver at least once, and ticks close together send
 * timers for the same second) costs one more run that finds the records already lifted — the lift
 * is conditional on the record's version — and sends nothing.
 */
import { SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { jsonObjectOf } from './queue';

/** SQS's per-message delay range, seconds (sqs-message-timers.html) */
export const MAX_TIMER_DELAY_S = 900;
/** SendMessageBatch's entry limit */
export const MAX_BATCH_ENTRIES = 10;

export interface ExpiryTimer {
  /** the (latest) expiresAt, epoch ms, of the records the timer is for */
  readonly expiresAt: number;
  readonly delaySeconds: number;
}

/** The body of a timer message; undefined when a body is not one (logged and dropped by the caller). */
export function parseTimer(body: string): { expiresAt: number } | undefined {
  const value = jsonObjectOf(body);
  if (!value) return undefined;
  const { kind, expiresAt } = value;
  if (kind !== 'expiry-timer' || typeof expiresAt !== 'number' || !Number.isFinite(expiresAt)) return undefined;
  return { expiresAt };
}

/**
 * The timers for the records expiring in (now, now + lookahead]: one per distinct expiry second,
 * DelaySeconds = ceil((expiresAt − now) / 1000), so it is never visible before the record is due.
 */
export function timersFor(expiries: readonly number[], now: number, lookaheadMs: number): ExpiryTimer[] {
  if (lookaheadMs > MAX_TIMER_DELAY_S * 1000) throw new Error(`lookaheadMs ${lookaheadMs} is beyond SQS's ${MAX_TIMER_DELAY_S} s message timer`);
  // one timer per distinct delay second (the expiry seconds as seen from now); its body names the latest record it is for
  const byDelay = new Map<number, number>();
  for (const expiresAt of expiries) {
    if (expiresAt <= now || expiresAt > now + lookaheadMs) continue;
    const delaySeconds = Math.ceil((expiresAt - now) / 1000);
    byDelay.set(delaySeconds, Math.max(byDelay.get(delaySeconds) ?? expiresAt, expiresAt));
  }
  return [...byDelay].sort(([a], [b]) => a - b).map(([delaySeconds, expiresAt]) => ({ expiresAt, delaySeconds }));
}

export class TimerQueue {
  constructor(
    private readonly client: SQSClient,
    readonly queueUrl: string,
  ) {}

  /** Sends the timers in batches of 10; returns how many SQS did not accept (each batch call that failed counts all its entries). */
  async send(timers: readonly ExpiryTimer[]): Promise<{ sent: number; failed: number; errors: string[] }> {
    let sent = 0;
    let failed = 0;
    const errors: string[] = [];
    for (let i = 0; i < timers.length; i += MAX_BATCH_ENTRIES) {
      const batch = timers.slice(i, i + MAX_BATCH_ENTRIES);
      try {
        const out = await this.client.send(
          new SendMessageBatchCommand({
            QueueUrl: this.queueUrl,
            Entries: batch.map((timer, n) => ({ Id: `t${n}`, MessageBody: JSON.stringify({ kind: 'expiry-timer', expiresAt: timer.expiresAt }), DelaySeconds: timer.delaySeconds })),
          }),
        );
        sent += out.Successful?.length ?? 0;
        failed += out.Failed?.length ?? 0;
        for (const f of out.Failed ?? []) errors.push(`${f.Code ?? 'unknown'}: ${f.Message ?? ''}`);
      } catch (error) {
        failed += batch.length;
        errors.push(error instanceof Error ? `${error.name}: ${error.message}` : String(error));
      }
    }
    return { sent, failed, errors };
  }
}
