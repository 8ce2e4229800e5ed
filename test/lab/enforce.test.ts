/**
 * Local enforcement end to end: the real agent with stealth and nftables enforcement in the
 * sensor namespace, a real service beside it, nmap from the attacker namespace. After a decoy
 * probe the attacker's next connection to the real service is dropped; after a restart (with
 * the kernel's state wiped, as by a reboot) the agent puts the block back from its file store.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileStore } from '../../sensor/local/store';
import { ATTACKER4, ATTACKER6, Lab, SENSOR4, SENSOR6, TESTNET, labReady, portState, type AgentProcess } from './netns';

const SERVICE = 8080;

describe.skipIf(!labReady('enforce'))('stealth + nftables enforcement', () => {
  let lab: Lab;
  let agent: AgentProcess;
  const config = {
    tcpPorts: 'all-unused',
    udpPorts: [],
    stealth: true,
    trigger: 1,
    dedupeSeconds: 5,
    enforce: { nftables: { enabled: true, policy: { blockUnverified: true, baseTtlSeconds: 900 } } },
    guard: { blockableSpecialCidrs: TESTNET },
    health: { enabled: false },
  };

  const blockedLog = (who: string) => (l: { msg: string; attacker?: unknown; target?: unknown }) => l.msg === 'blocked' && (l.attacker === who || l.target === who);

  beforeAll(async () => {
    lab = await Lab.create('enf');
    await lab.startServices([SERVICE]);
    agent = await lab.startAgent(config);
  });

  afterAll(async () => {
    await agent?.stop();
    await lab?.destroy();
  });

  it('the real service is open to the attacker before any probe, and not reported', async () => {
    expect(portState(await lab.nmap(['-sT', '-T4', '-p', String(SERVICE), SENSOR4]), SERVICE)).toBe('open');
    expect(portState(await lab.nmap(['-6', '-sS', '-T4', '-p', String(SERVICE), SENSOR6]), SERVICE)).toBe('open');
    expect(agent.events).toEqual([]);
  });

  it('after one decoy probe the attacker’s next connection to the real service is dropped', async () => {
    await lab.nmap(['-sS', '-T4', '-p', '23', SENSOR4]);
    await agent.waitForLog(blockedLog(ATTACKER4), `the block of ${ATTACKER4}`);
    expect(await lab.blockedInKernel()).toContain(ATTACKER4);
    expect(portState(await lab.nmap(['-sT', '-T4', '--max-rtt-timeout', '300ms', '-p', String(SERVICE), SENSOR4]), SERVICE)).toBe('filtered');
  });

  it('the kernel itself added the source on its first decoy packet (kill rule counted it)', async () => {
    // needs the agent to pass the guard's settings to the detector (killGuard): TEST-NET
    // addresses are special-purpose ranges the kernel must otherwise never add
    const probe = await lab.inSensor('nft', ['list', 'chain', 'inet', 'portsnare', 'probe']);
    const kill = /add @blocked4 \{ ip saddr timeout [0-9a-z]+ \} counter packets (\d+)/.exec(probe.stdout);
    expect(kill, probe.stdout).not.toBeNull();
    expect(Number(kill![1])).toBeGreaterThan(0);
  });

  it('an IPv6 attacker is blocked the same way', async () => {
    await lab.nmap(['-6', '-sF', '-T4', '-p', '25', SENSOR6]);
    await agent.waitForLog(blockedLog(ATTACKER6), `the block of ${ATTACKER6}`);
    expect(portState(await lab.nmap(['-6', '-sT', '-T4', '--max-rtt-timeout', '300ms', '-p', String(SERVICE), SENSOR6]), SERVICE)).toBe('filtered');
  });

  it('the block is in the file store with the policy TTL', async () => {
    const store = await FileStore.open(join(lab.dir, 'state'), { readOnly: true });
    const record = store.get(ATTACKER4);
    expect(record).toMatchObject({ active: true, reason: 'sensor', offences: 1 });
    expect(record!.expiresAt - record!.blockedAt).toBe(900_000);
  });

  it('a restart after the kernel forgot everything puts the blocks back', async () => {
    expect(await agent.stop()).toBe(0);
    // a reboot: the kernel state is gone, only the agent's file store remains
    const wiped = await lab.inSensor('nft', ['delete', 'table', 'inet', 'portsnare']);
    expect(wiped.code).toBe(0);
    expect(portState(await lab.nmap(['-sT', '-T4', '-p', String(SERVICE), SENSOR4]), SERVICE)).toBe('open');

    agent = await lab.startAgent(config, 'agent-restarted');
    const blocked = await lab.blockedInKernel();
    expect(blocked).toEqual(expect.arrayContaining([ATTACKER4, ATTACKER6]));
    expect(portState(await lab.nmap(['-sT', '-T4', '--max-rtt-timeout', '300ms', '-p', String(SERVICE), SENSOR4]), SERVICE)).toBe('filtered');
  });
});

describe.skipIf(!labReady('enforce'))('socket-only enforcement: the spoof guard', () => {
  let lab: Lab;
  let agent: AgentProcess;

  beforeAll(async () => {
    lab = await Lab.create('enfsock');
    await lab.startServices([SERVICE]);
    agent = await lab.startAgent({
      tcpPorts: '23,2323',
      udpPorts: '69',
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

  it('a UDP probe alone (forgeable) is reported but not blocked while blockUnverified is off', async () => {
    await lab.nmap(['-6', '-sU', '-T5', '-p', '69', SENSOR6]);
    await agent.waitForProbe(ATTACKER6, 'udp', 69, 'udp');
    await agent.waitForLog((l) => l.msg === 'block decision: ignore' && l.attacker === ATTACKER6, 'the ignore decision');
    expect(await lab.blockedInKernel()).not.toContain(ATTACKER6);
  });

  it('a completed connection to a decoy (proven source) blocks the attacker', async () => {
    expect(await lab.connectFrom(ATTACKER4, SENSOR4, 2323)).toBe(true);
    await agent.waitForLog(blockedLog(ATTACKER4), `the block of ${ATTACKER4}`);
    expect(portState(await lab.nmap(['-sT', '-T4', '--max-rtt-timeout', '300ms', '-p', String(SERVICE), SENSOR4]), SERVICE)).toBe('filtered');
  });

  const blockedLog = (who: string) => (l: { msg: string; attacker?: unknown; target?: unknown }) => l.msg === 'blocked' && (l.attacker === who || l.target === who);
});
