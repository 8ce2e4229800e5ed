/** The change log's key builders (core/table.ts), against literal keys. */
import { describe, expect, it } from 'vitest';
import { changeSortKey, changeTimeKey, liftedChangeKey, parseChangeSortKey } from '../../core/table';

describe('the change log keys', () => {
  it('chgAt is the epoch ms in 13 digits, then # and the target, so a string sort is a time sort', () => {
    expect(changeSortKey(1795953600000, '203.0.113.7')).toBe('1795953600000#203.0.113.7');
    expect(changeSortKey(999_999_999_999, '2001:db8::/64')).toBe('0999999999999#2001:db8::/64');
    expect(changeSortKey(0, '192.0.2.1')).toBe('0000000000000#192.0.2.1');
    const keys = [changeSortKey(1_000_000_000_000, 'b'), changeSortKey(999_999_999_999, 'z'), changeSortKey(1_000_000_000_000, 'a')];
    expect([...keys].sort()).toEqual(['0999999999999#z', '1000000000000#a', '1000000000000#b']);
    expect(changeTimeKey(1795953600001)).toBe('1795953600001');
  });

  it('refuses a time that 13 digits cannot hold or that is not a whole ms, naming it', () => {
    expect(() => changeSortKey(10_000_000_000_000, 'x')).toThrow('change time 10000000000000 is not an epoch-ms integer from 0 to 9999999999999');
    expect(() => changeSortKey(-1, 'x')).toThrow(/change time -1/);
    expect(() => changeSortKey(1.5, 'x')).toThrow(/change time 1.5/);
    expect(() => liftedChangeKey(Number.NaN)).toThrow(/change time NaN/);
  });

  it('a lift is filed under its UTC day', () => {
    expect(liftedChangeKey(Date.UTC(2026, 10, 29, 23, 59, 59, 999))).toBe('L#2026-11-29');
    expect(liftedChangeKey(Date.UTC(2026, 10, 30, 0, 0, 0, 0))).toBe('L#2026-11-30');
  });

  it('parses what it builds, and nothing else', () => {
    expect(parseChangeSortKey('1795953600000#203.0.113.7')).toEqual({ at: 1795953600000, target: '203.0.113.7' });
    expect(parseChangeSortKey('0999999999999#2001:db8::1')).toEqual({ at: 999_999_999_999, target: '2001:db8::1' });
    for (const bad of ['done', '1795953600000', '1795953600000#', '179595360000#x', '17959536000000#x', '17959536000x0#x', '+795953600000#x', 5, undefined]) {
      expect(parseChangeSortKey(bad), String(bad)).toBeUndefined();
    }
  });
});
