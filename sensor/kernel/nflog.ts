/**
 * Reads what `tcpdump -i nflog:GROUP -w -` writes: a pcap stream (link type 239, LINKTYPE_NFLOG)
 * whose records are NFLOG messages — a 4-byte header (family, version, resource id) and TLVs
 * (length and type in host byte order, padded to 4 bytes), among them the log prefix and the
 * packet from its network header on. See https://www.tcpdump.org/linktypes/LINKTYPE_NFLOG.html.
 */
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { tcpKind } from './classify';
import type { ProbeKind } from '../../core/event';

export const LINKTYPE_NFLOG = 239;
const NFULA_PAYLOAD = 9;
const NFULA_PREFIX = 10;
const PCAP_HEADER = 24;
const RECORD_HEADER = 16;
/** a record larger than this is not an NFLOG record of ours: the stream is out of step */
const MAX_RECORD = 1 << 20;

export interface LoggedPacket {
  readonly at: number;
  readonly prefix: string;
  readonly source: string;
  readonly protocol: 'tcp' | 'udp';
  readonly port: number;
  readonly kind: ProbeKind;
  /** TCP flags byte; 0 for UDP */
  readonly flags: number;
}

/** Incremental pcap reader: push() chunks, get the complete records' packets back. */
export class NflogPcapReader {
  private buffer: Buffer = Buffer.alloc(0);
  private little: boolean | undefined;
  private nanos = false;

  /** Parses what is complete in the buffer. Throws when the stream is not an NFLOG pcap. */
  push(chunk: Buffer): LoggedPacket[] {
    this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
    const out: LoggedPacket[] = [];
    if (this.little === undefined) {
      if (this.buffer.length < PCAP_HEADER) return out;
      this.readGlobalHeader();
    }
    let offset = 0;
    while (this.buffer.length - offset >= RECORD_HEADER) {
      const sec = this.u32(offset);
      const frac = this.u32(offset + 4);
      const captured = this.u32(offset + 8);
      if (captured > MAX_RECORD) throw new Error(`pcap record of ${captured} bytes: not an NFLOG stream`);
      if (this.buffer.length - offset - RECORD_HEADER < captured) break;
      const data = this.buffer.subarray(offset + RECORD_HEADER, offset + RECORD_HEADER + captured);
      offset += RECORD_HEADER + captured;
      const at = sec * 1000 + (this.nanos ? Math.floor(frac / 1e6) : Math.floor(frac / 1e3));
      const packet = parseNflog(data, at, this.little === true);
      if (packet) out.push(packet);
    }
    this.buffer = offset === this.buffer.length ? Buffer.alloc(0) : this.buffer.subarray(offset);
    return out;
  }

  private readGlobalHeader(): void {
    const magicLE = this.buffer.readUInt32LE(0);
    if (magicLE === 0xa1b2c3d4 || magicLE === 0xa1b23c4d) this.little = true;
    else if (this.buffer.readUInt32BE(0) === 0xa1b2c3d4 || this.buffer.readUInt32BE(0) === 0xa1b23c4d) this.little = false;
    else throw new Error(`not a pcap stream (magic 0x${magicLE.toString(16)})`);
    this.nanos = (this.little ? magicLE : this.buffer.readUInt32BE(0)) === 0xa1b23c4d;
    const linktype = this.u32(20) & 0x0fffffff;
    if (linktype !== LINKTYPE_NFLOG) throw new Error(`pcap link type ${linktype}, expected NFLOG (${LINKTYPE_NFLOG})`);
    this.buffer = this.buffer.subarray(PCAP_HEADER);
  }

  private u32(offset: number): number {
    return this.little ? this.buffer.readUInt32LE(offset) : this.buffer.readUInt32BE(offset);
  }
}

/** One NFLOG message → the logged packet, or undefined when it is not a TCP/UDP packet we can read. */
export function parseNflog(data: Buffer, at: number, littleEndian: boolean): LoggedPacket | undefined {
  if (data.length < 4) return undefined;
  let prefix = '';
  let payload: Buffer | undefined;
  let offset = 4;
  while (offset + 4 <= data.length) {
    const length = littleEndian ? data.readUInt16LE(offset) : data.readUInt16BE(offset);
    const type = (littleEndian ? data.readUInt16LE(offset + 2) : data.readUInt16BE(offset + 2)) & 0x3fff;
    if (length < 4 || offset + length > data.length) break;
    const value = data.subarray(offset + 4, offset + length);
    if (type === NFULA_PREFIX) prefix = value.toString('latin1').replace(/\0.*$/s, '');
    else if (type === NFULA_PAYLOAD) payload = value;
    offset += (length + 3) & ~3;
  }
  if (!payload) return undefined;
  const ip = parseIp(payload);
  if (!ip) return undefined;
  return { at, prefix, ...ip };
}

const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;
/** IPv6 extension headers we step over (hop-by-hop, routing, destination options) */
const IPV6_EXTENSIONS = new Set([0, 43, 60]);

/** The source, transport, destination port and kind of a raw IPv4/IPv6 packet. */
export function parseIp(packet: Buffer): Omit<LoggedPacket, 'at' | 'prefix'> | undefined {
  if (packet.length < 1) return undefined;
  const version = packet[0]! >> 4;
  let source: string;
  let proto: number;
  let l4: number;
  if (version === 4) {
    if (packet.length < 20) return undefined;
    const ihl = (packet[0]! & 0x0f) * 4;
    const fragOffset = packet.readUInt16BE(6) & 0x1fff;
    if (fragOffset !== 0) return undefined; // a later fragment carries no ports
    source = `${packet[12]}.${packet[13]}.${packet[14]}.${packet[15]}`;
    proto = packet[9]!;
    l4 = ihl;
  } else if (version === 6) {
    if (packet.length < 40) return undefined;
    source = ipv6Text(packet.subarray(8, 24));
    proto = packet[6]!;
    l4 = 40;
    while (IPV6_EXTENSIONS.has(proto) && l4 + 8 <= packet.length) {
      proto = packet[l4]!;
      l4 += (packet[l4 + 1]! + 1) * 8;
    }
  } else {
    return undefined;
  }
  if (proto === IPPROTO_TCP && packet.length >= l4 + 14) {
    const flags = packet[l4 + 13]!;
    return { source, protocol: 'tcp', port: packet.readUInt16BE(l4 + 2), kind: tcpKind(flags), flags };
  }
  if (proto === IPPROTO_UDP && packet.length >= l4 + 4) {
    return { source, protocol: 'udp', port: packet.readUInt16BE(l4 + 2), kind: 'udp', flags: 0 };
  }
  return undefined;
}

/** RFC 5952 text of 16 bytes (IPv4-mapped addresses folded to IPv4, as canonicalAddress does). */
export function ipv6Text(bytes: Buffer): string {
  const words: number[] = [];
  for (let i = 0; i < 16; i += 2) words.push(bytes.readUInt16BE(i));
  if (words.slice(0, 5).every((w) => w === 0) && words[5] === 0xffff) {
    return `${bytes[12]}.${bytes[13]}.${bytes[14]}.${bytes[15]}`;
  }
  let bestStart = -1;
  let bestLength = 0;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLength && j - i >= 2) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = words.map((w) => w.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

/**
 * The pids of `tcpdump -i nflog:GROUP` readers in this network namespace whose parent is no
 * longer a portsnare process: what an agent killed with SIGKILL leaves behind, holding the NFLOG
 * group so that the next agent cannot read it. Read from /proc (cmdline, stat, ns/net).
 */
export function staleNflogReaders(group: number, proc = '/proc'): number[] {
  let names: string[];
  try {
    names = readdirSync(proc);
  } catch {
    return [];
  }
  const ownNet = safeReadlink(`${proc}/self/ns/net`);
  const wanted = `nflog:${group}`;
  const out: number[] = [];
  for (const name of names) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    const argv = safeRead(`${proc}/${name}/cmdline`).split('\0');
    if (!/(^|\/)tcpdump$/.test(argv[0] ?? '') || !argv.includes(wanted)) continue;
    if (ownNet === undefined || safeReadlink(`${proc}/${name}/ns/net`) !== ownNet) continue; // another namespace's group
    const stat = safeRead(`${proc}/${name}/stat`);
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (Number.isInteger(ppid) && ppid > 1 && safeRead(`${proc}/${ppid}/cmdline`).includes('portsnare')) continue; // a running agent's reader
    out.push(Number(name));
  }
  return out;
}

/** Ends the stale readers of `group` (SIGKILL) and waits (up to 2 s) until they are gone; returns their pids. */
export async function killStaleNflogReaders(group: number): Promise<number[]> {
  const pids = staleNflogReaders(group);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
  const until = Date.now() + 2000;
  // a killed child of init is reaped at once; the group is free when the process is gone
  while (pids.some((pid) => safeRead(`/proc/${pid}/cmdline`) !== '') && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 20));
  return pids;
}

function safeRead(path: string): string {
  try {
    return readFileSync(path, 'latin1');
  } catch {
    return '';
  }
}

function safeReadlink(path: string): string | undefined {
  try {
    return readlinkSync(path);
  } catch {
    return undefined;
  }
}
