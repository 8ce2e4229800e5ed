/**
 * Incremental enforce runs (lambda/shared/enforcer.ts) attacked on the real engines: dynalite
 * (the `changes` index, aws/repository.ts changesSince / recentActive / listEnforced)
 * and the WAF and EC2 wire fakes behind the real SDK clients. Each case is a way an incremental
 * run could go wrong; the expectation is what AWS holds after it, and after the next full run.
 * - UpdateIPSet fails with WAFOptimisticLockException when the set changed since the token was
 *   issued; a successful update returns NextLockToken.
 *   https://docs.aws.amazon.com/waf/latest/APIReference/API_UpdateIPSet.html
 * - A global secondary index is eventually consistent: an entry can become visible after the
 *   change it records. https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html#GSI.Writes
 */
import { describe, expect, it } from 'vitest';
import type { BlockRecord } from '../../core/policy';
import type { WafSetRef } from '../../core/settings';
import { CURSOR_MAX_AGE_MS, enforce, type EnforceMode, newEnforcerState, OVERLAP_MS } from '../../lambda/shared/enforcer';
import { NaclAdapter } from '../../aws/nacl-adapter';
import { BlockRepository, PlacementLedger } from '../../aws/repository';
import { UpdatePacer, WafAdapter } from '../../aws/waf-adapter';
import { SimClock } from '../fakes/clock';
import { FakeEc2 } from '../fakes/ec2';
import { RecordingObservability } from '../fakes/observability';
import { ACL_A, SET_V4, SET_V6, testSettings } from '../fakes/world';
import { wireSuite } from './suite';
import { Ec2Server } from './ec2-server';
import { WafServer } from './wafv2-server';

const wire = wireSuite('incremental');

const HOUR = 3600_000;

async function plane(options: { sets?: WafSetRef[]; acls?: string[]; wafMaxPerSet?: number; table?: string; clock?: SimClock; waf?: WafServer; ec2?: Ec2Server; allowlist?: string[] } = {}) {
  const clock = options.clock ?? new SimClock();
  const obs = new RecordingObservability();
  const ec2 = options.ec2 ?? new Ec2Server(new FakeEc2(20, () => 0.5));
  const acls = options.acls ?? [ACL_A];
  if (!options.ec2) {
    for (const acl of acls) ec2.ec2.addAcl(acl, { ipv6: true });
    await ec2.start();
    wire.track(ec2);
  }
  const sets = options.sets ?? [SET_V4, SET_V6];
  let waf = options.waf;
  if (!waf) {
    waf = new WafServer(clock, () => 0.5);
    for (const ref of sets) waf.waf.addSet(ref);
    await waf.start();
    wire.track(waf);
  }
  const table = options.table ?? (await wire.nextTable('incr'));
  const repo = new BlockRepository(wire.db.doc, table);
  const settings = testSettings({ nacl: { aclIds: acls, ruleRange: [10, 60], quotaPerDirection: 20 }, waf: { sets }, ...(options.allowlist ? { guard: { allowlist: options.allowlist, protectedCidrs: ['10.0.0.0/16'], blockableSpecialCidrs: ['192.0.2.0/24', '203.0.113.0/24', '2001:db8::/32'] } } : {}) });
  const state = newEnforcerState();
  const deps = {
    repo,
    nacl: new NaclAdapter(ec2.client(1), clock, obs, () => 0.5, new PlacementLedger(wire.db.doc, table), [10, 60]),
    waf: new WafAdapter({ REGIONAL: waf.client(1) }, clock, obs, new UpdatePacer(), () => 0.5),
    settings,
    obs,
    clock,
    state,
    ...(options.wafMaxPerSet ? { wafMaxPerSet: options.wafMaxPerSet } : {}),
  };
  const fakeWaf = waf;
  return {
    clock,
    obs,
    ec2,
    waf: fakeWaf,
    repo,
    state,
    table,
    run: (mode: EnforceMode = 'enforce') => enforce(deps, mode),
    /** a block decided at `at` (its change stamped then), saved now */
    async block(target: string, at = clock.now()): Promise<void> {
      const stored = await repo.get(target);
      const record: BlockRecord = { target, family: target.includes(':') ? 'ipv6' : 'ipv4', reason: 'manual', firstSeen: at, lastSeen: at, hitCount: 1, offences: 1, blockedAt: at, expiresAt: at + HOUR, active: true, eventIds: [], sensors: [] };
      expect(await repo.save(record, stored?.version, at)).toBe(true);
    },
    async lift(target: string, at = clock.now()): Promise<void> {
      const stored = (await repo.get(target))!;
      expect(await repo.save({ ...stored.record, active: false, liftedBy: 'manual' }, stored.version, at)).toBe(true);
    },
    v4: () => fakeWaf.waf.addresses(SET_V4).sort(),
    acl: () =>
      ec2.ec2
        .entries(ACL_A)
        .filter((e) => !e.Egress && e.RuleNumber! >= 10 && e.RuleNumber! <= 60)
        .map((e) => e.CidrBlock ?? e.Ipv6CidrBlock)
        .sort(),
    count: (op: 'GetIPSet' | 'UpdateIPSet') => fakeWaf.count(op),
  };
}

describe('an incremental run', () => {
  it('reads only the changes: a warm run calls no GetIPSet, one UpdateIPSet, and leaves every other address as it is', async () => {
    const p = await plane();
    await p.block('203.0.113.1');
    await p.block('2001:db8::1');
    expect((await p.run()).run).toBe('full'); // cold container
    p.clock.advance(3_000);
    await p.block('203.0.113.2');
    const gets = p.count('GetIPSet');
    const updates = p.count('UpdateIPSet');
    const summary = await p.run();
    // the two blocks of the full run are read again (within the overlap), and change nothing
    expect(summary).toMatchObject({ run: 'incremental', changesRead: 3, desired: 2, blocked: 1, unblocked: 0, converged: true, failures: [] });
    expect(p.count('GetIPSet')).toBe(gets);
    expect(p.count('UpdateIPSet')).toBe(updates + 1);
    expect(p.v4()).toEqual(['203.0.113.1/32', '203.0.113.2/32']);
    expect(p.waf.waf.addresses(SET_V6)).toEqual(['2001:db8::1/128']);
    expect(p.acl()).toEqual(['2001:db8::1/128', '203.0.113.1/32', '203.0.113.2/32']);
  });

  it('the pacer\'s cost: a run writing both families of one scope waits 1 s between its two UpdateIPSet calls (one a second per account and Region)', async () => {
    const p = await plane();
    await p.run();
    p.clock.advance(5_000);
    await p.block('203.0.113.1');
    await p.block('2001:db8::1');
    const before = p.clock.now();
    expect(await p.run()).toMatchObject({ run: 'incremental', changes: 4 }); // two sets, two ACL entries
    const spent = p.clock.now() - before;
    expect(spent).toBeGreaterThanOrEqual(1_000);
    expect(spent).toBeLessThan(1_500);
    // one family only: no wait
    p.clock.advance(5_000);
    await p.block('203.0.113.2');
    const again = p.clock.now();
    await p.run();
    expect(p.clock.now() - again).toBeLessThan(500);
  });

  it('a change whose index entry shows up later than the overlap is not seen; nothing it did not see lifted is removed; the next full run repairs both', async () => {
    const p = await plane();
    await p.block('203.0.113.1');
    await p.run(); // full
    p.clock.advance(60_000);
    expect((await p.run()).run).toBe('incremental'); // cursor: now
    const cursor = p.clock.now();
    // decided (and lifted) 25 s before the cursor, their index entries visible only now: past the 20 s overlap
    const late = cursor - OVERLAP_MS - 5_000;
    await p.block('203.0.113.9', late);
    await p.lift('203.0.113.1', late);
    p.clock.advance(2_000);
    const summary = await p.run();
    expect(summary).toMatchObject({ run: 'incremental', changesRead: 0, failures: [] });
    expect(p.v4()).toEqual(['203.0.113.1/32']); // the lift was not seen: 203.0.113.1 stays; .9 not yet added
    // the ACLs are planned from what the last full run and the changes since showed (the
    // container's NACL cache, lambda/shared/enforcer.ts): the late entries are not seen there either
    expect(p.acl()).toEqual(['203.0.113.1/32']);
    const repair = await p.run('reconcile');
    // the reconcile repairs both points: .9 in, .1 out, in the set and in the ACL
    expect(repair).toMatchObject({ run: 'full', blocked: 1, unblocked: 1, converged: true });
    expect(p.v4()).toEqual(['203.0.113.9/32']);
    expect(p.acl()).toEqual(['203.0.113.9/32']);
    expect(p.obs.metric('Repairs')).toBe(2);
  });

  it('a block lifted and blocked again inside the overlap ends present, written at most once per change', async () => {
    const p = await plane();
    await p.run(); // full, nothing
    p.clock.advance(1_000);
    await p.block('203.0.113.5');
    await p.run();
    expect(p.v4()).toEqual(['203.0.113.5/32']);
    const updates = p.count('UpdateIPSet');
    p.clock.advance(3_000);
    await p.lift('203.0.113.5');
    p.clock.advance(3_000);
    await p.block('203.0.113.5');
    p.clock.advance(2_000);
    expect(await p.run()).toMatchObject({ run: 'incremental', changes: 0, converged: true });
    expect(p.count('UpdateIPSet')).toBe(updates);
    expect(p.v4()).toEqual(['203.0.113.5/32']);
    // with a run between the lift and the block: removed, then added again
    p.clock.advance(1_000);
    await p.lift('203.0.113.5');
    p.clock.advance(2_000);
    expect(await p.run()).toMatchObject({ run: 'incremental', unblocked: 1 });
    expect(p.v4()).toEqual([]);
    expect(p.acl()).toEqual([]);
    p.clock.advance(2_000);
    await p.block('203.0.113.5');
    p.clock.advance(2_000);
    expect(await p.run()).toMatchObject({ run: 'incremental', blocked: 1 });
    expect(p.v4()).toEqual(['203.0.113.5/32']);
    expect(p.acl()).toEqual(['203.0.113.5/32']);
  });

  it('the same change read twice (the overlap, a redelivered wake-up) writes nothing the second time', async () => {
    const p = await plane();
    await p.run();
    p.clock.advance(1_000);
    await p.block('203.0.113.6');
    await p.run();
    const updates = p.count('UpdateIPSet');
    const entries = p.ec2.count('CreateNetworkAclEntry') + p.ec2.count('ReplaceNetworkAclEntry');
    p.clock.advance(5_000);
    expect(await p.run()).toMatchObject({ run: 'incremental', changesRead: 1, changes: 0, blocked: 0, converged: true });
    expect(await p.run()).toMatchObject({ run: 'incremental', changesRead: 1, changes: 0 });
    expect(p.count('UpdateIPSet')).toBe(updates);
    expect(p.ec2.count('CreateNetworkAclEntry') + p.ec2.count('ReplaceNetworkAclEntry')).toBe(entries);
  });

  it('a cold container, a stale cursor or reconcile: a full run, which reads the sets again', async () => {
    const p = await plane();
    await p.block('203.0.113.7');
    expect((await p.run()).run).toBe('full');
    p.clock.advance(1_000);
    expect((await p.run()).run).toBe('incremental');
    p.clock.advance(CURSOR_MAX_AGE_MS);
    const gets = p.count('GetIPSet');
    expect((await p.run()).run).toBe('full');
    expect(p.count('GetIPSet')).toBe(gets + 2);
    p.clock.advance(1_000);
    expect((await p.run('reconcile')).run).toBe('full');
    // another container (cold: its own state) over the same table and AWS resources
    const other = await plane({ table: p.table, clock: p.clock, waf: p.waf, ec2: p.ec2 });
    expect(await other.run()).toMatchObject({ run: 'full', changes: 0, converged: true });
  });

  it('after a transient failure the next run is a full one', async () => {
    const p = await plane();
    await p.run();
    p.clock.advance(1_000);
    await p.block('203.0.113.8');
    p.waf.waf.failNext('UpdateIPSet', 'WAFInternalErrorException', 3); // every attempt of this run (WAF_WRITE_ATTEMPTS)
    const failed = await p.run();
    expect(failed.failures.map((f) => [f.point, f.error, f.transient])).toEqual([[`waf:${SET_V4.name}`, 'WAFInternalErrorException', true]]);
    expect(p.state.cursor).toBeUndefined();
    p.clock.advance(30_000);
    expect(await p.run()).toMatchObject({ run: 'full', failures: [], converged: true });
    expect(p.v4()).toEqual(['203.0.113.8/32']);
  });
});

describe('the NACLs of an incremental run', () => {
  it('read further than the newest records when the guard refuses them, so no older entry is dropped', async () => {
    const p = await plane({ allowlist: ['192.0.2.0/24'] });
    const hosts = Array.from({ length: 5 }, (_, i) => `203.0.113.${i + 1}`);
    for (const [i, host] of hosts.entries()) await p.block(host, p.clock.now() - 60_000 + i * 1_000);
    await p.run();
    expect(p.acl()).toEqual(hosts.map((h) => `${h}/32`).sort());
    p.clock.advance(OVERLAP_MS + 5_000);
    // 40 newer records the guard refuses (written by something other than decide): more than an ACL holds
    for (let i = 0; i < 40; i++) await p.block(`192.0.2.${i + 1}`, p.clock.now() - 1_000 + i);
    p.clock.advance(1_000);
    const summary = await p.run();
    expect(summary).toMatchObject({ run: 'incremental', failures: [] });
    expect(p.acl()).toEqual(hosts.map((h) => `${h}/32`).sort());
    expect(p.v4()).toEqual(hosts.map((h) => `${h}/32`).sort());
  });
});

describe('an operator edits a set while the cache is warm', () => {
  it('the write meets WAFOptimisticLockException, reads the set again and applies the delta on it; the next full run restores ours', async () => {
    const p = await plane();
    await p.block('203.0.113.1');
    await p.block('203.0.113.2');
    await p.run();
    p.clock.advance(OVERLAP_MS + 5_000);
    await p.run(); // the cursor moves past the blocks' changes: no later run reads them again
    // the operator removes one of ours and adds one of theirs
    p.waf.waf.consoleEdit(SET_V4, (list) => [...list.filter((a) => a !== '203.0.113.1/32'), '192.0.2.200/32']);
    await p.block('203.0.113.3');
    const summary = await p.run();
    expect(summary).toMatchObject({ run: 'incremental', failures: [] });
    expect(p.obs.metric('LockRetries')).toBe(1);
    // the incremental run added its change and removed nothing it was not told about
    expect(p.v4()).toEqual(['192.0.2.200/32', '203.0.113.2/32', '203.0.113.3/32']);
    // later incremental runs write with the token of their own last write (no lock conflict)
    p.clock.advance(2_000);
    await p.block('203.0.113.4');
    await p.run();
    expect(p.obs.metric('LockRetries')).toBe(1);
    expect(p.v4()).toEqual(['192.0.2.200/32', '203.0.113.2/32', '203.0.113.3/32', '203.0.113.4/32']);
    // the full run brings back what the operator removed; the sets are portsnare's own, so it
    // writes the whole desired list (as before incremental runs: test/lambda/enforce.test.ts)
    p.clock.advance(2_000);
    await p.run('reconcile');
    expect(p.v4()).toEqual(['203.0.113.1/32', '203.0.113.2/32', '203.0.113.3/32', '203.0.113.4/32']);
  });

  it('an operator adding one of our own addresses meanwhile: no second write', async () => {
    const p = await plane();
    await p.run();
    p.clock.advance(2_000);
    p.waf.waf.consoleEdit(SET_V4, (list) => [...list, '203.0.113.3/32']);
    await p.block('203.0.113.3');
    const updates = p.count('UpdateIPSet');
    await p.run();
    expect(p.count('UpdateIPSet')).toBe(updates + 1); // the refused one; the re-read shows it done
    expect(p.v4()).toEqual(['203.0.113.3/32']);
  });
});

describe('IP sets full', () => {
  it('an incremental run reports the overflow and leaves it to the full run, which keeps the most recent', async () => {
    const p = await plane({ sets: [SET_V4], wafMaxPerSet: 3 });
    for (const [i, host] of ['203.0.113.1', '203.0.113.2', '203.0.113.3', '203.0.113.4'].entries()) await p.block(host, p.clock.now() - 10_000 + i * 1_000);
    const full = await p.run();
    expect(full.incomplete).toContain('waf:REGIONAL/ipv4: IP sets full, 1 addresses left out');
    expect(p.v4()).toEqual(['203.0.113.2/32', '203.0.113.3/32', '203.0.113.4/32']);
    expect(p.obs.metric('WafCapacityFull')).toBe(1);
    // the next run still reads the four (its window starts OVERLAP_MS before the full run): .1 overflows again
    p.clock.advance(OVERLAP_MS + 5_000);
    expect(await p.run()).toMatchObject({ run: 'incremental', changesRead: 4, converged: false });
    expect(p.obs.metric('WafCapacityFull')).toBe(2);
    p.clock.advance(OVERLAP_MS + 5_000);
    expect(await p.run()).toMatchObject({ run: 'incremental', changesRead: 0, converged: true });
    p.clock.advance(2_000);
    await p.block('203.0.113.5');
    const incremental = await p.run();
    expect(incremental).toMatchObject({ run: 'incremental', converged: false, incomplete: ['waf:REGIONAL/ipv4: IP sets full, 1 addresses left out'] });
    expect(p.v4()).toEqual(['203.0.113.2/32', '203.0.113.3/32', '203.0.113.4/32']);
    expect(p.obs.metric('WafCapacityFull')).toBe(3);
    p.clock.advance(2_000);
    const repair = await p.run('reconcile');
    expect(repair.incomplete).toContain('waf:REGIONAL/ipv4: IP sets full, 2 addresses left out');
    expect(p.v4()).toEqual(['203.0.113.3/32', '203.0.113.4/32', '203.0.113.5/32']);
  });
});

describe('200 planes in one process', () => {
  it('each holds its own cursor and cache: a run of one plane, or an edit of one plane\'s set, changes no other', async () => {
    const clock = new SimClock();
    const table = await wire.nextTable('incr-planes');
    const waf = new WafServer(clock, () => 0.5);
    // each plane is another account: WAF's one-update-a-second limit is per account and Region
    waf.waf.enforceRate = false;
    const refs = Array.from({ length: 200 }, (_, i): WafSetRef => ({ scope: 'REGIONAL', family: 'ipv4', name: `plane-${i}`, id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}` }));
    for (const ref of refs) waf.waf.addSet(ref);
    await waf.start();
    wire.track(waf);
    const repo = new BlockRepository(wire.db.doc, table);
    const now = clock.now();
    await repo.save({ target: '203.0.113.1', family: 'ipv4', reason: 'manual', firstSeen: now, lastSeen: now, hitCount: 1, offences: 1, blockedAt: now, expiresAt: now + HOUR, active: true, eventIds: [], sensors: [] }, undefined, now);
    const client = waf.client(1);
    const planes = refs.map((ref) => {
      const obs = new RecordingObservability();
      const state = newEnforcerState();
      const deps = { repo, nacl: new NaclAdapter(undefined as never, clock, obs, () => 0.5, new PlacementLedger(wire.db.doc, table), [10, 60]), waf: new WafAdapter({ REGIONAL: client }, clock, obs, new UpdatePacer(), () => 0.5), settings: testSettings({ nacl: { aclIds: [], ruleRange: [10, 60], quotaPerDirection: 20 }, waf: { sets: [ref] } }), obs, clock, state };
      return { ref, obs, state, run: () => enforce(deps, 'enforce') };
    });
    for (const p of planes) expect((await p.run()).run).toBe('full');
    clock.advance(2_000);
    const later = clock.now();
    await repo.save({ target: '203.0.113.2', family: 'ipv4', reason: 'manual', firstSeen: later, lastSeen: later, hitCount: 1, offences: 1, blockedAt: later, expiresAt: later + HOUR, active: true, eventIds: [], sensors: [] }, undefined, later);
    clock.advance(1_000);
    for (const p of planes.slice(0, 100)) expect((await p.run()).run).toBe('incremental');
    expect(planes.filter((p) => waf.waf.addresses(p.ref).includes('203.0.113.2/32')).map((p) => p.ref.name)).toEqual(planes.slice(0, 100).map((p) => p.ref.name));
    expect(new Set(planes.map((p) => p.state.cursor)).size).toBe(2);
    waf.waf.consoleEdit(refs[150]!, (list) => [...list, '192.0.2.150/32']);
    clock.advance(1_000);
    for (const p of planes.slice(100)) expect((await p.run()).run).toBe('incremental');
    expect(planes.map((p) => p.obs.metric('LockRetries'))).toEqual(planes.map((_, i) => (i === 150 ? 1 : 0)));
    expect(planes.every((p) => waf.waf.addresses(p.ref).includes('203.0.113.2/32'))).toBe(true);
    expect(waf.waf.addresses(refs[150]!)).toContain('192.0.2.150/32');
  }, 120_000);
});
