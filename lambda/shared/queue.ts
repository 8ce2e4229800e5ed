/**
 * The enforce queue: an SQS FIFO queue whose every message has MessageGroupId "enforce", so one
 * enforce invocation runs at a time (FIFO delivers a group's messages in order and holds the
 * group while a batch is in flight).
 * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/FIFO-queues-understanding-logic.html
 *
 * Coalescing: messages are wake-ups, not work items — the enforce function always diffs the
 * whole desired state. A wake-up from decide carries the deduplication id of the second it was
 * sent in, so SQS (5-minute deduplication interval) delivers at most one per second however many
 * attackers arrive, and the enforce function waits until that second is over (`notBefore`)
 * before it reads, so every write of that second is in its diff. Many attackers → one batched
 * UpdateIPSet a second, which is WAF's rate.
 * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/using-messagededuplicationid-property.html
 */
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';

export const ENFORCE_GROUP_ID = 'enforce';
/** extra wait after the second closes, so the GSI (eventually consistent) has the writes */
export const SETTLE_MS = 500;

export const ENFORCE_KINDS = ['enforce', 'expire', 'reconcile'] as const;

export interface EnforceMessage {
  readonly kind: (typeof ENFORCE_KINDS)[number];
  /** epoch ms before which the enforce function does not read the desired state */
  readonly notBefore?: number;
}

/** Reads a message body; undefined when it is not an enforce message. */
export function parseEnforceMessage(body: string): EnforceMessage | undefined {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const { kind, notBefore } = value as { kind?: unknown; notBefore?: unknown };
  if (typeof kind !== 'string' || !(ENFORCE_KINDS as readonly string[]).includes(kind)) return undefined;
  if (notBefore !== undefined && (typeof notBefore !== 'number' || !Number.isFinite(notBefore))) return undefined;
  return { kind: kind as EnforceMessage['kind'], ...(notBefore !== undefined ? { notBefore } : {}) };
}

/** The message and its deduplication id for a wake-up of `kind` sent at `now`. */
export function wakeUp(kind: EnforceMessage['kind'], now: number): { body: EnforceMessage; deduplicationId: string } {
  switch (kind) {
    case 'enforce': {
      const second = Math.floor(now / 1000);
      return { body: { kind, notBefore: (second + 1) * 1000 + SETTLE_MS }, deduplicationId: `enforce-${second}` };
    }
    case 'expire':
      return { body: { kind }, deduplicationId: `expire-${Math.floor(now / 60_000)}` };
    case 'reconcile':
      return { body: { kind }, deduplicationId: `reconcile-${Math.floor(now / 300_000)}` };
  }
}

export class EnforceQueue {
  constructor(
    private readonly client: SQSClient,
    private readonly queueUrl: string,
  ) {}

  async wake(kind: EnforceMessage['kind'], now: number): Promise<void> {
    const { body, deduplicationId } = wakeUp(kind, now);
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
