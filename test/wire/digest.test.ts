/**
 * The digest function (lambda/digest/handler.ts) on real engines: the decision table in dynalite
 * (history written by the real BlockRepository, as decide and expiry write it), CloudWatch
 * GetMetricData and SNS Publish through the real SDK clients against the wire fakes
 * (cloudwatch-server.ts, sns-server.ts), and a loopback HTTP server as the webhook.
 * Expectations are literal: counts, subjects and lists written out by hand.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { SNSClient } from '@aws-sdk/client-sns';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { DigestRuntime } from '../../core/digest';
import type { BlockRecord } from '../../core/policy';
import { createHandler, postJson, type DigestOutcome } from '../../lambda/digest/handler';
import { DigestStore } from '../../lambda/digest/store';
import { BlockRepository } from '../../aws/repository';
import { SimClock } from '../fakes/clock';
import { RecordingObservability } from '../fakes/observability';
import { CloudWatchWire } from './cloudwatch-server';
import { type LocalTable, startDynalite } from './dynalite';
import { SnsWire } from './sns-server';

const TOPIC = 'arn:aws:sns:eu-west-1:111122223333:portsnare-digest';
const TICK = Date.parse('2026-12-01T10:00:00Z');
const MIN = 60_000;
const cw = new CloudWatchWire();
const sns = new SnsWire();
let table: LocalTable;
let tableCount = 0;
let repo: BlockRepository;
let store: DigestStore;

/** the webhook: answers `status` (queue of statuses, then 200), records each POST body */
const hook = { statuses: [] as number[], bodies: [] as Array<Record<string, unknown>>, hang: false, url: '' };
const hookServer = http.createServer((request, response) => {
  const chunks: Buffer[] = [];
  request.on('data', (c: Buffer) => chunks.push(c));
  request.on('end', () => {
    if (hook.hang) return; // never answers
    hook.bodies.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>);
    const status = hook.statuses.shift() ?? 200;
    response.writeHead(status, { 'content-type': 'text/plain' });
    response.end(status < 300 ? 'ok' : 'no');
  });
});

function record(target: string, over: Partial<BlockRecord> = {}): BlockRecord {
  return {
    target,
    family: target.includes(':') ? 'ipv6' : 'ipv4',
    reason: 'sensor',
    firstSeen: TICK - 30 * MIN,
    lastSeen: TICK - 30 * MIN,
    hitCount: 1,
    offences: 1,
    blockedAt: TICK - 30 * MIN,
    expiresAt: TICK + 30 * MIN,
    active: true,
    eventIds: ['e'],
    sensors: ['i-1'],
    ...over,
  };
}

function runtime(over: Partial<DigestRuntime> = {}): DigestRuntime {
  return { everyMinutes: 60, topicArn: TOPIC, webhookUrl: hook.url, minNewBlocks: 1, timeZone: 'UTC', chatbot: false, top: 10, label: 'Portsnare', deadLetterQueues: ['portsnare-failures'], ...over };
}

function handlerWith(rt: DigestRuntime, clock: SimClock, obs = new RecordingObservability(), timeoutMs?: number): (event?: unknown) => Promise<DigestOutcome> {
  let n = 0;
  return createHandler({
    store,
    cloudwatch: cw.client(),
    sns: new SNSClient({ region: 'eu-west-1', endpoint: sns.endpoint, credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'test-secret' }, maxAttempts: 1 }),
    post: (url, body, ms) => postJson(url, body, timeoutMs ?? ms),
    runtime: rt,
    obs,
    clock,
    newId: () => `run-${++n}-${Math.random().toString(36).slice(2, 8)}`,
  });
}

/** What decide does for each history entry: the record saved (stamped on the change log), then its history entry. */
async function decided(r: BlockRecord, action: string, at: number): Promise<void> {
  const stored = await repo.get(r.target);
  expect(await repo.save(r, stored?.version, at)).toBe(true);
  await repo.appendHistory(r, action, at);
}

const tick = (at: number): { scheduledTime: string } => ({ scheduledTime: new Date(at).toISOString() });

beforeAll(async () => {
  table = await startDynalite('portsnare-digest-0');
  await Promise.all([cw.start(), sns.start()]);
  await new Promise<void>((resolve) => hookServer.listen(0, '127.0.0.1', () => resolve()));
  hook.url = `http://127.0.0.1:${(hookServer.address() as AddressInfo).port}/hook`;
});

afterAll(async () => {
  hookServer.closeAllConnections();
  await new Promise<void>((resolve) => hookServer.close(() => resolve()));
  await Promise.all([cw.stop(), sns.stop()]);
  await table?.stop();
});

beforeEach(async () => {
  // a fresh table per test: the digest's claim item and history start empty
  const name = await table.addTable(`portsnare-digest-${++tableCount}`);
  repo = new BlockRepository(table.doc, name);
  store = new DigestStore(table.doc, name);
  cw.reset();
  cw.now = () => TICK;
  sns.reset();
  sns.topics.set(TOPIC, { allowsCaller: true });
  hook.statuses = [];
  hook.bodies = [];
  hook.hang = false;
});

describe('a digest of one window', () => {
  it('counts new blocks, escalations, lifts, breaker trips, failures and dead letters; top sources and ports; one SNS message and one webhook POST', async () => {
    await decided(record('203.0.113.7', { hitCount: 40, ports: [22, 23] }), 'block', TICK - 50 * MIN);
    await decided(record('203.0.113.7', { hitCount: 90, ports: [22, 23, 3389] }), 'refresh', TICK - 40 * MIN);
    await decided(record('198.51.100.9', { hitCount: 5, offences: 3, ports: [22] }), 'block', TICK - 30 * MIN);
    await decided(record('2001:db8::/64', { hitCount: 12, ports: [445] }), 'block', TICK - 20 * MIN);
    await decided(record('192.0.2.1', { active: false, liftedBy: 'expiry' }), 'expire', TICK - 10 * MIN);
    await decided(record('192.0.2.2', { active: false, liftedBy: 'operator' }), 'unblock', TICK - 5 * MIN);
    // outside the window [09:00, 10:00): before it, and at its end
    await decided(record('192.0.2.50', { hitCount: 999 }), 'block', TICK - 61 * MIN);
    await decided(record('192.0.2.51', { hitCount: 999 }), 'block', TICK);
    cw.publish('Portsnare', 'CircuitBreakerOpen', { service: 'portsnare' }, TICK - 15 * MIN, 1);
    cw.publish('Portsnare', 'EnforcementFailures', { service: 'portsnare' }, TICK - 14 * MIN, 2);
    cw.publish('Portsnare', 'EnforcementFailures', { service: 'portsnare' }, TICK - 90 * MIN, 7); // before the window
    cw.publish('AWS/SQS', 'ApproximateNumberOfMessagesVisible', { QueueName: 'portsnare-failures' }, TICK - 3 * MIN, 4);

    const clock = new SimClock(TICK + 5_000);
    const outcome = await handlerWith(runtime(), clock)(tick(TICK));
    expect(outcome).toEqual({ result: 'done', until: TICK, channels: { sns: 'sent', webhook: 'sent' } });

    expect(sns.published).toHaveLength(1);
    const mail = sns.published[0]!;
    expect(mail.subject).toBe('portsnare Portsnare: 3 new blocks, breaker tripped, 2 failures, dead letters');
    expect(mail.message).toContain('2026-12-01T09:00:00Z to 2026-12-01T10:00:00Z');
    expect(mail.message).toContain('New blocks: 3 (3 sources)');
    expect(mail.message).toContain('Escalations (repeat offenders): 1');
    expect(mail.message).toContain('Lifts: 2 (1 by an operator)');
    expect(mail.message).toContain('Circuit breaker trips: 1');
    expect(mail.message).toContain('Enforcement failures: EnforcementFailures 2');
    expect(mail.message).toContain('Dead letters: portsnare-failures 4');
    expect(mail.message).toContain('Top sources (hits):\n  203.0.113.7  90 hits\n  2001:db8::/64  12 hits\n  198.51.100.9  5 hits\n');
    expect(mail.message).toContain('Top decoy ports (sources):\n  22  2 sources\n  23  1 sources\n  3389  1 sources\n  445  1 sources\n');
    expect(mail.message).not.toContain('192.0.2.50');

    expect(hook.bodies).toHaveLength(1);
    const body = hook.bodies[0]!;
    expect(body).toMatchObject({
      kind: 'portsnare.digest',
      from: '2026-12-01T09:00:00Z',
      until: '2026-12-01T10:00:00Z',
      newBlocks: 3,
      escalations: 1,
      lifts: 2,
      earlyLifts: 1,
      breakerTrips: 1,
      failures: { EnforcementFailures: 2 },
      deadLetters: { 'portsnare-failures': 4 },
      topSources: [
        { source: '203.0.113.7', hits: 90 },
        { source: '2001:db8::/64', hits: 12 },
        { source: '198.51.100.9', hits: 5 },
      ],
      topEscalations: [{ source: '198.51.100.9', offences: 3 }],
    });
    // GetMetricData asked with the functions' one dimension, over the window
    const breaker = cw.queries.find((q) => q.metricName === 'CircuitBreakerOpen');
    expect(breaker).toMatchObject({ namespace: 'Portsnare', dimensions: { service: 'portsnare' }, period: 60, stat: 'Sum', startTime: (TICK - 60 * MIN) / 1000, endTime: TICK / 1000 });
  });

  it('the AWS Chatbot form: MessageStructure json, the custom notification as "default", the text for email', async () => {
    await decided(record('203.0.113.7', { hitCount: 3, ports: [22] }), 'block', TICK - 5 * MIN);
    await handlerWith(runtime({ chatbot: true, webhookUrl: undefined }), new SimClock(TICK))(tick(TICK));
    expect(sns.published).toHaveLength(1);
    expect(sns.published[0]!.messageStructure).toBe('json');
    const structure = JSON.parse(sns.published[0]!.message) as { default: string; email: string };
    expect(structure.email).toContain('New blocks: 1 (1 source)');
    const notification = JSON.parse(structure.default) as { version: string; source: string; content: { textType: string; description: string } };
    expect(notification.version).toBe('1.0');
    expect(notification.source).toBe('custom');
    expect(notification.content.textType).toBe('client-markdown');
    expect(notification.content.description).toContain('Top sources: `203.0.113.7` 3 hits');
  });
});

describe('exactly once per window', () => {
  it('a duplicated invocation of the same tick, at once and later, sends one message per channel', async () => {
    await decided(record('203.0.113.7'), 'block', TICK - 5 * MIN);
    const clock = new SimClock(TICK + 1000);
    const obs = new RecordingObservability();
    const [a, b] = await Promise.all([handlerWith(runtime(), clock, obs)(tick(TICK)), handlerWith(runtime(), clock, obs)(tick(TICK))]);
    const results = [a.result, b.result].sort();
    expect(results[0]).toBe('claimed-elsewhere');
    expect(results[1]).toBe('done');
    // redelivered a minute later (the scheduler's retry, or Lambda's): the window is already sent
    clock.advance(60_000);
    expect((await handlerWith(runtime(), clock, obs)(tick(TICK))).result).toBe('already-sent');
    // a late tick of an older window too
    expect((await handlerWith(runtime(), clock, obs)(tick(TICK - 60 * MIN))).result).toBe('already-sent');
    expect(sns.published).toHaveLength(1);
    expect(hook.bodies).toHaveLength(1);
  });

  it('the next window starts where the last one sent ended', async () => {
    await decided(record('203.0.113.7'), 'block', TICK - 5 * MIN);
    await handlerWith(runtime(), new SimClock(TICK))(tick(TICK));
    await decided(record('203.0.113.8'), 'block', TICK + 10 * MIN);
    await handlerWith(runtime(), new SimClock(TICK + 60 * MIN))(tick(TICK + 60 * MIN));
    expect(hook.bodies.map((b) => [b.from, b.until, b.newBlocks])).toEqual([
      ['2026-12-01T09:00:00Z', '2026-12-01T10:00:00Z', 1],
      ['2026-12-01T10:00:00Z', '2026-12-01T11:00:00Z', 1],
    ]);
  });
});

describe('threshold and quiet hours', () => {
  it('below minNewBlocks nothing is sent and the window stays open; the next digest covers both windows', async () => {
    await decided(record('203.0.113.1'), 'block', TICK - 50 * MIN);
    await decided(record('203.0.113.2'), 'block', TICK - 40 * MIN);
    const first = await handlerWith(runtime({ minNewBlocks: 3 }), new SimClock(TICK))(tick(TICK));
    expect(first).toEqual({ result: 'done', until: TICK, channels: { sns: 'below-threshold', webhook: 'below-threshold' } });
    expect(sns.published).toHaveLength(0);
    expect(hook.bodies).toHaveLength(0);
    await decided(record('203.0.113.3'), 'block', TICK + 10 * MIN);
    await handlerWith(runtime({ minNewBlocks: 3 }), new SimClock(TICK + 60 * MIN))(tick(TICK + 60 * MIN));
    expect(hook.bodies.map((b) => [b.from, b.until, b.newBlocks])).toEqual([['2026-12-01T09:00:00Z', '2026-12-01T11:00:00Z', 3]]);
  });

  it('a breaker trip is sent even below the threshold', async () => {
    cw.publish('Portsnare', 'CircuitBreakerOpen', { service: 'portsnare' }, TICK - 15 * MIN, 1);
    await handlerWith(runtime({ minNewBlocks: 50 }), new SimClock(TICK))(tick(TICK));
    expect(sns.published.map((m) => m.subject)).toEqual(['portsnare Portsnare: 0 new blocks, breaker tripped']);
  });

  it('quiet hours across midnight (Europe/Berlin, 22:00-07:00): nothing inside; the first digest after covers everything since the last one sent', async () => {
    const rt = runtime({ quietHours: '22:00-07:00', timeZone: 'Europe/Berlin' });
    const evening = Date.parse('2026-12-01T20:00:00Z'); // 21:00 in Berlin (CET, UTC+1)
    await decided(record('203.0.113.1'), 'block', evening - 30 * MIN);
    expect((await handlerWith(rt, new SimClock(evening))(tick(evening))).result).toBe('done');
    for (let h = 1; h <= 9; h++) {
      await decided(record(`198.51.100.${h}`), 'block', evening + (h - 1) * 60 * MIN + 30 * MIN);
      const at = evening + h * 60 * MIN; // 22:00 … 06:00 Berlin: quiet
      const outcome = await handlerWith(rt, new SimClock(at))(tick(at));
      expect([new Date(at).toISOString(), outcome.result]).toEqual([new Date(at).toISOString(), 'quiet']);
    }
    const morning = evening + 10 * 60 * MIN; // 07:00 Berlin
    await handlerWith(rt, new SimClock(morning))(tick(morning));
    expect(hook.bodies.map((b) => [b.from, b.until, b.newBlocks])).toEqual([
      ['2026-12-01T19:00:00Z', '2026-12-01T20:00:00Z', 1],
      ['2026-12-01T20:00:00Z', '2026-12-02T06:00:00Z', 9],
    ]);
  });
});

describe('delivery failures', () => {
  it('a webhook answering 503 is retried 3 times, counted and alarmed; the invocation fails; Lambda\'s retry sends it without sending SNS again', async () => {
    await decided(record('203.0.113.7'), 'block', TICK - 5 * MIN);
    hook.statuses = [503, 503, 503];
    const obs = new RecordingObservability();
    const clock = new SimClock(TICK);
    await expect(handlerWith(runtime(), clock, obs)(tick(TICK))).rejects.toThrow('digest not delivered to webhook');
    expect(hook.bodies).toHaveLength(3);
    expect(obs.metric('DigestUndelivered')).toBe(1);
    expect(sns.published).toHaveLength(1);
    // Lambda retries the same event: the claim was released, the webhook's window is still open
    clock.advance(60_000);
    const retried = await handlerWith(runtime(), clock, obs)(tick(TICK));
    expect(retried).toEqual({ result: 'done', until: TICK, channels: { webhook: 'sent' } });
    expect(hook.bodies).toHaveLength(4);
    expect(sns.published).toHaveLength(1);
  });

  it('a 400 is not retried; the next tick covers the window it could not deliver', async () => {
    await decided(record('203.0.113.7'), 'block', TICK - 5 * MIN);
    hook.statuses = [400];
    await expect(handlerWith(runtime({ topicArn: undefined }), new SimClock(TICK))(tick(TICK))).rejects.toThrow();
    expect(hook.bodies).toHaveLength(1);
    await decided(record('203.0.113.8'), 'block', TICK + 5 * MIN);
    await handlerWith(runtime({ topicArn: undefined }), new SimClock(TICK + 60 * MIN))(tick(TICK + 60 * MIN));
    expect(hook.bodies.map((b) => [b.from, b.until, b.newBlocks])).toEqual([
      ['2026-12-01T09:00:00Z', '2026-12-01T10:00:00Z', 1],
      ['2026-12-01T09:00:00Z', '2026-12-01T11:00:00Z', 2],
    ]);
  });

  it('a webhook that never answers times out (each attempt), and SNS still gets its digest', async () => {
    await decided(record('203.0.113.7'), 'block', TICK - 5 * MIN);
    hook.hang = true;
    const obs = new RecordingObservability();
    await expect(handlerWith(runtime(), new SimClock(TICK), obs, 150)(tick(TICK))).rejects.toThrow('webhook');
    expect(obs.logged('digest: webhook POST failed').map((l) => String(l.attributes.error))).toHaveLength(3);
    expect(sns.published).toHaveLength(1);
    hookServer.closeAllConnections();
  });

  it('an SNS topic that refuses the publish (AuthorizationError) is counted; the window stays open for SNS', async () => {
    await decided(record('203.0.113.7'), 'block', TICK - 5 * MIN);
    sns.topics.set(TOPIC, { allowsCaller: false });
    const obs = new RecordingObservability();
    await expect(handlerWith(runtime({ webhookUrl: undefined }), new SimClock(TICK), obs)(tick(TICK))).rejects.toThrow('digest not delivered to sns');
    expect(obs.metric('DigestUndelivered')).toBe(1);
    // the window stays open from its start (09:00): nothing was recorded as sent past it
    expect(await store.read()).toEqual({ sent: { sns: TICK - 60 * MIN } });
  });
});

describe('bounded', () => {
  it('10,000 new blocks in one window make one message under the SNS limits, listing the top 10', async () => {
    const writes: Array<Promise<void>> = [];
    for (let i = 0; i < 10_000; i++) {
      const target = `10.${Math.floor(i / 65536) + 100}.${Math.floor(i / 256) % 256}.${i % 256}`.replace(/^10\./, '198.');
      const r = record(target, { hitCount: i, ports: [i % 50, 8000 + (i % 7)] });
      const at = TICK - 59 * MIN + (i % 3000) * 1000;
      writes.push(repo.save(r, undefined, at).then(() => repo.appendHistory(r, 'block', at)));
      if (writes.length === 200) await Promise.all(writes.splice(0));
    }
    await Promise.all(writes);
    // and one item another writer put in a blocked source's history range, unreadable (no action in its key): skipped
    await table.doc.send(new PutCommand({ TableName: (store as unknown as { tableName: string }).tableName, Item: { pk: 'BLOCK#198.100.0.0', sk: 'HIST#2026-12-01T09:30:00.000Z' } }));
    const obs = new RecordingObservability();
    await handlerWith(runtime({ chatbot: true }), new SimClock(TICK), obs)(tick(TICK));
    expect(sns.published).toHaveLength(1);
    const message = sns.published[0]!;
    expect(Buffer.byteLength(message.message, 'utf8')).toBeLessThan(256 * 1024);
    expect(message.subject).toBe('portsnare Portsnare: 10000 new blocks');
    const body = hook.bodies[0]!;
    expect(body.newBlocks).toBe(10_000);
    expect((body.topSources as unknown[]).length).toBe(10);
    expect((body.topSources as Array<{ hits: number }>)[0]!.hits).toBe(9999);
    expect((body.topPorts as Array<{ port: number; sources: number }>).slice(0, 1)).toEqual([{ port: 8000, sources: 1429 }]);
    expect(Buffer.byteLength(JSON.stringify(body), 'utf8')).toBeLessThan(16 * 1024);
    expect(obs.logged('digest: history entries it could not read were skipped')[0]?.attributes).toEqual({ count: 1 });
  }, 120_000);
});
