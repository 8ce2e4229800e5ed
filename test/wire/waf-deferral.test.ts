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
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { GetIPSetCommand, UpdateIPSetCommand } from '@aws-sdk/client-wafv2';
import type { SQSEvent } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import type { BlockRecord } from '../../core/policy';
import type { WafSetRef } from '../../core/settings';
import { createHandler } from '../../lambda/enforce/handler';
import { enforce, type EnforceMode, newEnforcerState } from '../../lambda/shared/enforcer';
import { LIFT_DEFER_MS } from '../../aws/points';
import { NaclAdapter } from '../../aws/nacl-adapter';
import { BlockRepository, PlacementLedger } from '../../aws/repository';
import { PlaneReports } from '../../aws/plane-reports';
import { UpdatePacer, WafAdapter } from '../../aws/waf-adapter';
import { EnforceQueue, WAKE_WINDOW_MS, SETTLE_MS } from '../../lambda/shared/queue';
import { SimClock } from '../fakes/clock';
import { RecordingObservability } from '../fakes/observability';
import { deliverFifo, FakeSqs } from '../fakes/sqs';
import { testSettings } from '../fakes/world';
import { wireSuite } from './suite';
import { WafServer } from './wafv2-server';

const wire = wireSuite('waf-deferral');

const HOUR = 3600_000;

function setRef(i: number, scope: WafSetRef['scope'] = 'REGIONAL'): WafSetRef {
  return { scope, family: 'ipv4', name: `portsnare-${scope.toLowerCase()}-v4-${i}`, id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}` };
}

/** 198.51.100.0/24 then 203.0.113.0/24, 192.0.2.0/24: TEST-NET addresses only */
function host(i: number): string {
  const nets = ['198.51.100', '203.0.113', '192.0.2'];
  return `${nets[Math.floor(i / 250)]}.${(i % 250) + 1}`;
}

async function plane(options: { sets: WafSetRef[]; wafMaxPerSet: number; clients?: { REGIONAL?: string; CLOUDFRONT?: string }; sqs?: FakeSqs; orgPlane?: boolean; clock?: SimClock }) {
  const clock = options.clock ?? new SimClock();
  const obs = new RecordingObservability();
  const waf = new WafServer(clock, () => 0.5);
  for (const ref of options.sets) waf.waf.addSet(ref);
  await waf.start();
  wire.track(waf);
  const table = await wire.nextTable('defer');
  const repo = new BlockRepository(wire.db.doc, table);
  const settings = testSettings({ nacl: { aclIds: [], ruleRange: [10, 60], quotaPerDirection: 20 }, waf: { sets: options.sets } });
  const state = newEnforcerState();
  const regions = options.clients ?? { REGIONAL: 'eu-west-1' };
  const clients = Object.fromEntries(Object.entries(regions).map(([scope, region]) => [scope, waf.client(1, region)]));
  const deps = {
    repo,
    nacl: new NaclAdapter(undefined as never, clock, obs, () => 0.5, new PlacementLedger(wire.db.doc, table), [10, 60]),
    waf: new WafAdapter(clients, clock, obs, new UpdatePacer(), () => 0.5),
    settings,
    obs,
    clock,
    state,
    wafMaxPerSet: options.wafMaxPerSet,
  };
  const sqs = options.sqs;
  const plane = options.orgPlane ? { plane: { id: 'plane-1', reports: new PlaneReports(wire.db.doc, await wire.nextTable('defer-reports')) } } : {};
  const handler = sqs ? createHandler({ ...deps, sqs: sqs.client, queueUrl: sqs.queueUrl, ...plane }) : undefined;
  const fake = waf.waf;
  return {
    clock,
    obs,
    waf: fake,
    repo,
    state,
    run: (mode: EnforceMode = 'enforce') => enforce(deps, mode),
    /** delivers the enforce queue to the handler (requires `sqs`) until it is empty */
    deliver: () => deliverFifo(sqs as FakeSqs, clock, (event: SQSEvent) => (handler as NonNullable<typeof handler>)(event, undefined as never)),
    /** delivers the next batch only, as the event source would (requires `sqs`); false when none is visible */
    async deliverOne(): Promise<boolean> {
      const event = (sqs as FakeSqs).receive();
      if (!event) return false;
      await (handler as NonNullable<typeof handler>)(event, undefined as never);
      (sqs as FakeSqs).complete(event);
      return true;
    },
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

/** the SendMessage calls the handler made to wake itself, as the queue fake received them */
function selfWakes(sqs: FakeSqs): Array<{ body: string; deduplicationId?: string }> {
  return sqs.mock
    .calls()
    .map((call) => call.args[0].input as { MessageBody?: string; MessageDeduplicationId?: string; QueueUrl?: string })
    .filter((input) => input.MessageBody !== undefined && !sent.has(input))
    .map((input) => ({ body: input.MessageBody!, ...(input.MessageDeduplicationId ? { deduplicationId: input.MessageDeduplicationId } : {}) }));
}
/** what the test itself sent (decide's or the bus rule's wake-ups), kept apart from the handler's */
const sent = new Set<unknown>();
async function sendAsOther(sqs: FakeSqs, send: () => Promise<void>): Promise<void> {
  const before = sqs.mock.calls().length;
  await send();
  for (const call of sqs.mock.calls().slice(before)) sent.add(call.args[0].input);
}

describe('a removal left pending when nothing else wakes the plane', () => {
  it('the run wakes its own queue once, for the next window with decide\'s deduplication id, and the run that brings writes the set before the deadline', async () => {
    const sets = [setRef(0), setRef(1)];
    const clock = new SimClock();
    const queueSqs = new FakeSqs(clock);
    const p = await plane({ sets, wafMaxPerSet: 3, sqs: queueSqs, clock });
    const queue = new EnforceQueue(queueSqs.client, queueSqs.queueUrl);
    const t0 = p.clock.now();
    for (const [i, h] of ['198.51.100.1', '198.51.100.2', '198.51.100.3', '198.51.100.4', '198.51.100.5', '198.51.100.6'].entries()) await p.block(h, t0 - 10_000 + i);
    await sendAsOther(queueSqs, () => queue.wake('enforce', p.clock.now()));
    await p.deliver();
    expect(p.waf.addresses(sets[0]!)).toEqual(['198.51.100.6/32', '198.51.100.5/32', '198.51.100.4/32']);
    expect(p.waf.addresses(sets[1]!)).toEqual(['198.51.100.3/32', '198.51.100.2/32', '198.51.100.1/32']);
    expect(selfWakes(queueSqs)).toEqual([]);
    // a decision window: .5 lifted (set 0), .2 lifted a little later (set 1), a new block
    p.clock.advance(4_000);
    await p.lift('198.51.100.5', p.clock.now() - 1_500);
    await p.lift('198.51.100.2', p.clock.now() - 1_000);
    await p.block('198.51.100.7', p.clock.now() - 500);
    const deadline = p.clock.now() - 1_000 + LIFT_DEFER_MS; // .2's
    await sendAsOther(queueSqs, () => queue.wake('enforce', p.clock.now()));
    const updates = p.waf.updates.length;
    // deliver only the decision's wake-up: the run writes set 0 (due first: .5 out, .7 in); .2 waits
    expect(await p.deliverOne()).toBe(true);
    expect(p.waf.updates.slice(updates).map((u) => u.id)).toEqual([sets[0]!.id]);
    expect(p.waf.addresses(sets[0]!)).toEqual(['198.51.100.6/32', '198.51.100.4/32', '198.51.100.7/32']);
    expect(p.waf.addresses(sets[1]!)).toContain('198.51.100.2/32');
    // the self wake-up: one, for the next window, with decide's id of that window
    const ranAt = p.clock.now();
    const next = Math.floor(ranAt / WAKE_WINDOW_MS) + 1;
    expect(selfWakes(queueSqs)).toEqual([{ body: JSON.stringify({ kind: 'enforce', notBefore: (next + 1) * WAKE_WINDOW_MS + SETTLE_MS }), deduplicationId: `enforce-${next}` }]);
    // decide's wake-up of that same window is coalesced with it (SQS deduplication)
    const deduplicated = queueSqs.calls.deduplicated;
    await sendAsOther(queueSqs, () => queue.wake('enforce', next * WAKE_WINDOW_MS));
    expect(queueSqs.calls.deduplicated).toBe(deduplicated + 1);
    // nothing else wakes the plane: the self wake-up's run writes set 1, before .2's deadline
    await p.deliver();
    expect(p.waf.addresses(sets[1]!)).toEqual(['198.51.100.3/32', '198.51.100.1/32']);
    const written = p.waf.updates.at(-1)!;
    expect(written.id).toBe(sets[1]!.id);
    expect(written.at).toBeLessThanOrEqual(deadline);
    expect(written.at - ranAt).toBeLessThanOrEqual(5_000);
    // nothing pending any more: no further wake-up
    expect(p.state.wafPending.size).toBe(0);
    expect(selfWakes(queueSqs)).toHaveLength(1);
  });
});

describe('a busy plane with removals pending run after run', () => {
  it.each([11, 12, 13, 14, 15])('sends itself no wake-up (each would arrive ahead of its window and make the run sleep, paid, until notBefore); every lift is gone by its deadline while the traffic lasts; when the traffic stops after window %i, the next wake-up of any kind writes the rest', async (windows) => {
    const sets = [setRef(0), setRef(1), setRef(2), setRef(3)];
    const clock = new SimClock();
    const sqs = new FakeSqs(clock);
    const p = await plane({ sets, wafMaxPerSet: 10, sqs, clock });
    const queue = new EnforceQueue(sqs.client, sqs.queueUrl);
    const t0 = p.clock.now();
    for (let i = 0; i < 40; i++) await p.block(host(i), t0 - 60_000 + i);
    await sendAsOther(sqs, () => queue.wake('enforce', p.clock.now()));
    await p.deliver();
    const queues = sets.map((ref) => p.waf.addresses(ref));
    const lifted = new Map<string, number>();
    let lifts = 0;
    let n = 100;
    let wokeBeforeBusy = 0;
    for (let window = 0; window < windows; window++) {
      p.clock.advance(2_000);
      // each decision window: two lifts in the next sets round-robin, and a new block
      for (let k = 0; k < 2; k++) {
        const address = queues[lifts++ % 4]!.shift()!;
        await p.lift(address.replace('/32', ''), p.clock.now() - 500);
        lifted.set(address, p.clock.now() - 500 + LIFT_DEFER_MS);
      }
      await p.block(host(n++), p.clock.now() - 400);
      await sendAsOther(sqs, () => queue.wake('enforce', p.clock.now()));
      await p.deliver();
      // the first window's run comes 8 s after the first full run (its paced writes): not busy yet
      if (window === 1) wokeBeforeBusy = selfWakes(sqs).length;
      const held = p.held();
      expect([...lifted].filter(([a, deadline]) => deadline <= p.clock.now() && held.has(a))).toEqual([]);
    }
    // no wake-up of its own once busy (runs at most BUSY_GAP_MS apart)
    expect(wokeBeforeBusy).toBeLessThanOrEqual(1);
    expect(selfWakes(sqs)).toHaveLength(wokeBeforeBusy);
    expect(p.waf.updates.length).toBeGreaterThan(0);
    // traffic stops: what is pending stays until the next wake-up (here a lift 40 s later), which writes it all
    const pending = new Map([...p.state.wafPending.values()].flatMap((set) => [...set]));
    expect(pending.size).toBeGreaterThan(0);
    expect(sqs.depth).toBe(0); // nothing on its way
    p.clock.advance(40_000);
    await sendAsOther(sqs, () => queue.wake('enforce', p.clock.now()));
    await p.deliver();
    for (const address of pending.keys()) expect(p.held().has(address)).toBe(false);
    expect(p.state.wafPending.size).toBe(0);
  }, 60_000);

  it('the reconcile writes whatever a busy plane left pending when its traffic stopped', async () => {
    const sets = [setRef(0), setRef(1), setRef(2), setRef(3)];
    const clock = new SimClock();
    const sqs = new FakeSqs(clock);
    const p = await plane({ sets, wafMaxPerSet: 10, sqs, clock });
    const queue = new EnforceQueue(sqs.client, sqs.queueUrl);
    for (let i = 0; i < 40; i++) await p.block(host(i), p.clock.now() - 60_000 + i);
    await sendAsOther(sqs, () => queue.wake('enforce', p.clock.now()));
    await p.deliver();
    const lifted: string[] = [];
    for (let window = 0; window < 4; window++) {
      p.clock.advance(2_000);
      for (const ref of sets.slice(0, 2 + (window % 2))) {
        const address = p.waf.addresses(ref).find((a) => !lifted.includes(a))!;
        lifted.push(address);
        await p.lift(address.replace('/32', ''), p.clock.now() - 500);
      }
      await sendAsOther(sqs, () => queue.wake('enforce', p.clock.now()));
      await p.deliver();
    }
    expect(p.state.wafPending.size).toBeGreaterThan(0);
    p.clock.advance(600_000);
    await sendAsOther(sqs, () => queue.wake('reconcile', p.clock.now()));
    await p.deliver();
    for (const address of lifted) expect(p.held().has(address)).toBe(false);
  }, 60_000);
});

describe('an address blocked again while its removal is pending', () => {
  it('stays in its set: the pending removal is cancelled, and no later run removes it', async () => {
    const sets = [setRef(0), setRef(1)];
    const p = await plane({ sets, wafMaxPerSet: 2 });
    const t0 = p.clock.now();
    for (const [i, h] of ['198.51.100.1', '198.51.100.2', '198.51.100.3', '198.51.100.4'].entries()) await p.block(h, t0 - 10_000 + i);
    await p.run();
    expect(p.waf.addresses(sets[1]!)).toEqual(['198.51.100.2/32', '198.51.100.1/32']);
    p.clock.advance(3_000);
    await p.lift('198.51.100.4', p.clock.now() - 1_200); // set 0, due first
    await p.lift('198.51.100.1', p.clock.now() - 1_000); // set 1
    await p.block('198.51.100.9', p.clock.now() - 500);
    await p.run();
    expect(p.waf.addresses(sets[0]!)).toEqual(['198.51.100.3/32', '198.51.100.9/32']);
    expect(p.waf.addresses(sets[1]!)).toEqual(['198.51.100.2/32', '198.51.100.1/32']);
    expect([...(p.state.wafPending.get(`REGIONAL/${sets[1]!.id}`) ?? new Map()).keys()]).toEqual(['198.51.100.1/32']);
    // blocked again inside the deferral
    p.clock.advance(2_000);
    await p.block('198.51.100.1', p.clock.now() - 500);
    const updates = p.waf.updates.length;
    expect(await p.run()).toMatchObject({ run: 'incremental', blocked: 0, unblocked: 0, failures: [] });
    expect(p.waf.updates.length).toBe(updates); // nothing to write: the address is where it was
    expect(p.state.wafPending.size).toBe(0);
    for (let i = 0; i < 20; i++) {
      p.clock.advance(2_000);
      await p.run();
    }
    expect(p.waf.addresses(sets[1]!)).toEqual(['198.51.100.2/32', '198.51.100.1/32']);
    p.clock.advance(2_000);
    expect(await p.run('reconcile')).toMatchObject({ changes: 0, converged: true });
  });
});

describe('new blocks are never deferred', () => {
  it('when the set written this run fills up, the rest go into another set in a second, paced call (the one whose removal is due next: it drains too)', async () => {
    const sets = [setRef(0), setRef(1), setRef(2)];
    const p = await plane({ sets, wafMaxPerSet: 2 });
    const t0 = p.clock.now();
    for (const [i, h] of ['198.51.100.1', '198.51.100.2', '198.51.100.3', '198.51.100.4', '198.51.100.5'].entries()) await p.block(h, t0 - 10_000 + i);
    await p.run();
    expect(sets.map((ref) => p.waf.addresses(ref))).toEqual([['198.51.100.5/32', '198.51.100.4/32'], ['198.51.100.3/32', '198.51.100.2/32'], ['198.51.100.1/32']]);
    p.clock.advance(3_000);
    await p.lift('198.51.100.4', p.clock.now() - 1_500); // set 0: due first, room for one once written
    await p.lift('198.51.100.2', p.clock.now() - 1_000); // set 1: waits
    await p.block('198.51.100.8', p.clock.now() - 600);
    await p.block('198.51.100.9', p.clock.now() - 500);
    const updates = p.waf.updates.length;
    const slept = p.clock.slept;
    expect(await p.run()).toMatchObject({ run: 'incremental', blocked: 2, unblocked: 2, converged: true, failures: [] });
    expect(p.waf.updates.slice(updates).map((u) => u.id)).toEqual([sets[0]!.id, sets[1]!.id]);
    expect(p.clock.slept - slept).toBe(1_000);
    expect(p.obs.metric('Throttles')).toBe(0);
    expect(sets.map((ref) => p.waf.addresses(ref).sort())).toEqual([
      ['198.51.100.5/32', '198.51.100.8/32'],
      ['198.51.100.3/32', '198.51.100.9/32'],
      ['198.51.100.1/32'],
    ]);
    expect(p.state.wafPending.size).toBe(0);
  });
});

describe('the one-call-a-second quota is per account and Region', () => {
  it('the fake throttles a second UpdateIPSet in one second of one Region across scopes, and not across Regions', async () => {
    const clock = new SimClock();
    const waf = new WafServer(clock, () => 0.5);
    const regional = setRef(0);
    const global = setRef(1, 'CLOUDFRONT');
    waf.waf.addSet(regional);
    waf.waf.addSet(global);
    await waf.start();
    wire.track(waf);
    const update = async (ref: WafSetRef, region: string) => {
      const client = waf.client(1, region);
      const got = await client.send(new GetIPSetCommand({ Name: ref.name, Scope: ref.scope, Id: ref.id }));
      return client.send(new UpdateIPSetCommand({ Name: ref.name, Scope: ref.scope, Id: ref.id, Addresses: ['198.51.100.1/32'], LockToken: got.LockToken! }));
    };
    await update(regional, 'us-east-1');
    await expect(update(global, 'us-east-1')).rejects.toMatchObject({ name: 'ThrottlingException' });
    clock.advance(1_000);
    await update(global, 'us-east-1');
    await update(regional, 'eu-west-1'); // another Region: its own second
  });

  it('a us-east-1 plane writing both scopes makes its two calls a second apart (the pacer), with no throttling; an eu-west-1 plane needs no wait', async () => {
    const regional = setRef(0);
    const global = setRef(1, 'CLOUDFRONT');
    for (const [regions, wait] of [[{ REGIONAL: 'us-east-1', CLOUDFRONT: 'us-east-1' }, 1_000], [{ REGIONAL: 'eu-west-1', CLOUDFRONT: 'us-east-1' }, 0]] as const) {
      const p = await plane({ sets: [regional, global], wafMaxPerSet: 10, clients: regions });
      await p.run();
      const settled = p.clock.now();
      p.clock.advance(5_000);
      await p.block('198.51.100.1', p.clock.now() - 500);
      const slept = p.clock.slept;
      const updates = p.waf.updates.length;
      expect(await p.run()).toMatchObject({ run: 'incremental', failures: [] });
      const calls = p.waf.updates.slice(updates);
      expect(calls.map((c) => [c.scope, c.region])).toEqual([
        ['REGIONAL', regions.REGIONAL],
        ['CLOUDFRONT', 'us-east-1'],
      ]);
      expect(calls[1]!.at - calls[0]!.at).toBe(wait);
      expect(p.clock.slept - slept).toBe(wait);
      expect(p.obs.metric('Throttles')).toBe(0);
      expect(settled).toBeGreaterThan(0);
    }
  });
});

describe('an operator edits a set whose removals are pending', () => {
  it('the incremental write meets the lock, applies its delta on the fresh list; the reconcile restores the desired list', async () => {
    const sets = [setRef(0), setRef(1)];
    const p = await plane({ sets, wafMaxPerSet: 2 });
    const t0 = p.clock.now();
    for (const [i, h] of ['198.51.100.1', '198.51.100.2', '198.51.100.3', '198.51.100.4'].entries()) await p.block(h, t0 - 10_000 + i);
    await p.run();
    p.clock.advance(3_000);
    await p.lift('198.51.100.4', p.clock.now() - 1_200);
    await p.lift('198.51.100.1', p.clock.now() - 1_000);
    await p.block('198.51.100.9', p.clock.now() - 500);
    await p.run();
    expect(p.state.wafPending.get(`REGIONAL/${sets[1]!.id}`)?.has('198.51.100.1/32')).toBe(true);
    // the operator removes .2 (ours) and adds one of theirs to set 1, under the warm cache
    p.waf.consoleEdit(sets[1]!, (list) => [...list.filter((a) => a !== '198.51.100.2/32'), '192.0.2.77/32']);
    p.clock.advance(2_000);
    expect(await p.run()).toMatchObject({ run: 'incremental', failures: [] });
    expect(p.obs.metric('LockRetries')).toBe(1);
    // the pending removal is written on what the set holds now; the operator's edit is kept
    expect(p.waf.addresses(sets[1]!)).toEqual(['192.0.2.77/32']);
    expect(p.state.wafPending.size).toBe(0);
    p.clock.advance(2_000);
    const repair = await p.run('reconcile');
    expect(repair).toMatchObject({ run: 'full', converged: true });
    expect(p.obs.metric('Repairs')).toBe(1);
    expect([...p.held()].sort()).toEqual(['198.51.100.2/32', '198.51.100.3/32', '198.51.100.9/32']);
  });
});

describe('the self wake-up of an organization plane, and one that fails', () => {
  it('a plane (PLANE_ID) sends the bus rule\'s body without a deduplication id: the rule\'s wake-up of that window is deduplicated by content', async () => {
    const sets = [setRef(0), setRef(1)];
    const clock = new SimClock();
    const sqs = new FakeSqs(clock, undefined, undefined, { contentBasedDeduplication: true });
    const p = await plane({ sets, wafMaxPerSet: 2, sqs, clock, orgPlane: true });
    const t0 = p.clock.now();
    for (const [i, h] of ['198.51.100.1', '198.51.100.2', '198.51.100.3', '198.51.100.4'].entries()) await p.block(h, t0 - 10_000 + i);
    // the bus rule's body (lib/org/EnforcementPlane.ts: {"kind":<kind>,"notBefore":<notBefore>})
    const rule = (notBefore: number) => sendAsOther(sqs, async () => {
      await sqs.client.send(new SendMessageCommand({ QueueUrl: sqs.queueUrl, MessageBody: `{"kind":"enforce","notBefore":${notBefore}}`, MessageGroupId: 'enforce' }));
    });
    await rule(p.clock.now());
    await p.deliver();
    p.clock.advance(8_000); // a plane that is not busy (runs more than BUSY_GAP_MS apart) wakes itself
    await p.lift('198.51.100.4', p.clock.now() - 1_200);
    await p.lift('198.51.100.1', p.clock.now() - 1_000);
    await p.block('198.51.100.9', p.clock.now() - 500);
    await rule(p.clock.now());
    expect(await p.deliverOne()).toBe(true);
    const next = Math.floor(p.clock.now() / WAKE_WINDOW_MS) + 1;
    const notBefore = (next + 1) * WAKE_WINDOW_MS + SETTLE_MS;
    expect(selfWakes(sqs)).toEqual([{ body: `{"kind":"enforce","notBefore":${notBefore}}` }]);
    const deduplicated = sqs.calls.deduplicated;
    await rule(notBefore);
    expect(sqs.calls.deduplicated).toBe(deduplicated + 1);
    await p.deliver();
    expect(p.held().has('198.51.100.1/32')).toBe(false);
  });

  it('a self wake-up SQS refuses is logged and the run still succeeds; the next run writes what is pending', async () => {
    const sets = [setRef(0), setRef(1)];
    const clock = new SimClock();
    const sqs = new FakeSqs(clock);
    const p = await plane({ sets, wafMaxPerSet: 2, sqs, clock });
    const queue = new EnforceQueue(sqs.client, sqs.queueUrl);
    const t0 = p.clock.now();
    for (const [i, h] of ['198.51.100.1', '198.51.100.2', '198.51.100.3', '198.51.100.4'].entries()) await p.block(h, t0 - 10_000 + i);
    await sendAsOther(sqs, () => queue.wake('enforce', p.clock.now()));
    await p.deliver();
    p.clock.advance(8_000); // not busy: the run wakes itself
    await p.lift('198.51.100.4', p.clock.now() - 1_200);
    await p.lift('198.51.100.1', p.clock.now() - 1_000);
    await p.block('198.51.100.9', p.clock.now() - 500);
    await sendAsOther(sqs, () => queue.wake('enforce', p.clock.now()));
    sqs.failNext('SendMessage', 'InternalError');
    const { failures } = await p.deliver();
    expect(failures).toBe(0);
    expect(p.obs.logged('could not send the wake-up for pending WAF removals; a later run or the reconcile writes them')).toHaveLength(1);
    expect(p.held().has('198.51.100.1/32')).toBe(true);
    // no wake-up on its way: the next run (any wake-up) writes the pending set, due first
    p.clock.advance(3_000);
    await sendAsOther(sqs, () => queue.wake('enforce', p.clock.now()));
    await p.deliver();
    expect(p.held().has('198.51.100.1/32')).toBe(false);
  });
});

describe('two families in one scope', () => {
  it('a run that writes one family\'s set leaves the other family\'s removals that can wait: one UpdateIPSet, no pacer sleep; a later run with nothing else writes them', async () => {
    const v6 = (i: number): WafSetRef => ({ scope: 'REGIONAL', family: 'ipv6', name: `portsnare-regional-v6-${i}`, id: `00000000-0000-4000-8000-10000000000${i}` });
    const sets = [setRef(0), setRef(1), v6(0)];
    const p = await plane({ sets, wafMaxPerSet: 2 });
    const t0 = p.clock.now();
    for (const [i, h] of ['198.51.100.1', '198.51.100.2', '198.51.100.3', '198.51.100.4'].entries()) await p.block(h, t0 - 10_000 + i);
    for (const [i, h] of ['2001:db8::1', '2001:db8::2'].entries()) {
      const stored = await p.repo.get(h);
      const at = t0 - 5_000 + i;
      expect(await p.repo.save({ target: h, family: 'ipv6', reason: 'manual', firstSeen: at, lastSeen: at, hitCount: 1, offences: 1, blockedAt: at, expiresAt: at + HOUR, active: true, eventIds: [], sensors: [] }, stored?.version, at)).toBe(true);
    }
    await p.run();
    expect(p.waf.addresses(sets[2]!)).toEqual(['2001:db8::2/128', '2001:db8::1/128']);
    p.clock.advance(3_000);
    await p.lift('2001:db8::1', p.clock.now() - 1_500);
    await p.lift('198.51.100.4', p.clock.now() - 1_200);
    await p.block('198.51.100.9', p.clock.now() - 500);
    const updates = p.waf.updates.length;
    const slept = p.clock.slept;
    expect(await p.run()).toMatchObject({ run: 'incremental', failures: [] });
    expect(p.waf.updates.slice(updates).map((u) => u.id)).toEqual([sets[0]!.id]);
    expect(p.clock.slept - slept).toBe(0);
    expect(p.waf.addresses(sets[2]!)).toEqual(['2001:db8::2/128', '2001:db8::1/128']);
    // nothing else to write: the next run writes the IPv6 set
    p.clock.advance(2_000);
    await p.run();
    expect(p.waf.updates.slice(updates).map((u) => u.id)).toEqual([sets[0]!.id, sets[2]!.id]);
    expect(p.waf.addresses(sets[2]!)).toEqual(['2001:db8::2/128']);
    expect(p.state.wafPending.size).toBe(0);
  });
});
