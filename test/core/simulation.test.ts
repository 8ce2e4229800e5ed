/**
 * Simulation in the pure plan (core/policy.ts simulationOf, core/diff.ts desiredCandidates and
 * planEnforcement): which records are candidates for WAF and the NACLs under each setting.
 */
import { describe, expect, it } from 'vitest';
import { desiredCandidates, planEnforcement } from '../../core/diff';
import { NeverBlockGuard } from '../../core/guard';
import { simulationOf } from '../../core/policy';
import { PipelineSettingsSchema } from '../../core/settings';

const NOW = Date.parse('2026-11-21T10:00:00Z');
const base = {
  guard: { blockableSpecialCidrs: ['203.0.113.0/24', '2001:db8::/32'], allowlist: ['203.0.113.250/32'] },
  nacl: { aclIds: ['acl-0a1b2c3d'], ruleRange: [10, 60] as [number, number] },
  waf: { sets: [{ scope: 'REGIONAL' as const, family: 'ipv4' as const, name: 'v4', id: 'a' }] },
};
const rec = (target: string, reason?: 'sensor' | 'manual' | 'guardduty' | 'flowlogs', active = true) => ({
  target,
  lastSeen: NOW - 1000,
  blockedAt: NOW - 1000,
  expiresAt: NOW + 3600_000,
  active,
  ...(reason ? { reason } : {}),
});

describe('simulationOf', () => {
  it('all simulates every record, reasonless too; inputs only those reasons; none or off: nothing', () => {
    expect(simulationOf({ reason: 'manual' }, { all: true, inputs: [] })).toBe('all');
    expect(simulationOf({}, { all: true, inputs: [] })).toBe('all');
    expect(simulationOf({ reason: 'sensor' }, { all: false, inputs: ['sensor'] })).toBe('input');
    expect(simulationOf({ reason: 'manual' }, { all: false, inputs: ['sensor'] })).toBeUndefined();
    expect(simulationOf({}, { all: false, inputs: ['sensor'] })).toBeUndefined();
    expect(simulationOf({ reason: 'sensor' }, undefined)).toBeUndefined();
  });
});

describe('desiredCandidates and planEnforcement under simulation', () => {
  const guard = new NeverBlockGuard(PipelineSettingsSchema.parse(base).guard);
  const records = [rec('203.0.113.1', 'sensor'), rec('203.0.113.2', 'manual'), rec('203.0.113.3', 'guardduty', false), rec('203.0.113.250', 'sensor')];

  it('inputs: the simulated input is no candidate and listed simulated; a guarded one stays refused; a lifted one is nothing', () => {
    const out = desiredCandidates(records, NOW, guard, undefined, { all: false, inputs: ['sensor', 'guardduty'] });
    expect(out.candidates.map((c) => [c.target, c.nacl])).toEqual([['203.0.113.2', true]]);
    expect(out.simulated).toEqual(['203.0.113.1']);
    expect(out.refused.map((r) => r.target)).toEqual(['203.0.113.250']);
  });

  it('all: every blockable record is a WAF candidate and none a NACL one', () => {
    const out = desiredCandidates(records, NOW, guard, undefined, { all: true, inputs: [] });
    expect(out.candidates.map((c) => [c.target, c.nacl])).toEqual([
      ['203.0.113.1', false],
      ['203.0.113.2', false],
    ]);
  });

  it('the full plan: all fills the IP set and writes no NACL entry; inputs keeps the input out of both', () => {
    const actual = { nacls: [{ aclId: 'acl-0a1b2c3d', entries: [] }], wafSets: [{ ref: base.waf.sets[0]!, addresses: [] }] };
    const all = planEnforcement(records, actual, PipelineSettingsSchema.parse({ ...base, simulation: { all: true } }), NOW);
    expect(all.waf.flatMap((u) => u.addresses)).toEqual(['203.0.113.1/32', '203.0.113.2/32']);
    expect(all.nacl.flatMap((p) => p.changes)).toEqual([]);
    const inputs = planEnforcement(records, actual, PipelineSettingsSchema.parse({ ...base, simulation: { inputs: ['sensor'] } }), NOW);
    expect(inputs.waf.flatMap((u) => u.addresses)).toEqual(['203.0.113.2/32']);
    expect(inputs.nacl.flatMap((p) => p.changes).map((c) => ('cidr' in c ? c.cidr : c))).toEqual(['203.0.113.2/32']);
  });

  it('the settings document: simulation defaults to off; a wrong input is refused naming it', () => {
    expect(PipelineSettingsSchema.parse({}).simulation).toEqual({ all: false, inputs: [] });
    const bad = PipelineSettingsSchema.safeParse({ simulation: { inputs: ['sensors'] } });
    expect(bad.success).toBe(false);
    expect(bad.error?.issues[0]?.path).toEqual(['simulation', 'inputs', 0]);
  });
});
