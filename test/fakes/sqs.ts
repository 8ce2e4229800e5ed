/**
 * A stateful fake of an SQS FIFO queue, driven through aws-sdk-client-mock, with the Lambda event
 * source mapping's part (receive a batch, delete it when the function succeeded). Modelled rules:
 * - A FIFO queue (name ends in .fifo) requires MessageGroupId (MissingParameter otherwise) and,
 *   without content-based deduplication, MessageDeduplicationId. With ContentBasedDeduplication
 *   (option `contentBasedDeduplication`) a message sent without one gets "a SHA-256 hash … using
 *   the body of the message (but not the attributes of the message)"; an explicit id overrides it.
 *   https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html
 * - A message whose deduplication id was sent within the last 5 minutes is accepted but not
 *   delivered. https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/using-messagededuplicationid-property.html
 * - Messages of one group are delivered in order, a batch of up to 10 at a time, and while any
 *   message of a group is in flight (received, not deleted, visibility timeout not over) no other
 *   message of that group is delivered.
 *   https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/FIFO-queues-understanding-logic.html
 * - A received message stays invisible for the queue's visibility timeout (the stack's: 360 s, six
 *   times the enforce function's 60 s timeout), then is delivered again; ChangeMessageVisibility
 *   sets the remaining time (0 to 43,200 s) from now; DeleteMessage removes it. A receipt handle
 *   is valid only for its latest receipt.
 *   https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-visibility-timeout.html
 *   https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ChangeMessageVisibility.html
 * - A message received maxReceiveCount times (the stack's: 5) goes to the dead-letter queue
 *   instead of being delivered again.
 *   https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-dead-letter-queues.html
 * - Lambda deletes a batch when the function returns and leaves it when the function throws.
 *   https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html
 */
import {
  ChangeMessageVisibilityCommand,
  type ChangeMessageVisibilityCommandInput,
  DeleteMessageCommand,
  type DeleteMessageCommandInput,
  SendMessageBatchCommand,
  type SendMessageBatchCommandInput,
  SendMessageCommand,
  type SendMessageCommandInput,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { createHash } from 'node:crypto';
import type { SQSEvent, SQSRecord } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import type { Clock } from '../../aws/clock';
import type { SimClock } from './clock';
import { awsError } from './errors';

export const DEDUPLICATION_INTERVAL_MS = 5 * 60_000;
/** the stack's enforce queue: visibility timeout 6 × 60 s, maxReceiveCount 5 */
export const VISIBILITY_TIMEOUT_S = 360;
export const MAX_RECEIVE_COUNT = 5;
export const MAX_VISIBILITY_TIMEOUT_S = 43_200;

interface Message {
  id: string;
  body: string;
  groupId: string;
  deduplicationId: string;
  sentAt: number;
  receiveCount: number;
  /** in flight until this time (epoch ms); undefined: never received */
  invisibleUntil?: number;
  receiptHandle?: string;
  firstReceivedAt?: number;
}

export type SqsOp = 'SendMessage' | 'ChangeMessageVisibility' | 'DeleteMessage';

export class FakeSqs {
  readonly client = new SQSClient({ region: 'eu-west-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
  readonly mock = mockClient(this.client);
  readonly queueUrl = 'https://sqs.eu-west-1.amazonaws.com/123456789012/portsnare-enforce.fifo';
  readonly queueArn = 'arn:aws:sqs:eu-west-1:123456789012:portsnare-enforce.fifo';
  private readonly queue: Message[] = [];
  /** messages moved to the dead-letter queue */
  readonly deadLetters: Message[] = [];
  private readonly deduplication = new Map<string, { at: number; id: string }>();
  private readonly pending: Array<{ op: SqsOp; error: string }> = [];
  private sequence = 0;
  private receipts = 0;
  readonly calls = { SendMessage: 0, delivered: 0, deduplicated: 0, ChangeMessageVisibility: 0, DeleteMessage: 0 };

  constructor(
    private readonly clock: Clock,
    readonly visibilityTimeoutS = VISIBILITY_TIMEOUT_S,
    readonly maxReceiveCount = MAX_RECEIVE_COUNT,
    /** the queue's ContentBasedDeduplication attribute */
    readonly options: { readonly contentBasedDeduplication?: boolean } = {},
  ) {
    this.mock.on(SendMessageCommand).callsFake(async (input: SendMessageCommandInput) => this.send(input));
    this.mock.on(ChangeMessageVisibilityCommand).callsFake(async (input: ChangeMessageVisibilityCommandInput) => this.changeVisibility(input));
    this.mock.on(DeleteMessageCommand).callsFake(async (input: DeleteMessageCommandInput) => this.deleteMessage(input));
  }

  /** messages in the queue, visible or in flight */
  get depth(): number {
    return this.queue.length;
  }

  /** messages in flight (received, neither deleted nor visible again) */
  get inFlight(): number {
    const now = this.clock.now();
    return this.queue.filter((m) => m.invisibleUntil !== undefined && m.invisibleUntil > now).length;
  }

  /** The next `times` calls of `op` fail with `error`. */
  failNext(op: SqsOp, error: string, times = 1): void {
    for (let i = 0; i < times; i++) this.pending.push({ op, error });
  }

  private gate(op: SqsOp): void {
    const index = this.pending.findIndex((p) => p.op === op);
    if (index < 0) return;
    const [fault] = this.pending.splice(index, 1);
    throw awsError(fault!.error, `injected ${fault!.error} on ${op}`, fault!.error.includes('Internal') || fault!.error === 'ServiceUnavailable' ? 500 : 400);
  }

  private checkUrl(url: string | undefined): void {
    if (url !== this.queueUrl) throw awsError('AWS.SimpleQueueService.NonExistentQueue', 'The specified queue does not exist.');
  }

  private send(input: SendMessageCommandInput) {
    this.calls.SendMessage++;
    this.gate('SendMessage');
    this.checkUrl(input.QueueUrl);
    if (!input.MessageGroupId) throw awsError('MissingParameter', 'The request must contain the parameter MessageGroupId.');
    const deduplicationId =
      input.MessageDeduplicationId || (this.options.contentBasedDeduplication ? createHash('sha256').update(input.MessageBody ?? '').digest('hex') : undefined);
    if (!deduplicationId) {
      throw awsError('InvalidParameterValue', 'The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly');
    }
    if (input.DelaySeconds !== undefined && input.DelaySeconds !== 0) {
      // "FIFO queues don't support per-message delays, only per-queue delays."
      throw awsError('InvalidParameterValue', `Value ${input.DelaySeconds} for parameter DelaySeconds is invalid. Reason: The request include parameter that is not valid for this queue type.`);
    }
    const now = this.clock.now();
    const seen = this.deduplication.get(deduplicationId);
    if (seen && now - seen.at < DEDUPLICATION_INTERVAL_MS) {
      this.calls.deduplicated++;
      return { MessageId: seen.id };
    }
    const id = `m-${++this.sequence}`;
    this.deduplication.set(deduplicationId, { at: now, id });
    this.queue.push({ id, body: input.MessageBody ?? '', groupId: input.MessageGroupId, deduplicationId, sentAt: now, receiveCount: 0 });
    return { MessageId: id, SequenceNumber: String(this.sequence).padStart(20, '0') };
  }

  private byReceipt(handle: string | undefined): Message {
    const message = this.queue.find((m) => m.receiptHandle !== undefined && m.receiptHandle === handle);
    if (!message) throw awsError('ReceiptHandleIsInvalid', `The input receipt handle "${handle}" is not a valid receipt handle.`);
    return message;
  }

  private changeVisibility(input: ChangeMessageVisibilityCommandInput) {
    this.calls.ChangeMessageVisibility++;
    this.gate('ChangeMessageVisibility');
    this.checkUrl(input.QueueUrl);
    const seconds = input.VisibilityTimeout;
    if (seconds === undefined || !Number.isInteger(seconds) || seconds < 0 || seconds > MAX_VISIBILITY_TIMEOUT_S) {
      throw awsError('InvalidParameterValue', `Value ${seconds} for parameter VisibilityTimeout is invalid.`);
    }
    const message = this.byReceipt(input.ReceiptHandle);
    const now = this.clock.now();
    if (message.invisibleUntil === undefined || message.invisibleUntil <= now) {
      throw awsError('MessageNotInflight', 'The message referred to is not in flight.');
    }
    message.invisibleUntil = now + seconds * 1000;
    return {};
  }

  private deleteMessage(input: DeleteMessageCommandInput) {
    this.calls.DeleteMessage++;
    this.gate('DeleteMessage');
    this.checkUrl(input.QueueUrl);
    const message = this.byReceipt(input.ReceiptHandle);
    this.queue.splice(this.queue.indexOf(message), 1);
    return {};
  }

  /**
   * Takes the next batch (up to 10) of the first group with nothing in flight, as the Lambda
   * event source mapping would; undefined when nothing is deliverable now.
   */
  receive(max = 10): SQSEvent | undefined {
    const now = this.clock.now();
    const visible = (m: Message) => m.invisibleUntil === undefined || m.invisibleUntil <= now;
    for (const message of [...this.queue]) {
      if (visible(message) && message.receiveCount >= this.maxReceiveCount) {
        this.queue.splice(this.queue.indexOf(message), 1);
        this.deadLetters.push(message);
      }
    }
    const busy = new Set(this.queue.filter((m) => !visible(m)).map((m) => m.groupId));
    const head = this.queue.find((m) => !busy.has(m.groupId));
    if (!head) return undefined;
    const batch: Message[] = [];
    for (const message of this.queue) {
      if (batch.length >= max) break;
      if (message.groupId !== head.groupId) continue;
      batch.push(message);
    }
    for (const message of batch) {
      message.receiveCount++;
      message.invisibleUntil = now + this.visibilityTimeoutS * 1000;
      message.receiptHandle = `rh-${message.id}-${++this.receipts}`;
      message.firstReceivedAt ??= now;
    }
    this.calls.delivered += batch.length;
    return {
      Records: batch.map(
        (m): SQSRecord => ({
          messageId: m.id,
          receiptHandle: m.receiptHandle ?? '',
          body: m.body,
          attributes: {
            ApproximateReceiveCount: String(m.receiveCount),
            SentTimestamp: String(m.sentAt),
            SenderId: 'AIDAEXAMPLE',
            ApproximateFirstReceiveTimestamp: String(m.firstReceivedAt ?? now),
            MessageGroupId: m.groupId,
            MessageDeduplicationId: m.deduplicationId,
          },
          messageAttributes: {},
          md5OfBody: '',
          eventSource: 'aws:sqs',
          eventSourceARN: this.queueArn,
          awsRegion: 'eu-west-1',
        }),
      ),
    };
  }

  /** The event source mapping after the function returned: the batch is deleted. */
  complete(event: SQSEvent): void {
    for (const record of event.Records) {
      const index = this.queue.findIndex((m) => m.receiptHandle === record.receiptHandle);
      if (index >= 0) this.queue.splice(index, 1);
    }
  }

  /** When the next in-flight message becomes visible again (epoch ms), if any is in flight. */
  nextVisibleAt(): number | undefined {
    const now = this.clock.now();
    const times = this.queue.map((m) => m.invisibleUntil).filter((t): t is number => t !== undefined && t > now);
    return times.length ? Math.min(...times) : undefined;
  }
}

/**
 * Delivers the queue to `handle` until it is empty, as the FIFO event source would: one batch at
 * a time; a batch is deleted when `handle` returns and stays in flight when it throws, until its
 * visibility timeout is over (the queue's 360 s, or what the function set with
 * ChangeMessageVisibility) — the simulated clock is moved on to then, as real time would pass.
 * `after` sees each invocation's result (undefined when it threw). With `until`, the clock is never
 * moved past that time: what becomes visible later is left in the queue for a later call (a
 * simulation that runs other things meanwhile, test/wire/org-convergence-run.ts).
 */
export async function deliverFifo(
  sqs: FakeSqs,
  clock: SimClock,
  handle: (event: SQSEvent) => Promise<unknown>,
  options: { maxInvocations?: number; after?: (result: unknown) => void; until?: number } = {},
): Promise<{ invocations: number; failures: number; waitedMs: number }> {
  const maxInvocations = options.maxInvocations ?? 1000;
  let invocations = 0;
  let failures = 0;
  let waitedMs = 0;
  for (;;) {
    const event = sqs.receive();
    if (!event) {
      const next = sqs.nextVisibleAt();
      if (next === undefined || (options.until !== undefined && next > options.until)) break;
      waitedMs += next - clock.now();
      clock.set(next);
      continue;
    }
    if (++invocations > maxInvocations) throw new Error('the enforce queue does not drain');
    let result: unknown;
    try {
      result = await handle(event);
      sqs.complete(event);
    } catch {
      failures++;
    }
    options.after?.(result);
  }
  return { invocations, failures, waitedMs };
}

/**
 * A stateful fake of an SQS STANDARD queue of message timers (the expiry timer queue), driven
 * through aws-sdk-client-mock on the real SQSClient. Modelled rules, from the SQS documentation:
 * - SendMessageBatch takes 1 to 10 entries with distinct Ids; an entry's DelaySeconds is an
 *   integer 0 to 900 (InvalidParameterValue otherwise; this fake fails the whole call); a standard queue accepts per-message delays.
 *   https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessageBatch.html
 *   https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-message-timers.html
 * - A message is invisible until sent time + DelaySeconds, then delivered (no order, no
 *   deduplication: standard queue); Lambda deletes the batch when the function returns.
 *   https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html
 */
export class FakeTimerSqs {
  readonly client = new SQSClient({ region: 'eu-west-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
  readonly mock = mockClient(this.client);
  readonly queueUrl = 'https://sqs.eu-west-1.amazonaws.com/123456789012/portsnare-expiry-timers';
  readonly queueArn = 'arn:aws:sqs:eu-west-1:123456789012:portsnare-expiry-timers';
  readonly messages: Array<{ id: string; body: string; sentAt: number; visibleAt: number; delaySeconds: number }> = [];
  readonly calls = { SendMessageBatch: 0, entries: 0, delivered: 0 };
  private failures = 0;
  private sequence = 0;

  constructor(private readonly clock: Clock) {
    this.mock.on(SendMessageBatchCommand).callsFake(async (input: SendMessageBatchCommandInput) => this.sendBatch(input));
  }

  /** The next `times` SendMessageBatch calls fail (InternalError). */
  failNext(times = 1): void {
    this.failures += times;
  }

  private sendBatch(input: SendMessageBatchCommandInput) {
    this.calls.SendMessageBatch++;
    if (this.failures > 0) {
      this.failures--;
      throw awsError('InternalError', 'injected InternalError on SendMessageBatch', 500);
    }
    if (input.QueueUrl !== this.queueUrl) throw awsError('AWS.SimpleQueueService.NonExistentQueue', 'The specified queue does not exist.');
    const entries = input.Entries ?? [];
    if (entries.length === 0) throw awsError('AWS.SimpleQueueService.EmptyBatchRequest', 'There should be at least one SendMessageBatchRequestEntry in the request.');
    if (entries.length > 10) throw awsError('AWS.SimpleQueueService.TooManyEntriesInBatchRequest', `Maximum number of entries per request are 10. You have sent ${entries.length}.`);
    if (new Set(entries.map((e) => e.Id)).size !== entries.length) throw awsError('AWS.SimpleQueueService.BatchEntryIdsNotDistinct', 'Two or more batch entries in the request have the same Id.');
    for (const e of entries) {
      const d = e.DelaySeconds ?? 0;
      if (!Number.isInteger(d) || d < 0 || d > 900) throw awsError('InvalidParameterValue', `Value ${d} for parameter DelaySeconds is invalid. Reason: must be between 0 and 900, if provided.`);
    }
    const now = this.clock.now();
    const successful = entries.map((e) => {
      const id = `tm-${++this.sequence}`;
      this.messages.push({ id, body: e.MessageBody ?? '', sentAt: now, visibleAt: now + (e.DelaySeconds ?? 0) * 1000, delaySeconds: e.DelaySeconds ?? 0 });
      this.calls.entries++;
      return { Id: e.Id, MessageId: id, MD5OfMessageBody: '' };
    });
    return { Successful: successful, Failed: [] };
  }

  /** When the next message becomes visible (epoch ms), if any is waiting. */
  nextVisibleAt(): number | undefined {
    return this.messages.length ? Math.min(...this.messages.map((m) => m.visibleAt)) : undefined;
  }

  /**
   * Takes up to `max` visible messages as the event source would, and deletes them: a run that
   * failed is not redelivered here (the real queue would, after its visibility timeout); the next
   * tick covers its records.
   */
  receive(max = 5): SQSEvent | undefined {
    const now = this.clock.now();
    const batch = this.messages.filter((m) => m.visibleAt <= now).slice(0, max);
    if (!batch.length) return undefined;
    for (const m of batch) this.messages.splice(this.messages.indexOf(m), 1);
    this.calls.delivered += batch.length;
    return {
      Records: batch.map(
        (m): SQSRecord => ({
          messageId: m.id,
          receiptHandle: `rh-${m.id}`,
          body: m.body,
          attributes: { ApproximateReceiveCount: '1', SentTimestamp: String(m.sentAt), SenderId: 'AIDAEXAMPLE', ApproximateFirstReceiveTimestamp: String(now) },
          messageAttributes: {},
          md5OfBody: '',
          eventSource: 'aws:sqs',
          eventSourceARN: this.queueArn,
          awsRegion: 'eu-west-1',
        }),
      ),
    };
  }
}
