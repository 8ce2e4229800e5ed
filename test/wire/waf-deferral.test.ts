/**
 * Deferred WAF removals (issue 20): an incremental run writes at most one IP set per scope and
 * family, unless new blocks or removals at their deadline need more, and the plane wakes itself
 * so a pending removal is written by its deadline. Attacked on the real engines: dynalite (the
 * `changes` index), the WAF wire fake behind the real WAFV2Client, and the FIFO queue fake behind
 * the real SQSClient, on a simulated clock. AWS rules the fakes hold to:
 * - one UpdateIPSet a second per account and Region, ThrottlingException past it: "AWS WAF allows
 *   a maximum of one request per second, per account, per AWS Region for API calls to any
 *   individual Create, Put, or Update action"
 *   https://docs.aws.amazon.com/solutions/latest/security-automations-for-aws-waf/quotas.html
 * - CLOUDFRONT-scope IP sets are called in us-east-1 (Scope)
 *   https://docs.aws.amazon.com/waf/latest/APIReference/API_IPSet.html
 * - UpdateIPSet replaces the whole list under the current LockToken, else WAFOptimisticLockException
 *   https://docs.aws.amazon.com/waf/latest/APIReference/API_UpdateIPSet.html
 * - a FIFO message whose deduplication id (explicit, or the body's SHA-256 with content-based
 *   deduplication) was sent in the last 5 minutes is accepted and not delivered
 *   https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/using-messagededuplicationid-property.html
 * Expectations are literal: addresses, call counts, times.
 */
import type { SQSEvent } from 'aws-lambda';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { BlockRecord } from '../../core/policy';
import type { WafSetRef } from '../../core/settings';
import { createHandler } from '../../lambda/enforce/handler';
import { enforce, type EnforceMode, newEnforcerState } from '../../lambda/shared/enforcer';
import { LIFT_DEFER_MS } from '../../aws/points';
import { NaclAdapter } from '../../aws/nacl-adapter';
import { BlockRepository, PlacementLedger } from '../../aws/repository';
import { UpdatePacer, WafAdapter } from '../../aws/waf-adapter';
import { SimClock } from '../fakes/clock';
import { RecordingObservability } from '../fakes/observability';
import { FakeSqs } from '../fakes/sqs';
import { testSettings } from '../fakes/world';
import { type LocalTable, startDynalite } from './dynalite';
import { WafServer } from './wafv2-server';

let db: LocalTable;
let seq = 0;
const servers: Array<{ stop(): Promise<void> }> = [];
beforeAll(async () => {
  db = await startDynalite('waf-deferral');
});
afterAll(async () => {
  await db?.stop();
});
afterEach(async () => {
  for (const server of servers.splice(0)) await server.stop();
});

const HOUR = 3600_000;

function setRef(i: number, scope: WafSetRef['scope'] = 'REGIONAL'): WafSetRef {
  return { scope, family: 'ipv4', name: `portsnare-${scope.toLowerCase()}-v4-${i}`, id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}` };
}

/** 198.51.100.0/24 then 203.0.113.0/24, 192.0.2.0/24: TEST-NET addresses only */
function host(i: number): string {
  const nets = ['198.51.100', '203.0.113', '192.0.2'];
  return `${nets[Math.floor(i / 250)]}.${(i % 250) + 1}`;
}

async function plane(options: { sets: WafSetRef[]; wafMaxPerSet: number; clients?: { REGIONAL?: string; CLOUDFRONT?: string }; sqs?: FakeSqs; orgPlane?: boolean }) {
  const clock = new SimClock();
  const obs = new RecordingObservability();
  const waf = new WafServer(clock, () => 0.5);
  for (const ref of options.sets) waf.waf.addSet(ref);
  await waf.start();
  servers.push(waf);
  const table = await db.addTable(`defer-${++seq}`);
  const repo = new BlockRepository(db.doc, table);
  const settings = testSettings({ nacl: { aclIds: [], ruleRange: [10, 60], quotaPerDirection: 20 }, waf: { sets: options.sets } });
  const state = newEnforcerState();
  const regions = options.clients ?? { REGIONAL: 'eu-west-1' };
  const clients = Object.fromEntries(Object.entries(regions).map(([scope, region]) => [scope, waf.client(1, region)]));
  const deps = {
    repo,
    nacl: new NaclAdapter(undefined as never, clock, obs, () => 0.5, new PlacementLedger(db.doc, table), [10, 60]),
    waf: new WafAdapter(clients, clock, obs, new UpdatePacer(), () => 0.5),
    settings,
    obs,
    clock,
    state,
    wafMaxPerSet: options.wafMaxPerSet,
  };
  const sqs = options.sqs;
  const handler = sqs ? createHandler({ ...deps, sqs: sqs.client, queueUrl: sqs.queueUrl, ...(options.orgPlane ? { plane: { id: 'plane-1', reports: { record: async () => undefined, recordUnreadable: async () => undefined } as never } } : {}) }) : undefined;
  const fake = waf.waf;
  return {
    clock,
    obs,
    waf: fake,
    repo,
    state,
    run: (mode: EnforceMode = 'enforce') => enforce(deps, mode),
    /** the handler on one batch (requires `sqs`) */
    invoke: (event: SQSEvent) => (handler as NonNullable<typeof handler>)(event, undefined as never),
    async block(target: string, at = clock.now()): Promise<void> {
      const stored = await repo.get(target);
      const record: BlockRecord = { target, family: 'ipv4', reason: 'manual', firstSeen: at, lastSeen: at, hitCount: 1, offences: 1, blockedAt: at, expiresAt: at + HOUR, active: true, eventIds: [], sensors: [] };
      expect(await repo.save(record, stored?.version, at)).toBe(true);
    },
    async lift(target: string, at = clock.now()): Promise<void> {
      const stored = (await repo.get(target))!;
      expect(await repo.save({ ...stored.record, active: false, liftedBy: 'manual' }, stored.version, at)).toBe(true);
    },
    /** every address WAF holds, in every set */
    held: () => new Set(options.sets.flatMap((ref) => fake.addresses(ref))),
    setOf: (address: string) => options.sets.find((ref) => fake.addresses(ref).includes(address)),
  };
}

describe('an incremental run at full IP sets with lifts spread over all of them', () => {
  it('writes one IP set a run, never sleeps on the pacer, adds every new block at once and removes every lift by its deadline; the reconcile then changes nothing', async () => {
    const sets = Array.from({ length: 10 }, (_, i) => setRef(i));
    const p = await plane({ sets, wafMaxPerSet: 20 });
    // 200 blocks: every set full
    const start = p.clock.now();
    for (let i = 0; i < 200; i++) await p.block(host(i), start - 60_000 + i);
    expect(await p.run()).toMatchObject({ run: 'full', converged: true });
    expect(sets.map((ref) => p.waf.addresses(ref).length)).toEqual(Array(10).fill(20));
    const byAddress = new Map(sets.flatMap((ref) => p.waf.addresses(ref).map((a) => [a, ref.id] as const)));
    // lifts round-robin over the ten sets: the k-th lift is the next address of set k mod 10
    const queues = sets.map((ref) => p.waf.addresses(ref));
    const lifted = new Map<string, number>(); // address → deadline
    let nextHost = 200;
    const blocked: string[] = [];
    let lifts = 0;
    const runs: Array<{ updates: number; slept: number }> = [];
    for (let r = 0; r < 40; r++) {
      p.clock.advance(2_500);
      for (let k = 0; k < 2; k++) {
        const address = queues[lifts % 10]!.shift()!;
        lifts++;
        const at = p.clock.now() - 500;
        await p.lift(address.replace('/32', ''), at);
        lifted.set(address, at + LIFT_DEFER_MS);
      }
      const fresh = host(nextHost++);
      await p.block(fresh, p.clock.now() - 500);
      blocked.push(`${fresh}/32`);
      const before = p.waf.updates.length;
      const slept = p.clock.slept;
      const summary = await p.run();
      expect(summary).toMatchObject({ run: 'incremental', failures: [] });
      runs.push({ updates: p.waf.updates.length - before, slept: p.clock.slept - slept });
      const held = p.held();
      // a new block is never deferred
      expect(held.has(`${fresh}/32`)).toBe(true);
      // every lift whose deadline has come is gone
      const late = [...lifted].filter(([address, deadline]) => deadline <= p.clock.now() && held.has(address)).map(([address]) => address);
      expect(late).toEqual([]);
    }
    expect(runs.map((r) => r.updates)).toEqual(Array(40).fill(1));
    expect(runs.map((r) => r.slept)).toEqual(Array(40).fill(0));
    expect(byAddress.size).toBe(200);
    // removals were really deferred: some lifts stayed in WAF for a while after their run
    expect(p.state.wafPending.size).toBeGreaterThan(0);
    // the reconcile writes what is still pending and then WAF holds exactly the active blocks
    const stillPending = [...p.state.wafPending.values()].reduce((sum, set) => sum + set.size, 0);
    expect(stillPending).toBeGreaterThan(0);
    p.clock.advance(2_000);
    const repair = await p.run('reconcile');
    expect(repair.unblocked).toBe(stillPending);
    expect(repair).toMatchObject({ run: 'full', converged: true, failures: [] });
    expect(p.state.wafPending.size).toBe(0);
    const active = [...byAddress.keys()].filter((a) => !lifted.has(a)).concat(blocked).sort();
    expect([...p.held()].sort()).toEqual(active);
  }, 120_000);
});
