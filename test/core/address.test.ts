import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalAddress, cidrContains, cidrCovers, cidrOverlaps, familyOf, hostCidr, parseCidr, specialRange, tryCanonicalAddress, tryParseCidr } from '../../core/address';

describe('addresses', () => {
  it('canonicalises IPv4, IPv6 (RFC 5952) and folds IPv4-mapped IPv6', () => {
    expect(canonicalAddress(' 198.51.100.7 ')).toBe('198.51.100.7');
    expect(canonicalAddress('2001:DB8:0:0:0:0:0:1')).toBe('2001:db8::1');
    expect(canonicalAddress('::ffff:198.51.100.7')).toBe('198.51.100.7');
    expect(familyOf('::ffff:198.51.100.7')).toBe('ipv4');
  });

  it('refuses what is not one address', () => {
    for (const bad of ['', '1.2.3', '010.1.1.1x', '256.1.1.1', 'fe80::1%eth0', '198.51.100.0/24', 'host.example']) {
      expect(tryCanonicalAddress(bad)).toBeUndefined();
    }
  });

  it('parses CIDRs with zero host bits and reports a bare address as a host CIDR', () => {
    expect(parseCidr('198.51.100.0/24')).toEqual({ family: 'ipv4', network: '198.51.100.0', prefix: 24, text: '198.51.100.0/24' });
    expect(tryParseCidr('198.51.100.1/24')).toBeUndefined();
    expect(tryParseCidr('198.51.100.1/24', true)?.text).toBe('198.51.100.0/24');
    expect(tryParseCidr('::ffff:198.51.100.0/120')?.text).toBe('198.51.100.0/24');
    expect(hostCidr('2001:db8::7')).toBe('2001:db8::7/128');
    expect(tryParseCidr('198.51.100.0/33')).toBeUndefined();
  });

  it('answers containment, cover and overlap by family', () => {
    const net = parseCidr('2001:db8::/32');
    expect(cidrContains(net, '2001:db8:ffff::1')).toBe(true);
    expect(cidrContains(net, '2001:db9::1')).toBe(false);
    expect(cidrContains(parseCidr('0.0.0.0/0'), '2001:db8::1')).toBe(false);
    expect(cidrCovers(parseCidr('198.51.100.0/24'), parseCidr('198.51.100.128/25'))).toBe(true);
    expect(cidrCovers(parseCidr('198.51.100.128/25'), parseCidr('198.51.100.0/24'))).toBe(false);
    expect(cidrOverlaps(parseCidr('198.51.100.128/25'), parseCidr('198.51.100.0/24'))).toBe(true);
  });

  it('names special-purpose ranges', () => {
    expect(specialRange('10.1.2.3')).toBe('private');
    expect(specialRange('127.0.0.1')).toBe('loopback');
    expect(specialRange('fe80::1')).toBe('linkLocal');
    expect(specialRange('8.8.8.8')).toBeUndefined();
  });

  it('agrees with bit arithmetic on IPv4 containment for any address and prefix', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.integer({ min: 0, max: 32 }), (a, b, prefix) => {
        const text = (n: number) => [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.');
        const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
        const cidr = parseCidr(`${text((a & mask) >>> 0)}/${prefix}`);
        expect(cidrContains(cidr, text(b))).toBe(((a & mask) >>> 0) === ((b & mask) >>> 0));
      }),
      { numRuns: 500 },
    );
  });
});
