import { describe, expect, it } from 'vitest';
import type { ScanDetected } from '../../core/event';
import { Aggregator, type AggregatorOptions } from '../../sensor/aggregate/aggregator';
import { ownAddresses } from '../../sensor/aggregate/own-addresses';
import { EchoFilter } from '../../sensor/aggregate/echo';
import type { Hit } from '../../sensor/listeners';

const T0 = Date.parse('2026-11-21T10:00:00.000Z');

function setup(overrides: Partial<AggregatorOptions> = {}) {
  let now = T0;
  const events: ScanDetected[] = [];
  const aggregator = new Aggregator({
    sensorId: 'test',
    trigger: { hits: 1, windowSeconds: 60 },
    dedupeSeconds: 60,
    ignore: [],
    ownAddresses: [],
    maxTrackedSources: 1000,
    onEvent: (event) => events.push(event),
    now: () => now,
    ...overrides,
  });
  const hit = (source: string, port = 23, extra: Partial<Hit> = {}): void =>
    aggregator.add({ source, protocol: 'tcp', port, kind: 'connect', handshake: true, at: now, ...extra });
  const advance = (ms: number): void => {
    now += ms;
    aggregator.tick();
  };
  return { aggregator, events, hit, advance };
}

describe('aggregator', () => {
  it('emits a valid v1 event for the first hit with the default trigger', () => {
    const { events, hit } = setup();
    hit('198.51.100.7');
    expect(events).toEqual([
      {
        version: 1,
        sensorId: 'test',
        attacker: '198.51.100.7',
        probes: [{ protocol: 'tcp', port: 23, kind: 'connect' }],
        probeCount: 1,
        handshake: true,
        proof: 'handshake',
        firstSeen: '2026-11-21T10:00:00.000Z',
        lastSeen: '2026-11-21T10:00:00.000Z',
      },
    ]);
  });

  it('waits for `hits` probes within the window before reporting', () => {
    const { events, hit, advance } = setup({ trigger: { hits: 3, windowSeconds: 10 } });
    hit('198.51.100.7', 1);
    advance(6_000);
    hit('198.51.100.7', 2);
    advance(6_000); // the first hit is now outside the window
    hit('198.51.100.7', 3);
    expect(events).toHaveLength(0);
    advance(1_000);
    hit('198.51.100.7', 4);
    expect(events).toHaveLength(1);
    expect(events[0]!.probes.map((p) => p.port)).toEqual([2, 3, 4]);
  });

  it('sends one event per attacker per dedupe window, the hits of the window summed at its end', () => {
    const { events, hit, advance } = setup({ dedupeSeconds: 30 });
    hit('198.51.100.7', 23);
    advance(1_000);
    hit('198.51.100.7', 25);
    hit('198.51.100.7', 25);
    advance(10_000);
    expect(events).toHaveLength(1);
    advance(20_000); // 31 s after the first event
    expect(events).toHaveLength(2);
    expect(events[1]).toMatchObject({ probeCount: 2, probes: [{ protocol: 'tcp', port: 25, kind: 'connect' }] });
    advance(31_000); // nothing new: nothing sent
    expect(events).toHaveLength(2);
  });

  it('never reports an ignored address or CIDR, IPv4 or IPv6', () => {
    const { events, hit, aggregator } = setup({ ignore: ['198.51.100.0/24', '2001:db8::/32', '203.0.113.9'] });
    hit('198.51.100.7');
    hit('2001:db8::1');
    hit('203.0.113.9');
    hit('::ffff:198.51.100.8'); // IPv4-mapped folds to IPv4
    hit('203.0.113.10');
    expect(events.map((e) => e.attacker)).toEqual(['203.0.113.10']);
    expect(aggregator.stats().ignored).toBe(4);
  });

  it("never reports the host's own exact addresses, but does report their neighbours", () => {
    const { events, hit, aggregator } = setup({ ownAddresses: ['127.0.0.1', '::1', '192.0.2.10'] });
    hit('127.0.0.1');
    hit('::1');
    hit('192.0.2.10');
    hit('127.99.0.7');
    hit('192.0.2.11');
    expect(events.map((e) => e.attacker)).toEqual(['127.99.0.7', '192.0.2.11']);
    expect(aggregator.stats().own).toBe(3);
  });

  it('reads own addresses from the interfaces, exact addresses not subnets', () => {
    const own = ownAddresses({
      lo: [{ address: '127.0.0.1', netmask: '255.0.0.0', family: 'IPv4', mac: '00:00:00:00:00:00', internal: true, cidr: '127.0.0.1/8' }],
      eth0: [{ address: 'fe80::1%eth0', netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', mac: '02:00:00:00:00:01', internal: false, cidr: 'fe80::1/64', scopeid: 2 }],
    });
    expect(own).toEqual(['127.0.0.1', 'fe80::1']);
  });

  it('keeps at most 32 distinct probes and counts every probe', () => {
    const { events, hit, advance } = setup({ trigger: { hits: 40, windowSeconds: 60 } });
    for (let port = 1; port <= 40; port++) hit('198.51.100.7', port);
    advance(0);
    expect(events).toHaveLength(1);
    expect(events[0]!.probes).toHaveLength(32);
    expect(events[0]!.probeCount).toBe(40);
  });

  it('marks handshake only when a probe completed one', () => {
    const { events, hit } = setup({ trigger: { hits: 2, windowSeconds: 60 } });
    hit('198.51.100.7', 53, { protocol: 'udp', kind: 'udp', handshake: false });
    hit('198.51.100.7', 54, { protocol: 'udp', kind: 'udp', handshake: false });
    hit('198.51.100.8', 53, { protocol: 'udp', kind: 'udp', handshake: false });
    hit('198.51.100.8', 23);
    expect(events.map((e) => [e.attacker, e.handshake])).toEqual([
      ['198.51.100.7', false],
      ['198.51.100.8', true],
    ]);
  });

  it('stays bounded in memory however many sources probe', () => {
    const { aggregator, hit } = setup({ maxTrackedSources: 100, trigger: { hits: 5, windowSeconds: 60 } });
    for (let i = 0; i < 10_000; i++) hit(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
    expect(aggregator.stats().tracked).toBeLessThanOrEqual(100);
    expect(aggregator.stats().evicted).toBe(9_900);
  });

  it('forgets quiet sources after the windows pass', () => {
    const { aggregator, hit, advance } = setup({ trigger: { hits: 1, windowSeconds: 10 }, dedupeSeconds: 20 });
    hit('198.51.100.7');
    hit('198.51.100.8');
    advance(21_000);
    advance(21_000);
    expect(aggregator.stats().tracked).toBe(0);
  });

  it('flushes hits held by a dedupe window at stop', () => {
    const { events, hit, aggregator } = setup();
    hit('198.51.100.7', 23);
    hit('198.51.100.7', 24);
    aggregator.flush();
    expect(events).toHaveLength(2);
    expect(events[1]!.probes[0]!.port).toBe(24);
  });
});

describe('aggregator with kernel and socket views of one probe', () => {
  it('counts a SYN and the accept of the same connect once (echo)', () => {
    const { events, hit } = setup({ trigger: { hits: 2, windowSeconds: 60 } });
    hit('198.51.100.7', 23, { kind: 'syn', handshake: false });
    hit('198.51.100.7', 23, { kind: 'connect', handshake: true, echo: true });
    expect(events).toHaveLength(0);
    hit('198.51.100.7', 25, { kind: 'syn', handshake: false });
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ probeCount: 3, handshake: true });
    expect(events[0]!.probes.map((p) => `${p.port}/${p.kind}`).sort()).toEqual(['23/connect', '23/syn', '25/syn']);
  });

  it('sends the first handshake at once even inside a dedupe window', () => {
    const { events, hit, advance } = setup({ dedupeSeconds: 60 });
    hit('198.51.100.7', 23, { kind: 'syn', handshake: false });
    advance(5);
    hit('198.51.100.7', 23, { kind: 'connect', handshake: true, echo: true });
    hit('198.51.100.7', 24, { kind: 'connect', handshake: true });
    expect(events.map((e) => [e.handshake, e.probeCount])).toEqual([
      [false, 1],
      [true, 1],
    ]);
    advance(61_000);
    expect(events).toHaveLength(3);
    expect(events[2]).toMatchObject({ handshake: true, probes: [{ port: 24, kind: 'connect' }] });
  });

  describe('a source seen by the kernel and by a socket: one event per dedupe window', () => {
    // The agent's path with stealth on: every view goes through the echo filter, then the
    // aggregator (sensor/agent.ts). One connect = the kernel's SYN, then (in either order) the
    // kernel's completed handshake and the socket's accept, a few ms apart.
    function agentPath(grace: number) {
      const t = setup({ dedupeSeconds: 300, proofGraceMs: grace });
      const echoes = new EchoFilter();
      const view = (side: 'kernel' | 'socket', source: string, kind: 'syn' | 'connect', at: number): void =>
        t.aggregator.add(echoes.mark(side, { source, protocol: 'tcp', port: 23, kind, handshake: kind === 'connect', at }));
      return { ...t, view };
    }
    const SOURCES = Array.from({ length: 200 }, (_, i) => `198.51.100.${i + 1}`);

    function connectAll(t: ReturnType<typeof agentPath>, socketFirst: boolean): void {
      for (const source of SOURCES) {
        t.view('kernel', source, 'syn', T0);
        t.view(socketFirst ? 'socket' : 'kernel', source, 'connect', T0 + 2);
        t.view(socketFirst ? 'kernel' : 'socket', source, 'connect', T0 + 3);
      }
    }

    it('without the proof grace (the agent before): 2 events per source, unproven then proven at once', () => {
      const t = agentPath(0);
      connectAll(t, false);
      for (let i = 0; i < 301; i++) t.advance(1000);
      // the echo rule alone leaves the two-event upgrade (the 398-for-200 in a 300 s window)
      expect(t.events.filter((e) => e.attacker === SOURCES[0]).map((e) => e.proof)).toEqual(['none', 'handshake']);
    });

    it.each([false, true])('with the proof grace: exactly one event per source, proven, in the whole 300 s window (socket first: %s)', (socketFirst) => {
      const t = agentPath(1000);
      connectAll(t, socketFirst);
      // the handshake arrived within the grace: every event already out, none waiting
      expect(t.events).toHaveLength(200);
      for (let i = 0; i < 301; i++) t.advance(1000);
      expect(t.events).toHaveLength(200);
      expect(new Set(t.events.map((e) => e.attacker)).size).toBe(200);
      for (const e of t.events) {
        // two kinds of one connect: the contract wants a count per distinct probe
        expect(e).toMatchObject({ handshake: true, proof: 'handshake', probeCount: 2 });
        expect(e.probes.map((p) => p.kind).sort()).toEqual(['connect', 'syn']);
      }
    });

    it('a SYN with no handshake (quarantined, or forged) goes out once, unproven, when the grace ends', () => {
      const t = agentPath(1000);
      t.view('kernel', '198.51.100.9', 'syn', T0);
      expect(t.events).toHaveLength(0);
      t.advance(999);
      expect(t.events).toHaveLength(0);
      t.advance(1);
      expect(t.events).toEqual([expect.objectContaining({ attacker: '198.51.100.9', handshake: false, proof: 'none' })]);
      for (let i = 0; i < 301; i++) t.advance(1000);
      expect(t.events).toHaveLength(1);
    });

    it('a proof that comes later than the grace (a rescan after the hold) is still sent at once: it may allow a block', () => {
      const t = agentPath(1000);
      t.view('kernel', '198.51.100.9', 'syn', T0);
      t.advance(20_000);
      t.view('kernel', '198.51.100.9', 'connect', T0 + 20_000);
      expect(t.events.map((e) => e.proof)).toEqual(['none', 'handshake']);
    });

    it('flush at stop sends an event still waiting for its proof', () => {
      const t = agentPath(1000);
      t.view('kernel', '198.51.100.9', 'syn', T0);
      t.aggregator.flush();
      expect(t.events).toHaveLength(1);
    });
  });
});
