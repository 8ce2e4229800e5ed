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

// Expected values worked by hand from the RFCs: 198.51.100.3 is c6.33.64.03 in hex;
// 203.0.113.9 is cb.00.71.09 (its bits inverted: 34.ff.8e.f6).
describe('NeverBlockGuard and IPv6 forms of IPv4 addresses', () => {
  const guard = NeverBlockGuard.from({ allowlist: ['198.51.100.3'], protectedCidrs: ['203.0.113.0/24'], blockableSpecialCidrs: ['2001:db8::/32'] });

  it('refuses the NAT64 form of an allowlisted address (RFC 6052: 64:ff9b::/96)', () => {
    expect(guard.check('64:ff9b::c633:6403')).toMatchObject({ blockable: false, rule: expect.stringContaining('allowlist 198.51.100.3/32') });
    expect(guard.check('64:ff9b::c633:6403').blockable).toBe(false);
  });

  it('refuses the 6to4 form of a protected network (RFC 3056: 2002:V4ADDR::/48)', () => {
    expect(guard.check('2002:cb00:7109::1')).toMatchObject({ blockable: false, rule: expect.stringContaining('protected network 203.0.113.0/24') });
    expect(guard.check('2002:cb00:7100::/40')).toMatchObject({ blockable: false });
  });

  it('refuses the IPv4-translated form (RFC 2765: ::ffff:0:a.b.c.d) and the Teredo client form (RFC 4380: inverted bits)', () => {
    expect(guard.check('::ffff:0:c633:6403').blockable).toBe(false);
    expect(guard.check('2001:0:4136:e378:8000:63bf:34ff:8ef6').blockable).toBe(false);
  });

  it('refuses an IPv6 CIDR that covers a whole embedding (every IPv4 address, special ones included)', () => {
    expect(guard.check('2002::/16').blockable).toBe(false);
    expect(guard.check('64:ff9b::/96').blockable).toBe(false);
  });

  it('still blocks the IPv6 forms of an ordinary global IPv4 address', () => {
    // 192.0.2.1 would be special; 8.8.4.4 is 0808:0404
    expect(guard.check('64:ff9b::808:404')).toEqual({ blockable: true });
    expect(guard.check('2002:808:404::1')).toEqual({ blockable: true });
    expect(guard.check('2001:db8::5')).toEqual({ blockable: true });
  });

  it('refuses the 6to4 form of a private IPv4 address (10.1.2.3 → 2002:a01:203::)', () => {
    expect(guard.check('2002:a01:203::1')).toMatchObject({ blockable: false, rule: expect.stringContaining('private') });
  });
});
