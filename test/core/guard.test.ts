import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NeverBlockGuard } from '../../core/guard';

describe('NeverBlockGuard', () => {
  const guard = NeverBlockGuard.from({ allowlist: ['198.51.100.0/28', '2001:db8:aaaa::1'], protectedCidrs: ['203.0.113.0/26'], blockableSpecialCidrs: ['198.51.100.0/24', '203.0.113.0/24', '2001:db8::/32'] });

  it('refuses allowlisted, protected and special-range targets with the rule that protects them', () => {
    expect(guard.check('198.51.100.3')).toEqual({ blockable: false, rule: 'allowlist 198.51.100.0/28' });
    expect(guard.check('2001:db8:aaaa::1')).toEqual({ blockable: false, rule: 'allowlist 2001:db8:aaaa::1/128' });
    expect(guard.check('203.0.113.9')).toEqual({ blockable: false, rule: 'protected network 203.0.113.0/26' });
    expect(guard.check('10.9.9.9')).toMatchObject({ blockable: false, rule: expect.stringContaining('private') });
    expect(guard.check('169.254.169.254')).toMatchObject({ blockable: false, rule: expect.stringContaining('linkLocal') });
    expect(guard.check('ff02::1')).toMatchObject({ blockable: false, rule: expect.stringContaining('multicast') });
  });

  it('refuses a CIDR that would cover an allowlisted address', () => {
    expect(guard.check('198.51.100.0/24').blockable).toBe(false);
  });

  it('blocks a global address and the special ranges made blockable', () => {
    expect(guard.check('198.51.100.77')).toEqual({ blockable: true });
    expect(guard.check('2001:db8::5')).toEqual({ blockable: true });
    expect(NeverBlockGuard.from({}).check('8.8.4.4')).toEqual({ blockable: true });
  });

  it('never lets an address inside an allowlisted CIDR through, whatever the CIDR', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 16, max: 32 }), (x, y, prefix) => {
        const allow = NeverBlockGuard.from({ allowlist: [`192.0.${x}.0/24`], blockSpecialRanges: true });
        expect(allow.isBlockable(`192.0.${x}.${y}`)).toBe(false);
        const wide = `192.0.${x & ((0xff << (24 - prefix)) & 0xff)}.0/${prefix}`;
        const narrow = `192.0.${x}.${y & ((0xff << (32 - prefix)) & 0xff)}/${prefix}`;
        expect(allow.isBlockable(prefix >= 24 ? narrow : wide)).toBe(false);
      }),
    );
  });
});
