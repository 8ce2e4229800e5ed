import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { tryParseCidr } from '../../core/address';
import { type ActualState, applyPlan, isNoop, planEnforcement } from '../../core/diff';
import { NeverBlockGuard } from '../../core/guard';
import { type NaclEntry, ownEntryTarget } from '../../core/nacl';
import type { BlockRecord } from '../../core/policy';
import { PipelineSettingsSchema, type WafSetRef } from '../../core/settings';

const V4: WafSetRef = { scope: 'REGIONAL', family: 'ipv4', name: 'v4a', id: 'a' };
const V4B: WafSetRef = { scope: 'REGIONAL', family: 'ipv4', name: 'v4b', id: 'b' };
const V6: WafSetRef = { scope: 'REGIONAL', family: 'ipv6', name: 'v6', id: 'c' };
const NOW = Date.parse('2026-11-21T10:00:00Z');

const settings = PipelineSettingsSchema.parse({
  guard: { allowlist: ['203.0.113.200/29'], protectedCidrs: ['10.0.0.0/8'], blockableSpecialCidrs: ['203.0.113.0/24', '198.51.100.0/24', '2001:db8::/32'] },
  nacl: { aclIds: ['acl-0000000000000000a', 'acl-0000000000000000b'], ruleRange: [20, 45], quotaPerDirection: 8 },
  waf: { sets: [V4, V4B, V6] },
});
const guard = new NeverBlockGuard(settings.guard);

function record(target: string, overrides: Partial<BlockRecord> = {}): BlockRecord {
  const cidr = tryParseCidr(target)!;
  return {
    target,
    family: cidr.family,
    reason: 'sensor',
    firstSeen: NOW - 1000,
    lastSeen: NOW - 1000,
    hitCount: 1,
    offences: 1,
    blockedAt: NOW - 1000,
    expiresAt: NOW + 3600_000,
    active: true,
    eventIds: ['e'],
    sensors: ['s'],
    ...overrides,
  };
}

const defaults: NaclEntry[] = [
  { ruleNumber: 32767, egress: false, ruleAction: 'deny', protocol: '-1', cidrBlock: '0.0.0.0/0' },
  { ruleNumber: 32767, egress: false, ruleAction: 'deny', protocol: '-1', ipv6CidrBlock: '::/0' },
];

// Targets: mostly blockable TEST-NET, some allowlisted, protected, private, loopback, CIDRs.
const targetArb = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 1, max: 199 }).map((n) => `203.0.113.${n}`) },
  { weight: 2, arbitrary: fc.integer({ min: 1, max: 60 }).map((n) => `2001:db8::${n.toString(16)}`) },
  { weight: 1, arbitrary: fc.integer({ min: 200, max: 207 }).map((n) => `203.0.113.${n}`) },
  { weight: 1, arbitrary: fc.constantFrom('10.1.2.3', '192.168.0.9', '127.0.0.1', 'fe80::1', '172.16.5.5', '100.64.0.1') },
  { weight: 1, arbitrary: fc.constantFrom('198.51.100.0/24', '203.0.113.192/26', '2001:db8:5::/48') },
);
const recordsArb = fc.array(
  fc.record({ target: targetArb, recency: fc.integer({ min: -100_000, max: 0 }), expired: fc.boolean(), active: fc.boolean() }),
  { maxLength: 40 },
).map((list) => {
  const byTarget = new Map<string, BlockRecord>();
  for (const r of list) {
    byTarget.set(r.target, record(r.target, { lastSeen: NOW + r.recency, active: r.active || !r.expired, expiresAt: r.expired ? NOW - 1 : NOW + 3600_000 }));
  }
  return [...byTarget.values()];
});

const wafArb = fc.array(fc.oneof(targetArb, fc.constantFrom('garbage', '0.0.0.0/0', '2001:DB8:0:0::1/128', '203.0.113.5/32')), { maxLength: 30 });
const naclEntryArb = fc.record({
  ruleNumber: fc.integer({ min: 15, max: 50 }),
  egress: fc.boolean(),
  ruleAction: fc.constantFrom('allow' as const, 'deny' as const),
  protocol: fc.constantFrom('-1', '6'),
  target: fc.oneof(targetArb.filter((t) => !t.includes('/')), fc.constant('192.0.2.0/24')),
}).map(({ ruleNumber, egress, ruleAction, protocol, target }): NaclEntry => {
  const cidr = tryParseCidr(target)!;
  const text = cidr.text;
  return { ruleNumber, egress, ruleAction, protocol, ...(cidr.family === 'ipv4' ? { cidrBlock: text } : { ipv6CidrBlock: text }) };
});
const aclArb = fc.array(naclEntryArb, { maxLength: 12 }).map((entries) => {
  const seen = new Set<string>();
  const unique = entries.filter((e) => {
    const key = `${e.egress}/${e.ruleNumber}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  // keep within the quota AWS would have enforced
  const ingress = { ipv4: 1, ipv6: 1 };
  return [...defaults, ...unique.filter((e) => {
    if (e.egress) return true;
    const family = e.ipv6CidrBlock !== undefined ? 'ipv6' : 'ipv4';
    if (ingress[family] >= settings.nacl.quotaPerDirection) return false;
    ingress[family]++;
    return true;
  })];
});
const actualArb = fc.record({ a: aclArb, b: aclArb, v4: wafArb, v4b: wafArb, v6: wafArb }).map(
  ({ a, b, v4, v4b, v6 }): ActualState => ({
    nacls: [
      { aclId: 'acl-0000000000000000a', entries: a },
      { aclId: 'acl-0000000000000000b', entries: b },
    ],
    wafSets: [
      { ref: V4, addresses: v4 },
      { ref: V4B, addresses: v4b },
      { ref: V6, addresses: v6 },
    ],
  }),
);

function enforcedWaf(state: ActualState, family: 'ipv4' | 'ipv6'): string[] {
  return state.wafSets.filter((s) => s.ref.family === family).flatMap((s) => s.addresses).sort();
}

describe('planEnforcement', () => {
  it('with no IP sets at all (NACLs only) reports no WAF overflow: there is no WAF to be full', () => {
    const naclOnly = PipelineSettingsSchema.parse({ ...settings, waf: { sets: [] } });
    const actual: ActualState = { nacls: [{ aclId: 'acl-0000000000000000a', entries: defaults }], wafSets: [] };
    const plan = planEnforcement([record('203.0.113.7'), record('2001:db8::7')], actual, naclOnly, NOW);
    expect(plan.wafOverflow).toEqual([]);
    expect(plan.nacl[0]?.changes.map((c) => c.cidr).sort()).toEqual(['2001:db8::7/128', '203.0.113.7/32']);
    // with IP sets, one family short of a set still overflows
    expect(planEnforcement([record('2001:db8::7')], { nacls: [], wafSets: [{ ref: V4, addresses: [] }] }, PipelineSettingsSchema.parse({ ...settings, waf: { sets: [V4] } }), NOW).wafOverflow).toEqual(['2001:db8::7/128']);
  });

  it('blocks an active record in WAF and every ACL, and changes nothing the second time', () => {
    const actual: ActualState = {
      nacls: [{ aclId: 'acl-0000000000000000a', entries: defaults }],
      wafSets: [{ ref: V4, addresses: [] }, { ref: V6, addresses: [] }],
    };
    const plan = planEnforcement([record('203.0.113.7')], actual, settings, NOW);
    expect(plan.waf).toEqual([{ ref: V4, addresses: ['203.0.113.7/32'], added: ['203.0.113.7/32'], removed: [] }]);
    expect(plan.nacl[0]?.changes).toEqual([{ op: 'create', ruleNumber: 20, cidr: '203.0.113.7/32', family: 'ipv4', target: '203.0.113.7' }]);
    expect(plan.blocked).toEqual(['203.0.113.7']);
    expect(isNoop(planEnforcement([record('203.0.113.7')], applyPlan(actual, plan), settings, NOW))).toBe(true);
  });

  it('removes what expired and reports it unblocked', () => {
    const actual: ActualState = {
      nacls: [{ aclId: 'acl-0000000000000000a', entries: [...defaults, { ruleNumber: 20, egress: false, ruleAction: 'deny', protocol: '-1', cidrBlock: '203.0.113.7/32' }] }],
      wafSets: [{ ref: V4, addresses: ['203.0.113.7/32'] }],
    };
    const plan = planEnforcement([record('203.0.113.7', { expiresAt: NOW })], actual, settings, NOW);
    expect(plan.unblocked).toEqual(['203.0.113.7']);
    expect(plan.nacl[0]?.changes).toEqual([{ op: 'delete', ruleNumber: 20, cidr: '203.0.113.7/32', family: 'ipv4', target: '203.0.113.7' }]);
  });

  it('applying the plan to any actual state yields the desired state, and a second plan is empty', () => {
    fc.assert(
      fc.property(recordsArb, actualArb, (records, actual) => {
        const plan = planEnforcement(records, actual, settings, NOW);
        const after = applyPlan(actual, plan);
        const desired = records.filter((r) => r.active && r.expiresAt > NOW && guard.isBlockable(r.target));
        for (const family of ['ipv4', 'ipv6'] as const) {
          const want = desired.filter((r) => r.family === family).map((r) => tryParseCidr(r.target)!.text).sort();
          expect(enforcedWaf(after, family)).toEqual(want);
        }
        for (const acl of after.nacls) {
          const ownTargets = acl.entries.map((e) => ownEntryTarget(e, settings.nacl.ruleRange)).filter((t) => t !== undefined);
          for (const t of ownTargets) expect(desired.map((r) => r.target)).toContain(t);
          const before = actual.nacls.find((a) => a.aclId === acl.aclId)!.entries;
          const foreign = (entries: readonly NaclEntry[]) => entries.filter((e) => ownEntryTarget(e, settings.nacl.ruleRange) === undefined);
          expect(foreign(acl.entries)).toEqual(expect.arrayContaining(foreign(before)));
          expect(foreign(acl.entries)).toHaveLength(foreign(before).length);
        }
        expect(isNoop(planEnforcement(records, after, settings, NOW))).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('never puts an allowlisted, protected or special-range address into any change', () => {
    fc.assert(
      fc.property(recordsArb, actualArb, (records, actual) => {
        const plan = planEnforcement(records, actual, settings, NOW);
        const added = [
          ...plan.waf.flatMap((u) => u.added),
          ...plan.nacl.flatMap((a) => a.changes.filter((c) => c.op !== 'delete').map((c) => c.cidr)),
        ];
        for (const cidr of added) expect(guard.check(cidr).blockable).toBe(true);
        for (const u of plan.waf) for (const address of u.addresses) expect(guard.check(address).blockable).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});

describe('planEnforcement: NACL ownership and shadowing', () => {
  it('reports a placed deny an earlier foreign allow shadows, with the allow’s rule and traffic', () => {
    const actual: ActualState = {
      nacls: [{ aclId: 'acl-0000000000000000a', entries: [...defaults, { ruleNumber: 10, egress: false, ruleAction: 'allow', protocol: '6', cidrBlock: '0.0.0.0/0', portRange: { from: 443, to: 443 } }] }],
      wafSets: [{ ref: V4, addresses: [] }, { ref: V6, addresses: [] }],
    };
    const plan = planEnforcement([record('203.0.113.7')], actual, settings, NOW);
    expect(plan.nacl[0]?.shadowed).toEqual([{ target: '203.0.113.7', ruleNumber: 20, by: [{ ruleNumber: 10, traffic: 'tcp/443', complete: false }] }]);
  });

  it('does not reuse a held rule number and leaves another stack’s own-shaped entry alone', () => {
    const theirs = { ruleNumber: 21, egress: false, ruleAction: 'deny' as const, protocol: '-1', cidrBlock: '203.0.113.99/32', foreign: true };
    const actual: ActualState = {
      nacls: [{ aclId: 'acl-0000000000000000a', entries: [...defaults, theirs], held: [20] }],
      wafSets: [{ ref: V4, addresses: [] }, { ref: V6, addresses: [] }],
    };
    const plan = planEnforcement([record('203.0.113.7')], actual, settings, NOW);
    expect(plan.nacl[0]?.changes).toEqual([{ op: 'create', ruleNumber: 22, cidr: '203.0.113.7/32', family: 'ipv4', target: '203.0.113.7' }]);
  });
});
