/**
 * The IPv6 prefix policy (core/prefix.ts). The oracle here is written from the RFCs, with
 * BigInt arithmetic on the 128 bits, not from core/address.ts:
 * - an IPv6 prefix /n is the first n bits of the address, the rest zero
 *   (RFC 4291 "IP Version 6 Addressing Architecture", section 2.3,
 *   https://www.rfc-editor.org/rfc/rfc4291#section-2.3);
 * - text form RFC 5952 (https://www.rfc-editor.org/rfc/rfc5952), which ipaddr.js writes;
 * - NAT64 well-known prefix 64:ff9b::/96 (RFC 6052 section 2.1,
 *   https://www.rfc-editor.org/rfc/rfc6052#section-2.1), 6to4 2002::/16 (RFC 3056), Teredo
 *   2001::/32 (RFC 4380), IPv4-mapped ::ffff:0:0/96 (RFC 4291 section 2.5.5.2).
 */
import fc from 'fast-check';
import ipaddr from 'ipaddr.js';
import { describe, expect, it } from 'vitest';
import { NeverBlockGuard } from '../../core/guard';
import { PolicySettingsSchema, type Sighting } from '../../core/policy';
import { blockTargetOf, prefixSighting } from '../../core/prefix';

const TESTNET6 = '2001:db8::/32';

function toBig(address: string): bigint {
  return ipaddr.IPv6.parse(address).toByteArray().reduce((acc, byte) => (acc << 8n) | BigInt(byte), 0n);
}

function fromBig(value: bigint): string {
  const bytes: number[] = [];
  for (let i = 15; i >= 0; i--) bytes.push(Number((value >> BigInt(i * 8)) & 0xffn));
  return (ipaddr.fromByteArray(bytes) as ipaddr.IPv6).toRFC5952String();
}

/** The /n of an address, by the definition (RFC 4291 2.3). */
function specPrefix(address: string, n: number): string {
  const mask = n === 0 ? 0n : ((1n << 128n) - 1n) ^ ((1n << BigInt(128 - n)) - 1n);
  return `${fromBig(toBig(address) & mask)}/${n}`;
}

const guard = NeverBlockGuard.from({ blockableSpecialCidrs: [TESTNET6], allowlist: ['2001:db8:a:b::77', '192.0.2.10'] });
const policy = (ipv6BlockPrefix: number) => PolicySettingsSchema.parse({ ipv6BlockPrefix });

/** an address of 2001:db8::/32 outside 2001:db8:a:b::/64 (which holds an allowlisted address) */
const testnetAddress = fc
  .tuple(fc.bigInt({ min: 0n, max: (1n << 96n) - 1n }))
  .map(([low]) => fromBig((0x20010db8n << 96n) | low))
  .filter((address) => !address.startsWith('2001:db8:a:b:'));

const sighting = (target: string, overrides: Partial<Sighting> = {}): Sighting => ({
  target,
  family: target.includes(':') ? 'ipv6' : 'ipv4',
  reason: 'sensor',
  eventId: 'ev-1',
  sensorId: 'i-1',
  firstSeen: 0,
  lastSeen: 0,
  hits: 1,
  verified: true,
  ...overrides,
});

describe('blockTargetOf', () => {
  it('blocks an IPv6 attacker by its prefix, for every allowed prefix length (48–127)', () => {
    fc.assert(
      fc.property(testnetAddress, fc.integer({ min: 48, max: 127 }), (address, n) => {
        const expected = specPrefix(address, n);
        fc.pre(!ipaddr.parse('2001:db8:a:b::77').match(ipaddr.parseCIDR(expected)));
        expect(blockTargetOf(address, policy(n), guard)).toEqual({ target: expected });
      }),
    );
  });

  it('defaults to the /64, or to widestIpv6Prefix when that is narrower (a settings document without the key keeps working)', () => {
    expect(PolicySettingsSchema.parse({}).ipv6BlockPrefix).toBeUndefined();
    expect(blockTargetOf('2001:db8:1:2:aaaa:bbbb:cccc:dddd', PolicySettingsSchema.parse({ widestIpv6Prefix: 96 }), guard)).toEqual({ target: '2001:db8:1:2:aaaa:bbbb::/96' });
    expect(blockTargetOf('2001:db8:1:2:aaaa:bbbb:cccc:dddd', PolicySettingsSchema.parse({ widestIpv6Prefix: 32 }), guard)).toEqual({ target: '2001:db8:1:2::/64' });
    expect(blockTargetOf('2001:db8:1:2:aaaa:bbbb:cccc:dddd', PolicySettingsSchema.parse({}), guard)).toEqual({ target: '2001:db8:1:2::/64' });
  });

  it('at 128 blocks the address alone; IPv4 and CIDRs are left as they are', () => {
    expect(blockTargetOf('2001:db8:1:2::5', policy(128), guard)).toEqual({ target: '2001:db8:1:2::5' });
    expect(blockTargetOf('203.0.113.7', policy(64), guard)).toEqual({ target: '203.0.113.7' });
    expect(blockTargetOf('2001:db8:1::/48', policy(64), guard)).toEqual({ target: '2001:db8:1::/48' });
  });

  it('narrows to the address, and says why, when the prefix holds an allowlisted address', () => {
    const result = blockTargetOf('2001:db8:a:b::5', policy(64), guard);
    expect(result.target).toBe('2001:db8:a:b::5');
    expect(result.narrowed).toContain('2001:db8:a:b::/64');
    expect(result.narrowed).toContain('allowlist 2001:db8:a:b::77/128');
  });

  it('narrows when the prefix reaches a special-purpose range the address is outside of', () => {
    // only this /64 of the documentation range 2001:db8::/32 (RFC 3849) is blockable: the
    // address's /48 reaches the rest of the range, so the address is blocked alone
    const special = NeverBlockGuard.from({ blockableSpecialCidrs: ['2001:db8:ffff:ffff::/64'] });
    const result = blockTargetOf('2001:db8:ffff:ffff::9', policy(48), special);
    expect(result.target).toBe('2001:db8:ffff:ffff::9');
    expect(result.narrowed).toMatch(/special-purpose range/);
  });

  it('an address whose own block the guard refuses is narrowed to itself, so the guard then refuses it', () => {
    const result = blockTargetOf('2001:db8:a:b::77', policy(64), guard);
    expect(result.target).toBe('2001:db8:a:b::77');
    expect(guard.check(result.target).blockable).toBe(false);
  });

  it('never widens a form that carries an IPv4 address (NAT64, 6to4, Teredo)', () => {
    const open = NeverBlockGuard.from({ blockSpecialRanges: true });
    for (const [address, v4] of [
      ['64:ff9b::cb00:7107', '203.0.113.7'], // NAT64 (RFC 6052)
      ['2002:cb00:7107::1', '203.0.113.7'], // 6to4 (RFC 3056)
      ['2001:0:cb00:7107::1', '203.0.113.7'], // Teredo server (RFC 4380)
    ] as const) {
      const result = blockTargetOf(address, policy(64), open);
      expect(result.target).toBe(ipaddr.IPv6.parse(address).toRFC5952String());
      expect(result.narrowed).toContain(v4);
    }
  });
});

describe('prefixSighting', () => {
  it('a detected IPv6 sighting becomes its /64, the note naming the address seen', () => {
    const out = prefixSighting(sighting('2001:db8:1:2::5'), policy(64), guard);
    expect(out).toMatchObject({ target: '2001:db8:1:2::/64', family: 'ipv6', note: 'prefix of 2001:db8:1:2::5 (policy.ipv6BlockPrefix 64)' });
  });

  it('two addresses of one /64 are one target; another /64 is another', () => {
    const a = prefixSighting(sighting('2001:db8:1:2::5'), policy(64), guard).target;
    const b = prefixSighting(sighting('2001:db8:1:2:ffff::9'), policy(64), guard).target;
    const c = prefixSighting(sighting('2001:db8:1:3::5'), policy(64), guard).target;
    expect(a).toBe(b);
    expect(c).not.toBe(a);
  });

  it('keeps a note it had, and records why it narrowed', () => {
    const out = prefixSighting(sighting('2001:db8:a:b::5', { note: 'blocked by the kernel on a decoy packet' }), policy(64), guard);
    expect(out.target).toBe('2001:db8:a:b::5');
    expect(out.note).toMatch(/^blocked by the kernel on a decoy packet; blocked alone: its \/64/);
  });

  it('takes a manual block as asked', () => {
    const manual = sighting('2001:db8:1:2::5', { reason: 'manual' });
    expect(prefixSighting(manual, policy(64), guard)).toBe(manual);
  });

  it('an IPv4-mapped address is an IPv4 sighting by the time it is an attacker (folded when parsed)', async () => {
    const { canonicalAddress } = await import('../../core/address');
    const folded = canonicalAddress('::ffff:203.0.113.7');
    expect(folded).toBe('203.0.113.7');
    expect(prefixSighting(sighting(folded), policy(64), guard).target).toBe('203.0.113.7');
    // the guard sees the mapped form's IPv4 address: an allowlisted IPv4 host stays safe
    expect(guard.check(canonicalAddress('::ffff:192.0.2.10')).blockable).toBe(false);
  });
});

describe('policy keys', () => {
  it('ipv6BlockPrefix is a whole number from 48 to 128, no wider than widestIpv6Prefix', () => {
    for (const bad of [47, 129, 64.5, '64']) expect(PolicySettingsSchema.safeParse({ ipv6BlockPrefix: bad }).success).toBe(false);
    for (const good of [48, 56, 64, 128]) expect(PolicySettingsSchema.parse({ ipv6BlockPrefix: good }).ipv6BlockPrefix).toBe(good);
    const crossed = PolicySettingsSchema.safeParse({ ipv6BlockPrefix: 56, widestIpv6Prefix: 64 });
    expect(crossed.success).toBe(false);
    expect(crossed.error?.issues[0]).toMatchObject({ path: ['ipv6BlockPrefix'] });
    expect(crossed.error?.issues[0]?.message).toContain('ipv6BlockPrefix 56 is wider than widestIpv6Prefix 64');
  });
});
