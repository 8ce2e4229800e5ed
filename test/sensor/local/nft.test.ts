import { describe, expect, it } from 'vitest';
import { baseScript, kernelBlocks, nftSeconds, type NftJsonItem, placementOf, uncountedSets } from '../../../sensor/local/nft';

describe('placementOf', () => {
  it('puts addresses in the dynamic sets and networks in the interval sets', () => {
    expect(placementOf('198.51.100.7')).toEqual({ set: 'blocked4', element: '198.51.100.7', target: '198.51.100.7' });
    expect(placementOf('2001:db8::7/128')).toEqual({ set: 'blocked6', element: '2001:db8::7', target: '2001:db8::7' });
    expect(placementOf('203.0.113.0/24')).toEqual({ set: 'blockednet4', element: '203.0.113.0/24', target: '203.0.113.0/24' });
    expect(placementOf('2001:db8:1::/48').set).toBe('blockednet6');
  });

  it('refuses anything else, so nothing odd reaches an nft script', () => {
    expect(() => placementOf('1.2.3.4; flush ruleset')).toThrow(/not an IP address or CIDR/);
    expect(() => placementOf('203.0.113.5/24')).toThrow(/not an IP address or CIDR/);
  });
});

describe('nftSeconds', () => {
  it('rounds the remaining TTL up to whole seconds, at least one', () => {
    expect(nftSeconds(3_600_000)).toBe('3600s');
    expect(nftSeconds(1)).toBe('1s');
    expect(nftSeconds(-5)).toBe('1s');
    expect(nftSeconds(1500)).toBe('2s');
  });
});

describe('baseScript', () => {
  it('touches only the inet portsnare table and drops blocked sources before conntrack', () => {
    const script = baseScript();
    for (const line of script.trim().split('\n')) expect(line).toMatch(/ inet portsnare( |$)/);
    expect(script).toContain('add chain inet portsnare block { type filter hook prerouting priority -300; policy accept; }');
    expect(script).toContain('add rule inet portsnare block ip saddr @blocked4 counter drop');
    expect(script).not.toMatch(/flush set|flush ruleset|delete/);
  });
});

describe('element counters (proof of effect)', () => {
  it('declares every blocked set with per-element counters; a set an older table made without them keeps its declaration', () => {
    const script = baseScript();
    for (const set of ['blocked4', 'blocked6', 'blockednet4', 'blockednet6']) expect(script).toMatch(new RegExp(`add set inet portsnare ${set} \\{[^}]*counter; \\}`));
    const old = baseScript(new Set(['blocked4']));
    expect(old).toContain('add set inet portsnare blocked4 { type ipv4_addr; flags dynamic,timeout; size 65535; }');
    expect(old).toMatch(/add set inet portsnare blocked6 \{[^}]*counter; \}/);
  });

  // `nft -j list table inet portsnare` as nftables 1.0.6 prints it (captured in a namespace):
  // a set declared with `counter` carries "stmt": [{"counter": null}] and a counter per element
  const listed: NftJsonItem[] = [
    { set: { name: 'blocked4', elem: [{ elem: { val: '192.0.2.2', timeout: 60, expires: 55, counter: { packets: 4, bytes: 240 } } }], stmt: [{ counter: null }] } },
    { set: { name: 'blockednet6', elem: [{ elem: { val: { prefix: { addr: '2001:db8:5::', len: 64 } }, timeout: 60, expires: 55, counter: { packets: 2, bytes: 144 } } }], stmt: [{ counter: null }] } },
    { set: { name: 'blocked6', elem: [{ elem: { val: '2001:db8::9', timeout: 60, expires: 30 } }] } },
    { set: { name: 'quar4', elem: ['198.51.100.9'] } },
  ];

  it('reads what each element dropped; an element of a set without counters has none', () => {
    const now = 1_000_000;
    expect(kernelBlocks(listed, now)).toEqual([
      { target: '192.0.2.2', expiresAt: now + 55_000, dropped: { packets: 4, bytes: 240 } },
      { target: '2001:db8:5::/64', expiresAt: now + 55_000, dropped: { packets: 2, bytes: 144 } },
      { target: '2001:db8::9', expiresAt: now + 30_000 },
    ]);
    expect([...uncountedSets(listed)]).toEqual(['blocked6']);
  });
});
