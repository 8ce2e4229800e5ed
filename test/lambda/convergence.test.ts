/**
 * The convergence property: whatever happens — events, expiries, throttling, lock conflicts, a
 * crash between the WAF and the NACL step, foreign entries added in the console, manual
 * deletions — once the faults stop and reconcile has run, the enforcers hold exactly the desired
 * state and every foreign entry is untouched.
 */
import type { NetworkAclEntry } from '@aws-sdk/client-ec2';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isNoop, planEnforcement } from '../../core/diff';
import { NeverBlockGuard } from '../../core/guard';
import { type NaclEntry, naclCapacity, ownEntryTarget } from '../../core/nacl';
import { isActive } from '../../core/policy';
import { fromSdkEntry } from '../../aws/nacl-adapter';
import { ACL_A, ACL_B, SET_V4, SET_V4_2, SET_V6, testSettings, World } from '../fakes/world';

const POOL = [
  ...Array.from({ length: 14 }, (_, i) => `203.0.113.${i + 1}`),
  ...Array.from({ length: 6 }, (_, i) => `2001:db8::${(i + 1).toString(16)}`),
  '198.51.100.250', // allowlisted
  '10.0.0.5', // protected
  '192.168.7.7', // private
];

type Op =
  | { kind: 'event'; who: number; handshake: boolean }
  | { kind: 'advance'; ms: number }
  | { kind: 'expiry' }
  | { kind: 'drain' }
  | { kind: 'throttle'; rate: number }
  | { kind: 'lockConflict'; n: number }
  | { kind: 'crash'; op: 'CreateNetworkAclEntry' | 'ReplaceNetworkAclEntry' | 'DeleteNetworkAclEntry' | 'DescribeNetworkAcls' }
  | { kind: 'wafCrash'; op: 'GetIPSet' | 'UpdateIPSet' }
  | { kind: 'foreign'; acl: number; ruleNumber: number; variant: number }
  | { kind: 'manualDelete'; acl: number; pick: number }
  | { kind: 'wafEdit'; pick: number }
  | { kind: 'unblock'; who: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ kind: fc.constant('event' as const), who: fc.integer({ min: 0, max: POOL.length - 1 }), handshake: fc.boolean() }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 500, max: 2 * 3600_000 }) }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'expiry' as const }) },
  { weight: 4, arbitrary: fc.constant({ kind: 'drain' as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('throttle' as const), rate: fc.constantFrom(0, 0.2, 0.5) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('lockConflict' as const), n: fc.integer({ min: 1, max: 3 }) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('crash' as const),
      op: fc.constantFrom('CreateNetworkAclEntry' as const, 'ReplaceNetworkAclEntry' as const, 'DeleteNetworkAclEntry' as const, 'DescribeNetworkAcls' as const),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('foreign' as const), acl: fc.integer({ min: 0, max: 1 }), ruleNumber: fc.integer({ min: 8, max: 27 }), variant: fc.integer({ min: 0, max: 3 }) }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('wafCrash' as const), op: fc.constantFrom('GetIPSet' as const, 'UpdateIPSet' as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('manualDelete' as const), acl: fc.integer({ min: 0, max: 1 }), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('wafEdit' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('unblock' as const), who: fc.integer({ min: 0, max: POOL.length - 1 }) }) },
);

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function foreignEntry(ruleNumber: number, variant: number): NetworkAclEntry {
  switch (variant) {
    case 0:
      return { RuleNumber: ruleNumber, Egress: false, Protocol: '-1', RuleAction: 'allow', CidrBlock: '192.0.2.0/24' };
    case 1:
      return { RuleNumber: ruleNumber, Egress: false, Protocol: '6', RuleAction: 'deny', CidrBlock: '203.0.113.77/32', PortRange: { From: 22, To: 22 } };
    case 2:
      return { RuleNumber: ruleNumber, Egress: true, Protocol: '-1', RuleAction: 'deny', CidrBlock: '203.0.113.78/32' };
    default:
      // wider than /48: an IPv6 prefix of /48 or narrower is the shape portsnare's own entries may take (core/nacl.ts isNaclShape)
      return { RuleNumber: ruleNumber, Egress: false, Protocol: '-1', RuleAction: 'deny', Ipv6CidrBlock: '2001:db8:76::/47' };
  }
}

function familyOf(entry: NetworkAclEntry): 'ipv4' | 'ipv6' {
  return entry.Ipv6CidrBlock !== undefined ? 'ipv6' : 'ipv4';
}

describe('convergence', () => {
  it('ends, after reconcile, with actual == desired and every foreign entry untouched', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 30 }), fc.integer(), fc.integer({ min: 2, max: 8 }), async (ops, seed, quota) => {
        const settings = testSettings({
          // residence 0: the final oracle (planEnforcement over the SDK's entries, which carry no
          // placement time) places by recency alone; the residence time is checked on the wire
          // (test/wire/convergence.test.ts, test/wire/nacl-residence.test.ts)
          nacl: { aclIds: [ACL_A, ACL_B], ruleRange: [10, 25], quotaPerDirection: quota, residenceSeconds: 0 },
          waf: { sets: [SET_V4, SET_V4_2, SET_V6] },
        });
        const world = new World({ settings, random: mulberry32(seed) });
        const acls = [ACL_A, ACL_B];
        const range = settings.nacl.ruleRange;
        const foreign = new Map<string, NetworkAclEntry[]>(acls.map((id) => [id, world.ec2.entries(id)]));

        for (const op of ops) {
          switch (op.kind) {
            case 'event':
              await world.decide(world.scanEvent(POOL[op.who]!, { handshake: op.handshake }));
              break;
            case 'advance':
              world.clock.advance(op.ms);
              break;
            case 'expiry':
              await world.expiry();
              break;
            case 'drain':
              await world.drain();
              break;
            case 'throttle':
              world.ec2.throttleRate = op.rate;
              world.waf.throttleRate = op.rate;
              break;
            case 'lockConflict':
              world.waf.conflictNext(op.n);
              break;
            case 'crash':
              world.ec2.failNext(op.op, 'InternalError');
              break;
            case 'wafCrash':
              world.waf.failNext(op.op, 'WAFInternalErrorException');
              break;
            case 'foreign': {
              const aclId = acls[op.acl]!;
              const entry = foreignEntry(op.ruleNumber, op.variant);
              const entries = world.ec2.entries(aclId);
              const taken = entries.some((e) => e.RuleNumber === entry.RuleNumber && e.Egress === entry.Egress);
              const count = entries.filter((e) => e.Egress === entry.Egress && familyOf(e) === familyOf(entry)).length;
              if (!taken && count < settings.nacl.quotaPerDirection) {
                world.ec2.consoleEdit(aclId, (list) => [...list, entry]);
                foreign.get(aclId)!.push(entry);
              }
              break;
            }
            case 'manualDelete': {
              const aclId = acls[op.acl]!;
              // the operator deletes one of portsnare's entries, never one of the foreign entries this run added
              const own = world.ec2.entries(aclId).filter((e) => ownEntryTarget(fromSdkEntry(e), range) !== undefined && !foreign.get(aclId)!.some((f) => sameEntry(f, e)));
              const victim = own[op.pick % Math.max(1, own.length)];
              if (victim) world.ec2.consoleEdit(aclId, (list) => list.filter((e) => !(e.RuleNumber === victim.RuleNumber && e.Egress === victim.Egress)));
              break;
            }
            case 'wafEdit': {
              const ref = [SET_V4, SET_V4_2, SET_V6][op.pick % 3]!;
              world.waf.consoleEdit(ref, (list) => list.filter((_, i) => i !== op.pick % Math.max(1, list.length)));
              break;
            }
            case 'unblock':
              await world.decide({
                id: `u-${op.who}-${world.clock.now()}`,
                source: 'portsnare.cli',
                'detail-type': 'Unblock Requested',
                detail: { version: 1, target: POOL[op.who]!, requestedBy: 'op' },
              });
              break;
          }
        }

        // The faults stop; the schedules run: expiry, then reconcile.
        world.ec2.clearFaults();
        world.waf.clearFaults();
        await world.drain();
        world.clock.advance(60_000);
        await world.expiry();
        await world.reconcile();
        await world.drain();

        const now = world.clock.now();
        const guard = new NeverBlockGuard(settings.guard);
        const records = (await world.repo.listActive()).map((s) => s.record);
        const desired = records.filter((r) => isActive(r, now) && guard.isBlockable(r.target));
        // WAF holds exactly the desired addresses
        expect([...world.wafAddresses()].sort()).toEqual(desired.map((r) => `${r.target}/${r.family === 'ipv4' ? 32 : 128}`).sort());
        for (const aclId of acls) {
          const entries = world.ec2.entries(aclId);
          // every foreign entry untouched
          for (const f of foreign.get(aclId)!) expect(entries).toContainEqual(f);
          // an IPv6 deny of /48 or narrower has portsnare's shape (the prefix policy): the ones put
          // there by hand are foreign by the ledger alone, so they are marked as the ledger sees them
          const byHand = foreign.get(aclId)!;
          const sdk = entries.map((e) => ({ ...fromSdkEntry(e), ...(byHand.some((f) => sameEntry(f, e)) ? { foreign: true } : {}) }));
          const ownTargets = sdk.map((e) => ownEntryTarget(e, range)).filter((t): t is string => t !== undefined);
          const capacity = naclCapacity(sdk, range, settings.nacl.quotaPerDirection);
          for (const family of ['ipv4', 'ipv6'] as const) {
            const want = desired.filter((r) => r.family === family).map((r) => r.target);
            const have = ownTargets.filter((t) => want.includes(t));
            expect(ownTargets.filter((t) => (t.includes(':') ? 'ipv6' : 'ipv4') === family)).toEqual(expect.arrayContaining(have));
            expect(have.length).toBe(Math.min(want.length, capacity[family], 16 - foreignNumbersInRange(sdk, range)));
          }
          for (const t of ownTargets) expect(desired.map((r) => r.target)).toContain(t);
          for (const e of sdk) if (ownEntryTarget(e, range) !== undefined) expect(e.ruleNumber).toBeGreaterThanOrEqual(range[0]);
        }
        // and nothing is left to do
        const actual = {
          nacls: acls.map((aclId) => ({ aclId, entries: world.ec2.entries(aclId).map((e) => ({ ...fromSdkEntry(e), ...(foreign.get(aclId)!.some((f) => sameEntry(f, e)) ? { foreign: true } : {}) })) })),
          wafSets: settings.waf.sets.map((ref) => ({ ref, addresses: world.waf.addresses(ref) })),
        };
        expect(isNoop(planEnforcement(records, actual, settings, now))).toBe(true);
      }),
      { numRuns: 120 },
    );
  }, 120_000);
});

function foreignNumbersInRange(entries: readonly NaclEntry[], range: readonly [number, number]): number {
  return new Set(entries.filter((e) => !e.egress && ownEntryTarget(e, range) === undefined && e.ruleNumber >= range[0] && e.ruleNumber <= range[1]).map((e) => e.ruleNumber)).size;
}

function sameEntry(a: NetworkAclEntry, b: NetworkAclEntry): boolean {
  return a.RuleNumber === b.RuleNumber && a.Egress === b.Egress && a.RuleAction === b.RuleAction && a.Protocol === b.Protocol && a.CidrBlock === b.CidrBlock && a.Ipv6CidrBlock === b.Ipv6CidrBlock;
}
