/**
 * The enforce queue: an SQS FIFO queue whose every message has MessageGroupId "enforce", so one
 * enforce invocation runs at a time (FIFO delivers a group's messages in order and holds the
 * group while a batch is in flight).
 * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/FIFO-queues-understanding-logic.html
 *
 * Coalescing: messages are wake-ups, not work items — the enforce function reads what changed
 * (or, in a full run, the whole desired state). A wake-up from decide carries the deduplication
 * id of its WAKE_WINDOW_MS window, so SQS (5-minute deduplication interval) delivers at most one
 * per window however many attackers arrive, and the enforce function waits until that window is
 * over plus SETTLE_MS (`notBefore`) before it reads, so every write of that window is in its
 * run. Many attackers → one batched UpdateIPSet per window and scope; WAF takes one a second per
 * account and Region, so a window of 2 s leaves the pacer room for a second scope's write.
 * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/using-messagededuplicationid-property.html
 */
import { createHash } from 'node:crypto';
import { ChangeMessageVisibilityCommand, SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { ENFORCE_GROUP_ID, ENFORCE_KINDS } from '../../core/settings';

export { ENFORCE_GROUP_ID, ENFORCE_KINDS };

/** decide's wake-ups are coalesced per window of this length: one enforce run per window (per plane in an organization) */
export const WAKE_WINDOW_MS = 2_000;

/**
 * extra wait after the window closes before the run reads the `changes` index (eventually
 * consistent: "within a fraction of a second, under normal conditions", GSI.Writes below), so a
 * decision of the window is normally in the window's run. 1 s and not more: every millisecond
 * here is latency for every block. A decision whose index entry lags past it is not lost: the
 * next run reads from its cursor minus lambda/shared/enforcer.ts OVERLAP_MS (20 s), and the
 * reconcile reads everything.
 * https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html#GSI.Writes
 */
export const SETTLE_MS = 1_000;

/** The wake window `at` falls in (its number since the epoch): what a wake-up's deduplication id and notBefore are made of. */
export function wakeWindowOf(at: number): number {
  return Math.floor(at / WAKE_WINDOW_MS);
}

export interface EnforceMessage {
  readonly kind: (typeof ENFORCE_KINDS)[number];
  /** epoch ms before which the enforce function does not read the desired state */
  readonly notBefore?: number;
}

/** A message body parsed as a JSON object; undefined when it is not one (not JSON, or not an object). */
export function jsonObjectOf(body: string): Record<string, unknown> | undefined {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return undefined;
  }
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined;
}

/** Reads a message body; undefined when it is not an enforce message. */
export function parseEnforceMessage(body: string): EnforceMessage | undefined {
  const value = jsonObjectOf(body);
  if (!value) return undefined;
  const { kind, notBefore } = value;
  if (typeof kind !== 'string' || !(ENFORCE_KINDS as readonly string[]).includes(kind)) return undefined;
  if (notBefore !== undefined && (typeof notBefore !== 'number' || !Number.isFinite(notBefore))) return undefined;
  return { kind: kind as EnforceMessage['kind'], ...(notBefore !== undefined ? { notBefore } : {}) };
}

/**
 * The message and its deduplication id for a wake-up of `kind` sent at `now`. What makes two
 * wake-ups the same is in the id, and nothing else: decide's of one window (one run reads every
 * write of that window); expiry's for the same due records (`distinct`: a retried tick), never two
 * ticks that found different records due, however the scheduler's jitter puts them in one
 * minute; every reconcile tick its own (`now`).
 */
export function wakeUp(kind: EnforceMessage['kind'], now: number, distinct?: string): { body: EnforceMessage; deduplicationId: string } {
  switch (kind) {
    case 'enforce': {
      const window = wakeWindowOf(now);
      return { body: { kind, notBefore: (window + 1) * WAKE_WINDOW_MS + SETTLE_MS }, deduplicationId: `enforce-${window}` };
    }
    case 'expire':
      return { body: { kind }, deduplicationId: `expire-${distinct ?? now}` };
    case 'reconcile':
      return { body: { kind }, deduplicationId: `reconcile-${distinct ?? now}` };
  }
}

/**
 * The enforce function's wake-up to itself (pending WAF removals, lambda/enforce/handler.ts): an
 * `enforce` wake-up for the window after `now`'s, exactly as decide's for that window — the same
 * body and deduplication id — so it coalesces with the wake-ups already coming: decide's of that
 * window in the single-account stack (MessageDeduplicationId), and in an organization plane the
 * bus rule's body (lib/org/EnforcementPlane.ts: {"kind":"enforce","notBefore":N}, deduplicated by
 * content). The next window and not the current one: a removal can wait, and the current
 * window's run may already be under way.
 */
export function selfWakeUp(now: number): { body: EnforceMessage; deduplicationId: string } {
  return wakeUp('enforce', now + WAKE_WINDOW_MS);
}

/** A short stable digest of what a wake-up is about (the due records of an expiry tick). */
export function digestOf(parts: readonly string[]): string {
  return createHash('sha256').update([...parts].sort().join('\n')).digest('hex').slice(0, 40);
}

/**
 * The URL of a queue from its ARN (arn:<partition>:sqs:<region>:<account>:<name>), the form an
 * SQS event record names its queue by; the endpoints are https://sqs.<region>.<domain>/.
 * https://docs.aws.amazon.com/general/latest/gr/sqs-service.html
 */
export function queueUrlFromArn(arn: string): string {
  const parts = arn.split(':');
  const [prefix, partition, service, region, account, name] = parts;
  if (parts.length !== 6 || prefix !== 'arn' || service !== 'sqs' || !partition || !region || !account || !name) {
    throw new Error(`not an SQS queue ARN: ${JSON.stringify(arn)}`);
  }
  const domain = partition === 'aws-cn' ? 'amazonaws.com.cn' : 'amazonaws.com';
  return `https://sqs.${region}.${domain}/${account}/${name}`;
}

export class EnforceQueue {
  constructor(
    private readonly client: SQSClient,
    readonly queueUrl: string,
  ) {}

  /**
   * Makes received messages visible again in `seconds` instead of at the end of the queue's
   * visibility timeout: the short retry of a failed enforce batch. A FIFO queue takes no
   * per-message delay (DelaySeconds), and a group is held while its batch is in flight, so this
   * is the one way to retry a FIFO batch sooner than the visibility timeout.
   * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ChangeMessageVisibility.html
   * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-message-timers.html
   */
  async retryIn(receiptHandles: readonly string[], seconds: number): Promise<void> {
    for (const handle of receiptHandles) {
      await this.client.send(new ChangeMessageVisibilityCommand({ QueueUrl: this.queueUrl, ReceiptHandle: handle, VisibilityTimeout: seconds }));
    }
  }

  /**
   * Sends the enforce function's wake-up to itself (selfWakeUp) and returns its notBefore. With
   * `contentBased` (an organization plane's queue, whose bus rule sends no deduplication id) it
   * sends no MessageDeduplicationId, so SQS deduplicates it by the body's SHA-256 with the rule's
   * identical body; else it sends decide's id of that window.
   * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/using-messagededuplicationid-property.html
   */
  async wakeSelf(now: number, contentBased: boolean): Promise<number> {
    const { body, deduplicationId } = selfWakeUp(now);
    await this.client.send(
      new SendMessageCommand({
        QueueUrl: this.queueUrl,
        MessageBody: JSON.stringify(body),
        MessageGroupId: ENFORCE_GROUP_ID,
        ...(contentBased ? {} : { MessageDeduplicationId: deduplicationId }),
      }),
    );
    return body.notBefore ?? now;
  }

  async wake(kind: EnforceMessage['kind'], now: number, distinct?: string): Promise<void> {
    const { body, deduplicationId } = wakeUp(kind, now, distinct);
    await this.client.send(
      new SendMessageCommand({
        QueueUrl: this.queueUrl,
        MessageBody: JSON.stringify(body),
        MessageGroupId: ENFORCE_GROUP_ID,
        MessageDeduplicationId: deduplicationId,
      }),
    );
  }
}
