/**
 * The kernel side on its own (detector + nftables enforcer + local pipeline, no agent): the
 * in-kernel block on the first decoy packet, what the kernel must never block, all-unused
 * tracking the listening ports, and a clean stop. Run in the sensor namespace by
 * test/lab/drivers/kernel-host.ts; attacked with nmap.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ATTACKER4, ATTACKER6, Lab, SENSOR4, SENSOR6, TESTNET, labReady, openPorts, portState, type DriverProcess } from './netns';

const SERVICES = [22, 80, 443, 3306];
const EXEMPT = '198.51.100.90';
const PROTECTED = '198.51.100.91';
const KILL_TTL = 120;

describe.skipIf(!labReady('kernel-host'))('kernel detector + enforcer, all-unused with the in-kernel block', () => {
  let lab: Lab;
  let host: DriverProcess;

  beforeAll(async () => {
    lab = await Lab.create('khost');
    for (const a of [EXEMPT, PROTECTED]) await lab.addAttackerAddress(a);
    await lab.startServices(SERVICES);
    host = await lab.startKernelHost({
      detector: { tcpPorts: 'all-unused', udpPorts: 'all-unused', exempt: [SENSOR4, SENSOR6, '127.0.0.1', '::1', EXEMPT], killTtlSeconds: KILL_TTL, refreshMs: 300 },
      guard: { protectedCidrs: [`${PROTECTED}/32`], blockableSpecialCidrs: TESTNET },
    });
  });

  afterAll(async () => {
    await host?.stop();
    await lab?.destroy();
  });

  it('keeps the listening ports out of detection', () => {
    const ready = host.lines.find((l) => l.type === 'ready') as unknown as { kept: { tcp: number[] } };
    expect(ready.kept.tcp).toEqual(expect.arrayContaining(SERVICES));
  });

  it('an exempt source scans freely: never reported, never blocked', async () => {
    const out = await lab.nmapFrom(EXEMPT, ['-sS', '-T4', '-p', '1-100,443,3306', SENSOR4]);
    expect(openPorts(out).sort((a, b) => a - b)).toEqual([22, 80, 443, 3306]);
    expect(await lab.blockedInKernel()).not.toContain(EXEMPT);
  });

  it('a protected source is reported but the kernel never blocks it (and the pipeline refuses it)', async () => {
    await lab.nmapFrom(PROTECTED, ['-sF', '-T4', '-p', '1000', SENSOR4]);
    const probe = await host.waitFor((l) => l.type === 'probe' && l.source === PROTECTED, 'a probe from the protected source');
    expect(probe).toMatchObject({ kind: 'fin', port: 1000, blockedByKernel: false });
    await host.waitFor((l) => l.type === 'decision' && l.attacker === PROTECTED && l.action === 'refused', 'the refusal');
    expect(await lab.blockedInKernel()).not.toContain(PROTECTED);
    expect(host.probes().filter((p) => p.source === EXEMPT)).toEqual([]);
  });

  it('the first decoy packet blocks the source in the kernel: nothing after it reaches a service', async () => {
    // the decoy port first, then the services, one scan: nmap scans in the order given with -r
    const out = await lab.nmap(['-sS', '-T4', '-r', '-p', '21,22,80,443,3306', SENSOR4]);
    expect(openPorts(out)).toEqual([]);
    const probes = host.probes().filter((p) => p.source === ATTACKER4);
    expect(probes[0]).toMatchObject({ port: 21, kind: 'syn', blockedByKernel: true });
    expect(await lab.blockedInKernel()).toContain(ATTACKER4);
    await host.waitFor((l) => l.type === 'decision' && l.attacker === ATTACKER4 && l.action === 'block', 'the recorded block');
  });

  it('an IPv6 source is blocked in the kernel the same way', async () => {
    await lab.nmap(['-6', '-sN', '-T4', '-p', '7', SENSOR6]);
    await host.waitFor((l) => l.type === 'probe' && l.source === ATTACKER6 && l.blockedByKernel === true, 'the IPv6 kill');
    expect(await lab.blockedInKernel()).toContain(ATTACKER6);
    const after = await lab.nmap(['-6', '-sS', '-T4', '--max-rtt-timeout', '300ms', '-p', '22', SENSOR6]);
    expect(openPorts(after), after).toEqual([]);
  });

  it('updating the exempt list at run time takes effect at once', async () => {
    const LATER = '198.51.100.92';
    await lab.addAttackerAddress(LATER);
    host.send({ exempt: [SENSOR4, SENSOR6, '127.0.0.1', '::1', EXEMPT, LATER] });
    await host.waitFor((l) => l.type === 'exempt-updated', 'the exempt update');
    const out = await lab.nmapFrom(LATER, ['-sS', '-T4', '-p', '1-30', SENSOR4]);
    expect(openPorts(out)).toEqual([22]);
    expect(await lab.blockedInKernel()).not.toContain(LATER);
  });

  it('a service started later leaves detection at the next refresh', async () => {
    await lab.startServices([9100]);
    const deadline = Date.now() + 5000;
    let kept = '';
    while (Date.now() < deadline) {
      kept = (await lab.inSensor('nft', ['list', 'set', 'inet', 'portsnare', 'tcpkeep'])).stdout;
      if (/\b9100\b/.test(kept)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(kept).toMatch(/\b9100\b/);
    const out = await lab.nmapFrom(EXEMPT, ['-sS', '-T4', '-p', '9100', SENSOR4]);
    expect(portState(out, 9100)).toBe('open');
  });

  it('stop removes the detector’s chains and sets, keeps the blocks, touches no other table', async () => {
    await lab.inSensor('nft', ['add', 'table', 'inet', 'other']);
    expect(await host.stop()).toBe(0);
    const ruleset = (await lab.inSensor('nft', ['list', 'ruleset'])).stdout;
    expect(ruleset).not.toMatch(/chain (detect|probe|handshake)|set (exempt4|tcpkeep|conn4)/);
    expect(ruleset).toMatch(/table inet other/);
    expect(await lab.blockedInKernel()).toEqual(expect.arrayContaining([ATTACKER4, ATTACKER6]));
  });
});
