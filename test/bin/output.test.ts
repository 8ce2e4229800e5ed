import { describe, expect, it } from 'vitest';
import { expiresIn, humanDuration, keyValues, table } from '../../bin/commands/output';
import { parseTarget, parseTtl } from '../../bin/commands/targets';

describe('humanDuration', () => {
  it.each([
    [0, '0s'],
    [59, '59s'],
    [60, '1m'],
    [61, '1m 1s'],
    [3600, '1h'],
    [7260, '2h 1m'],
    [86_400, '1d'],
    [90_061, '1d 1h'],
    [7 * 86_400, '7d'],
  ])('%i s reads as %s', (seconds, text) => {
    expect(humanDuration(seconds)).toBe(text);
  });

  it('says how long ago a past expiry was', () => {
    expect(expiresIn(1_000, 181_000)).toBe('expired 3m ago');
  });
});

describe('table and keyValues', () => {
  it('pads every column but the last to its widest cell', () => {
    expect(table(['A', 'LONGER'], [['1234', 'x'], ['5', 'yy']])).toBe('A     LONGER\n1234  x\n5     yy');
  });

  it('aligns the values of key/value lines', () => {
    expect(keyValues([['a', '1'], ['bbb', '2']])).toBe('a    1\nbbb  2');
  });
});

describe('parseTarget and parseTtl', () => {
  it('canonicalizes addresses and CIDRs', () => {
    expect(parseTarget('2001:DB8::0:1')).toBe('2001:db8::1');
    expect(parseTarget('198.51.100.7/32')).toBe('198.51.100.7');
    expect(parseTarget('198.51.100.0/24')).toBe('198.51.100.0/24');
  });

  it('accepts the TTLs the pipeline accepts, 1 minute to 365 days', () => {
    expect(parseTtl('1m')).toBe(60);
    expect(parseTtl('2h')).toBe(7200);
    expect(parseTtl('365d')).toBe(365 * 86_400);
    expect(() => parseTtl('59s')).toThrow(/between 60s/);
    expect(() => parseTtl('366d')).toThrow(/between 60s/);
  });
});
