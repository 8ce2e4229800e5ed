import { describe, expect, it } from 'vitest';
import { parseAgentConfig, type AgentConfig } from '../../sensor/config';
import { kernelDetectorOptions } from '../../sensor/stealth';

function config(input: Record<string, unknown>): AgentConfig {
  const parsed = parseAgentConfig(input);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.value;
}
const LISTENERS = { tcp: [1, 7], udp: [7], skipped: [] };

describe('kernelDetectorOptions: what the agent asks of the kernel', () => {
  it('enforcing with the default policy: quarantine 10 s once an hour with resets, budgets = burst limit, the redirect, no kill and no kernel proof', () => {
    const o = kernelDetectorOptions(config({ stealth: true, tcpPorts: 'all-unused', enforce: { nftables: { enabled: true } } }), LISTENERS, [], true);
    expect(o).toMatchObject({ quarantineSeconds: 10, quarantinePeriodSeconds: 3600, quarantineAnswer: 'reset', killPerMinute: 100, quarantinePerMinute: 100, redirectPort: 61000 });
    expect(o.killTtlSeconds).toBeUndefined();
    // proof is a socket's accept, never the kernel's: there is no kernel proof key at all
    expect(Object.keys(o).filter((k) => /proof/i.test(k))).toEqual([]);
  });

  it('with the default decoy list and enforcement: the redirect for decoy probers (a rescan sees every unused port open)', () => {
    expect(kernelDetectorOptions(config({ stealth: true, enforce: { nftables: { enabled: true } } }), LISTENERS, [], true).redirectPort).toBe(61000);
    // no quarantine, no quarseen set to redirect by
    expect(kernelDetectorOptions(config({ stealth: true, enforce: { nftables: { enabled: true, quarantine: { seconds: 0 } } } }), LISTENERS, [], true).redirectPort).toBeUndefined();
    const clash = parseAgentConfig({ stealth: true, tcpPorts: [23, 61000] });
    expect(clash.ok ? '' : clash.error).toMatch(/redirectPort: 61000 is also a decoy TCP port/);
  });

  it('blockUnverified adds the in-kernel block on the first packet; the quarantine keys are taken from the config', () => {
    const o = kernelDetectorOptions(
      config({ stealth: true, enforce: { nftables: { enabled: true, policy: { blockUnverified: true, baseTtlSeconds: 600, burstLimitPerMinute: 7 }, quarantine: { seconds: 5, periodSeconds: 60, answer: 'drop' } } } }),
      LISTENERS,
      [],
      true,
    );
    expect(o).toMatchObject({ killTtlSeconds: 600, killPerMinute: 7, quarantinePerMinute: 7, quarantineSeconds: 5, quarantinePeriodSeconds: 60, quarantineAnswer: 'drop', tcpPorts: [1, 7] });
  });

  it('monitor mode (no enforcement) touches no traffic: no quarantine, no kernel block, no redirect', () => {
    const o = kernelDetectorOptions(config({ stealth: true, tcpPorts: 'all-unused', enforce: { nftables: { enabled: false, policy: { blockUnverified: true } } } }), LISTENERS, [], false);
    expect(o.quarantineSeconds).toBe(0);
    expect(o.killTtlSeconds).toBeUndefined();
    expect(o.redirectPort).toBeUndefined();
  });

  it('simulate true, or of the sensor\'s blocks: the kernel blocks nobody, as in monitor mode; simulating only manual blocks leaves the kernel enforcing', () => {
    for (const simulate of [true, { inputs: ['sensor'] }]) {
      const o = kernelDetectorOptions(config({ stealth: true, tcpPorts: 'all-unused', enforce: { nftables: { enabled: true, simulate, policy: { blockUnverified: true } } } }), LISTENERS, [], true);
      expect(o.quarantineSeconds).toBe(0);
      expect(o.killTtlSeconds).toBeUndefined();
      expect(o.redirectPort).toBeUndefined();
    }
    const manual = kernelDetectorOptions(config({ stealth: true, tcpPorts: 'all-unused', enforce: { nftables: { enabled: true, simulate: { inputs: ['manual'] }, policy: { blockUnverified: true } } } }), LISTENERS, [], true);
    expect(manual).toMatchObject({ quarantineSeconds: 10, killTtlSeconds: 3600, redirectPort: 61000 });
  });

  it('redirectPort: false turns the redirect off; a bad quarantine names the key', () => {
    expect(kernelDetectorOptions(config({ stealth: true, tcpPorts: 'all-unused', redirectPort: false, enforce: { nftables: { enabled: true } } }), LISTENERS, [], true).redirectPort).toBeUndefined();
    const bad = parseAgentConfig({ stealth: true, enforce: { nftables: { enabled: true, quarantine: { seconds: 30, periodSeconds: 10 } } } });
    expect(bad.ok ? '' : bad.error).toMatch(/enforce\.nftables\.quarantine\.periodSeconds: 10 is shorter than quarantine\.seconds \(30\)/);
    const clash = parseAgentConfig({ stealth: true, tcpPorts: 'all-unused', redirectPort: 9466 });
    expect(clash.ok ? '' : clash.error).toMatch(/redirectPort: 9466 is also the health port/);
  });
});
