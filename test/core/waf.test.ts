import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { WafSetRef } from '../../core/settings';
import { planWaf, planWafDelta, wafAddressOf } from '../../core/waf';

const A: WafSetRef = { scope: 'REGIONAL', family: 'ipv4', name: 'a', id: 'a' };
const B: WafSetRef = { scope: 'REGIONAL', family: 'ipv4', name: 'b', id: 'b' };
const S6: WafSetRef = { scope: 'REGIONAL', family: 'ipv6', name: 'c', id: 'c' };
const v4 = (n: number) => `198.51.${Math.floor(n / 250)}.${(n % 250) + 1}`;

describe('wafAddressOf', () => {
  it('writes hosts as /32 or /128 and keeps CIDRs, refusing /0', () => {
    expect(wafAddressOf('203.0.113.7')).toBe('203.0.113.7/32');
    expect(wafAddressOf('2001:db8::7')).toBe('2001:db8::7/128');
    expect(wafAddressOf('203.0.113.0/24')).toBe('203.0.113.0/24');
    expect(wafAddressOf('0.0.0.0/0')).toBeUndefined();
  });
});

describe('planWaf', () => {
  it('keeps families apart', () => {
    const plan = planWaf([{ ref: A, addresses: [] }, { ref: S6, addresses: [] }], [
      { target: '203.0.113.7', family: 'ipv4', recency: 1 },
      { target: '2001:db8::7', family: 'ipv6', recency: 1 },
    ]);
    expect(plan.updates.map((u) => [u.ref.id, u.addresses])).toEqual([
      ['a', ['203.0.113.7/32']],
      ['c', ['2001:db8::7/128']],
    ]);
  });

  it('shards over the sets of a family at the per-set limit and reports the overflow (the least recent)', () => {
    const candidates = Array.from({ length: 25 }, (_, i) => ({ target: v4(i), family: 'ipv4' as const, recency: i }));
    const plan = planWaf([{ ref: A, addresses: [] }, { ref: B, addresses: [] }], candidates, 10);
    expect(plan.updates.map((u) => u.addresses.length)).toEqual([10, 10]);
    expect([...plan.overflow].sort()).toEqual([0, 1, 2, 3, 4].map((i) => `${v4(i)}/32`).sort());
  });

  it('reports overflow when no set of the family exists', () => {
    expect(planWaf([{ ref: A, addresses: [] }], [{ target: '2001:db8::1', family: 'ipv6', recency: 1 }]).overflow).toEqual(['2001:db8::1/128']);
  });

  it('leaves an address in the set that holds it and rewrites non-canonical spellings', () => {
    const plan = planWaf([{ ref: A, addresses: [] }, { ref: B, addresses: ['203.0.113.7/32'] }, { ref: S6, addresses: ['2001:DB8:0::7/128'] }], [
      { target: '203.0.113.7', family: 'ipv4', recency: 1 },
      { target: '2001:db8::7', family: 'ipv6', recency: 1 },
    ]);
    expect(plan.updates).toEqual([{ ref: S6, addresses: ['2001:db8::7/128'], added: [], removed: [] }]);
  });

  it('never exceeds the per-set limit, loses no address that fits, and converges in one step', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 60 }), { maxLength: 50 }),
        fc.array(fc.integer({ min: 0, max: 60 }), { maxLength: 8 }),
        fc.array(fc.integer({ min: 0, max: 60 }), { maxLength: 8 }),
        fc.integer({ min: 1, max: 12 }),
        (wanted, inA, inB, limit) => {
          const sets = [{ ref: A, addresses: inA.map((n) => `${v4(n)}/32`) }, { ref: B, addresses: inB.map((n) => `${v4(n)}/32`) }];
          const candidates = [...new Set(wanted)].map((n) => ({ target: v4(n), family: 'ipv4' as const, recency: n }));
          const plan = planWaf(sets, candidates, limit);
          const after = sets.map((s) => plan.updates.find((u) => u.ref.id === s.ref.id)?.addresses ?? s.addresses);
          for (const list of after) expect(list.length).toBeLessThanOrEqual(limit);
          const held = after.flat();
          expect(new Set(held).size).toBe(held.length);
          expect(held.length + plan.overflow.length).toBe(candidates.length);
          const next = planWaf(sets.map((s, i) => ({ ref: s.ref, addresses: after[i]! })), candidates, limit);
          expect(next.updates).toEqual([]);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('planWaf with two scopes', () => {
  it('fills every scope with every wanted address: each scope is its own WAF', () => {
    const C: WafSetRef = { scope: 'CLOUDFRONT', family: 'ipv4', name: 'cf', id: 'cf' };
    const plan = planWaf([{ ref: A, addresses: ['203.0.113.7/32'] }, { ref: C, addresses: [] }], [{ target: '203.0.113.7', family: 'ipv4', recency: 1 }]);
    expect(plan.updates.map((u) => [u.ref.id, u.addresses])).toEqual([['cf', ['203.0.113.7/32']]]);
    expect(plan.overflow).toEqual([]);
  });
});

describe('planWafDelta', () => {
  const add = (address: string) => ({ address, family: (address.includes(':') ? 'ipv6' : 'ipv4') as 'ipv4' | 'ipv6', present: true });
  const del = (address: string) => ({ ...add(address), present: false });

  it('adds into the fullest set with room, removes from the set holding it, leaves other sets untouched', () => {
    const plan = planWafDelta(
      [
        { ref: A, addresses: ['198.51.100.1/32'] },
        { ref: B, addresses: ['198.51.100.2/32', '198.51.100.3/32'] },
        { ref: S6, addresses: ['2001:db8::1/128'] },
      ],
      [add('203.0.113.7/32'), del('2001:db8::1/128')],
      10,
    );
    expect(plan.updates).toEqual([
      { ref: B, addresses: ['198.51.100.2/32', '198.51.100.3/32', '203.0.113.7/32'], added: ['203.0.113.7/32'], removed: [] },
      { ref: S6, addresses: [], added: [], removed: ['2001:db8::1/128'] },
    ]);
    expect(plan.overflow).toEqual([]);
  });

  it('puts a new address into a set it writes anyway, even a less full one: one UpdateIPSet instead of two', () => {
    const plan = planWafDelta(
      [
        { ref: A, addresses: ['198.51.100.1/32', '198.51.100.9/32'] },
        { ref: B, addresses: ['198.51.100.2/32', '198.51.100.3/32', '198.51.100.4/32'] },
      ],
      [del('198.51.100.9/32'), add('203.0.113.7/32')],
      10,
    );
    expect(plan.updates).toEqual([{ ref: A, addresses: ['198.51.100.1/32', '203.0.113.7/32'], added: ['203.0.113.7/32'], removed: ['198.51.100.9/32'] }]);
  });

  it('re-applying a change is a no-op; an address held in any spelling counts as held', () => {
    const sets = [{ ref: A, addresses: ['203.0.113.7/32'] }, { ref: S6, addresses: ['2001:DB8:0::7/128'] }];
    expect(planWafDelta(sets, [add('203.0.113.7/32'), add('2001:db8::7/128'), del('198.51.100.1/32')], 10).updates).toEqual([]);
  });

  it('the last change of an address wins (lifted then blocked again: present)', () => {
    const plan = planWafDelta([{ ref: A, addresses: ['203.0.113.7/32'] }], [del('203.0.113.7/32'), add('203.0.113.7/32')], 10);
    expect(plan.updates).toEqual([]);
    const lifted = planWafDelta([{ ref: A, addresses: [] }], [add('203.0.113.7/32'), del('203.0.113.7/32')], 10);
    expect(lifted.updates).toEqual([]);
  });

  it('keeps an address it was not told about (an operator\'s), and reports overflow when every set is full', () => {
    const plan = planWafDelta([{ ref: A, addresses: ['192.0.2.99/32', '198.51.100.1/32'] }], [add('203.0.113.7/32'), add('203.0.113.8/32')], 3);
    expect(plan.updates).toEqual([{ ref: A, addresses: ['192.0.2.99/32', '198.51.100.1/32', '203.0.113.7/32'], added: ['203.0.113.7/32'], removed: [] }]);
    expect(plan.overflow).toEqual(['203.0.113.8/32']);
    expect(planWafDelta([{ ref: A, addresses: [] }], [add('2001:db8::7/128')], 3).overflow).toEqual(['2001:db8::7/128']);
  });

  it('writes each scope on its own', () => {
    const C: WafSetRef = { scope: 'CLOUDFRONT', family: 'ipv4', name: 'cf', id: 'cf' };
    const plan = planWafDelta([{ ref: A, addresses: [] }, { ref: C, addresses: ['203.0.113.7/32'] }], [add('203.0.113.7/32'), add('203.0.113.8/32')], 10);
    expect(plan.updates.map((u) => [u.ref.id, u.addresses])).toEqual([
      ['a', ['203.0.113.7/32', '203.0.113.8/32']],
      ['cf', ['203.0.113.7/32', '203.0.113.8/32']],
    ]);
  });
});
