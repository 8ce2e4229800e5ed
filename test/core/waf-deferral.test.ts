/**
 * core/waf.ts planWafDelta with a deferral (issue 20): literal plans of which sets an incremental
 * run writes and which removals stay pending. The wire-level properties (one UpdateIPSet a run,
 * deadlines on a simulated clock, the self wake-up) are in test/wire/waf-deferral.test.ts.
 */
import { describe, expect, it } from 'vitest';
import type { WafSetRef } from '../../core/settings';
import { planWafDelta } from '../../core/waf';

const ref = (id: string): WafSetRef => ({ scope: 'REGIONAL', family: 'ipv4', name: id, id });
const A = ref('a');
const B = ref('b');
const C = ref('c');
const gone = (address: string, deadline?: number) => ({ address, family: 'ipv4' as const, present: false, ...(deadline !== undefined ? { deadline } : {}) });
const blocked = (address: string) => ({ address, family: 'ipv4' as const, present: true });
const written = (plan: ReturnType<typeof planWafDelta>) => plan.updates.map((u) => [u.ref.id, u.addresses, u.removed]);
const pendingOf = (plan: ReturnType<typeof planWafDelta>) => Object.fromEntries([...plan.pending].map(([key, set]) => [key, Object.fromEntries(set)]));

describe('planWafDelta with a deferral', () => {
  const sets = [
    { ref: A, addresses: ['198.51.100.1/32', '198.51.100.2/32'] },
    { ref: B, addresses: ['198.51.100.3/32', '198.51.100.4/32'] },
  ];

  it('removals in two sets, nothing new: writes the set whose removal is due first, the other waits with its deadline', () => {
    const plan = planWafDelta(sets, [gone('198.51.100.1/32', 50_000), gone('198.51.100.3/32', 40_000)], 2, { pending: new Map(), writeBy: 10_000 });
    expect(written(plan)).toEqual([['b', ['198.51.100.4/32'], ['198.51.100.3/32']]]);
    expect(pendingOf(plan)).toEqual({ 'REGIONAL/a': { '198.51.100.1/32': 50_000 } });
    expect(Object.fromEntries([...plan.carried].map(([k, v]) => [k, Object.fromEntries(v)]))).toEqual({ 'REGIONAL/b': { '198.51.100.3/32': 40_000 } });
  });

  it('a new block goes into the set whose removal is due first (its room), and that set carries the removal', () => {
    const plan = planWafDelta(sets, [gone('198.51.100.1/32', 30_000), gone('198.51.100.3/32', 40_000), blocked('203.0.113.9/32')], 2, { pending: new Map(), writeBy: 10_000 });
    expect(written(plan)).toEqual([['a', ['198.51.100.2/32', '203.0.113.9/32'], ['198.51.100.1/32']]]);
    expect(pendingOf(plan)).toEqual({ 'REGIONAL/b': { '198.51.100.3/32': 40_000 } });
    expect(plan.overflow).toEqual([]);
  });

  it('a removal due by writeBy is written in a second set; one without a deadline at once', () => {
    const due = planWafDelta(sets, [gone('198.51.100.1/32', 9_000), gone('198.51.100.3/32', 9_500)], 2, { pending: new Map(), writeBy: 10_000 });
    expect(written(due).map(([id]) => id)).toEqual(['a', 'b']);
    expect(due.pending.size).toBe(0);
    const now = planWafDelta(sets, [gone('198.51.100.1/32', 50_000), gone('198.51.100.3/32')], 2, { pending: new Map(), writeBy: 10_000 });
    expect(written(now)).toEqual([['b', ['198.51.100.4/32'], ['198.51.100.3/32']]]);
    expect(pendingOf(now)).toEqual({ 'REGIONAL/a': { '198.51.100.1/32': 50_000 } });
  });

  it('a pending removal of an address blocked again is cancelled; one of an address the set no longer holds is dropped', () => {
    const pending = new Map([
      ['REGIONAL/a', new Map([['198.51.100.1/32', 30_000]])],
      ['REGIONAL/b', new Map([['198.51.100.9/32', 30_000]])],
    ]);
    const plan = planWafDelta(sets, [blocked('198.51.100.1/32')], 2, { pending, writeBy: 10_000 });
    expect(plan.updates).toEqual([]);
    expect(plan.pending.size).toBe(0);
  });

  it('earlier pending removals and a later one of the same address keep the earlier deadline', () => {
    const pending = new Map([['REGIONAL/a', new Map([['198.51.100.1/32', 20_000]])]]);
    // .1 read again (the overlap) with a later deadline: it stays due at 20 s, before b's 25 s
    const plan = planWafDelta(sets, [gone('198.51.100.1/32', 35_000), gone('198.51.100.3/32', 25_000)], 2, { pending, writeBy: 10_000 });
    expect(written(plan)).toEqual([['a', ['198.51.100.2/32'], ['198.51.100.1/32']]]);
    expect(pendingOf(plan)).toEqual({ 'REGIONAL/b': { '198.51.100.3/32': 25_000 } });
    const alone = planWafDelta([...sets, { ref: C, addresses: ['198.51.100.5/32'] }], [gone('198.51.100.3/32', 60_000)], 2, { pending, writeBy: 10_000 });
    // nothing new: set a's removal (20 s) is due before set b's (60 s)
    expect(written(alone)).toEqual([['a', ['198.51.100.2/32'], ['198.51.100.1/32']]]);
    expect(pendingOf(alone)).toEqual({ 'REGIONAL/b': { '198.51.100.3/32': 60_000 } });
  });

  it('without a deferral every removal is written at once, as before', () => {
    const plan = planWafDelta(sets, [gone('198.51.100.1/32', 50_000), gone('198.51.100.3/32', 40_000)], 2);
    expect(written(plan).map(([id]) => id)).toEqual(['a', 'b']);
    expect(plan.pending.size).toBe(0);
  });
});
