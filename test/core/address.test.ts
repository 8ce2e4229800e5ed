import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import ipaddr from 'ipaddr.js';
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

/**
 * core/address.ts parses dotted quads without ipaddr.js (its fast path). The oracle here is
 * ipaddr.js itself, a separate implementation: for any text built from digits, dots and a slash,
 * the fast path must answer what ipaddr.js's four-part decimal parse answers.
 */
describe('the IPv4 fast path agrees with ipaddr.js', () => {
  const octet = fc.oneof(fc.integer({ min: 0, max: 300 }).map(String), fc.constantFrom('00', '01', '010', '0255', '256', '', '1e2', '0x1', '+1', ' 1'));
  const text = fc
    .tuple(octet, octet, octet, octet, fc.option(fc.oneof(fc.integer({ min: 0, max: 40 }).map(String), fc.constantFrom('', '032', '08', 'x')), { nil: undefined }))
    .map(([a, b, c, d, prefix]) => `${a}.${b}.${c}.${d}${prefix === undefined ? '' : `/${prefix}`}`);

  // surrounding white space is ignored (core/address.ts trims), so the oracle trims too
  function oracleCidr(raw: string, loose: boolean): string | undefined {
    const input = raw.trim();
    const slash = input.indexOf('/');
    const address = slash < 0 ? input : input.slice(0, slash);
    if (!ipaddr.IPv4.isValidFourPartDecimal(address)) return undefined;
    const prefixText = slash < 0 ? '32' : input.slice(slash + 1);
    if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > 32) return undefined;
    const prefix = Number(prefixText);
    const network = ipaddr.IPv4.networkAddressFromCIDR(`${address}/${prefix}`).toString();
    if (!loose && network !== ipaddr.IPv4.parse(address).toString()) return undefined;
    return `${network}/${prefix}`;
  }

  it('tryParseCidr (strict and loose) and tryCanonicalAddress', () => {
    fc.assert(
      fc.property(text, fc.boolean(), (input, loose) => {
        expect(tryParseCidr(input, loose)?.text).toBe(oracleCidr(input, loose));
        if (!input.includes('/')) expect(tryCanonicalAddress(input)).toBe(ipaddr.IPv4.isValidFourPartDecimal(input.trim()) ? ipaddr.IPv4.parse(input.trim()).toString() : undefined);
      }),
      { numRuns: 5_000 },
    );
  });

  it('literal cases', () => {
    expect(tryParseCidr('198.51.100.7')?.text).toBe('198.51.100.7/32');
    expect(tryParseCidr('198.51.100.7/24')).toBeUndefined();
    expect(tryParseCidr('198.51.100.7/24', true)?.text).toBe('198.51.100.0/24');
    expect(tryParseCidr('198.51.100.0/033')).toBeUndefined();
    expect(tryParseCidr('198.51.100.256')).toBeUndefined();
    expect(tryParseCidr('0.0.0.0/0')?.text).toBe('0.0.0.0/0');
    expect(tryCanonicalAddress('198.051.100.7')).toBeUndefined();
  });
});
