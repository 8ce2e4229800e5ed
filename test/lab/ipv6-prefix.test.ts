/**
 * The IPv6 prefix policy on a host (policy.ipv6BlockPrefix, default 64): the real agent with
 * nftables enforcement in its own namespaces (tag v6pfx), a real service beside it, connections
 * from several attacker addresses. After one address of a /64 connects to a decoy, every address
 * of that /64 is dropped (an element of the interval set blockednet6), while an address of
 * another /64 still reaches the service. A /64 that holds the sensor's own address is narrowed
 * to the attacker's address. Proof of effect: what each block's element dropped (its nftables
 * element counter) is in `portsnare blocks` and /metrics. TEST-NET addresses only
 * (2001:db8::/32, RFC 3849).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { ATTACKER6, Lab, ROOT, SENSOR6, TESTNET, labReady, type AgentProcess } from './netns';

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
      // its own namespace, port 0: the kernel picks a free one, the start log names it
      health: { port: 0 },
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

  it('each block says what it dropped: `portsnare blocks` and /metrics read the element counters', async () => {
    const url = String(agent.logs.find((l) => l.msg === 'agent started')?.['health']);
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    type Row = { target: string; dropped?: { packets: number; bytes: number } };
    const blocks = async (): Promise<Row[]> => {
      const out = await lab.inSensor('node', [join(ROOT, 'bin', 'portsnare.js'), 'blocks', '--json', '--agent', url]);
      expect(out.code, out.stderr).toBe(0);
      return JSON.parse(out.stdout) as Row[];
    };
    // the agent reads the counters every few seconds
    let rows: Row[] = [];
    for (let i = 0; i < 40; i++) {
      rows = await blocks();
      if (rows.every((r) => (r.dropped?.packets ?? 0) > 0)) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    const prefix = rows.find((r) => r.target === '2001:db8:7:1::/64');
    const single = rows.find((r) => r.target === ATTACKER6);
    // SAME_A's and SAME_B's SYNs (each retried) and ATTACKER6's: dropped, counted per element
    expect(prefix?.dropped?.packets, JSON.stringify(rows)).toBeGreaterThanOrEqual(2);
    expect(prefix!.dropped!.bytes).toBeGreaterThanOrEqual(prefix!.dropped!.packets * 60);
    expect(single?.dropped?.packets, JSON.stringify(rows)).toBeGreaterThanOrEqual(1);
    // the table view has the column
    const table = await lab.inSensor('node', [join(ROOT, 'bin', 'portsnare.js'), 'blocks', '--agent', url]);
    expect(table.stdout).toMatch(/DROPPED/);
    expect(table.stdout).toMatch(/2001:db8:7:1::\/64 .* \d+ pkts, \d+ B/);
    // the kernel agrees (the set's own listing), and /metrics says the same
    const set = await lab.inSensor('nft', ['list', 'set', 'inet', 'portsnare', 'blockednet6']);
    expect(set.stdout).toMatch(/2001:db8:7:1::\/64 counter packets \d+ bytes \d+/);
    const metrics = await lab.inSensor('curl', ['-s', `${url}/metrics`]);
    const line = new RegExp(`^portsnare_block_dropped_packets\\{target="2001:db8:7:1::/64"\\} (\\d+)$`, 'm').exec(metrics.stdout);
    expect(line, metrics.stdout.slice(0, 2000)).not.toBeNull();
    expect(Number(line![1])).toBeGreaterThanOrEqual(prefix!.dropped!.packets);
  });
});
