/**
 * decide under concurrency, against a real DynamoDB engine (dynalite) through the real Document
 * client: many Lambda invocations at once, each with its own conditional writes, as EventBridge
 * fans the reports of several sensors out. Real time (backoff pauses are real waits), anchored at
 * a minute boundary so the burst counter's minute cannot roll over during a test.
 * Oracles read the table with the low-level client, never through the code under test.
 */
import { GetItemCommand, QueryCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BurstGate } from '../../lambda/decide/burst';
import { createHandler } from '../../lambda/decide/handler';
import type { Clock } from '../../aws/clock';
import { EnforceQueue } from '../../lambda/shared/queue';
import { BlockRepository } from '../../aws/repository';
import { RecordingObservability } from '../fakes/observability';
import { FakeSqs } from '../fakes/sqs';
import { testSettings } from '../fakes/world';
import { type LocalTable, startDynalite } from './dynalite';
import { scanDetectedEvent } from '../fakes/events';

let table: LocalTable;

beforeAll(async () => {
  table = await startDynalite();
});
afterAll(async () => {
  await table?.stop();
});

/** Real time, shifted so that it starts at the beginning of `minute` (epoch ms). */
function clockAt(minute: number): Clock {
  const t0 = Date.now();
  return { now: () => minute + (Date.now() - t0), sleep: (ms) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms))) };
}

function pipeline(minute: number, burstLimitPerMinute: number) {
  const clock = clockAt(minute);
  const obs = new RecordingObservability();
  const sqs = new FakeSqs(clock);
  const settings = testSettings({ policy: { burstLimitPerMinute } });
  const repo = new BlockRepository(table.doc, table.tableName);
  const deps = { repo, queue: new EnforceQueue(sqs.client, sqs.queueUrl), settings, obs, clock, burst: new BurstGate(table.doc, table.tableName, clock) };
  const decide = createHandler(deps);
  return { decide, obs, sqs, clock };
}

function scan(id: string, attacker: string, sensorId: string, at: number) {
  return scanDetectedEvent({ id, attacker, sensorId, at });
}

async function rawState(target: string) {
  const out = await table.raw.send(
    new GetItemCommand({ TableName: table.tableName, Key: { pk: { S: `BLOCK#${target}` }, sk: { S: 'STATE' } }, ConsistentRead: true }),
  );
  return out.Item;
}

async function history(target: string): Promise<string[]> {
  const out = await table.raw.send(
    new QueryCommand({
      TableName: table.tableName,
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :hist)',
      ExpressionAttributeValues: { ':pk': { S: `BLOCK#${target}` }, ':hist': { S: 'HIST#' } },
      ConsistentRead: true,
    }),
  );
  return (out.Items ?? []).map((item) => item.action?.S ?? '?');
}

type Settled = { ok: true; outcomes: string[] } | { ok: false; error: unknown };

async function settle(work: Promise<string[]>): Promise<Settled> {
  try {
    return { ok: true, outcomes: await work };
  } catch (error) {
    return { ok: false, error };
  }
}

describe('the burst breaker counts each new attacker once, however many deciders race on it', () => {
  it('six sensors reporting one new attacker at once take one slot: the next attacker is still blocked', async () => {
    const minute = Date.UTC(2026, 10, 29, 15, 0, 0);
    const { decide } = pipeline(minute, 5);
    const first = await Promise.all(Array.from({ length: 6 }, (_, i) => settle(decide(scan(`six-${i}`, '203.0.113.101', `i-sensor${i}`, minute)))));
    expect(first.filter((r) => !r.ok)).toEqual([]);
    const outcomes = first.flatMap((r) => (r.ok ? r.outcomes : []));
    expect(outcomes.filter((o) => o === 'blocked')).toHaveLength(1);
    expect(outcomes.filter((o) => o === 'refreshed')).toHaveLength(5);
    await expect(decide(scan('next', '203.0.113.102', 'i-sensor0', minute))).resolves.toEqual(['blocked']);
    expect((await rawState('203.0.113.101'))?.offences).toEqual({ N: '1' });
    expect((await rawState('203.0.113.102'))?.activeKey).toEqual({ S: 'ACTIVE' });
    // the minute's counter (what `portsnare status` reads) holds two, and every item of the
    // breaker expires a day after its minute
    const counter = await table.raw.send(new GetItemCommand({ TableName: table.tableName, Key: { pk: { S: 'BURST' }, sk: { S: `MINUTE#${minute}` } }, ConsistentRead: true }));
    expect(counter.Item?.count).toEqual({ N: '2' });
    const claims = await table.raw.send(
      new QueryCommand({
        TableName: table.tableName,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :minute)',
        ExpressionAttributeValues: { ':pk': { S: 'BURST' }, ':minute': { S: `MINUTE#${minute}#` } },
        ConsistentRead: true,
      }),
    );
    expect(claims.Items?.map((i) => [i.sk?.S, i.verdict?.S, i.ttl?.N]).sort()).toEqual([
      [`MINUTE#${minute}#203.0.113.101`, 'admitted', String(minute / 1000 + 86400)],
      [`MINUTE#${minute}#203.0.113.102`, 'admitted', String(minute / 1000 + 86400)],
    ]);
  });

  it('four attackers each reported by six sensors concurrently, limit 5: all four blocked, one more fits, the sixth is refused and not dropped', async () => {
    const minute = Date.UTC(2026, 10, 29, 16, 0, 0);
    const { decide, obs } = pipeline(minute, 5);
    const attackers = ['203.0.113.111', '203.0.113.112', '203.0.113.113', '203.0.113.114'];
    const runs = attackers.flatMap((attacker, a) => Array.from({ length: 6 }, (_, s) => decide(scan(`four-${a}-${s}`, attacker, `i-sensor${s}`, minute))));
    const results = await Promise.all(runs.map(settle));
    expect(results.filter((r) => !r.ok)).toEqual([]);
    for (const attacker of attackers) {
      expect((await rawState(attacker))?.activeKey).toEqual({ S: 'ACTIVE' });
      expect(await history(attacker)).toEqual(expect.arrayContaining(['block']));
      expect((await history(attacker)).filter((a) => a === 'block')).toHaveLength(1);
    }
    await expect(decide(scan('fifth', '203.0.113.115', 'i-sensor0', minute))).resolves.toEqual(['blocked']);
    expect(obs.metric('CircuitBreakerOpen')).toBe(0);
    // the sixth new attacker of the minute: refused, counted, and the invocation fails so that
    // Lambda retries the event (and keeps it in the failure queue if the breaker stays open)
    await expect(decide(scan('sixth', '203.0.113.116', 'i-sensor0', minute))).rejects.toThrow(/circuit breaker/);
    expect(obs.metric('CircuitBreakerOpen')).toBe(1);
    expect(await rawState('203.0.113.116')).toBeUndefined();
  });
});

describe('decide under contention on one attacker', () => {
  it('20 concurrent events for one attacker: no invocation fails, exactly one offence, every hit counted', async () => {
    const minute = Date.UTC(2026, 10, 29, 17, 0, 0);
    const { decide } = pipeline(minute, 100);
    const target = '203.0.113.120';
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => settle(decide(scan(`twenty-${i}`, target, `i-sensor${i % 10}`, minute)))));
    const errors = results.filter((r) => !r.ok);
    expect(errors.map((r) => String((r as { error: unknown }).error))).toEqual([]);
    const outcomes = results.flatMap((r) => (r.ok ? r.outcomes : []));
    expect(outcomes.filter((o) => o === 'blocked')).toHaveLength(1);
    expect(outcomes.filter((o) => o === 'refreshed')).toHaveLength(19);
    const state = await rawState(target);
    expect(state?.offences).toEqual({ N: '1' });
    expect(state?.hitCount).toEqual({ N: '60' });
    expect(state?.eventIds?.L).toHaveLength(20);
  });
});
