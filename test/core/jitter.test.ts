/**
 * Jittered escalation (policy.ttlJitterPercent): each policy TTL gets a uniformly random extra of
 * 0 to N % of itself. The expected TTL is computed here from the documented rule (base ×
 * factor^(n−1), capped at maxTtlSeconds, README.md "Block policy"), not from ttlSecondsFor.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type BlockRecord, decide, DEFAULT_POLICY, PolicySettingsSchema, type Sighting } from '../../core/policy';

const NOW = Date.parse('2026-12-01T00:00:00Z');

const sighting = (eventId: string, overrides: Partial<Sighting> = {}): Sighting => ({
  target: '203.0.113.7',
  family: 'ipv4',
  reason: 'sensor',
  eventId,
  sensorId: 'i-1',
  firstSeen: NOW,
  lastSeen: NOW,
  hits: 1,
  verified: true,
  ...overrides,
});

/** the documented TTL of the n-th offence, seconds */
function documentedTtl(n: number, base: number, factor: number, max: number): number {
  return Math.min(max, Math.round(base * factor ** (n - 1)));
}

/** a lifted record with `offences` offences, blocked a moment ago (inside the offence window) */
function previousWith(offences: number): BlockRecord {
  return {
    target: '203.0.113.7',
    family: 'ipv4',
    reason: 'sensor',
    firstSeen: NOW - 60_000,
    lastSeen: NOW - 60_000,
    hitCount: 1,
    offences,
    blockedAt: NOW - 60_000,
    expiresAt: NOW - 1,
    active: false,
    eventIds: ['old'],
    sensors: ['i-1'],
  };
}

describe('ttlJitterPercent', () => {
  it('is off by default: the TTL is exactly the documented one, whatever the random source says', () => {
    expect(DEFAULT_POLICY.ttlJitterPercent ?? 0).toBe(0);
    for (const r of [0, 0.5, 0.999999]) {
      const d = decide(undefined, sighting('e1'), NOW, DEFAULT_POLICY, () => r);
      expect(d.action).toBe('block');
      if (d.action === 'block') expect(d.record.expiresAt - NOW).toBe(3600 * 1000);
    }
  });

  it('adds 0 to N % of the TTL, within bounds, for any offence and random draw', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 100 }),
        fc.integer({ min: 60, max: 86400 }),
        fc.integer({ min: 1, max: 8 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (percent, base, offences, r) => {
          const policy = PolicySettingsSchema.parse({ ttlJitterPercent: percent, baseTtlSeconds: base, maxTtlSeconds: 30 * 86400 });
          const d = decide(offences > 1 ? previousWith(offences - 1) : undefined, sighting('e1'), NOW, policy, () => r);
          expect(d.action).toBe('block');
          if (d.action !== 'block') return;
          const ttl = documentedTtl(offences, base, 2, 30 * 86400);
          const got = (d.record.expiresAt - NOW) / 1000;
          expect(Number.isInteger(got)).toBe(true);
          expect(got).toBeGreaterThanOrEqual(ttl);
          expect(got).toBeLessThanOrEqual(ttl + (ttl * percent) / 100);
          // uniform: the extra is the draw's share of the whole range, in whole seconds rounded down
          expect(ttl + (ttl * percent * r) / 100 - got).toBeGreaterThanOrEqual(-1e-6);
          expect(ttl + (ttl * percent * r) / 100 - got).toBeLessThan(1 + 1e-6);
        },
      ),
    );
  });

  it('spreads the expiries: 200 first offences at 50 % land over the whole range', () => {
    const policy = PolicySettingsSchema.parse({ ttlJitterPercent: 50 });
    let seed = 7;
    const random = () => ((seed = (seed * 48271) % 2147483647) / 2147483647);
    const ttls = Array.from({ length: 200 }, (_, i) => {
      const d = decide(undefined, sighting(`e${i}`), NOW, policy, random);
      return d.action === 'block' ? (d.record.expiresAt - NOW) / 1000 : NaN;
    });
    expect(Math.min(...ttls)).toBeGreaterThanOrEqual(3600);
    expect(Math.max(...ttls)).toBeLessThanOrEqual(5400);
    // each quarter of the range gets some: a scanner cannot pick one moment to come back
    for (let q = 0; q < 4; q++) expect(ttls.filter((t) => t >= 3600 + q * 450 && t < 3600 + (q + 1) * 450).length).toBeGreaterThan(20);
  });

  it('the jitter comes on top of maxTtlSeconds, so the longest block is max × (1 + N/100)', () => {
    const policy = PolicySettingsSchema.parse({ ttlJitterPercent: 10, baseTtlSeconds: 3600, maxTtlSeconds: 7200 });
    const d = decide(previousWith(5), sighting('e1'), NOW, policy, () => 0.999999);
    expect(d.action === 'block' && (d.record.expiresAt - NOW) / 1000).toBe(7200 + 719);
  });

  it('an operator’s own TTL is taken as asked', () => {
    const policy = PolicySettingsSchema.parse({ ttlJitterPercent: 100 });
    const d = decide(undefined, sighting('m1', { reason: 'manual', ttlSeconds: 600 }), NOW, policy, () => 0.9);
    expect(d.action === 'block' && d.record.expiresAt - NOW).toBe(600_000);
  });

  it('the record holds the real expiry (what history and blocks show), and a refresh keeps it', () => {
    const policy = PolicySettingsSchema.parse({ ttlJitterPercent: 20 });
    const first = decide(undefined, sighting('e1'), NOW, policy, () => 0.5);
    expect(first.action).toBe('block');
    if (first.action !== 'block') return;
    expect(first.record.expiresAt).toBe(NOW + (3600 + 360) * 1000);
    expect(first.why).toBe('offence 1, blocked for 3960s');
    const again = decide(first.record, sighting('e2'), NOW + 1000, policy, () => 0);
    expect(again.action === 'refresh' && again.record.expiresAt).toBe(first.record.expiresAt);
  });

  it('is a number from 0 to 100', () => {
    for (const bad of [-1, 100.5, 101, '10']) expect(PolicySettingsSchema.safeParse({ ttlJitterPercent: bad }).success).toBe(false);
    expect(PolicySettingsSchema.parse({ ttlJitterPercent: 12.5 }).ttlJitterPercent).toBe(12.5);
  });
});
