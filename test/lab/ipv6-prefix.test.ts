/**
 * The IPv6 prefix policy on a host (policy.ipv6BlockPrefix, default 64): the real agent with
 * nftables enforcement in its own namespaces (tag v6pfx), a real service beside it, connections
 * from several attacker addresses. After one address of a /64 connects to a decoy, every address
 * of that /64 is dropped (an element of the interval set blockednet6), while an address of
 * another /64 still reaches the service. A /64 that holds the sensor's own address is narrowed
 * to the attacker's address. TEST-NET addresses only (2001:db8::/32, RFC 3849).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ATTACKER6, Lab, SENSOR6, TESTNET, labReady, type AgentProcess } from './netns';

const SERVICE = 8080;
const DECOY = 2323;
/** two addresses of one /64, outside the sensor's own 2001:db8:1::/64 */
const SAME_A = '2001:db8:7:1::5';
const SAME_B = '2001:db8:7:1:ffff:ffff:ffff:9';
/** an address of the next /64 */
const OTHER = '2001:db8:7:2::5';
/** a neighbour of ATTACKER6 (2001:db8:1::66) in the sensor's own /64 */
const NEIGHBOUR = '2001:db8:1::77';

describe.skipIf(!labReady('ipv6-prefix'))('IPv6 prefix blocks in nftables', () => {
  let lab: Lab;
  let agent: AgentProcess;

  const blockedLog = (target: string) => (l: { msg: string; target?: unknown }) => l.msg === 'blocked' && l.target === target;

  beforeAll(async () => {
    lab = await Lab.create('v6pfx');
    for (const address of [SAME_A, SAME_B, OTHER, NEIGHBOUR]) await lab.addAttackerAddress(address);
    // the sensor reaches 2001:db8:7::/48 on the link (the attacker answers neighbour discovery for it)
    const route = await lab.inSensor('ip', ['-6', 'route', 'add', '2001:db8:7::/48', 'dev', lab.sensorIf]);
    expect(route.code, route.stderr).toBe(0);
    await lab.startServices([SERVICE]);
    agent = await lab.startAgent({
      tcpPorts: String(DECOY),
      udpPorts: [],
      stealth: false,
      trigger: 1,
      dedupeSeconds: 1,
      enforce: { nftables: { enabled: true, policy: { baseTtlSeconds: 600 } } },
      guard: { blockableSpecialCidrs: TESTNET },
      health: { enabled: false },
    });
  });

  afterAll(async () => {
    await agent?.stop();
    await lab?.destroy();
  });

  it('every attacker address reaches the real service before any probe', async () => {
    for (const source of [SAME_A, SAME_B, OTHER, ATTACKER6, NEIGHBOUR]) expect(await lab.connectFrom(source, SENSOR6, SERVICE), source).toBe(true);
  });

  it('one connection to a decoy blocks the attacker’s /64: both of its addresses are dropped, the next /64 is not', async () => {
    expect(await lab.connectFrom(SAME_A, SENSOR6, DECOY)).toBe(true);
    await agent.waitForLog(blockedLog('2001:db8:7:1::/64'), 'the block of 2001:db8:7:1::/64');
    expect(await lab.blockedInKernel()).toContain('2001:db8:7:1::/64');
    expect(await lab.connectFrom(SAME_A, SENSOR6, SERVICE)).toBe(false);
    expect(await lab.connectFrom(SAME_B, SENSOR6, SERVICE)).toBe(false);
    expect(await lab.connectFrom(OTHER, SENSOR6, SERVICE)).toBe(true);
    // the drops were the interval set's: its rule counted them
    const chain = await lab.inSensor('nft', ['list', 'chain', 'inet', 'portsnare', 'block']);
    const counted = /ip6 saddr @blockednet6 counter packets (\d+)/.exec(chain.stdout);
    expect(counted, chain.stdout).not.toBeNull();
    expect(Number(counted![1])).toBeGreaterThan(0);
    const set = await lab.inSensor('nft', ['list', 'set', 'inet', 'portsnare', 'blockednet6']);
    expect(set.stdout).toMatch(/flags interval,timeout/);
  });

  it('a /64 holding the sensor’s own address is narrowed to the attacker: its neighbour still gets in', async () => {
    expect(await lab.connectFrom(ATTACKER6, SENSOR6, DECOY)).toBe(true);
    await agent.waitForLog(blockedLog(ATTACKER6), `the block of ${ATTACKER6}`);
    const blocked = await lab.blockedInKernel();
    expect(blocked).toContain(ATTACKER6);
    expect(blocked).not.toContain('2001:db8:1::/64');
    expect(await lab.connectFrom(ATTACKER6, SENSOR6, SERVICE)).toBe(false);
    expect(await lab.connectFrom(NEIGHBOUR, SENSOR6, SERVICE)).toBe(true);
  });
});
