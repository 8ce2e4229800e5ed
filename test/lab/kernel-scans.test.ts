/**
 * Stealth detection end to end: the real agent (stealth on, monitor mode) in the sensor
 * namespace, real nmap in the attacker namespace. Each scan type hits its own decoy port, so
 * each assertion names exactly the probe it expects.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ATTACKER4, ATTACKER6, Lab, SENSOR4, SENSOR6, labReady, type AgentProcess } from './netns';

const IGNORED = '198.51.100.77';

describe.skipIf(!labReady('kernel-scans'))('stealth scans against the agent (nftables + NFLOG)', () => {
  let lab: Lab;
  let agent: AgentProcess;

  beforeAll(async () => {
    lab = await Lab.create('kscan');
    await lab.addAttackerAddress(IGNORED);
    agent = await lab.startAgent({
      tcpPorts: '1001-1012',
      udpPorts: '1001-1002',
      stealth: true,
      trigger: 1,
      dedupeSeconds: 1,
      ignore: [IGNORED],
      health: { enabled: false },
    });
  });

  afterAll(async () => {
    await agent?.stop();
    await lab?.destroy();
  });

  it.each([
    ['-sS', 1001, 'syn'],
    ['-sF', 1002, 'fin'],
    ['-sN', 1003, 'null'],
    ['-sX', 1004, 'xmas'],
    ['-sA', 1005, 'ack'],
    ['-sM', 1006, 'maimon'],
    // -sW sends the very packet -sA sends (a bare ACK): the wire cannot tell them apart
    ['-sW', 1007, 'ack'],
  ])('nmap %s on port %i is reported as %s', async (scan, port, kind) => {
    await lab.nmap([scan, '-T5', '-p', String(port), SENSOR4]);
    const event = await agent.waitForProbe(ATTACKER4, 'tcp', port, kind);
    expect(event.handshake).toBe(false);
  });

  it('nmap -sT is reported as connect (the decoy socket accepted the handshake)', async () => {
    // nmap resets each connection microseconds after the handshake; the accepted socket then has
    // no peer address, and its saved SYN names the source (sensor/listeners/saved-syn.ts)
    for (let i = 0; i < 3; i++) {
      const out = await lab.nmap(['-sT', '-T5', '-p', '1008', SENSOR4]);
      expect(out).toMatch(/1008\/tcp\s+open/);
    }
    await agent.waitForProbe(ATTACKER4, 'tcp', 1008, 'connect');
  });

  it('nmap -sU is reported as udp', async () => {
    await lab.nmap(['-sU', '-T5', '-p', '1001', SENSOR4]);
    await agent.waitForProbe(ATTACKER4, 'udp', 1001, 'udp');
  });

  it('an IPv6 attacker is reported with its canonical address', async () => {
    await lab.nmap(['-6', '-sX', '-T5', '-p', '1009', SENSOR6]);
    const event = await agent.waitForProbe(ATTACKER6, 'tcp', 1009, 'xmas');
    expect(event.attacker).toBe('2001:db8:1::66');
  });

  it('an ignored address is never reported (checked after a later scan from another source arrives)', async () => {
    await lab.nmapFrom(IGNORED, ['-sS', '-T5', '-p', '1010', SENSOR4]);
    await lab.nmapFrom(IGNORED, ['-sF', '-T5', '-p', '1010', SENSOR4]);
    await lab.nmap(['-sS', '-T5', '-p', '1011', SENSOR4]);
    await agent.waitForProbe(ATTACKER4, 'tcp', 1011, 'syn');
    expect(agent.events.filter((e) => e.attacker === IGNORED)).toEqual([]);
  });

  it('a port outside the decoy list is not reported', async () => {
    await lab.nmap(['-sS', '-T5', '-p', '2000', SENSOR4]);
    await lab.nmap(['-sS', '-T5', '-p', '1012', SENSOR4]);
    await agent.waitForProbe(ATTACKER4, 'tcp', 1012, 'syn');
    expect(agent.events.flatMap((e) => e.probes).filter((p) => p.port === 2000)).toEqual([]);
  });

  it('stop removes the detector rules and leaves no other table behind', async () => {
    expect(await agent.stop()).toBe(0);
    const out = await lab.inSensor('nft', ['list', 'ruleset']);
    expect(out.stdout).not.toMatch(/chain (detect|probe)/);
    expect(out.stdout).not.toMatch(/^table (?!inet portsnare)/m);
  });
});
