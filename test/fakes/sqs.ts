/**
 * A stateful fake of an SQS FIFO queue, driven through aws-sdk-client-mock. Modelled rules:
 * - A FIFO queue (name ends in .fifo) requires MessageGroupId (MissingParameter otherwise) and,
 *   without content-based deduplication, MessageDeduplicationId.
 * - A message whose deduplication id was sent within the last 5 minutes is accepted but not
 *   delivered. https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/using-messagededuplicationid-property.html
 * - Messages of one group are delivered in order, a batch of up to 10 at a time.
 *   https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/FIFO-queues-understanding-logic.html
 */
import { SendMessageCommand, type SendMessageCommandInput, SQSClient } from '@aws-sdk/client-sqs';
import type { SQSEvent, SQSRecord } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import type { Clock } from '../../lambda/shared/clock';
import { awsError } from './errors';

export const DEDUPLICATION_INTERVAL_MS = 5 * 60_000;

interface Message {
  id: string;
  body: string;
  groupId: string;
  deduplicationId: string;
  sentAt: number;
}

export class FakeSqs {
  readonly client = new SQSClient({ region: 'eu-west-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
  readonly mock = mockClient(this.client);
  readonly queueUrl = 'https://sqs.eu-west-1.amazonaws.com/123456789012/portsnare-enforce.fifo';
  private readonly queue: Message[] = [];
  private readonly deduplication = new Map<string, { at: number; id: string }>();
  private sequence = 0;
  readonly calls = { SendMessage: 0, delivered: 0, deduplicated: 0 };

  constructor(private readonly clock: Clock) {
    this.mock.on(SendMessageCommand).callsFake(async (input: SendMessageCommandInput) => this.send(input));
  }

  get depth(): number {
    return this.queue.length;
  }

  private send(input: SendMessageCommandInput) {
    this.calls.SendMessage++;
    if (input.QueueUrl !== this.queueUrl) throw awsError('AWS.SimpleQueueService.NonExistentQueue', 'The specified queue does not exist.');
    if (!input.MessageGroupId) throw awsError('MissingParameter', 'The request must contain the parameter MessageGroupId.');
    if (!input.MessageDeduplicationId) {
      throw awsError('InvalidParameterValue', 'The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly');
    }
    const now = this.clock.now();
    const seen = this.deduplication.get(input.MessageDeduplicationId);
    if (seen && now - seen.at < DEDUPLICATION_INTERVAL_MS) {
      this.calls.deduplicated++;
      return { MessageId: seen.id };
    }
    const id = `m-${++this.sequence}`;
    this.deduplication.set(input.MessageDeduplicationId, { at: now, id });
    this.queue.push({ id, body: input.MessageBody ?? '', groupId: input.MessageGroupId, deduplicationId: input.MessageDeduplicationId, sentAt: now });
    return { MessageId: id, SequenceNumber: String(this.sequence).padStart(20, '0') };
  }

  /** Takes the next batch (up to 10) as the Lambda event source mapping would deliver it. */
  receive(max = 10): SQSEvent | undefined {
    if (this.queue.length === 0) return undefined;
    const batch = this.queue.splice(0, max);
    this.calls.delivered += batch.length;
    return {
      Records: batch.map(
        (m): SQSRecord => ({
          messageId: m.id,
          receiptHandle: `rh-${m.id}`,
          body: m.body,
          attributes: {
            ApproximateReceiveCount: '1',
            SentTimestamp: String(m.sentAt),
            SenderId: 'AIDAEXAMPLE',
            ApproximateFirstReceiveTimestamp: String(this.clock.now()),
            MessageGroupId: m.groupId,
            MessageDeduplicationId: m.deduplicationId,
          },
          messageAttributes: {},
          md5OfBody: '',
          eventSource: 'aws:sqs',
          eventSourceARN: 'arn:aws:sqs:eu-west-1:123456789012:portsnare-enforce.fifo',
          awsRegion: 'eu-west-1',
        }),
      ),
    };
  }

  /** Puts a batch back at the head (a failed invocation: the group is retried in order). */
  requeue(event: SQSEvent): void {
    const messages = event.Records.map((r) => ({
      id: r.messageId,
      body: r.body,
      groupId: r.attributes.MessageGroupId ?? '',
      deduplicationId: r.attributes.MessageDeduplicationId ?? '',
      sentAt: Number(r.attributes.SentTimestamp),
    }));
    this.queue.unshift(...messages);
  }
}
