/**
 * The enforce queue's client (lambda/shared/queue.ts) and the SQS FIFO fake's delivery rules the
 * enforce tests rely on: the 360 s visibility timeout, redelivery, ChangeMessageVisibility, the
 * group held while in flight, the dead-letter queue after five receives, no per-message delay.
 */
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { describe, expect, it } from 'vitest';
import { digestOf, EnforceQueue, queueUrlFromArn, wakeUp } from '../../lambda/shared/queue';
import { SimClock } from '../fakes/clock';
import { FakeSqs } from '../fakes/sqs';

function setup() {
  const clock = new SimClock();
  const sqs = new FakeSqs(clock);
  const queue = new EnforceQueue(sqs.client, sqs.queueUrl);
  const send = (dedup: string, group = 'enforce', extra: Record<string, unknown> = {}) =>
    sqs.client.send(new SendMessageCommand({ QueueUrl: sqs.queueUrl, MessageBody: JSON.stringify({ dedup }), MessageGroupId: group, MessageDeduplicationId: dedup, ...extra }));
  return { clock, sqs, queue, send };
}

describe('FakeSqs (FIFO) delivery', () => {
  it('holds a received batch for 360 s, holds its group meanwhile, then delivers it again with a higher receive count', async () => {
    const { clock, sqs, send } = setup();
    await send('a');
    const first = sqs.receive()!;
    await send('b');
    expect(sqs.receive()).toBeUndefined(); // the group is held while "a" is in flight
    clock.advance(359_999);
    expect(sqs.receive()).toBeUndefined();
    clock.advance(1);
    const again = sqs.receive()!;
    expect(again.Records.map((r) => JSON.parse(r.body).dedup)).toEqual(['a', 'b']);
    expect(again.Records[0]!.attributes.ApproximateReceiveCount).toBe('2');
    expect(again.Records[0]!.receiptHandle).not.toBe(first.Records[0]!.receiptHandle);
  });

  it('delivers other groups while one is held', async () => {
    const { sqs, send } = setup();
    await send('a', 'g1');
    await send('b', 'g2');
    expect(sqs.receive(1)!.Records[0]!.attributes.MessageGroupId).toBe('g1');
    expect(sqs.receive(1)!.Records[0]!.attributes.MessageGroupId).toBe('g2');
  });

  it('ChangeMessageVisibility makes a received batch visible again sooner; a stale receipt handle is refused', async () => {
    const { clock, sqs, queue, send } = setup();
    await send('a');
    const batch = sqs.receive()!;
    await queue.retryIn(batch.Records.map((r) => r.receiptHandle), 30);
    expect(sqs.nextVisibleAt()! - clock.now()).toBe(30_000);
    clock.advance(30_000);
    expect(sqs.receive()).toBeDefined();
    await expect(queue.retryIn([batch.Records[0]!.receiptHandle], 30)).rejects.toMatchObject({ name: 'ReceiptHandleIsInvalid' });
  });

  it('moves a message received five times to the dead-letter queue', async () => {
    const { clock, sqs, send } = setup();
    await send('a');
    for (let i = 0; i < 5; i++) {
      expect(sqs.receive()).toBeDefined();
      clock.advance(360_000);
    }
    expect(sqs.receive()).toBeUndefined();
    expect(sqs.deadLetters).toHaveLength(1);
    expect(sqs.depth).toBe(0);
  });

  it('deletes a completed batch', async () => {
    const { sqs, send } = setup();
    await send('a');
    sqs.complete(sqs.receive()!);
    expect(sqs.depth).toBe(0);
    expect(sqs.nextVisibleAt()).toBeUndefined();
  });

  it('refuses a per-message delay (FIFO queues have none)', async () => {
    const { send } = setup();
    await expect(send('a', 'enforce', { DelaySeconds: 30 })).rejects.toMatchObject({ name: 'InvalidParameterValue' });
  });
});

describe('queueUrlFromArn', () => {
  it('builds the queue URL an SQS record names by ARN', () => {
    expect(queueUrlFromArn('arn:aws:sqs:eu-west-1:123456789012:portsnare-enforce.fifo')).toBe('https://sqs.eu-west-1.amazonaws.com/123456789012/portsnare-enforce.fifo');
    expect(queueUrlFromArn('arn:aws-cn:sqs:cn-north-1:123456789012:q.fifo')).toBe('https://sqs.cn-north-1.amazonaws.com.cn/123456789012/q.fifo');
  });

  it('refuses what is not an SQS queue ARN, naming it', () => {
    expect(() => queueUrlFromArn('arn:aws:sns:eu-west-1:123456789012:topic')).toThrow(/not an SQS queue ARN: "arn:aws:sns/);
    expect(() => queueUrlFromArn('')).toThrow(/not an SQS queue ARN/);
  });
});

describe('wake-ups that must not be deduplicated away (issue 17)', () => {
  const T = Date.parse('2026-11-21T12:00:00.000Z');

  it('two expiry ticks in one calendar minute (a late tick, scheduler jitter) with different due records are two wake-ups', async () => {
    const clock = new SimClock(T + 40_000);
    const sqs = new FakeSqs(clock);
    const queue = new EnforceQueue(sqs.client, sqs.queueUrl);
    await queue.wake('expire', clock.now(), digestOf([`203.0.113.1@${T + 30_000}`]));
    clock.advance(15_000); // 12:00:55, the same minute
    await queue.wake('expire', clock.now(), digestOf([`203.0.113.2@${T + 50_000}`]));
    expect(sqs.depth).toBe(2);
    // the same due records again (a retried tick) are one
    await queue.wake('expire', clock.now(), digestOf([`203.0.113.2@${T + 50_000}`]));
    expect(sqs.depth).toBe(2);
  });

  it('two reconcile ticks within five minutes are two wake-ups', async () => {
    const clock = new SimClock(T + 290_000);
    const sqs = new FakeSqs(clock);
    const queue = new EnforceQueue(sqs.client, sqs.queueUrl);
    await queue.wake('reconcile', clock.now());
    clock.advance(5_000);
    await queue.wake('reconcile', clock.now());
    expect(sqs.depth).toBe(2);
  });
});

describe('wake-up windows (lambda/shared/queue.ts wakeUp)', () => {
  it('one deduplication id per 2-second window, read 1 s after the window closes', () => {
    const t = 1_767_000_000_000; // a window boundary (divisible by 2,000)
    expect(wakeUp('enforce', t)).toEqual({ body: { kind: 'enforce', notBefore: t + 3_000 }, deduplicationId: `enforce-${t / 2_000}` });
    expect(wakeUp('enforce', t + 1_999)).toEqual(wakeUp('enforce', t));
    expect(wakeUp('enforce', t + 2_000).deduplicationId).toBe(`enforce-${t / 2_000 + 1}`);
    expect(wakeUp('enforce', t + 2_000).body.notBefore).toBe(t + 5_000);
  });

  it('50 decisions in one window wake enforce once (SQS FIFO deduplication)', async () => {
    const { clock, sqs, queue } = setup();
    clock.set(1_767_000_000_000);
    for (let i = 0; i < 50; i++) {
      await queue.wake('enforce', clock.now());
      clock.advance(39);
    }
    expect(sqs.depth).toBe(1);
    clock.advance(100); // 2,050 ms after the first: the next window
    await queue.wake('enforce', clock.now());
    expect(sqs.depth).toBe(2);
  });
});
