import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ALL_UNUSED, bannerFor, parseAgentConfig, parseConfigText, parsePortList, spoolDirectory } from '../../sensor/config';

describe('agent config', () => {
  it('fills every default from an empty document', () => {
    const parsed = parseConfigText('');
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    expect(parsed.value).toMatchObject({
      listen: ['0.0.0.0', '::'],
      trigger: { hits: 1, windowSeconds: 60 },
      dedupeSeconds: 60,
      stealth: false,
      sinks: [{ type: 'stdout' }],
      health: { enabled: true, host: '127.0.0.1', port: 9466 },
      enforce: { nftables: { enabled: false, policy: { baseTtlSeconds: 3600, blockUnverified: false } } },
    });
    expect(parsed.value.tcpPorts).toContain(1);
    expect(parsed.value.udpPorts).toContain(7);
  });

  it('reads Portsentry-style port lists, ranges and YAML lists', () => {
    expect(parsePortList('1,7,9,11-15')).toEqual({ ok: true, value: [1, 7, 9, 11, 12, 13, 14, 15] });
    expect(parsePortList([23, '100-102', 23])).toEqual({ ok: true, value: [23, 100, 101, 102] });
    expect(parsePortList('')).toEqual({ ok: true, value: [] });
    expect(parsePortList('all-unused')).toEqual({ ok: true, value: ALL_UNUSED });
  });

  it('names the key and the value at fault', () => {
    expect(parseConfigText('tcpPorts: "70000"')).toEqual({ ok: false, error: 'tcpPorts: "70000" is not a port (1-65535)' });
    const bad = parseConfigText('dedupeSeconds: soon\nignore: [198.51.100.7, not-an-address]\nhealth: {host: 0.0.0.0}\ntcpPort: 23');
    expect(bad.ok).toBe(false);
    if (bad.ok) return;
    expect(bad.error).toContain('dedupeSeconds: Invalid input: expected number, received string (got "soon")');
    expect(bad.error).toContain('ignore.1: "not-an-address" is not an IPv4/IPv6 address or CIDR');
    expect(bad.error).toContain('health.host: "0.0.0.0" is not a loopback address');
    expect(bad.error).toContain('tcpPort: unknown key');
  });

  it('names the IPv6 prefix and TTL jitter keys and their values at fault', () => {
    const policy = (yaml: string) => parseConfigText(`enforce: {nftables: {enabled: true, policy: {${yaml}}}}`);
    expect(policy('ipv6BlockPrefix: 40')).toEqual({ ok: false, error: 'enforce.nftables.policy.ipv6BlockPrefix: Too small: expected number to be >=48 (got 40)' });
    expect(policy('ipv6BlockPrefix: 129')).toEqual({ ok: false, error: 'enforce.nftables.policy.ipv6BlockPrefix: Too big: expected number to be <=128 (got 129)' });
    expect(policy('ipv6BlockPrefix: 56, widestIpv6Prefix: 64')).toEqual({
      ok: false,
      error: 'enforce.nftables.policy.ipv6BlockPrefix: ipv6BlockPrefix 56 is wider than widestIpv6Prefix 64: every prefix block would be refused',
    });
    expect(policy('ttlJitterPercent: 150')).toEqual({ ok: false, error: 'enforce.nftables.policy.ttlJitterPercent: Too big: expected number to be <=100 (got 150)' });
    // unset, both are off the document: /64 and no jitter are core/policy.ts's (ipv6BlockPrefixOf, jitteredTtlSeconds)
    const defaults = policy('baseTtlSeconds: 600');
    expect(defaults.ok && defaults.value.enforce.nftables.policy.ipv6BlockPrefix).toBeUndefined();
    expect(defaults.ok && defaults.value.enforce.nftables.policy.ttlJitterPercent).toBeUndefined();
    expect(policy('ipv6BlockPrefix: 96, widestIpv6Prefix: 64, ttlJitterPercent: 25').ok).toBe(true);
  });

  it('refuses all-unused without stealth', () => {
    const parsed = parseConfigText('tcpPorts: all-unused');
    expect(parsed).toMatchObject({ ok: false });
    expect(!parsed.ok && parsed.error).toMatch(/^tcpPorts: "all-unused" needs stealth: true/);
    expect(parseConfigText('tcpPorts: all-unused\nstealth: true').ok).toBe(true);
  });

  it('reads JSON as well as YAML, and says which when the syntax is wrong', () => {
    expect(parseConfigText('{"tcpPorts": [23], "udpPorts": []}', 'json').ok).toBe(true);
    expect(parseConfigText('{"tcpPorts": [23],', 'json')).toMatchObject({ ok: false, error: expect.stringMatching(/^not valid JSON/) });
    expect(parseConfigText('tcpPorts: [23\n')).toMatchObject({ ok: false, error: expect.stringMatching(/^not valid YAML/) });
  });

  it('requires a Region for an eventbridge sink unless the environment has one', () => {
    const saved = { r: process.env.AWS_REGION, d: process.env.AWS_DEFAULT_REGION };
    delete process.env.AWS_REGION;
    delete process.env.AWS_DEFAULT_REGION;
    try {
      expect(parseConfigText('sinks: [{type: eventbridge, busName: bus}]')).toEqual({ ok: false, error: 'sinks.0.region: missing: set region here or AWS_REGION in the environment' });
      expect(parseConfigText('sinks: [stdout, {type: eventbridge, busName: bus, region: eu-west-1}]').ok).toBe(true);
    } finally {
      if (saved.r !== undefined) process.env.AWS_REGION = saved.r;
      if (saved.d !== undefined) process.env.AWS_DEFAULT_REGION = saved.d;
    }
  });

  it('resolves banners per port with "*" as the fallback, and the spool under the state directory', () => {
    const parsed = parseConfigText('banner: {"23": "login:", "100-110": "x", "*": "go away"}\nstateDirectory: /srv/ps/');
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    expect(bannerFor(parsed.value, 23)).toBe('login:');
    expect(bannerFor(parsed.value, 105)).toBe('x');
    expect(bannerFor(parsed.value, 9)).toBe('go away');
    expect(spoolDirectory(parsed.value)).toBe('/srv/ps/spool');
  });

  it('gives a config or a clear error for any document, never a crash', () => {
    const key = fc.constantFrom('tcpPorts', 'udpPorts', 'ignore', 'trigger', 'dedupeSeconds', 'banner', 'stealth', 'sinks', 'spool', 'health', 'limits', 'listen', 'enforce', 'guard', 'excludePorts', 'junk');
    const value = fc.oneof(
      fc.jsonValue(),
      fc.string(),
      fc.array(fc.oneof(fc.integer({ min: -5, max: 70_000 }), fc.string())),
      fc.constantFrom('all-unused', '1,7,9,11-15', '15-11', '0', '65536', '23', 'stdout'),
    );
    fc.assert(
      fc.property(fc.dictionary(key, value), (document) => {
        const result = parseAgentConfig(document);
        if (!result.ok) {
          expect(result.error.length).toBeGreaterThan(0);
          expect(result.error).toMatch(/: /);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('never crashes on arbitrary text', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (text) => {
        const result = parseConfigText(text);
        expect(typeof result.ok).toBe('boolean');
      }),
      { numRuns: 300 },
    );
  });

  it('refuses host bits in ignore and the guard\'s lists as block does, suggesting the network', () => {
    const ignore = parseAgentConfig({ ignore: ['198.51.100.7/24', '203.0.113.9', '2001:db8::/32'] });
    const allow = parseAgentConfig({ guard: { allowlist: ['2001:db8::1/32'], protectedCidrs: ['10.1.2.3/8'] } });

    expect(ignore).toEqual({ ok: false, error: 'ignore.0: "198.51.100.7/24" has host bits set: write the network, 198.51.100.0/24' });
    expect(allow).toEqual({
      ok: false,
      error: 'guard.allowlist.0: "2001:db8::1/32" has host bits set: write the network, 2001:db8::/32; guard.protectedCidrs.0: "10.1.2.3/8" has host bits set: write the network, 10.0.0.0/8',
    });
  });
});
