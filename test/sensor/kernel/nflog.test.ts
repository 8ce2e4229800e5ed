import { describe, expect, it } from 'vitest';
import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, TCP_URG, tcpKind } from '../../../sensor/kernel/classify';
import { NflogPcapReader, ipv6Text, parseIp } from '../../../sensor/kernel/nflog';

function ipv4Tcp(source: number[], port: number, flags: number): Buffer {
  const b = Buffer.alloc(40);
  b[0] = 0x45;
  b.writeUInt16BE(40, 2);
  b[8] = 64;
  b[9] = 6;
  Buffer.from(source).copy(b, 12);
  Buffer.from([198, 51, 100, 1]).copy(b, 16);
  b.writeUInt16BE(40000, 20);
  b.writeUInt16BE(port, 22);
  b[32] = 0x50;
  b[33] = flags;
  return b;
}

function ipv6Udp(source: Buffer, port: number, withHopByHop = false): Buffer {
  const ext = withHopByHop ? 8 : 0;
  const b = Buffer.alloc(40 + ext + 8);
  b[0] = 0x60;
  b[6] = withHopByHop ? 0 : 17;
  b[7] = 64;
  source.copy(b, 8);
  if (withHopByHop) {
    b[40] = 17; // next header
    b[41] = 0; // length in 8-byte units beyond the first 8
  }
  b.writeUInt16BE(5353, 40 + ext);
  b.writeUInt16BE(port, 42 + ext);
  return b;
}

/** An NFLOG message: header + prefix TLV + payload TLV, TLV fields little-endian (x86 host order). */
function nflogMessage(prefix: string, payload: Buffer): Buffer {
  const tlv = (type: number, value: Buffer): Buffer => {
    const length = 4 + value.length;
    const padded = Buffer.alloc((length + 3) & ~3);
    padded.writeUInt16LE(length, 0);
    padded.writeUInt16LE(type, 2);
    value.copy(padded, 4);
    return padded;
  };
  return Buffer.concat([Buffer.from([2, 0, 0, 5]), tlv(10, Buffer.from(`${prefix}\0`)), tlv(9, payload)]);
}

function pcap(records: Array<{ ms: number; data: Buffer }>): Buffer {
  const header = Buffer.alloc(24);
  header.writeUInt32LE(0xa1b2c3d4, 0);
  header.writeUInt16LE(2, 4);
  header.writeUInt16LE(4, 6);
  header.writeUInt32LE(262144, 16);
  header.writeUInt32LE(239, 20);
  const parts: Buffer[] = [header];
  for (const { ms, data } of records) {
    const rec = Buffer.alloc(16);
    rec.writeUInt32LE(Math.floor(ms / 1000), 0);
    rec.writeUInt32LE((ms % 1000) * 1000, 4);
    rec.writeUInt32LE(data.length, 8);
    rec.writeUInt32LE(data.length, 12);
    parts.push(rec, data);
  }
  return Buffer.concat(parts);
}

describe('tcpKind', () => {
  it.each([
    [TCP_SYN, 'syn'],
    [TCP_SYN | 0xc0, 'syn'],
    [0, 'null'],
    [TCP_FIN, 'fin'],
    [TCP_FIN | TCP_PSH | TCP_URG, 'xmas'],
    [TCP_FIN | TCP_ACK, 'maimon'],
    [TCP_ACK, 'ack'],
    [TCP_SYN | TCP_ACK, 'other'],
    [TCP_RST, 'other'],
  ])('flags 0x%s are %s', (flags, kind) => {
    expect(tcpKind(flags)).toBe(kind);
  });
});

describe('parseIp', () => {
  it('reads source, port and kind of an IPv4 TCP packet', () => {
    expect(parseIp(ipv4Tcp([198, 51, 100, 66], 23, TCP_FIN | TCP_PSH | TCP_URG))).toEqual({ source: '198.51.100.66', protocol: 'tcp', port: 23, kind: 'xmas', flags: 0x29 });
  });

  it('reads an IPv6 UDP packet, stepping over a hop-by-hop header', () => {
    const src = Buffer.from('20010db8000100000000000000000066', 'hex');
    expect(parseIp(ipv6Udp(src, 161, true))).toEqual({ source: '2001:db8:1::66', protocol: 'udp', port: 161, kind: 'udp', flags: 0 });
  });

  it('skips later IPv4 fragments, other protocols and truncated packets', () => {
    const frag = ipv4Tcp([198, 51, 100, 66], 23, TCP_SYN);
    frag.writeUInt16BE(0x0010, 6);
    expect(parseIp(frag)).toBeUndefined();
    const icmp = ipv4Tcp([198, 51, 100, 66], 23, TCP_SYN);
    icmp[9] = 1;
    expect(parseIp(icmp)).toBeUndefined();
    expect(parseIp(ipv4Tcp([198, 51, 100, 66], 23, TCP_SYN).subarray(0, 30))).toBeUndefined();
  });
});

describe('ipv6Text', () => {
  it.each([
    ['20010db8000000000000000000000001', '2001:db8::1'],
    ['00000000000000000000000000000001', '::1'],
    ['20010db8000000010000000000000000', '2001:db8:0:1::'],
    ['20010db8000000010001000100010001', '2001:db8:0:1:1:1:1:1'],
    ['00000000000000000000ffffc6336407', '198.51.100.7'],
  ])('%s is %s', (hex, text) => {
    expect(ipv6Text(Buffer.from(hex, 'hex'))).toBe(text);
  });
});

describe('NflogPcapReader', () => {
  const stream = pcap([
    { ms: 1_700_000_000_123, data: nflogMessage('portsnare:kill', ipv4Tcp([198, 51, 100, 66], 80, TCP_SYN)) },
    { ms: 1_700_000_000_456, data: nflogMessage('portsnare:seen', ipv4Tcp([203, 0, 113, 9], 443, TCP_ACK)) },
  ]);

  it('reads every record with its time and prefix', () => {
    expect(new NflogPcapReader().push(stream)).toEqual([
      { at: 1_700_000_000_123, prefix: 'portsnare:kill', source: '198.51.100.66', protocol: 'tcp', port: 80, kind: 'syn', flags: TCP_SYN },
      { at: 1_700_000_000_456, prefix: 'portsnare:seen', source: '203.0.113.9', protocol: 'tcp', port: 443, kind: 'ack', flags: TCP_ACK },
    ]);
  });

  it('gives the same packets however the stream is split into chunks', () => {
    const reader = new NflogPcapReader();
    const out = [];
    for (let i = 0; i < stream.length; i += 7) out.push(...reader.push(stream.subarray(i, i + 7)));
    expect(out.map((p) => p.port)).toEqual([80, 443]);
  });

  it('refuses a stream of another link type', () => {
    const other = Buffer.from(stream);
    other.writeUInt32LE(1, 20);
    expect(() => new NflogPcapReader().push(other)).toThrow(/link type 1, expected NFLOG/);
  });
});
