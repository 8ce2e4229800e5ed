import { describe, expect, it } from 'vitest';
import { parseScanDetected } from '../../../core/event';
import { FLOW_LOG_FORMAT, parseFlowLine, probeKindOf, toScanEvents, type FlowRecord } from '../../../lambda/flowlogs/records';

// One line in FLOW_LOG_FORMAT: version eni src dst sport dport proto packets start end action status flags direction
function line(over: Partial<Record<'eni' | 'src' | 'dst' | 'sport' | 'dport' | 'proto' | 'packets' | 'start' | 'end' | 'action' | 'status' | 'flags' | 'dir', string>> = {}): string {
  const f = {
    eni: 'eni-0123456789abcdef0',
    src: '198.51.100.7',
    dst: '10.0.0.5',
    sport: '40000',
    dport: '23',
    proto: '6',
    packets: '1',
    start: '1795255200',
    end: '1795255260',
    action: 'REJECT',
    status: 'OK',
    flags: '2',
    dir: 'ingress',
    ...over,
  };
  return `5 ${f.eni} ${f.src} ${f.dst} ${f.sport} ${f.dport} ${f.proto} ${f.packets} ${f.start} ${f.end} ${f.action} ${f.status} ${f.flags} ${f.dir}`;
}

function record(over: Partial<Record<string, string>> = {}): FlowRecord {
  const parsed = parseFlowLine(line(over));
  if (!parsed.ok) throw new Error(parsed.skip);
  return parsed.record;
}

describe('FLOW_LOG_FORMAT', () => {
  it('names tcp-flags and flow-direction, the fields the stealth detector needs', () => {
    expect(FLOW_LOG_FORMAT.split(' ')).toHaveLength(14);
    expect(FLOW_LOG_FORMAT).toContain('${tcp-flags}');
    expect(FLOW_LOG_FORMAT).toContain('${flow-direction}');
  });
});

describe('parseFlowLine', () => {
  it('reads every field of a record', () => {
    expect(parseFlowLine(line())).toEqual({
      ok: true,
      record: {
        interfaceId: 'eni-0123456789abcdef0',
        srcaddr: '198.51.100.7',
        dstaddr: '10.0.0.5',
        srcport: 40000,
        dstport: 23,
        protocol: 6,
        packets: 1,
        start: 1795255200,
        end: 1795255260,
        action: 'REJECT',
        tcpFlags: 2,
        direction: 'ingress',
      },
    });
  });

  it('canonicalizes IPv6 source addresses', () => {
    const parsed = parseFlowLine(line({ src: '2001:DB8:0:0::7' }));
    expect(parsed.ok && parsed.record.srcaddr).toBe('2001:db8::7');
  });

  it('skips NODATA and SKIPDATA records', () => {
    expect(parseFlowLine('5 eni-0123456789abcdef0 - - - - - - 1795255200 1795255260 - NODATA - -')).toEqual({ ok: false, skip: 'log-status NODATA' });
  });

  it('calls a line with the wrong number of fields malformed', () => {
    const parsed = parseFlowLine(`${line()} extra`);
    expect(parsed).toEqual({ ok: false, skip: 'malformed: 15 fields, expected 14' });
  });

  it('refuses a record in the default format (also 14 fields) instead of misreading it', () => {
    const parsed = parseFlowLine('2 123456789012 eni-0123456789abcdef0 198.51.100.7 10.0.0.5 40000 23 6 1 40 1795255200 1795255260 REJECT OK');
    expect(parsed.ok).toBe(false);
    expect(!parsed.ok && parsed.skip).toMatch(/^malformed: interface-id 123456789012/);
  });

  it('calls a non-numeric port malformed', () => {
    expect(parseFlowLine(line({ dport: 'x' }))).toEqual({ ok: false, skip: 'malformed: dstport' });
  });

  it('calls a bad address malformed', () => {
    expect(parseFlowLine(line({ src: '999.1.1.1' }))).toEqual({ ok: false, skip: 'malformed: address' });
  });

  // One bad record must cost only itself: each of these used to crash the batch (a Date past
  // its range throws in toISOString) or pass a port no packet can carry.
  it('skips a port past 65535, a time past what a Date holds, an end before its start and a null message', () => {
    expect(parseFlowLine(line({ dport: '99999' }))).toEqual({ ok: false, skip: 'malformed: port past 65535' });
    expect(parseFlowLine(line({ start: '99999999999999', end: '99999999999999' }))).toEqual({ ok: false, skip: 'malformed: start/end' });
    expect(parseFlowLine(line({ end: '1795255100' }))).toEqual({ ok: false, skip: 'malformed: start/end' });
    expect(parseFlowLine(null)).toEqual({ ok: false, skip: 'malformed: message is null, not a line' });
    const good = record();
    const events = toScanEvents([good, record({ dport: '24' }), record({ dport: '25' })], { minProbes: 1 });
    expect(events.map((e) => parseScanDetected(e).ok)).toEqual([true]);
  });
});

describe('probeKindOf', () => {
  it.each([
    [6, 2, 'tcp', 'syn'],
    [6, 3, 'tcp', 'syn'],
    [6, 1, 'tcp', 'fin'],
    [6, 0, 'tcp', 'other'],
    [6, 4, 'tcp', 'other'],
    [17, 0, 'udp', 'udp'],
  ])('protocol %i flags %i → %s/%s', (protocol, tcpFlags, p, kind) => {
    expect(probeKindOf({ protocol, tcpFlags })).toEqual({ protocol: p, kind });
  });

  it('ignores protocols other than TCP and UDP (ICMP)', () => {
    expect(probeKindOf({ protocol: 1, tcpFlags: 0 })).toBeUndefined();
  });
});

describe('toScanEvents', () => {
  it('turns one attacker\'s rejected probes into one valid Scan Detected event', () => {
    const records = [
      record({ dport: '23', start: '1795255200', end: '1795255260' }),
      record({ dport: '445', packets: '2', start: '1795255190', end: '1795255250' }),
      record({ dport: '23', start: '1795255230', end: '1795255290' }),
    ];
    const events = toScanEvents(records, { minProbes: 1 });
    expect(events).toHaveLength(1);
    const event = events[0]!;
    expect(event).toMatchObject({
      version: 1,
      sensorId: 'flowlogs/eni-0123456789abcdef0',
      attacker: '198.51.100.7',
      handshake: false,
      probeCount: 4,
      firstSeen: new Date(1795255190 * 1000).toISOString(),
      lastSeen: new Date(1795255290 * 1000).toISOString(),
    });
    expect(event.probes).toEqual([
      { protocol: 'tcp', port: 23, kind: 'syn' },
      { protocol: 'tcp', port: 445, kind: 'syn' },
    ]);
    expect(parseScanDetected(event).ok).toBe(true);
  });

  it('ignores accepted flows and egress records', () => {
    const events = toScanEvents([record({ action: 'ACCEPT' }), record({ dir: 'egress' })], { minProbes: 1 });
    expect(events).toEqual([]);
  });

  it('keeps attackers and interfaces apart', () => {
    const events = toScanEvents(
      [record({ src: '198.51.100.7' }), record({ src: '203.0.113.9' }), record({ src: '198.51.100.7', eni: 'eni-0aaaaaaaaaaaaaaaa' })],
      { minProbes: 1 },
    );
    expect(events.map((e) => `${e.sensorId} ${e.attacker}`).sort()).toEqual([
      'flowlogs/eni-0123456789abcdef0 198.51.100.7',
      'flowlogs/eni-0123456789abcdef0 203.0.113.9',
      'flowlogs/eni-0aaaaaaaaaaaaaaaa 198.51.100.7',
    ]);
  });

  it('reports only attackers with at least minProbes distinct probes', () => {
    const records = [record({ src: '198.51.100.7', dport: '22' }), record({ src: '198.51.100.7', dport: '23' }), record({ src: '203.0.113.9', dport: '22' })];
    expect(toScanEvents(records, { minProbes: 2 }).map((e) => e.attacker)).toEqual(['198.51.100.7']);
  });

  it('caps distinct probes at 32 and still counts every packet', () => {
    const records = Array.from({ length: 40 }, (_, i) => record({ dport: String(1000 + i) }));
    const [event] = toScanEvents(records, { minProbes: 1 });
    expect(event!.probes).toHaveLength(32);
    expect(event!.probeCount).toBe(40);
    expect(parseScanDetected(event).ok).toBe(true);
  });

  it('ignores records to addresses other than the sensors\' when destinations are given', () => {
    const records = [record({ src: '198.51.100.7', dst: '10.0.0.5' }), record({ src: '203.0.113.9', dst: '10.0.0.6' })];
    const events = toScanEvents(records, { minProbes: 1, destinations: new Set(['10.0.0.5']) });
    expect(events.map((e) => e.attacker)).toEqual(['198.51.100.7']);
    expect(toScanEvents(records, { minProbes: 1, destinations: new Set() })).toHaveLength(2);
  });

  it('reports UDP and FIN probes with their kinds', () => {
    const [event] = toScanEvents([record({ proto: '17', flags: '0', dport: '161' }), record({ flags: '1', dport: '80' })], { minProbes: 1 });
    expect(event!.probes).toEqual([
      { protocol: 'udp', port: 161, kind: 'udp' },
      { protocol: 'tcp', port: 80, kind: 'fin' },
    ]);
  });
});
