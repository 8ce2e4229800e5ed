/**
 * Benchmarks of decide against a real DynamoDB engine (`npx tsx bench/run.ts cloud`): dynalite
 * (test/wire/dynalite.ts) with the stack's table, the real Document client, many decide
 * invocations at once as EventBridge fans out the reports of several sensors; real time (the
 * backoff pauses are real waits), anchored at the start of a minute so the burst counter's minute
 * does not roll over within a round.
 * - breaker_overcount: new attackers refused by the burst breaker while fewer than the limit were
 *   really blocked in that minute (goal 0): 8 new attackers, each reported by 6 sensors at once,
 *   limit 5, three rounds;
 * - decide_contention_errors: failed invocations among 20 concurrent events for one attacker
 *   (goal 0), three rounds.
 */
import { DeleteItemCommand } from '@aws-sdk/client-dynamodb';
import { stateKey } from '../core/table';
import { createHandler } from '../lambda/decide/handler';
import { BurstGate } from '../lambda/decide/burst';
import type { Clock } from '../aws/clock';
import { EnforceQueue } from '../lambda/shared/queue';
import { BlockRepository } from '../aws/repository';
import { RecordingObservability } from '../test/fakes/observability';
import { FakeSqs } from '../test/fakes/sqs';
import { testSettings } from '../test/fakes/world';
import { type LocalTable, startDynalite } from '../test/wire/dynalite';
import type { BenchSuite, Figure } from './suite';
import { scanDetectedEvent } from '../test/fakes/events';

const ROUNDS = 3;

function clockAt(minute: number): Clock {
  const t0 = Date.now();
  return { now: () => minute + (Date.now() - t0), sleep: (ms) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms))) };
}

function scan(id: string, attacker: string, sensorId: string, at: number): Record<string, unknown> {
  return scanDetectedEvent({ id, attacker, sensorId, at });
}

function decider(table: LocalTable, minute: number, burstLimitPerMinute: number) {
  const clock = clockAt(minute);
  const sqs = new FakeSqs(clock);
  const deps = {
    repo: new BlockRepository(table.doc, table.tableName),
    queue: new EnforceQueue(sqs.client, sqs.queueUrl),
    burst: new BurstGate(table.doc, table.tableName, clock),
    settings: testSettings({ policy: { burstLimitPerMinute } }),
    obs: new RecordingObservability(),
    clock,
  };
  return { decide: createHandler(deps), repo: deps.repo };
}

async function settle(work: Promise<unknown>): Promise<boolean> {
  try {
    await work;
    return true;
  } catch {
    return false;
  }
}

async function breakerOvercount(table: LocalTable): Promise<Figure> {
  const LIMIT = 5;
  const ATTACKERS = 8;
  const SENSORS = 6;
  let overcount = 0;
  let overAdmitted = 0;
  const blockedPerRound: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const minute = Date.UTC(2026, 10, 30, 10, round, 0);
    const { decide, repo } = decider(table, minute, LIMIT);
    const attackers = Array.from({ length: ATTACKERS }, (_, a) => `203.0.113.${10 * round + a + 1}`);
    const runs = attackers.flatMap((attacker, a) => Array.from({ length: SENSORS }, (_, s) => settle(decide(scan(`b-${round}-${a}-${s}`, attacker, `i-sensor${s}`, minute)))));
    await Promise.all(runs);
    let blocked = 0;
    for (const attacker of attackers) if ((await repo.get(attacker))?.record.active) blocked++;
    blockedPerRound.push(blocked);
    overcount += Math.max(0, Math.min(ATTACKERS, LIMIT) - blocked);
    overAdmitted += Math.max(0, blocked - LIMIT);
  }
  return {
    name: 'breaker_overcount',
    value: overcount,
    unit: 'attackers',
    note: `dynalite, ${ROUNDS} rounds of ${ATTACKERS} new attackers × ${SENSORS} sensors at once, limit ${LIMIT}/min: new attackers refused below the limit; blocked per round ${blockedPerRound.join(', ')}; over the limit ${overAdmitted}`,
  };
}

async function contentionErrors(table: LocalTable): Promise<Figure> {
  const EVENTS = 20;
  let errors = 0;
  const offences: number[] = [];
  const seconds: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const minute = Date.UTC(2026, 10, 30, 11, round, 0);
    const { decide, repo } = decider(table, minute, 100);
    const target = `198.51.100.${round + 1}`;
    const t0 = Date.now();
    const ok = await Promise.all(Array.from({ length: EVENTS }, (_, i) => settle(decide(scan(`c-${round}-${i}`, target, `i-sensor${i % 10}`, minute)))));
    seconds.push((Date.now() - t0) / 1000);
    errors += ok.filter((x) => !x).length;
    offences.push((await repo.get(target))?.record.offences ?? 0);
    await table.raw.send(new DeleteItemCommand({ TableName: table.tableName, Key: { pk: { S: stateKey(target).pk }, sk: { S: stateKey(target).sk } } }));
  }
  return {
    name: 'decide_contention_errors',
    value: errors,
    unit: 'failed invocations',
    note: `dynalite, ${ROUNDS} rounds of ${EVENTS} concurrent events for one attacker: offences recorded ${offences.join(', ')} (goal 1 each); all settled in ${seconds.map((s) => s.toFixed(1)).join(', ')} s`,
  };
}

export const suite: BenchSuite = {
  title: 'decide on a real DynamoDB engine (dynalite): burst breaker and contention',
  async run() {
    const table = await startDynalite('portsnare-bench');
    try {
      return [await breakerOvercount(table), await contentionErrors(table)];
    } finally {
      await table.stop();
    }
  },
};
