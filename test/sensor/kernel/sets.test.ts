import { describe, expect, it } from 'vitest';
import { setHolds } from '../../../sensor/kernel/sets';

// what `nft -j list set inet portsnare quar4` / `blocked6` print (nftables 1.0.6)
const QUAR4 = {
  nftables: [
    { metainfo: { version: '1.0.6', release_name: 'Lester Gooch #5', json_schema_version: 1 } },
    {
      set: {
        family: 'inet',
        name: 'quar4',
        table: 'portsnare',
        type: 'ipv4_addr',
        handle: 17,
        size: 65535,
        flags: ['timeout'],
        elem: [{ elem: { val: '203.0.113.7', timeout: 10, expires: 9 } }, { elem: { val: '192.0.2.1', timeout: 10, expires: 0 } }],
      },
    },
  ],
};
const BLOCKED6 = {
  nftables: [
    {
      set: {
        family: 'inet',
        name: 'blocked6',
        table: 'portsnare',
        type: 'ipv6_addr',
        elem: ['2001:DB8:0:0:0:0:0:5', { elem: { val: '2001:db8::66', timeout: 3600, expires: 3541 } }, { prefix: { addr: '2001:db8::', len: 64 } }],
      },
    },
  ],
};

describe('setHolds', () => {
  it('reads each address with its remaining seconds and expiry', () => {
    expect(setHolds(QUAR4.nftables, 1_000_000)).toEqual([
      { address: '203.0.113.7', expiresAt: 1_009_000, remainingSeconds: 9 },
      { address: '192.0.2.1', expiresAt: 1_000_000, remainingSeconds: 0 },
    ]);
  });

  it('canonicalises IPv6, reads an element without timeout as never expiring, skips shapes that are not addresses', () => {
    expect(setHolds(BLOCKED6.nftables, 0)).toEqual([
      { address: '2001:db8::5', expiresAt: Infinity, remainingSeconds: Infinity },
      { address: '2001:db8::66', expiresAt: 3_541_000, remainingSeconds: 3541 },
    ]);
  });

  it('reads nothing from a set without elements or from junk', () => {
    expect(setHolds([{ set: { name: 'quar6' } }], 0)).toEqual([]);
    expect(setHolds([{ set: { name: 'quar6', elem: [{ elem: { val: 'not-an-address' } }, 42] } }], 0)).toEqual([]);
  });
});
