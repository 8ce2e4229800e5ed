/**
 * The enforce container's NACL cache (lambda/shared/enforcer.ts): an incremental run answers the
 * ACLs' records from what the last full run kept and the changes since, exactly, or says it cannot
 * (then the run reads the index). Expectations are literal lists of addresses.
 */
import { describe, expect, it } from 'vitest';
import { naclCacheOf, naclRecentFromCache } from '../../lambda/shared/enforcer';
import { testSettings } from '../fakes/world';

const NOW = 1_800_000_000_000;
const settings = testSettings(); // quota 20 a family: the cache keeps 60 of each
const rec = (n: number, over: Partial<{ active: boolean; lastSeen: number; expiresAt: number }> = {}) => ({
  target: `203.0.113.${n}`,
  active: true,
  blockedAt: NOW - 1_000_000,
  lastSeen: NOW - 1_000_000 + n * 1000, // .100 the most recent, .1 the least
  expiresAt: NOW + 3_600_000,
  ...over,
});
const ips = (list: ReadonlyArray<{ target: string }>) => list.map((r) => r.target);
const range = (from: number, to: number) => Array.from({ length: from - to + 1 }, (_, i) => `203.0.113.${from - i}`);

describe('the NACL cache', () => {
  const records = Array.from({ length: 100 }, (_, i) => rec(i + 1));

  it('keeps 3 × the capacity of the most recent, and marks the rest unknown below the 61st', () => {
    const cache = naclCacheOf(records, settings, NOW);
    expect(cache.records.size).toBe(60);
    expect(cache.unknownBelow).toEqual({ ipv4: NOW - 1_000_000 + 40 * 1000, ipv6: -Infinity });
    expect(ips(naclRecentFromCache(cache, [], settings, NOW)!)).toEqual(range(100, 81));
  });

  it('folds the changes in: a lift leaves, a refresh of an unknown record enters at its new recency, the allowlisted never do', () => {
    const cache = naclCacheOf(records, settings, NOW);
    const changes = [
      { ...rec(100, { active: false }), changedAt: NOW - 500 },
      { ...rec(5, { lastSeen: NOW - 100 }), changedAt: NOW - 100 },
      { ...rec(99), target: '198.51.100.250', lastSeen: NOW, changedAt: NOW }, // allowlisted in testSettings
    ];
    expect(ips(naclRecentFromCache(cache, changes, settings, NOW)!)).toEqual(['203.0.113.5', ...range(99, 81)]);
  });

  it('drops what expired without a change yet', () => {
    const cache = naclCacheOf([rec(1, { expiresAt: NOW + 1000 }), rec(2)], settings, NOW);
    expect(ips(naclRecentFromCache(cache, [], settings, NOW + 2000)!)).toEqual(['203.0.113.2']);
  });

  it('cannot answer once lifts brought the cached below the capacity over unknown records: the run reads the index', () => {
    const cache = naclCacheOf(records, settings, NOW);
    const lifts = range(100, 60).map((target, i) => ({ ...rec(100 - i, { active: false }), target, changedAt: NOW }));
    expect(naclRecentFromCache(cache, lifts, settings, NOW)).toBeUndefined();
  });

  it('a family the full run saw whole stays exact however small', () => {
    const cache = naclCacheOf(records.slice(0, 10), settings, NOW);
    expect(cache.unknownBelow.ipv4).toBe(-Infinity);
    const lifts = range(10, 3).map((target, i) => ({ ...rec(10 - i, { active: false }), target, changedAt: NOW }));
    expect(ips(naclRecentFromCache(cache, lifts, settings, NOW)!)).toEqual(['203.0.113.2', '203.0.113.1']);
  });
});
