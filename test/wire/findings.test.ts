/**
 * The Security Hub export end to end on real engines: the decision table in dynalite (its
 * `changes` index written by the real repository), the real findings handler, and the REAL
 * SecurityHubClient against test/wire/securityhub-server.ts (BatchImportFindings as AWS documents
 * it: 100 findings per call, 10 calls a second with a burst of 30, required attributes, create or
 * update by Id and UpdatedAt). Expectations are literal; the oracle is the fake's store.
 */
import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { BatchImportFindingsCommand } from '@aws-sdk/client-securityhub';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { asffFinding, findingId } from '../../core/findings';
import { lift, type BlockRecord } from '../../core/policy';
import { DynamoCursorStore } from '../../lambda/findings/cursor';
import { exportFindings } from '../../lambda/findings/exporter';
import { createHandler, type FindingsDeps } from '../../lambda/findings/handler';
import type { Clock } from '../../aws/clock';
import { BlockRepository } from '../../aws/repository';
import { RecordingObservability } from '../fakes/observability';
import { type LocalTable, startDynalite } from './dynalite';
import { SecurityHubServer } from './securityhub-server';

const ACCOUNT = '123456789012';
const REGION = 'eu-west-1';

/** Real time, shifted by `offset` (a test moves past the exporter's overlap without waiting). */
class ShiftedClock implements Clock {
  offset = 0;
  now(): number {
    return Date.now() + this.offset;
  }
  async sleep(ms: number): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
  }
}

function record(target: string, at: number, overrides: Partial<BlockRecord> = {}): BlockRecord {
  return {
    target,
    family: target.includes(':') ? 'ipv6' : 'ipv4',
    reason: 'sensor',
    firstSeen: at - 1000,
    lastSeen: at,
    hitCount: 3,
    offences: 1,
    blockedAt: at,
    expiresAt: at + 3_600_000,
    active: true,
    eventIds: ['e'],
    sensors: ['s1'],
    ...overrides,
  };
}

let table: LocalTable;
let hub: SecurityHubServer;
let n = 0;

beforeAll(async () => {
  table = await startDynalite('findings-test');
  hub = new SecurityHubServer(ACCOUNT, REGION);
  await hub.start();
});

afterAll(async () => {
  await hub?.stop();
  await table?.stop();
});

/** A fresh decision table (a new stack) and a fresh findings store per test. */
interface World {
  readonly tableName: string;
  readonly repo: BlockRepository;
  readonly clock: ShiftedClock;
  readonly obs: RecordingObservability;
  readonly run: () => Promise<Awaited<ReturnType<ReturnType<typeof createHandler>>>>;
  readonly deps: FindingsDeps;
}

async function world(options: { maxFindingsPerRun?: number } = {}): Promise<World> {
  const tableName = await table.addTable(`findings-${++n}`);
  const repo = new BlockRepository(table.doc, tableName);
  const clock = new ShiftedClock();
  const obs = new RecordingObservability();
  const deps: FindingsDeps = {
    source: repo,
    cursor: new DynamoCursorStore(table.doc, tableName),
    hub: hub.client(),
    target: { partition: 'aws', region: REGION, account: ACCOUNT, scope: tableName },
    clock,
    obs,
    random: () => 0.5,
    ...options,
  };
  const handler = createHandler(deps);
  return { tableName, repo, clock, obs, deps, run: () => handler() };
}

async function cursorItem(tableName: string): Promise<{ at?: number; retry: string[]; version: number }> {
  const state = await new DynamoCursorStore(table.doc, tableName).read();
  return { ...(state.at === undefined ? {} : { at: state.at }), retry: Object.keys(state.retry), version: state.version };
}

beforeEach(() => {
  hub.findings.clear();
  hub.calls.length = 0;
  hub.enabled = true;
});

describe('findings export', () => {
  it('imports a burst of 250 new blocks in 3 calls of at most 100, at most 10 a second', async () => {
    const w = await world();
    const first = await w.run();
    expect(first).toMatchObject({ mode: 'initial', read: 0, calls: 0 });
    const t0 = w.clock.now();
    for (let i = 0; i < 250; i++) expect(await w.repo.save(record(`198.51.100.${i % 250}`, t0 + i), undefined, t0 + i)).toBe(true);
    hub.calls.length = 0;
    // when each call leaves the exporter (the service sees them as their bodies arrive)
    const sent: number[] = [];
    const real = w.deps.hub;
    const result = await exportFindings({ ...w.deps, hub: { send: (command) => (sent.push(performance.now()), real.send(command)) } });
    expect(result).toMatchObject({ mode: 'changes', read: 250, calls: 3, imported: 250, failed: 0 });
    expect(hub.calls.map((c) => c.ids.length)).toEqual([100, 100, 50]);
    expect(hub.calls.map((c) => c.status)).toEqual([200, 200, 200]);
    // paced: one call every 100 ms (10 a second), none throttled by the service's bucket
    expect(sent).toHaveLength(3);
    for (let i = 1; i < sent.length; i++) expect(sent[i]! - sent[i - 1]!).toBeGreaterThanOrEqual(99);
    expect(hub.findings.size).toBe(250);
    const one = hub.findings.get(findingId(w.tableName, '198.51.100.7'))!;
    expect(one).toMatchObject({ severity: 'LOW', recordState: 'ACTIVE', versions: 1 });
    expect((await cursorItem(w.tableName)).version).toBe(2);
  });

  it('updates one finding on a re-offence (severity up, counts), archives it on the lift, re-imports nothing else', async () => {
    const w = await world();
    await w.run();
    const t0 = w.clock.now();
    for (const [i, target] of ['203.0.113.1', '203.0.113.2', '203.0.113.3'].entries()) await w.repo.save(record(target, t0 + i), undefined, t0 + i);
    await w.run();
    const id = findingId(w.tableName, '203.0.113.2');
    expect(hub.findings.get(id)).toMatchObject({ severity: 'LOW', versions: 1 });

    // the re-offence, a moment later (still inside the exporter's overlap: the others are read again)
    const stored = (await w.repo.get('203.0.113.2'))!;
    const t1 = w.clock.now() + 5;
    const again: BlockRecord = { ...stored.record, offences: 3, hitCount: 40, lastSeen: t1, blockedAt: t1, expiresAt: t1 + 4 * 3_600_000 };
    expect(await w.repo.save(again, stored.version, t1)).toBe(true);
    await w.run();
    const updated = hub.findings.get(id)!;
    expect(updated).toMatchObject({ severity: 'MEDIUM', recordState: 'ACTIVE', versions: 2 });
    expect((updated.finding.ProductFields as Record<string, string>)['portsnare/hitCount']).toBe('40');
    expect(hub.findings.get(findingId(w.tableName, '203.0.113.1'))!.versions).toBe(1);
    expect(hub.findings.get(findingId(w.tableName, '203.0.113.3'))!.versions).toBe(1);

    const before = (await w.repo.get('203.0.113.2'))!;
    const t2 = w.clock.now() + 5;
    expect(await w.repo.save(lift(before.record, 'expiry'), before.version, t2)).toBe(true);
    await w.run();
    expect(hub.findings.get(id)).toMatchObject({ recordState: 'ARCHIVED', severity: 'MEDIUM', versions: 3 });
    expect(hub.findings.get(findingId(w.tableName, '203.0.113.1'))!).toMatchObject({ recordState: 'ACTIVE', versions: 1 });
  });

  it('retries a throttled call after a pause and loses nothing', async () => {
    const w = await world();
    await w.run();
    const t0 = w.clock.now();
    for (let i = 0; i < 120; i++) await w.repo.save(record(`192.0.2.${i}`, t0 + i), undefined, t0 + i);
    hub.throttleNext(2);
    hub.calls.length = 0;
    const result = await w.run();
    expect(hub.calls.map((c) => c.status)).toEqual([429, 429, 200, 200]);
    expect(result).toMatchObject({ imported: 120, failed: 0 });
    expect(hub.findings.size).toBe(120);
    expect(w.obs.metrics.get('Throttles')).toBe(2);
  });

  it('keeps a refused finding for the next run and imports the rest of its call', async () => {
    const w = await world();
    await w.run();
    const t0 = w.clock.now();
    for (let i = 0; i < 5; i++) await w.repo.save(record(`203.0.113.${10 + i}`, t0 + i), undefined, t0 + i);
    const bad = findingId(w.tableName, '203.0.113.12');
    hub.failFindingOnce(bad, 'InternalFailure');
    // this run's clock is a minute ahead: the cursor it writes is past these changes and the overlap
    w.clock.offset = 60_000;
    const first = await w.run();
    expect(first).toMatchObject({ imported: 4, failed: 1, calls: 1 });
    expect(hub.findings.has(bad)).toBe(false);
    expect(hub.findings.size).toBe(4);
    const cursor = await cursorItem(w.tableName);
    expect(cursor.retry).toEqual(['203.0.113.12']);
    expect(cursor.at).toBeGreaterThanOrEqual(t0);
    expect(w.obs.metrics.get('FindingsFailed')).toBe(1);

    // the next run reads from the cursor less 30 s: the change is not read again, only the retry list brings it back
    hub.calls.length = 0;
    const second = await w.run();
    expect(second).toMatchObject({ read: 0, imported: 1, failed: 0 });
    expect(hub.calls[0]!.ids).toEqual([bad]);
    expect(hub.findings.get(bad)).toMatchObject({ recordState: 'ACTIVE', versions: 1 });
    expect((await cursorItem(w.tableName)).retry).toEqual([]);
  });

  it('gives up a finding Security Hub keeps refusing after 5 attempts (counted), never holding the cursor', async () => {
    const w = await world();
    await w.run();
    const t0 = w.clock.now();
    await w.repo.save(record('203.0.113.50', t0), undefined, t0);
    const id = findingId(w.tableName, '203.0.113.50');
    for (let attempt = 1; attempt <= 5; attempt++) {
      hub.failFindingOnce(id, 'InvalidInput');
      const result = await w.run();
      expect(result.failed).toBe(1);
      expect(result.cursor).toBeDefined();
      w.clock.offset += 120_000;
    }
    expect(w.obs.metrics.get('FindingsDropped')).toBe(1);
    expect((await cursorItem(w.tableName)).retry).toEqual([]);
  });

  it('runs a duplicated scheduler invocation twice at once without a double import or the cursor going back', async () => {
    const w = await world();
    await w.run();
    const t0 = w.clock.now();
    for (let i = 0; i < 30; i++) await w.repo.save(record(`198.51.100.${i}`, t0 + i), undefined, t0 + i);
    const before = await cursorItem(w.tableName);
    const [a, b] = await Promise.all([w.run(), w.run()]);
    expect(a.imported + b.imported).toBe(60); // both calls answered; Security Hub kept one version of each
    for (let i = 0; i < 30; i++) expect(hub.findings.get(findingId(w.tableName, `198.51.100.${i}`))!.versions).toBe(1);
    const after = await cursorItem(w.tableName);
    expect(after.version).toBe(before.version + 1); // one write refused by the version condition
    expect([a.cursor, b.cursor].filter((c) => c !== undefined)).toHaveLength(1);
    expect(after.at).toBeGreaterThan(before.at!);
  });

  it('leaves the cursor where it was when a call fails for good, and the next run imports the same changes', async () => {
    const w = await world();
    await w.run();
    const before = await cursorItem(w.tableName);
    const t0 = w.clock.now();
    await w.repo.save(record('192.0.2.99', t0), undefined, t0);
    hub.throttleNext(6); // every attempt of the call
    await expect(w.run()).rejects.toThrow(/BatchImportFindings failed/);
    expect(await cursorItem(w.tableName)).toEqual(before);
    expect(hub.findings.size).toBe(0);
    const result = await w.run();
    expect(result).toMatchObject({ imported: 1 });
    expect(hub.findings.get(findingId(w.tableName, '192.0.2.99'))).toMatchObject({ recordState: 'ACTIVE' });
  });

  it('imports the blocks that were active before the export was turned on, at the first run', async () => {
    const w = await world();
    const t0 = w.clock.now() - 3 * 86_400_000;
    await w.repo.save(record('198.51.100.200', t0, { expiresAt: t0 + 7 * 86_400_000 }), undefined, t0);
    const result = await w.run();
    expect(result).toMatchObject({ mode: 'initial', read: 1, imported: 1 });
    expect(hub.findings.get(findingId(w.tableName, '198.51.100.200'))!.updatedAt).toBe(new Date(t0).toISOString());
  });

  it('imports a first backlog larger than one run\'s share over several runs, then reads the changes made meanwhile', async () => {
    const w = await world({ maxFindingsPerRun: 40 });
    const t0 = w.clock.now() - 60_000;
    for (let i = 0; i < 100; i++) await w.repo.save(record(`198.51.100.${i}`, t0 + i), undefined, t0 + i);
    const runs = [await w.run(), await w.run()];
    expect(runs.map((r) => [r.mode, r.imported, r.more])).toEqual([
      ['initial', 40, true],
      ['initial', 40, true],
    ]);
    // a block made while the first import is under way, of a target it has passed (by target order):
    // the change read starts where that import started, so it is not missed
    const t1 = w.clock.now();
    await w.repo.save(record('192.0.2.1', t1), undefined, t1);
    const third = await w.run();
    expect([third.mode, third.imported, third.more]).toEqual(['initial', 20, false]);
    expect(hub.findings.size).toBe(100);
    expect(hub.findings.has(findingId(w.tableName, '192.0.2.1'))).toBe(false);
    const fourth = await w.run();
    expect([fourth.mode, fourth.read, fourth.imported]).toEqual(['changes', 1, 1]);
    expect(hub.findings.get(findingId(w.tableName, '192.0.2.1'))).toMatchObject({ recordState: 'ACTIVE', versions: 1 });
    expect(hub.findings.size).toBe(101);
  });

  it('keeps a finding refused in the first part of the first import until the change reads retry it', async () => {
    const w = await world({ maxFindingsPerRun: 3 });
    const t0 = w.clock.now() - 60_000;
    for (let i = 0; i < 5; i++) await w.repo.save(record(`198.51.100.${i}`, t0 + i), undefined, t0 + i);
    const refused = findingId(w.tableName, '198.51.100.1');
    hub.failFindingOnce(refused);
    expect(await w.run()).toMatchObject({ mode: 'initial', imported: 2, failed: 1, more: true });
    expect(await w.run()).toMatchObject({ mode: 'initial', imported: 2, failed: 0, more: false });
    expect((await cursorItem(w.tableName)).retry).toEqual(['198.51.100.1']);
    expect(hub.findings.has(refused)).toBe(false);
    // the blocks changed a minute before the import started: only the retry list brings it back
    expect(await w.run()).toMatchObject({ mode: 'changes', read: 0, imported: 1 });
    expect(hub.findings.get(refused)).toMatchObject({ recordState: 'ACTIVE', versions: 1 });
    expect(hub.findings.size).toBe(5);
  });

  it('goes on where a run stopped when more changed than one run imports, even within the overlap', async () => {
    const w = await world({ maxFindingsPerRun: 100 });
    await w.run();
    const t0 = w.clock.now();
    for (let i = 0; i < 250; i++) await w.repo.save(record(`192.0.2.${i % 250}`, t0 + i), undefined, t0 + i);
    const results = [await w.run(), await w.run(), await w.run()];
    expect(results.map((r) => r.more)).toEqual([true, true, false]);
    expect(hub.findings.size).toBe(250);
    for (let i = 0; i < 250; i++) expect(hub.findings.get(findingId(w.tableName, `192.0.2.${i}`))!.versions).toBe(1);
  });

  it('catches a cursor three days old up a day per run, a block lifted meanwhile archived', async () => {
    const w = await world();
    const day = 86_400_000;
    const t = w.clock.now() - 3 * day;
    expect(await new DynamoCursorStore(table.doc, w.tableName).write({ at: t, retry: {} }, 0)).toBe(true);
    const a = record('203.0.113.60', t + 3_600_000);
    await w.repo.save(a, undefined, t + 3_600_000);
    const stored = (await w.repo.get('203.0.113.60'))!;
    await w.repo.save(lift(stored.record, 'expiry'), stored.version, t + 2 * 3_600_000);
    await w.repo.save(record('203.0.113.61', t + 2 * day, { expiresAt: t + 4 * day }), undefined, t + 2 * day);
    const runs = [];
    for (let i = 0; i < 6; i++) {
      const result = await w.run();
      runs.push(result.more);
      if (!result.more) break;
    }
    expect(runs).toEqual([true, true, true, false]);
    expect(hub.findings.get(findingId(w.tableName, '203.0.113.60'))).toMatchObject({ recordState: 'ARCHIVED', updatedAt: new Date(t + 2 * 3_600_000).toISOString() });
    expect(hub.findings.get(findingId(w.tableName, '203.0.113.61'))).toMatchObject({ recordState: 'ACTIVE' });
  });

  it('writes the cursor in its own partition: no block record, on no index', async () => {
    const w = await world();
    await w.run();
    const raw = await table.raw.send(new GetItemCommand({ TableName: w.tableName, Key: { pk: { S: 'FINDINGS' }, sk: { S: 'CURSOR' } } }));
    expect(raw.Item?.activeKey).toBeUndefined();
    expect(raw.Item?.chgKey).toBeUndefined();
    expect(Number(raw.Item?.version?.N)).toBe(1);
    expect(await w.repo.listActive()).toEqual([]);
  });
});

describe('the BatchImportFindings fake refuses what AWS refuses', () => {
  const target = { partition: 'aws', region: REGION, account: ACCOUNT, scope: 'fake' };
  const valid = () => asffFinding(record('203.0.113.77', 1_795_953_600_000), 1_795_953_600_000, target) as unknown as Record<string, unknown>;

  it('fails a finding without a required attribute, with a foreign product or account, and imports the valid one of the call', async () => {
    const client = hub.client();
    const missingTitle: Record<string, unknown> = { ...valid(), Id: 'no-title' };
    delete missingTitle.Title;
    const foreignProduct = { ...valid(), Id: 'foreign', ProductArn: 'arn:aws:securityhub:eu-west-1:999999999999:product/999999999999/default' };
    const badType = { ...valid(), Id: 'bad-type', Types: ['Recon/PortScan'] };
    const badLabel = { ...valid(), Id: 'bad-label', Severity: { Label: 'SEVERE' } };
    const out = await client.send(new BatchImportFindingsCommand({ Findings: [missingTitle, foreignProduct, badType, badLabel, valid()] as never }));
    expect(out.SuccessCount).toBe(1);
    expect(out.FailedFindings?.map((f) => [f.Id, f.ErrorCode])).toEqual([
      ['no-title', 'InvalidInput'],
      ['foreign', 'InvalidInput'],
      ['bad-type', 'InvalidInput'],
      ['bad-label', 'InvalidInput'],
    ]);
    client.destroy();
  });

  it('refuses a call of 101 findings, and fails every finding when Security Hub is not enabled', async () => {
    const client = hub.client();
    const many = Array.from({ length: 101 }, (_, i) => ({ ...valid(), Id: `f${i}` }));
    await expect(client.send(new BatchImportFindingsCommand({ Findings: many as never }))).rejects.toMatchObject({ name: 'InvalidInputException' });
    hub.enabled = false;
    const out = await client.send(new BatchImportFindingsCommand({ Findings: [valid()] as never }));
    expect(out.FailedFindings?.[0]?.ErrorCode).toBe('InvalidAccess');
    client.destroy();
  });

  it('throttles past the burst of 30 calls', async () => {
    const client = hub.client();
    const results = await Promise.allSettled(Array.from({ length: 40 }, () => client.send(new BatchImportFindingsCommand({ Findings: [valid()] as never }))));
    const throttled = results.filter((r) => r.status === 'rejected');
    expect(throttled.length).toBeGreaterThanOrEqual(9);
    expect((throttled[0] as PromiseRejectedResult).reason).toMatchObject({ name: 'LimitExceededException', $metadata: { httpStatusCode: 429 } });
    client.destroy();
  });
});
