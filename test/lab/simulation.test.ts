/**
 * Simulation on a real host (issue 21 item 1, `enforce.nftables.simulate`): the real agent with
 * stealth and nftables enforcement in the sensor namespace, nmap from the attacker namespace.
 * With `simulate: true` a probe is decided and recorded as a block (the log says simulated), the
 * kernel holds no element for it and adds none itself, and the real service stays open; a
 * restart without `simulate` puts the still active block into the kernel.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileStore } from '../../sensor/local/store';
import { ATTACKER4, Lab, SENSOR4, TESTNET, labReady, portState, type AgentProcess } from './netns';

const SERVICE = 8080;

describe.skipIf(!labReady('simulation'))('simulate: true on a host', () => {
  let lab: Lab;
  let agent: AgentProcess;
  const config = (simulate: boolean) => ({
    tcpPorts: 'all-unused',
    udpPorts: [],
    stealth: true,
    trigger: 1,
    dedupeSeconds: 5,
    enforce: { nftables: { enabled: true, simulate, policy: { blockUnverified: true, baseTtlSeconds: 900 } } },
    guard: { blockableSpecialCidrs: TESTNET },
    health: { enabled: false },
  });

  beforeAll(async () => {
    lab = await Lab.create('sim');
    await lab.startServices([SERVICE]);
    agent = await lab.startAgent(config(true));
  });

  afterAll(async () => {
    await agent?.stop();
    await lab?.destroy();
  });

  it('a decoy probe is decided and recorded as a simulated block; nothing is in the kernel and the service stays open', async () => {
    await lab.nmap(['-sS', '-T4', '-p', '23', SENSOR4]);
    await agent.waitForLog((l: { msg: string; target?: unknown; simulated?: unknown }) => l.msg === 'blocked' && l.target === ATTACKER4 && l.simulated === true, `the simulated block of ${ATTACKER4}`);
    expect(await lab.blockedInKernel()).not.toContain(ATTACKER4);
    // the kernel detector adds nobody in simulation: no kill rule in its probe chain
    const probe = await lab.inSensor('nft', ['list', 'table', 'inet', 'portsnare']);
    expect(probe.stdout).not.toMatch(/add @blocked4/);
    expect(portState(await lab.nmap(['-sT', '-T4', '-p', String(SERVICE), SENSOR4]), SERVICE)).toBe('open');
    expect(await lab.blockedInKernel()).not.toContain(ATTACKER4);
  });

  it('the block is in the file store, active, with the policy TTL', async () => {
    const store = await FileStore.open(join(lab.dir, 'state'), { readOnly: true });
    expect(store.get(ATTACKER4)).toMatchObject({ active: true, reason: 'sensor', offences: 1 });
  });

  it('switching to enforce (a restart without simulate) puts the still active block into the kernel', async () => {
    expect(await agent.stop()).toBe(0);
    agent = await lab.startAgent(config(false), 'agent-enforcing');
    expect(await lab.blockedInKernel()).toContain(ATTACKER4);
    expect(portState(await lab.nmap(['-sT', '-T4', '--max-rtt-timeout', '300ms', '-p', String(SERVICE), SENSOR4]), SERVICE)).toBe('filtered');
  });
});
