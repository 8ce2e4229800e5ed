/**
 * VPC Flow Logs records of a sensor's network interface → `Scan Detected` events: the stealth
 * detector where the kernel is out of reach (Fargate allows no NET_RAW/NET_ADMIN).
 *
 * The flow log uses a custom format, FLOW_LOG_FORMAT, delivered to CloudWatch Logs with a
 * one-minute aggregation interval; a subscription filter hands batches to this function.
 * A sensor has nothing real on it, so every inbound packet its security group REJECTs is a probe
 * of a closed port. ACCEPTed flows reach the sensor's own sockets, which report them themselves.
 *
 * Flow logs cannot prove a source address (no handshake is seen): every event carries
 * `handshake: false`, and the pipeline blocks on it only with `blockUnverified`.
 * https://docs.aws.amazon.com/vpc/latest/userguide/flow-log-records.html
 */
import { canonicalAddress, isAddress } from '../../core/address';
import { MAX_PROBES, type ProbeKind, type ScanDetected } from '../../core/event';

/**
 * The custom record format (flow log version 5 fields). `tcp-flags` is the OR of the flags
 * seen in the aggregation interval; AWS records only FIN (1), SYN (2), RST (4) and SYN-ACK (18).
 */
export const FLOW_LOG_FORMAT = [
  '${version}',
  '${interface-id}',
  '${srcaddr}',
  '${dstaddr}',
  '${srcport}',
  '${dstport}',
  '${protocol}',
  '${packets}',
  '${start}',
  '${end}',
  '${action}',
  '${log-status}',
  '${tcp-flags}',
  '${flow-direction}',
].join(' ');

const FIELD_COUNT = 14;
const MAX_PORT = 65_535;
/** the last second a JavaScript Date can hold (8.64e15 ms, ECMA-262 "Time Values and Time Range") */
const MAX_EPOCH_SECONDS = 8.64e12;
const PROTOCOL_TCP = 6;
const PROTOCOL_UDP = 17;
const TCP_FIN = 1;
const TCP_SYN = 2;

export interface FlowRecord {
  readonly interfaceId: string;
  readonly srcaddr: string;
  readonly dstaddr: string;
  readonly srcport: number;
  readonly dstport: number;
  /** IANA protocol number */
  readonly protocol: number;
  readonly packets: number;
  /** epoch seconds */
  readonly start: number;
  readonly end: number;
  readonly action: 'ACCEPT' | 'REJECT';
  readonly tcpFlags: number;
  readonly direction: 'ingress' | 'egress';
}

export type ParsedLine = { ok: true; record: FlowRecord } | { ok: false; skip: string };

function integer(text: string | undefined): number | undefined {
  if (text === undefined || !/^\d+$/.test(text)) return undefined;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : undefined;
}

/**
 * One line of FLOW_LOG_FORMAT. NODATA/SKIPDATA lines and lines with `-` where a value is needed
 * are skipped with the reason; a line of another shape is skipped as malformed.
 */
export function parseFlowLine(line: unknown): ParsedLine {
  if (typeof line !== 'string') return { ok: false, skip: `malformed: message is ${line === null ? 'null' : typeof line}, not a line` };
  const fields = line.trim().split(/\s+/);
  if (fields.length !== FIELD_COUNT) return { ok: false, skip: `malformed: ${fields.length} fields, expected ${FIELD_COUNT}` };
  const [, interfaceId, srcaddr, dstaddr, srcport, dstport, protocol, packets, start, end, action, logStatus, tcpFlags, direction] =
    fields as [string, string, string, string, string, string, string, string, string, string, string, string, string, string];
  if (!/^eni-[0-9a-f]+$/.test(interfaceId)) return { ok: false, skip: `malformed: interface-id ${interfaceId} (not FLOW_LOG_FORMAT?)` };
  if (logStatus !== 'OK') return { ok: false, skip: `log-status ${logStatus}` };
  if (action !== 'ACCEPT' && action !== 'REJECT') return { ok: false, skip: `malformed: action ${action}` };
  if (direction !== 'ingress' && direction !== 'egress') return { ok: false, skip: `malformed: flow-direction ${direction}` };
  if (!isAddress(srcaddr) || !isAddress(dstaddr)) return { ok: false, skip: 'malformed: address' };
  const numbers = {
    srcport: integer(srcport),
    dstport: integer(dstport),
    protocol: integer(protocol),
    packets: integer(packets),
    start: integer(start),
    end: integer(end),
    tcpFlags: tcpFlags === '-' ? 0 : integer(tcpFlags),
  };
  for (const [key, value] of Object.entries(numbers)) {
    if (value === undefined) return { ok: false, skip: `malformed: ${key}` };
  }
  // ranges: ports are 16 bits, protocols 8 (IANA); times must be dates a Date can hold, in order
  if (numbers.srcport! > MAX_PORT || numbers.dstport! > MAX_PORT) return { ok: false, skip: 'malformed: port past 65535' };
  if (numbers.protocol! > 255) return { ok: false, skip: 'malformed: protocol past 255' };
  if (numbers.start! > MAX_EPOCH_SECONDS || numbers.end! > MAX_EPOCH_SECONDS || numbers.end! < numbers.start!) return { ok: false, skip: 'malformed: start/end' };
  return {
    ok: true,
    record: {
      interfaceId,
      srcaddr: canonicalAddress(srcaddr),
      dstaddr: canonicalAddress(dstaddr),
      srcport: numbers.srcport!,
      dstport: numbers.dstport!,
      protocol: numbers.protocol!,
      packets: numbers.packets!,
      start: numbers.start!,
      end: numbers.end!,
      action,
      tcpFlags: numbers.tcpFlags!,
      direction,
    },
  };
}

/**
 * What a rejected inbound flow tells about the probe. AWS records no ACK, PSH or URG flags, so
 * an ACK scan and a NULL scan both show 0 ("other"), and an XMAS scan shows as FIN.
 */
export function probeKindOf(record: Pick<FlowRecord, 'protocol' | 'tcpFlags'>): { protocol: 'tcp' | 'udp'; kind: ProbeKind } | undefined {
  if (record.protocol === PROTOCOL_UDP) return { protocol: 'udp', kind: 'udp' };
  if (record.protocol !== PROTOCOL_TCP) return undefined;
  if (record.tcpFlags & TCP_SYN) return { protocol: 'tcp', kind: 'syn' };
  if (record.tcpFlags & TCP_FIN) return { protocol: 'tcp', kind: 'fin' };
  return { protocol: 'tcp', kind: 'other' };
}

export interface ToEventsOptions {
  /** an attacker needs at least this many distinct (protocol, port, kind) probes on one interface */
  readonly minProbes: number;
  /**
   * The sensors' own (private) addresses: records to any other destination are ignored, so a
   * flow log on a subnet the sensor shares reports only probes of the sensor. Empty: all.
   */
  readonly destinations?: ReadonlySet<string>;
}

/**
 * Groups rejected inbound TCP/UDP records per (interface, source) into one event each — one
 * event per attacker per batch, never one per probe. Records of other shapes, and records to
 * addresses other than `destinations`, are ignored.
 */
export function toScanEvents(records: readonly FlowRecord[], options: ToEventsOptions): ScanDetected[] {
  interface Group {
    interfaceId: string;
    attacker: string;
    probes: Map<string, { protocol: 'tcp' | 'udp'; port: number; kind: ProbeKind }>;
    probeCount: number;
    first: number;
    last: number;
  }
  const groups = new Map<string, Group>();
  for (const record of records) {
    if (record.direction !== 'ingress' || record.action !== 'REJECT') continue;
    if (options.destinations?.size && !options.destinations.has(record.dstaddr)) continue;
    const probe = probeKindOf(record);
    if (!probe) continue;
    const key = `${record.interfaceId} ${record.srcaddr}`;
    let group = groups.get(key);
    if (!group) {
      group = { interfaceId: record.interfaceId, attacker: record.srcaddr, probes: new Map(), probeCount: 0, first: record.start, last: record.end };
      groups.set(key, group);
    }
    const probeKey = `${probe.protocol}/${record.dstport}/${probe.kind}`;
    if (!group.probes.has(probeKey) && group.probes.size < MAX_PROBES) {
      group.probes.set(probeKey, { protocol: probe.protocol, port: record.dstport, kind: probe.kind });
    }
    group.probeCount += Math.max(1, record.packets);
    group.first = Math.min(group.first, record.start);
    group.last = Math.max(group.last, record.end);
  }
  const events: ScanDetected[] = [];
  for (const group of groups.values()) {
    const probes = [...group.probes.values()];
    if (probes.length < options.minProbes) continue;
    events.push({
      version: 1,
      sensorId: `flowlogs/${group.interfaceId}`,
      attacker: group.attacker,
      probes,
      probeCount: Math.max(group.probeCount, probes.length),
      handshake: false,
      firstSeen: new Date(group.first * 1000).toISOString(),
      lastSeen: new Date(Math.max(group.last, group.first) * 1000).toISOString(),
    });
  }
  return events;
}
