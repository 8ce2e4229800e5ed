import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  applyNaclChanges,
  type NaclCandidate,
  type NaclEntry,
  naclCapacity,
  NACL_DEFAULT_DENY_RULE,
  describeShadows,
  heldRuleNumbers,
  ledgerHolds,
  ledgerView,
  ownEntryTarget,
  planNacl,
  RULE_NUMBER_COOL_DOWN_MS,
  shadowsOf,
  withOwnership,
} from '../../core/nacl';

const RANGE: [number, number] = [10, 30];
const defaults: NaclEntry[] = [
  { ruleNumber: NACL_DEFAULT_DENY_RULE, egress: false, ruleAction: 'deny', protocol: '-1', cidrBlock: '0.0.0.0/0' },
  { ruleNumber: NACL_DEFAULT_DENY_RULE, egress: false, ruleAction: 'deny', protocol: '-1', ipv6CidrBlock: '::/0' },
  { ruleNumber: NACL_DEFAULT_DENY_RULE, egress: true, ruleAction: 'deny', protocol: '-1', cidrBlock: '0.0.0.0/0' },
];
const own = (ruleNumber: number, address: string): NaclEntry =>
  address.includes(':')
    ? { ruleNumber, egress: false, ruleAction: 'deny', protocol: '-1', ipv6CidrBlock: `${address}/128` }
    : { ruleNumber, egress: false, ruleAction: 'deny', protocol: '-1', cidrBlock: `${address}/32` };
const candidate = (target: string, recency: number): NaclCandidate => ({ target, family: target.includes(':') ? 'ipv6' : 'ipv4', recency });

describe('recognising portsnare entries', () => {
  it('takes an ingress deny-all host entry inside the range as portsnare’s', () => {
    expect(ownEntryTarget(own(10, '203.0.113.7'), RANGE)).toBe('203.0.113.7');
    expect(ownEntryTarget(own(30, '2001:db8::7'), RANGE)).toBe('2001:db8::7');
  });

  it.each([
    ['outside the range', { ...own(31, '203.0.113.7') }],
    ['an egress entry', { ...own(10, '203.0.113.7'), egress: true }],
    ['an allow entry', { ...own(10, '203.0.113.7'), ruleAction: 'allow' as const }],
    ['a TCP-only deny', { ...own(10, '203.0.113.7'), protocol: '6', portRange: { from: 22, to: 22 } }],
    ['a wider CIDR', { ruleNumber: 10, egress: false, ruleAction: 'deny' as const, protocol: '-1', cidrBlock: '203.0.113.0/24' }],
    ['the default deny', defaults[0]!],
  ])('leaves %s as foreign', (_name, entry) => {
    expect(ownEntryTarget(entry, RANGE)).toBeUndefined();
  });
});

describe('NACL capacity', () => {
  it('subtracts the default deny and foreign ingress entries per family', () => {
    const entries = [...defaults, { ruleNumber: 100, egress: false, ruleAction: 'allow' as const, protocol: '-1', cidrBlock: '0.0.0.0/0' }, own(10, '203.0.113.7')];
    expect(naclCapacity(entries, RANGE, 20)).toEqual({ ipv4: 18, ipv6: 19 });
  });

  it('reserves a default deny for a family the ACL does not list', () => {
    expect(naclCapacity([defaults[0]!], RANGE, 20)).toEqual({ ipv4: 19, ipv6: 19 });
  });
});

describe('planNacl', () => {
  it('keeps existing entries in place and gives newcomers the lowest free numbers', () => {
    const plan = planNacl({ entries: [...defaults, own(12, '203.0.113.1')], range: RANGE, quota: 20, candidates: [candidate('203.0.113.1', 1), candidate('203.0.113.2', 2)] });
    expect(plan.changes).toEqual([{ op: 'create', ruleNumber: 10, cidr: '203.0.113.2/32', family: 'ipv4', target: '203.0.113.2' }]);
  });

  it('replaces the least recently active entry in place when the family is full', () => {
    const entries = [...defaults, own(10, '203.0.113.1'), own(11, '203.0.113.2')];
    const plan = planNacl({ entries, range: RANGE, quota: 3, candidates: [candidate('203.0.113.1', 1), candidate('203.0.113.2', 5), candidate('203.0.113.3', 9)] });
    expect(plan.changes).toEqual([{ op: 'replace', ruleNumber: 10, cidr: '203.0.113.3/32', family: 'ipv4', target: '203.0.113.3', previous: '203.0.113.1/32' }]);
    expect(plan.evicted).toEqual(['203.0.113.1']);
    expect(plan.full).toEqual(['ipv4']);
  });

  it('deletes entries of targets no longer active, and duplicates', () => {
    const entries = [...defaults, own(10, '203.0.113.1'), own(11, '203.0.113.1'), own(12, '203.0.113.9')];
    const plan = planNacl({ entries, range: RANGE, quota: 20, candidates: [candidate('203.0.113.1', 1)] });
    expect(plan.changes.map((c) => [c.op, c.ruleNumber])).toEqual([
      ['delete', 11],
      ['delete', 12],
    ]);
    expect(plan.evicted).toEqual([]);
  });

  it('does nothing when the ACL already holds the desired entries', () => {
    const entries = [...defaults, own(10, '203.0.113.1'), own(20, '2001:db8::1')];
    expect(planNacl({ entries, range: RANGE, quota: 20, candidates: [candidate('203.0.113.1', 1), candidate('2001:db8::1', 1)] }).changes).toEqual([]);
  });

  it('is limited by the free rule numbers of a small range', () => {
    const plan = planNacl({ entries: defaults, range: [5, 6], quota: 40, candidates: ['203.0.113.1', '203.0.113.2', '2001:db8::3'].map((t, i) => candidate(t, i)) });
    expect([...plan.placed.keys()].sort()).toEqual(['2001:db8::3', '203.0.113.2']);
  });
});

// --- properties ---------------------------------------------------------------------------------

const address4 = fc.integer({ min: 1, max: 254 }).map((n) => `203.0.113.${n}`);
const address6 = fc.integer({ min: 1, max: 0xfff }).map((n) => `2001:db8::${n.toString(16)}`);
const anyAddress = fc.oneof(address4, address6);

const rangeArb = fc.tuple(fc.integer({ min: 1, max: 200 }), fc.integer({ min: 0, max: 60 })).map(([first, span]) => [first, first + span] as [number, number]);

const foreignArb = (range: [number, number]) =>
  fc.record({
    ruleNumber: fc.integer({ min: Math.max(1, range[0] - 5), max: range[1] + 5 }),
    egress: fc.boolean(),
    ruleAction: fc.constantFrom('allow' as const, 'deny' as const),
    protocol: fc.constantFrom('6', '17', '-1'),
    wide: fc.boolean(),
    v6: fc.boolean(),
  }).map(({ ruleNumber, egress, ruleAction, protocol, wide, v6 }): NaclEntry => {
    const cidr = v6 ? { ipv6CidrBlock: wide ? '2001:db8:1::/48' : '2001:db8:2::1/128' } : { cidrBlock: wide ? '192.0.2.0/24' : '192.0.2.1/32' };
    // Make it foreign for sure inside the range: allow, or port-specific, or wide, or egress.
    const base: NaclEntry = { ruleNumber, egress, ruleAction, protocol, ...cidr };
    return ownEntryTarget(base, range) === undefined ? base : { ...base, protocol: '6', portRange: { from: 22, to: 22 } };
  });

const scenario = rangeArb.chain((range) =>
  fc.record({
    range: fc.constant(range),
    quota: fc.integer({ min: 1, max: 40 }),
    foreign: fc.array(foreignArb(range), { maxLength: 8 }),
    ownAddresses: fc.array(fc.tuple(fc.integer({ min: range[0], max: range[1] }), anyAddress), { maxLength: 25 }),
    candidates: fc.array(fc.tuple(anyAddress, fc.integer({ min: 0, max: 1000 })), { maxLength: 60 }),
  }),
);

function uniqueByNumber(entries: NaclEntry[]): NaclEntry[] {
  const seen = new Set<string>();
  return entries.filter((e) => {
    const key = `${e.egress}/${e.ruleNumber}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

describe('planNacl properties', () => {
  it('never leaves the reserved range, never exceeds the quota, never touches a foreign entry, and applying it yields the chosen set', () => {
    fc.assert(
      fc.property(scenario, ({ range, quota, foreign, ownAddresses, candidates }) => {
        const entries = uniqueByNumber([...defaults, ...foreign, ...ownAddresses.map(([n, a]) => own(n, a))]);
        const foreignBefore = entries.filter((e) => ownEntryTarget(e, range) === undefined);
        // the quota the ACL is in: AWS would not have let it exceed it, so only check the outcome
        const cands = candidates.map(([t, r]) => candidate(t, r));
        const plan = planNacl({ entries, range, quota, candidates: cands });
        for (const change of plan.changes) {
          expect(change.ruleNumber).toBeGreaterThanOrEqual(range[0]);
          expect(change.ruleNumber).toBeLessThanOrEqual(range[1]);
        }
        const after = applyNaclChanges(entries, plan.changes);
        const foreignAfter = after.filter((e) => ownEntryTarget(e, range) === undefined);
        expect(foreignAfter).toEqual(expect.arrayContaining(foreignBefore));
        expect(foreignAfter).toHaveLength(foreignBefore.length);
        const ownAfter = after.filter((e) => ownEntryTarget(e, range) !== undefined).map((e) => ownEntryTarget(e, range));
        expect(new Set(ownAfter).size).toBe(ownAfter.length);
        expect(new Set(ownAfter)).toEqual(new Set(plan.placed.keys()));
        for (const family of ['ipv4', 'ipv6'] as const) {
          const ownCount = ownAfter.filter((t) => (t!.includes(':') ? 'ipv6' : 'ipv4') === family).length;
          expect(ownCount).toBeLessThanOrEqual(plan.capacity[family]);
          const foreignIngress = foreignAfter.filter((e) => !e.egress && (e.ipv6CidrBlock !== undefined ? 'ipv6' : 'ipv4') === family).length;
          // portsnare's entries never push the ACL past the quota (foreign ones may already have)
          if (ownCount > 0) expect(ownCount + foreignIngress).toBeLessThanOrEqual(quota);
        }
        // re-planning the result changes nothing: the plan converges in one step
        expect(planNacl({ entries: after, range, quota, candidates: cands }).changes).toEqual([]);
      }),
      { numRuns: 400 },
    );
  });

  it('keeps the most recently active: every evicted or left-out candidate is older than every placed one of its family', () => {
    fc.assert(
      fc.property(scenario, ({ range, quota, candidates }) => {
        const cands = new Map<string, NaclCandidate>();
        for (const [t, r] of candidates) cands.set(t, candidate(t, r));
        const plan = planNacl({ entries: defaults, range, quota, candidates: [...cands.values()] });
        for (const family of ['ipv4', 'ipv6'] as const) {
          const fam = [...cands.values()].filter((c) => c.family === family);
          const placed = fam.filter((c) => plan.placed.has(c.target));
          const left = fam.filter((c) => !plan.placed.has(c.target));
          if (placed.length && left.length) {
            expect(Math.min(...placed.map((c) => c.recency))).toBeGreaterThanOrEqual(Math.max(...left.map((c) => c.recency)));
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it('applies deletes before creates so that no intermediate state exceeds the quota', () => {
    fc.assert(
      fc.property(scenario, ({ range, quota, ownAddresses, candidates }) => {
        const cap = quota - 1; // the default deny of each family takes one
        const ownEntries = uniqueByNumber(ownAddresses.map(([n, a]) => own(n, a)));
        const trimmed = (['ipv4', 'ipv6'] as const).flatMap((f) => ownEntries.filter((e) => (e.ipv6CidrBlock ? 'ipv6' : 'ipv4') === f).slice(0, cap));
        let state = [...defaults, ...trimmed];
        const plan = planNacl({ entries: state, range, quota, candidates: candidates.map(([t, r]) => candidate(t, r)) });
        for (const change of plan.changes) {
          state = applyNaclChanges(state, [change]);
          for (const family of ['ipv4', 'ipv6'] as const) {
            const count = state.filter((e) => !e.egress && (e.ipv6CidrBlock !== undefined ? 'ipv6' : 'ipv4') === family).length;
            expect(count).toBeLessThanOrEqual(quota);
          }
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('planNacl residence time', () => {
  const placed = (entry: NaclEntry, placedAt: number): NaclEntry => ({ ...entry, placedAt });
  const full = [...defaults, placed(own(10, '203.0.113.1'), 1_000), placed(own(11, '203.0.113.2'), 100_000)];
  const wanted = [candidate('203.0.113.1', 1), candidate('203.0.113.2', 5), candidate('203.0.113.3', 9)];

  it('an eligible entry placed less than R ago keeps its place ahead of a more recent candidate', () => {
    const plan = planNacl({ entries: full, range: RANGE, quota: 3, candidates: wanted, residence: { now: 300_999, ms: 300_000 } });
    expect(plan.changes).toEqual([]);
    expect(plan.full).toEqual(['ipv4']);
  });

  it('once R has passed, the entry competes on recency (R counted from placedAt, the boundary excluded)', () => {
    const plan = planNacl({ entries: full, range: RANGE, quota: 3, candidates: wanted, residence: { now: 301_000, ms: 300_000 } });
    expect(plan.changes).toEqual([{ op: 'replace', ruleNumber: 10, cidr: '203.0.113.3/32', family: 'ipv4', target: '203.0.113.3', previous: '203.0.113.1/32' }]);
  });

  it('a resident that is no longer a candidate (lifted, expired, refused) loses its place at once', () => {
    const plan = planNacl({ entries: full, range: RANGE, quota: 3, candidates: [candidate('203.0.113.2', 5), candidate('203.0.113.3', 9)], residence: { now: 2_000, ms: 300_000 } });
    expect(plan.changes).toEqual([{ op: 'replace', ruleNumber: 10, cidr: '203.0.113.3/32', family: 'ipv4', target: '203.0.113.3', previous: '203.0.113.1/32' }]);
  });

  it('an entry without placedAt (a row an older version wrote) was placed long ago', () => {
    const entries = [...defaults, own(10, '203.0.113.1'), placed(own(11, '203.0.113.2'), 100_000)];
    const plan = planNacl({ entries, range: RANGE, quota: 3, candidates: wanted, residence: { now: 2_000, ms: 300_000 } });
    expect(plan.changes).toEqual([{ op: 'replace', ruleNumber: 10, cidr: '203.0.113.3/32', family: 'ipv4', target: '203.0.113.3', previous: '203.0.113.1/32' }]);
  });

  it('R = 0 or no residence: by recency alone, as before', () => {
    const expected = [{ op: 'replace', ruleNumber: 10, cidr: '203.0.113.3/32', family: 'ipv4', target: '203.0.113.3', previous: '203.0.113.1/32' }];
    expect(planNacl({ entries: full, range: RANGE, quota: 3, candidates: wanted, residence: { now: 2_000, ms: 0 } }).changes).toEqual(expected);
    expect(planNacl({ entries: full, range: RANGE, quota: 3, candidates: wanted }).changes).toEqual(expected);
  });

  it('residents beyond a capacity that shrank: the most recent of them keep their places', () => {
    // a foreign allow takes one IPv4 rule: one place left for two residents
    const entries = [...full, { ruleNumber: 5, egress: false, ruleAction: 'allow' as const, protocol: '-1', cidrBlock: '192.0.2.0/24' }];
    const plan = planNacl({ entries, range: RANGE, quota: 3, candidates: wanted, residence: { now: 2_000, ms: 300_000 } });
    expect(plan.changes).toEqual([{ op: 'delete', ruleNumber: 10, cidr: '203.0.113.1/32', family: 'ipv4', target: '203.0.113.1' }]);
  });

  it('the ledger row\'s placedAt reaches the entry it names, not a `maybe` CIDR nor a foreign entry', () => {
    const rows = [
      { ruleNumber: 10, cidr: '203.0.113.1/32', state: 'confirmed' as const, placedAt: 1_000 },
      { ruleNumber: 11, cidr: '203.0.113.9/32', state: 'pending' as const, maybe: ['203.0.113.8/32'], placedAt: 2_000 },
    ];
    const view = ledgerView([...defaults, own(10, '203.0.113.1'), own(11, '203.0.113.8'), own(12, '203.0.113.5')], rows, RANGE, 3_000);
    const at = (n: number) => view.entries.find((e) => e.ruleNumber === n && !e.egress)?.placedAt;
    expect([at(10), at(11), at(12)]).toEqual([1_000, undefined, undefined]);
  });
});

describe('placement ledger ownership (two stacks on one ACL)', () => {
  const ledger = [
    { ruleNumber: 10, cidr: '203.0.113.1/32', state: 'confirmed' as const },
    { ruleNumber: 11, cidr: '203.0.113.9/32', state: 'pending' as const, maybe: ['203.0.113.8/32'] },
    { ruleNumber: 12, cidr: '203.0.113.2/32', state: 'freed' as const, heldUntil: 2_000 },
  ];

  it('an own-shaped entry the ledger does not hold is foreign: not planned over, counted, its number avoided', () => {
    const entries = withOwnership([...defaults, own(10, '203.0.113.1'), own(13, '203.0.113.3'), own(12, '203.0.113.2')], ledger, RANGE);
    expect(entries.filter((e) => ownEntryTarget(e, RANGE) !== undefined).map((e) => e.ruleNumber)).toEqual([10]);
    const plan = planNacl({ entries, range: RANGE, quota: 20, candidates: [candidate('203.0.113.4', 1)] });
    // 10 kept (not desired → replaced in place by the newcomer), 12 and 13 untouched
    expect(plan.changes).toEqual([{ op: 'replace', ruleNumber: 10, cidr: '203.0.113.4/32', family: 'ipv4', target: '203.0.113.4', previous: '203.0.113.1/32' }]);
    expect(naclCapacity(entries, RANGE, 20).ipv4).toBe(17);
  });

  it('a pending replace owns both the CIDR it writes and the one it replaces', () => {
    expect(ledgerHolds(ledger, own(11, '203.0.113.9'))).toBe(true);
    expect(ledgerHolds(ledger, own(11, '203.0.113.8'))).toBe(true);
    expect(ledgerHolds(ledger, own(11, '203.0.113.7'))).toBe(false);
    expect(ledgerHolds(ledger, own(12, '203.0.113.2'))).toBe(false);
  });

  it('a freed number is held for the cool-down, then free again', () => {
    expect(RULE_NUMBER_COOL_DOWN_MS).toBe(600_000);
    expect(heldRuleNumbers(ledger, 1_999)).toEqual([12]);
    expect(heldRuleNumbers(ledger, 2_000)).toEqual([]);
    const plan = planNacl({ entries: defaults, range: RANGE, quota: 20, candidates: [candidate('203.0.113.4', 1)], held: [10, 11] });
    expect(plan.changes).toEqual([{ op: 'create', ruleNumber: 12, cidr: '203.0.113.4/32', family: 'ipv4', target: '203.0.113.4' }]);
  });
});

describe('shadowing (rules evaluated lowest first, the first match wins)', () => {
  const allow = (ruleNumber: number, cidr: string, protocol = '-1', ports?: [number, number]): NaclEntry => ({
    ruleNumber,
    egress: false,
    ruleAction: 'allow',
    protocol,
    ...(cidr.includes(':') ? { ipv6CidrBlock: cidr } : { cidrBlock: cidr }),
    ...(ports ? { portRange: { from: ports[0], to: ports[1] } } : {}),
  });

  it('names each earlier allow covering the host, with its traffic', () => {
    const entries = [allow(10, '0.0.0.0/0', '6', [443, 443]), allow(5, '203.0.113.0/24', '17', [1000, 2000]), own(11, '203.0.113.7'), ...defaults];
    expect(shadowsOf(entries, 11, '203.0.113.7')).toEqual([
      { ruleNumber: 5, traffic: 'udp/1000-2000', complete: false },
      { ruleNumber: 10, traffic: 'tcp/443', complete: false },
    ]);
    expect(describeShadows(shadowsOf(entries, 11, '203.0.113.7'))).toBe('shadowed by rule 5 udp/1000-2000, rule 10 tcp/443');
  });

  it('ignores later allows, allows of other hosts or families, egress and denies', () => {
    const entries = [allow(12, '0.0.0.0/0'), allow(3, '198.51.100.0/24'), allow(4, '::/0'), { ...allow(5, '0.0.0.0/0'), egress: true }, { ...allow(6, '0.0.0.0/0'), ruleAction: 'deny' as const }];
    expect(shadowsOf(entries, 11, '203.0.113.7')).toEqual([]);
    expect(shadowsOf([allow(1, '::/0')], 11, '2001:db8::7')).toEqual([{ ruleNumber: 1, traffic: 'all', complete: true }]);
  });
});

describe('IPv6 prefix entries (policy.ipv6BlockPrefix)', () => {
  // "CreateNetworkAclEntry" (Amazon EC2 API Reference) takes an Ipv6CidrBlock of any prefix:
  // https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateNetworkAclEntry.html
  const deny6 = (ruleNumber: number, cidr: string): NaclEntry => ({ ruleNumber, egress: false, ruleAction: 'deny', protocol: '-1', ipv6CidrBlock: cidr });

  it('an IPv6 deny of /48 to /128 in the range is portsnare’s shape, its target the prefix; wider, or IPv4 CIDRs, are not', () => {
    expect(ownEntryTarget(deny6(10, '2001:db8:1:2::/64'), RANGE)).toBe('2001:db8:1:2::/64');
    expect(ownEntryTarget(deny6(10, '2001:db8:1::/48'), RANGE)).toBe('2001:db8:1::/48');
    expect(ownEntryTarget(deny6(10, '2001:db8:1:2::5/128'), RANGE)).toBe('2001:db8:1:2::5');
    expect(ownEntryTarget(deny6(10, '2001:db8::/47'), RANGE)).toBeUndefined();
    expect(ownEntryTarget({ ruleNumber: 10, egress: false, ruleAction: 'deny', protocol: '-1', cidrBlock: '203.0.113.0/24' }, RANGE)).toBeUndefined();
    expect(ownEntryTarget(deny6(31, '2001:db8:1:2::/64'), RANGE)).toBeUndefined();
  });

  it('a /64 the ledger does not hold is foreign (an operator’s deny of the same shape is never adopted)', () => {
    const [entry] = withOwnership([deny6(12, '2001:db8:1:2::/64')], [], RANGE);
    expect(entry?.foreign).toBe(true);
    expect(planNacl({ entries: [...defaults, entry!], range: RANGE, quota: 20, candidates: [] }).changes).toEqual([]);
  });

  it('plans a /64 candidate as an Ipv6CidrBlock entry of the prefix, and deletes it when no longer wanted', () => {
    const plan = planNacl({ entries: defaults, range: RANGE, quota: 20, candidates: [candidate('2001:db8:1:2::/64', 1), candidate('2001:db8::7', 2)] });
    const after = applyNaclChanges(defaults, plan.changes);
    expect(after.filter((e) => !e.egress && e.ruleNumber <= 30).map((e) => e.ipv6CidrBlock).sort()).toEqual(['2001:db8:1:2::/64', '2001:db8::7/128']);
    const lifted = planNacl({ entries: after, range: RANGE, quota: 20, candidates: [candidate('2001:db8::7', 2)] });
    expect(lifted.changes).toEqual([{ op: 'delete', ruleNumber: plan.placed.get('2001:db8:1:2::/64'), cidr: '2001:db8:1:2::/64', family: 'ipv6', target: '2001:db8:1:2::/64' }]);
  });

  it('an earlier allow of part of the /64 shadows the deny partly; one of the whole /64, completely', () => {
    const allow = (ruleNumber: number, cidr: string): NaclEntry => ({ ruleNumber, egress: false, ruleAction: 'allow', protocol: '-1', ipv6CidrBlock: cidr });
    expect(shadowsOf([allow(5, '2001:db8:1:2::9/128')], 12, '2001:db8:1:2::/64')).toEqual([{ ruleNumber: 5, traffic: 'all', complete: false }]);
    expect(shadowsOf([allow(5, '2001:db8:1::/48')], 12, '2001:db8:1:2::/64')).toEqual([{ ruleNumber: 5, traffic: 'all', complete: true }]);
    expect(shadowsOf([allow(5, '2001:db8:1:3::/64')], 12, '2001:db8:1:2::/64')).toEqual([]);
  });
});
