/**
 * A plane's report is written when it changed or a minute after the last write, not on every
 * run (aws/plane-reports.ts ReportThrottle; issue 20: a write per run of every plane is ≈ 43,000
 * DynamoDB writes a day per plane). Attacked with the REAL enforce handler of an organization
 * plane on dynalite (the decision table and the reports table) and the EC2 and WAFv2 wire fakes:
 * the expectations are what the reports table holds, read with the low-level client, and how many
 * UpdateItem calls reached it.
 */
import { GetItemCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BlockRecord } from '../../core/policy';
import { createHandler as createEnforce } from '../../lambda/enforce/handler';
import { NaclAdapter } from '../../aws/nacl-adapter';
import { PlaneReports, REPORT_EVERY_MS } from '../../aws/plane-reports';
import { BlockRepository, PlacementLedger } from '../../aws/repository';
import { UpdatePacer, WafAdapter } from '../../aws/waf-adapter';
import { SimClock } from '../fakes/clock';
import { FakeEc2 } from '../fakes/ec2';
import { RecordingObservability } from '../fakes/observability';
import { ACL_A, SET_V4, SET_V6, testSettings } from '../fakes/world';
import { type LocalTable, startDynalite } from './dynalite';
import { Ec2Server } from './ec2-server';
import { WafServer } from './wafv2-server';

const PLANE = '222222222222/eu-west-1';
const S = (s: string): AttributeValue => ({ S: s });
let db: LocalTable;
const ec2 = new Ec2Server(new FakeEc2(20, () => 0.5));
let waf: WafServer;
const clock = new SimClock();

beforeAll(async () => {
  db = await startDynalite('report-throttle');
  ec2.ec2.addAcl(ACL_A, { ipv6: true });
  await ec2.start();
  waf = new WafServer(clock, () => 0.5);
  for (const ref of [SET_V4, SET_V6]) waf.waf.addSet(ref);
  await waf.start();
});
afterAll(async () => {
  await ec2.stop();
  await waf?.stop();
  await db?.stop();
});

/** a block of 15 s: at most 8 are active at once, fewer than an ACL holds, so every run converges */
function block(target: string, at: number): BlockRecord {
  return { target, family: 'ipv4', reason: 'sensor', firstSeen: at, lastSeen: at, hitCount: 1, offences: 1, blockedAt: at, expiresAt: at + 15_000, active: true, eventIds: [], sensors: ['s-1'] };
}

const message = (kind: string, n: number): SQSEvent => ({ Records: [{ messageId: `m-${n}`, receiptHandle: `h-${n}`, body: JSON.stringify({ kind }) }] }) as unknown as SQSEvent;

describe('an organization plane\'s report', () => {
  it('is written on the first run, on a change of state and on a reconcile, else at most once a minute; a failure carries the time of the last converged run even when that run was not written', async () => {
    const table = await db.addTable('decisions');
    const reportsTable = await db.addTable('plane-reports');
    const repo = new BlockRepository(db.doc, table);
    const obs = new RecordingObservability();
    const settings = testSettings({ nacl: { aclIds: [ACL_A], ruleRange: [10, 60], quotaPerDirection: 20 }, waf: { sets: [SET_V4, SET_V6] } });
    // count the writes that reach the reports table
    let reportWrites = 0;
    const original = db.doc.send.bind(db.doc);
    const counting = Object.create(db.doc) as typeof db.doc;
    counting.send = (async (command: unknown, ...rest: unknown[]) => {
      if (command instanceof UpdateCommand && command.input.TableName === reportsTable) reportWrites++;
      return (original as (...a: unknown[]) => Promise<unknown>)(command, ...rest);
    }) as typeof db.doc.send;
    const enforce = createEnforce({
      repo,
      nacl: new NaclAdapter(ec2.client(1), clock, obs, () => 0.5, new PlacementLedger(db.doc, table), [10, 60]),
      waf: new WafAdapter({ REGIONAL: waf.client(1) }, clock, obs, new UpdatePacer(), () => 0.5),
      settings,
      obs,
      clock,
      plane: { id: PLANE, reports: new PlaneReports(counting, reportsTable) },
    }) as (event: SQSEvent) => Promise<unknown>;
    const report = async () => (await db.raw.send(new GetItemCommand({ TableName: reportsTable, Key: { pk: S(`PLANE#${PLANE}`), sk: S('REPORT') }, ConsistentRead: true }))).Item;

    // 90 runs, one every 2 s (3 minutes), each after a new block (and a few expiring): converged every time
    const start = clock.now();
    for (let i = 0; i < 90; i++) {
      await repo.save(block(`203.0.113.${i + 1}`, clock.now()), undefined, clock.now());
      clock.advance(2_000);
      await enforce(message('enforce', i));
    }
    // the first run, then one a minute: at 60, 120 and 180 s (the runs' own time moves with the pacer)
    expect(reportWrites).toBeGreaterThanOrEqual(3);
    expect(reportWrites).toBeLessThanOrEqual(4);
    const steady = await report();
    expect(steady?.converged).toEqual({ BOOL: true });
    const written = Number(steady?.lastRunAt?.N);
    expect(clock.now() - written).toBeLessThan(REPORT_EVERY_MS + 5_000);
    expect(written).toBeGreaterThan(start);

    // a converged run that is not written, then a run that fails: written at once, and its
    // lastConvergedAt is the unwritten run's time, not the last written one's
    clock.advance(2_000);
    await enforce(message('enforce', 100));
    const convergedAt = clock.now();
    expect(reportWrites).toBeLessThanOrEqual(4);
    const before = reportWrites;
    waf.waf.deleteSet(SET_V4); // a permanent failure of one point: the run does not converge
    clock.advance(2_000);
    await enforce(message('enforce', 101));
    expect(reportWrites).toBe(before + 1);
    const failing = await report();
    expect(failing?.converged).toEqual({ BOOL: false });
    expect(failing?.failures?.L?.map((f) => f.S)).toEqual([`waf:${SET_V4.name}`]);
    expect(Number(failing?.lastConvergedAt?.N)).toBeGreaterThanOrEqual(convergedAt - 1_000);
    expect(Number(failing?.lastConvergedAt?.N)).toBeLessThanOrEqual(convergedAt + 1_000);

    // the same failure again within the minute: not written again; a reconcile is
    clock.advance(2_000);
    await enforce(message('enforce', 102));
    expect(reportWrites).toBe(before + 1);
    clock.advance(2_000);
    await enforce(message('reconcile', 103));
    expect(reportWrites).toBe(before + 2);
    expect((await report())?.mode).toEqual({ S: 'reconcile' });
  });
});
