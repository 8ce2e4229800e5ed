import { describe, expect, it } from 'vitest';
import { baseScript, nftSeconds, placementOf } from '../../../sensor/local/nft';

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
