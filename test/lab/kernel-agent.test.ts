/**
 * The SYN-scanner defence end to end, through the real agent (bin/portsnare.js agent) with its
 * DEFAULT policy (blockUnverified off) and default quarantine (10 s, once an hour, reset),
 * `stealth: true`, nftables enforcement, and all real tools: nmap -sS / -sT --top-ports 1000,
 * masscan, and hping3-forged TEST-NET sources, one of which also has real traffic to a real
 * service. Everything is checked in the kernel's own sets (nft -j) and in the agent's events.
 *
 * The guard allows TEST-NET (the lab's only addresses): a config need of the lab, not a policy.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileStore } from '../../sensor/local/store';
import {
  ATTACKER4,
  Lab,
  SENSOR4,
  TESTNET,
  eventually,
  forgeSyns,
  hasProgram,
  kernelSet,
  labReady,
  masscanControl,
  masscanFrom,
  ONE_SCAN_REVEALS_AT_MOST,
  openPorts,
  reachAgain,
  routeForgedBack,
  type AgentProcess,
} from './netns';

const SERVICES = [22, 25, 80, 443, 3306, 5432, 8080, 8443];
/** the default quarantine (sensor/config.ts), restated: the oracle does not import it */
const QUARANTINE = 10;
const CONTROL = '198.51.100.72';
const REAL = '203.0.113.250';
const FORGED = [...Array.from({ length: 249 }, (_, i) => `203.0.113.${i + 1}`), ...Array.from({ length: 191 }, (_, i) => `192.0.2.${i + 1}`)];

function ready(file: string): boolean {
  if (!labReady(file)) return false;
  const missing = ['hping3', 'masscan'].filter((p) => !hasProgram(p));
  if (missing.length === 0) return true;
  const why = `${missing.join(' and ')} (Debian packages) missing: run scripts/setup-system.sh`;
  if (process.env.CI) throw new Error(`${file}: ${why}`);
  console.warn(`SKIPPED ${file}: ${why}`);
  return false;
}

const revealedOf = (nmapOut: string): number[] => openPorts(nmapOut).filter((p) => SERVICES.includes(p));
const addresses = async (lab: Lab, set: string): Promise<string[]> => (await kernelSet(lab, set)).map((h) => h.address);

describe.skipIf(!ready('kernel-agent'))('the agent with its default policy stops SYN scanners; a forged packet costs seconds', () => {
  let lab: Lab;
  let agent: AgentProcess;
  let state: string;
  const config = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    tcpPorts: 'all-unused',
    udpPorts: [],
    stealth: true,
    ignore: [CONTROL],
    enforce: { nftables: { enabled: true } },
    guard: { blockableSpecialCidrs: TESTNET },
    health: { enabled: false },
    stateDirectory: state,
    ...extra,
  });
  const blockedLog = (attacker: string): boolean => agent.logs.some((l) => l.msg === 'blocked' && l.attacker === attacker);

  beforeAll(async () => {
    lab = await Lab.create(`ka${process.pid % 100000}`);
    state = `${lab.dir}/state`;
    for (const a of [REAL, CONTROL, '198.51.100.71', '198.51.100.73', '198.51.100.74']) await lab.addAttackerAddress(a);
    await routeForgedBack(lab);
    await lab.startServices(SERVICES);
    agent = await lab.startAgent(config());
  }, 120_000);

  afterAll(async () => {
    await agent?.stop();
    await lab?.destroy();
  });

  it('control: an exempt source finds all 8 services (they are up, nothing is held)', async () => {
    expect(revealedOf(await lab.nmapFrom(CONTROL, ['-sS', '--top-ports', '1000', '-T4', SENSOR4], 300_000)).sort((a, b) => a - b)).toEqual(SERVICES);
  }, 320_000);

  it('nmap -sS --top-ports 1000: at most 3 services revealed in one scan (the median goal of 1 is benched); the scanner is quarantined, reported unproven, not blocked', async () => {
    const out = await lab.nmap(['-sS', '--top-ports', '1000', '-T4', SENSOR4], 300_000);
    const revealed = revealedOf(out);
    console.log(`FIGURE agent default -sS: revealed ${revealed.length} of 8 [${revealed.join(',')}]`);
    expect(revealed.length, out).toBeLessThanOrEqual(ONE_SCAN_REVEALS_AT_MOST);
    expect(await addresses(lab, 'quarseen4')).toContain(ATTACKER4);
    const event = await agent.waitFor(() => agent.events.find((e) => e.attacker === ATTACKER4), 'the scan event');
    expect(event).toMatchObject({ handshake: false, proof: 'none' });
    expect(await addresses(lab, 'blocked4')).not.toContain(ATTACKER4);
    expect(blockedLog(ATTACKER4)).toBe(false);
  }, 320_000);

  it('nmap -sT: its first connect to an unused port is proof: blocked in the kernel and the store during the first scan; at most 3 services revealed by either scan', async () => {
    const SOURCE = '198.51.100.73';
    const first = revealedOf(await lab.nmapFrom(SOURCE, ['-sT', '--top-ports', '1000', '-T4', SENSOR4], 300_000));
    // the quarantine keeps it from the real services; its handshake with the redirect socket proves it
    expect(await addresses(lab, 'blocked4')).toContain(SOURCE);
    await eventually(async () => ((await addresses(lab, 'quar4')).includes(SOURCE) ? undefined : true), 'the source out of quarantine', 20_000);
    const second = revealedOf(await lab.nmapFrom(SOURCE, ['-sT', '--top-ports', '1000', '-T4', '--max-retries', '1', '--min-rate', '1000', SENSOR4], 300_000));
    console.log(`FIGURE agent default -sT: revealed ${first.length} [${first.join(',')}] first, ${second.length} [${second.join(',')}] on the rescan`);
    expect(first.length).toBeLessThanOrEqual(ONE_SCAN_REVEALS_AT_MOST);
    expect(second.length).toBeLessThanOrEqual(ONE_SCAN_REVEALS_AT_MOST);
    expect(await addresses(lab, 'blocked4')).toContain(SOURCE);
    const proven = await agent.waitFor(() => agent.events.find((e) => e.attacker === SOURCE && e.proof === 'handshake'), 'the proven event');
    expect(proven.handshake).toBe(true);
    await agent.waitFor(() => (blockedLog(SOURCE) ? true : undefined), 'the policy block');
  }, 320_000);

  it('masscan 1-10000 at 2000/s: at most 1 service revealed (all 8 from the exempt control)', async () => {
    expect(await masscanControl(lab, CONTROL, SERVICES)).toEqual(SERVICES);
    const revealed = (await masscanFrom(lab, '198.51.100.71')).filter((p) => SERVICES.includes(p));
    console.log(`FIGURE agent default masscan: revealed ${revealed.length} of 8 [${revealed.join(',')}]`);
    expect(revealed.length).toBeLessThanOrEqual(1);
  }, 250_000);

  it('a forged SYN with the address of a client that uses a real service costs it at most the quarantine', async () => {
    expect(await reachAgain(lab, REAL, SENSOR4, 80, 3000)).toBeLessThan(3000);
    const forgedAt = Date.now();
    await forgeSyns(lab, [REAL], 23, () => 1);
    const held = await eventually(async () => (await kernelSet(lab, 'quar4')).find((h) => h.address === REAL), 'REAL in quar4', 5000);
    expect(held.remainingSeconds).toBeLessThanOrEqual(QUARANTINE);
    const denied = (Date.now() - forgedAt + (await reachAgain(lab, REAL, SENSOR4, 80, 20_000))) / 1000;
    console.log(`FIGURE agent default: the forged real client reached its service again ${denied.toFixed(1)} s after the forged SYN`);
    expect(denied).toBeLessThanOrEqual(QUARANTINE + 1.5);
    expect(await addresses(lab, 'blocked4')).not.toContain(REAL);
    const event = await agent.waitFor(() => agent.events.find((e) => e.attacker === REAL), 'the event of the forged SYN');
    expect(event.proof).toBe('none');
    expect(blockedLog(REAL)).toBe(false);
  }, 60_000);

  it('1,000 forged SYNs from 440 sources: none blocked 15 s later, none held longer than the quarantine', async () => {
    const started = Date.now();
    const forging = forgeSyns(lab, FORGED, 2525, (i) => (i < 120 ? 3 : 2));
    let maxRemaining = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) for (const h of await kernelSet(lab, 'quar4')) if (FORGED.includes(h.address)) maxRemaining = Math.max(maxRemaining, h.remainingSeconds);
    })();
    await forging;
    const wait = started + 15_000 - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    sampling = false;
    await sampler;
    const blocked = (await addresses(lab, 'blocked4')).filter((a) => FORGED.includes(a));
    const reported = new Set(agent.events.filter((e) => FORGED.includes(e.attacker)).map((e) => e.attacker));
    console.log(`FIGURE agent default flood: ${reported.size} forged sources reported, ${blocked.length} blocked after 15 s, max hold ${maxRemaining} s`);
    expect(blocked).toEqual([]);
    expect(maxRemaining).toBeLessThanOrEqual(QUARANTINE);
    expect(reported.size).toBeGreaterThan(FORGED.length * 0.9);
    expect(agent.events.filter((e) => FORGED.includes(e.attacker)).every((e) => e.proof === 'none')).toBe(true);
    expect(FORGED.some(blockedLog)).toBe(false);
  }, 180_000);

  it('a block the kernel made while the agent was down is recorded in the store at start, with its remaining time', async () => {
    await agent.stop();
    const ADDED = '203.0.113.251';
    const add = await lab.inSensor('nft', ['add', 'element', 'inet', 'portsnare', 'blocked4', `{ ${ADDED} timeout 600s }`]);
    expect(add.code, add.stderr).toBe(0);
    agent = await lab.startAgent(config(), 'agent-restarted');
    await agent.waitForLog((l) => l.msg === 'recorded blocks the kernel made while the agent was down' && l.count === 1, 'the kernel block recorded');
    const store = await FileStore.open(state, { readOnly: true });
    const record = store.get(ADDED);
    expect(record?.active).toBe(true);
    const left = (record!.expiresAt - Date.now()) / 1000;
    expect(left).toBeGreaterThan(500);
    expect(left).toBeLessThanOrEqual(600);
    expect(await addresses(lab, 'blocked4')).toContain(ADDED);
  }, 90_000);

  it('with the default decoy list (no all-unused): nmap -sS is quarantined at the first decoy it touches, and misses services', async () => {
    await agent.stop();
    await lab.inSensor('nft', ['delete', 'table', 'inet', 'portsnare']);
    agent = await lab.startAgent({ ...config({ stateDirectory: `${lab.dir}/state-list` }), tcpPorts: undefined }, 'agent-list');
    const SOURCE = '198.51.100.74';
    const revealed = revealedOf(await lab.nmapFrom(SOURCE, ['-sS', '--top-ports', '1000', '-T4', SENSOR4], 300_000));
    console.log(`FIGURE agent default decoy list -sS: revealed ${revealed.length} of 8 [${revealed.join(',')}]`);
    expect(await addresses(lab, 'quarseen4')).toContain(SOURCE);
    // only what answers before the SYN to the first decoy lands can be revealed; the default
    // list lacks nmap's most popular unused port (23), so that is a few of the services nmap -T4
    // probes in parallel with it (0-5 seen; the bench's enum_default_revealed_sS_list has the median)
    expect(revealed.length).toBeLessThan(SERVICES.length);
  }, 320_000);
});
