import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type BlockRecord, BurstBreaker, decide, DEFAULT_POLICY, PolicySettingsSchema, policyRefusal, type Sighting, ttlSecondsFor } from '../../core/policy';

const policyArb = fc
  .record({
    baseTtlSeconds: fc.integer({ min: 60, max: 86400 }),
    escalationFactor: fc.double({ min: 1, max: 100, noNaN: true }),
    maxTtlSeconds: fc.integer({ min: 60, max: 365 * 86400 }),
  })
  .map((p) => PolicySettingsSchema.parse(p));

const sighting = (eventId: string, at: number, overrides: Partial<Sighting> = {}): Sighting => ({
  target: '203.0.113.7',
  family: 'ipv4',
  reason: 'sensor',
  eventId,
  sensorId: 'i-1',
  firstSeen: at,
  lastSeen: at,
  hits: 2,
  verified: true,
  ...overrides,
});

describe('escalation', () => {
  it('is base × factor^(n−1), capped', () => {
    expect([1, 2, 3, 4].map((n) => ttlSecondsFor(n, DEFAULT_POLICY))).toEqual([3600, 7200, 14400, 28800]);
    expect(ttlSecondsFor(50, DEFAULT_POLICY)).toBe(7 * 86400);
  });

  it('is monotone in the offence count and never exceeds the cap', () => {
    fc.assert(
      fc.property(policyArb, fc.integer({ min: 0, max: 2000 }), fc.integer({ min: 0, max: 50 }), (policy, n, step) => {
        const a = ttlSecondsFor(n, policy);
        const b = ttlSecondsFor(n + step, policy);
        expect(b).toBeGreaterThanOrEqual(a);
        expect(b).toBeLessThanOrEqual(policy.maxTtlSeconds);
        expect(a).toBeGreaterThanOrEqual(Math.min(policy.baseTtlSeconds, policy.maxTtlSeconds));
      }),
    );
  });

  it('through decide: each offence after an expiry lasts at least as long as the one before', () => {
    fc.assert(
      fc.property(policyArb, fc.array(fc.integer({ min: 1, max: 10 * 86400 }), { minLength: 1, maxLength: 12 }), (policy, gaps) => {
        let now = Date.parse('2026-11-21T00:00:00Z');
        let previous: BlockRecord | undefined;
        let lastTtl = 0;
        gaps.forEach((gap, i) => {
          const decision = decide(previous, sighting(`e${i}`, now), now, policy);
          if (decision.action === 'block') {
            const ttl = decision.record.expiresAt - decision.record.blockedAt;
            if (decision.record.offences > 1) expect(ttl).toBeGreaterThanOrEqual(lastTtl);
            expect(ttl).toBeLessThanOrEqual(policy.maxTtlSeconds * 1000);
            lastTtl = ttl;
          }
          if (decision.action !== 'ignore') previous = decision.record;
          now += gap * 1000;
        });
      }),
    );
  });
});

describe('decide', () => {
  const now = Date.parse('2026-11-21T10:00:00Z');

  it('counts a redelivered event once', () => {
    const first = decide(undefined, sighting('same', now), now, DEFAULT_POLICY);
    expect(first.action).toBe('block');
    const again = decide(first.action === 'ignore' ? undefined : first.record, sighting('same', now + 1000), now + 1000, DEFAULT_POLICY);
    expect(again.action).toBe('ignore');
  });

  it('refreshes an active block without extending it', () => {
    const first = decide(undefined, sighting('a', now), now, DEFAULT_POLICY);
    if (first.action === 'ignore') throw new Error('expected a block');
    const second = decide(first.record, sighting('b', now + 60_000), now + 60_000, DEFAULT_POLICY);
    expect(second).toMatchObject({ action: 'refresh', record: { expiresAt: first.record.expiresAt, hitCount: 4, lastSeen: now + 60_000 } });
  });

  it('restarts the count after the offence window', () => {
    const first = decide(undefined, sighting('a', now), now, DEFAULT_POLICY);
    if (first.action === 'ignore') throw new Error('expected a block');
    const later = now + 31 * 86400_000;
    expect(decide(first.record, sighting('b', later), later, DEFAULT_POLICY)).toMatchObject({ action: 'block', record: { offences: 1 } });
  });

  it('ignores an unverified sighting unless blockUnverified is set', () => {
    expect(decide(undefined, sighting('a', now, { verified: false }), now, DEFAULT_POLICY).action).toBe('ignore');
    expect(decide(undefined, sighting('a', now, { verified: false }), now, { ...DEFAULT_POLICY, blockUnverified: true }).action).toBe('block');
  });
});

describe('BurstBreaker', () => {
  it('admits the limit in a sliding minute, then refuses until the minute drains', () => {
    const breaker = new BurstBreaker(2);
    expect([breaker.tryAdmit(0), breaker.tryAdmit(10), breaker.tryAdmit(20)]).toEqual([true, true, false]);
    expect(breaker.isOpen(59_999)).toBe(true);
    expect(breaker.tryAdmit(60_001)).toBe(true);
  });
});

describe('policy refusals and manual re-blocks', () => {
  const T0 = Date.parse('2026-11-21T10:00:00Z');

  it('refuses a CIDR wider than the widest prefix (defaults /16 and /48) and a manual TTL past the maximum (default 30 days)', () => {
    expect(policyRefusal({ target: '32.0.0.0/3' }, DEFAULT_POLICY)).toContain('wider than /16');
    expect(policyRefusal({ target: '0.0.0.0/0' }, DEFAULT_POLICY)).toContain('policy.widestIpv4Prefix');
    expect(policyRefusal({ target: '2001:db8::/32' }, DEFAULT_POLICY)).toContain('policy.widestIpv6Prefix');
    expect(policyRefusal({ target: '198.51.100.0/24' }, DEFAULT_POLICY)).toBeUndefined();
    expect(policyRefusal({ target: '198.51.0.0/16' }, DEFAULT_POLICY)).toBeUndefined();
    expect(policyRefusal({ target: '198.51.100.7', ttlSeconds: 365 * 86400 }, DEFAULT_POLICY)).toContain('policy.maxManualTtlSeconds');
    expect(policyRefusal({ target: '198.51.100.7', ttlSeconds: 30 * 86400 }, DEFAULT_POLICY)).toBeUndefined();
  });

  it('a manual re-block without a TTL keeps the longer block and its note; --replace shortens it', () => {
    const week = decide(undefined, sighting('m1', T0, { reason: 'manual', ttlSeconds: 7 * 86400, note: 'known bad' }), T0, DEFAULT_POLICY);
    expect(week.action).toBe('block');
    if (week.action !== 'block') return;
    const later = T0 + 60_000;
    const again = decide(week.record, sighting('m2', later, { reason: 'manual' }), later, DEFAULT_POLICY);
    // asking again is no new offence (issue 19: each manual re-block raised it)
    expect(again).toMatchObject({ action: 'block', record: { expiresAt: T0 + 7 * 86400_000, note: 'known bad', offences: 1 } });
    const replaced = decide(week.record, sighting('m3', later, { reason: 'manual', replace: true }), later, DEFAULT_POLICY);
    // still offence 1 under the default policy: 1 h from the re-block
    expect(replaced).toMatchObject({ action: 'block', record: { expiresAt: later + 3600_000, offences: 1 } });
    if (replaced.action === 'block') expect(replaced.record.note).toBeUndefined();
  });

  it('keeps the hit count an exact integer past 2^53 hits', () => {
    const first = decide(undefined, sighting('e1', T0, { hits: Number.MAX_SAFE_INTEGER - 1 }), T0, DEFAULT_POLICY);
    if (first.action !== 'block') throw new Error('expected a block');
    const more = decide(first.record, sighting('e2', T0 + 1000, { hits: 10 }), T0 + 1000, DEFAULT_POLICY);
    expect(more.action).toBe('refresh');
    if (more.action === 'refresh') expect(more.record.hitCount).toBe(Number.MAX_SAFE_INTEGER);
  });
});

describe('decoy ports on the record (core/digest.ts ranks ports by them)', () => {
  const T0 = Date.parse('2026-12-01T00:00:00Z');
  it('keeps the last 10 distinct ports, a port seen again moving to the end, across block and refresh', () => {
    const first = decide(undefined, sighting('p1', T0, { ports: [22, 23, 22] }), T0, DEFAULT_POLICY);
    expect(first.action).toBe('block');
    if (first.action !== 'block') return;
    expect(first.record.ports).toEqual([23, 22]);
    const more = decide(first.record, sighting('p2', T0 + 1000, { ports: [1, 2, 3, 4, 5, 6, 7, 8, 9, 23] }), T0 + 1000, DEFAULT_POLICY);
    expect(more.action).toBe('refresh');
    if (more.action === 'refresh') expect(more.record.ports).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 23]);
  });
  it('a sighting without ports (a manual block) leaves a record without them', () => {
    const manual = decide(undefined, sighting('m1', T0, { reason: 'manual' }), T0, DEFAULT_POLICY);
    expect(manual.action === 'block' && 'ports' in manual.record).toBe(false);
  });
});
