/**
 * The kernel detector's nftables objects in `inet portsnare` (pure: builds the script text).
 *
 *   chain detect { type filter hook prerouting priority -150; policy accept;   # after conntrack (-200)
 *     ip saddr @exempt4 return; ip6 saddr @exempt6 return      # ignore list, own addresses, allowlist
 *     fib daddr type != local return                           # broadcast, multicast, forwarded
 *     tcp flags & rst == rst return                            # an RST is never a probe
 *     ct state established ct direction original tcp dport @tcpdecoy jump handshake   (list mode)
 *     ct state established,related return                      # replies to our own connections
 *     tcp dport @tcpdecoy jump probe    |  tcp dport != @tcpkeep jump probe     (list | all-unused)
 *     udp dport @udpdecoy jump probe    |  udp dport != @udpkeep jump probe
 *   }
 *   chain probe {
 *     update @rate4 { ip saddr limit rate over R/second burst B packets } return   # per-source cap
 *     update @rate6 { ip6 saddr limit rate over … } return
 *     # with killTtlSeconds:
 *     ip saddr @keep4 log group G prefix "portsnare:seen" return             # protected: never kill
 *     ip saddr @special4 ip saddr != @specialok4 log … "portsnare:seen" return  # special ranges
 *     log group G snaplen 128 queue-threshold 1 prefix "portsnare:kill"
 *     meta nfproto ipv4 add @blocked4 { ip saddr timeout Ns } drop
 *     meta nfproto ipv6 add @blocked6 { ip6 saddr timeout Ns } drop
 *     # without: log group G snaplen 128 prefix "portsnare:seen"
 *   }
 *   chain handshake {          # the first packet of a completed handshake to a decoy socket: connect
 *     ip saddr . tcp sport . tcp dport @conn4 return           # once per connection
 *     ip6 saddr . tcp sport . tcp dport @conn6 return
 *     meta nfproto ipv4 add @conn4 { ip saddr . tcp sport . tcp dport }; (ipv6 alike)
 *     log group G snaplen 128 queue-threshold 1 prefix "portsnare:conn"
 *   }
 *
 * The `handshake` chain reports `connect` for a handshake that completed on a decoy socket (list
 * mode, where the agent listens): conntrack only calls a connection established once the client
 * acknowledged the server's SYN/ACK within the tracked window, so the source address is proven.
 * A userspace listener often misses nmap -sT, which resets the connection microseconds after the
 * handshake, before accept() can read the peer's address; the kernel does not.
 *
 * The detector runs after conntrack so `ct state` can tell a probe from a reply to one of the
 * host's own connections (in all-unused mode those arrive on unlisted ephemeral ports). The
 * enforcer's `block` chain runs earlier (-300), so once the kernel has added a source, its
 * next packet — to a decoy or to a real service — is dropped before anything else sees it.
 */
import { SPECIAL_CIDRS, tryParseCidr } from '../../core/address';
import { TABLE_REF } from '../local/nft';

export const DETECT_PRIORITY = -150;
export const PREFIX_SEEN = 'portsnare:seen';
export const PREFIX_KILL = 'portsnare:kill';
export const PREFIX_CONNECT = 'portsnare:conn';
export const DEFAULT_NFLOG_GROUP = 2718;

/** The sets and chains the detector owns (deleted on stop; the blocked sets are the enforcer's). */
export const DETECTOR_CHAINS = ['detect', 'probe', 'handshake'] as const;
export const DETECTOR_SETS = [
  'exempt4',
  'exempt6',
  'keep4',
  'keep6',
  'special4',
  'special6',
  'specialok4',
  'specialok6',
  'tcpdecoy',
  'udpdecoy',
  'tcpkeep',
  'udpkeep',
  'rate4',
  'conn4',
  'conn6',
  'rate6',
] as const;

/** What the in-kernel block must respect: the never-block guard's settings (core/guard.ts). */
export interface KillGuard {
  /** allowlist + protected CIDRs: detected, never added to the blocked set */
  readonly neverBlock: readonly string[];
  /** block special-purpose ranges (private, loopback, reserved, …) at all */
  readonly blockSpecialRanges: boolean;
  /** special-purpose CIDRs that may be blocked all the same */
  readonly blockableSpecialCidrs: readonly string[];
}

export interface DetectorRuleOptions {
  readonly tcpPorts: readonly number[] | 'all-unused';
  readonly udpPorts: readonly number[] | 'all-unused';
  readonly exempt: readonly string[];
  readonly killTtlSeconds?: number;
  readonly killGuard?: KillGuard;
  /** all-unused mode: ports that are not decoys (listening + excluded) */
  readonly keepPorts: { readonly tcp: readonly number[]; readonly udp: readonly number[] };
  readonly nflogGroup: number;
  /** per-source cap on logged packets (the kernel still blocks at full speed) */
  readonly ratePerSecond?: number;
}

/** Sorted, merged port ranges in nft spelling: [22, 23, 24, 80] → "22-24, 80". */
export function portElements(ports: readonly number[]): string[] {
  const sorted = [...new Set(ports.filter((p) => Number.isInteger(p) && p >= 1 && p <= 65535))].sort((a, b) => a - b);
  const out: string[] = [];
  let start: number | undefined;
  let prev = -1;
  for (const port of sorted) {
    if (start !== undefined && port === prev + 1) {
      prev = port;
      continue;
    }
    if (start !== undefined) out.push(start === prev ? `${start}` : `${start}-${prev}`);
    start = port;
    prev = port;
  }
  if (start !== undefined) out.push(start === prev ? `${start}` : `${start}-${prev}`);
  return out;
}

/** Addresses and CIDRs split by family, in nft spelling (host bits cleared). Throws on junk. */
export function cidrElements(entries: readonly string[]): { v4: string[]; v6: string[] } {
  const v4: string[] = [];
  const v6: string[] = [];
  for (const entry of entries) {
    const cidr = tryParseCidr(entry, true);
    if (!cidr) throw new Error(`not an IP address or CIDR: ${JSON.stringify(entry)}`);
    const host = cidr.prefix === (cidr.family === 'ipv4' ? 32 : 128);
    (cidr.family === 'ipv4' ? v4 : v6).push(host ? cidr.network : cidr.text);
  }
  return { v4: [...new Set(v4)], v6: [...new Set(v6)] };
}

function elements(set: string, items: readonly string[]): string[] {
  if (items.length === 0) return [];
  const lines: string[] = [];
  for (let i = 0; i < items.length; i += 500) lines.push(`add element ${TABLE_REF} ${set} { ${items.slice(i, i + 500).join(', ')} }`);
  return lines;
}

/** `flush set` + elements: the statements that replace a set's contents inside a transaction. */
export function replaceSet(set: string, items: readonly string[]): string[] {
  return [`flush set ${TABLE_REF} ${set}`, ...elements(set, items)];
}

/** The detector's script: its sets and chains, created or rewritten (set contents replaced). */
export function detectorScript(o: DetectorRuleOptions): string {
  const group = o.nflogGroup;
  if (!Number.isInteger(group) || group < 0 || group > 65535) throw new Error(`nflog group must be 0..65535, got ${group}`);
  const ttl = o.killTtlSeconds;
  if (ttl !== undefined && !(Number.isInteger(ttl) && ttl >= 1)) throw new Error(`killTtlSeconds must be a whole number of seconds >= 1, got ${ttl}`);
  const rate = o.ratePerSecond ?? 100;
  const exempt = cidrElements(o.exempt);
  const guard = o.killGuard ?? { neverBlock: [], blockSpecialRanges: false, blockableSpecialCidrs: [] };
  const keep = cidrElements(guard.neverBlock);
  const special = cidrElements(guard.blockSpecialRanges ? [] : SPECIAL_CIDRS.map((s) => s.cidr.text));
  const specialOk = cidrElements(guard.blockSpecialRanges ? [] : guard.blockableSpecialCidrs);
  const t = TABLE_REF;
  const log = (prefix: string): string => `log group ${group} snaplen 128 queue-threshold 1 prefix "${prefix}"`;

  const lines: string[] = [];
  for (const [name, type] of [
    ['exempt4', 'ipv4_addr'],
    ['exempt6', 'ipv6_addr'],
    ['keep4', 'ipv4_addr'],
    ['keep6', 'ipv6_addr'],
    ['special4', 'ipv4_addr'],
    ['special6', 'ipv6_addr'],
    ['specialok4', 'ipv4_addr'],
    ['specialok6', 'ipv6_addr'],
  ] as const) {
    lines.push(`add set ${t} ${name} { type ${type}; flags interval; auto-merge; }`);
  }
  for (const name of ['tcpdecoy', 'udpdecoy', 'tcpkeep', 'udpkeep']) lines.push(`add set ${t} ${name} { type inet_service; flags interval; auto-merge; }`);
  lines.push(`add set ${t} rate4 { type ipv4_addr; flags dynamic,timeout; size 65535; timeout 60s; }`);
  lines.push(`add set ${t} rate6 { type ipv6_addr; flags dynamic,timeout; size 65535; timeout 60s; }`);
  lines.push(`add set ${t} conn4 { type ipv4_addr . inet_service . inet_service; flags dynamic,timeout; size 65535; timeout 120s; }`);
  lines.push(`add set ${t} conn6 { type ipv6_addr . inet_service . inet_service; flags dynamic,timeout; size 65535; timeout 120s; }`);
  lines.push(...replaceSet('exempt4', exempt.v4), ...replaceSet('exempt6', exempt.v6));
  lines.push(...replaceSet('keep4', keep.v4), ...replaceSet('keep6', keep.v6));
  lines.push(...replaceSet('special4', special.v4), ...replaceSet('special6', special.v6));
  lines.push(...replaceSet('specialok4', specialOk.v4), ...replaceSet('specialok6', specialOk.v6));
  lines.push(...replaceSet('tcpdecoy', o.tcpPorts === 'all-unused' ? [] : portElements(o.tcpPorts)));
  lines.push(...replaceSet('udpdecoy', o.udpPorts === 'all-unused' ? [] : portElements(o.udpPorts)));
  lines.push(...replaceSet('tcpkeep', portElements(o.keepPorts.tcp)), ...replaceSet('udpkeep', portElements(o.keepPorts.udp)));

  lines.push(`add chain ${t} probe`, `flush chain ${t} probe`);
  lines.push(`add rule ${t} probe update @rate4 { ip saddr limit rate over ${rate}/second burst ${rate * 2} packets } return`);
  lines.push(`add rule ${t} probe update @rate6 { ip6 saddr limit rate over ${rate}/second burst ${rate * 2} packets } return`);
  if (ttl !== undefined) {
    lines.push(`add rule ${t} probe ip saddr @keep4 ${log(PREFIX_SEEN)} return`);
    lines.push(`add rule ${t} probe ip6 saddr @keep6 ${log(PREFIX_SEEN)} return`);
    lines.push(`add rule ${t} probe ip saddr @special4 ip saddr != @specialok4 ${log(PREFIX_SEEN)} return`);
    lines.push(`add rule ${t} probe ip6 saddr @special6 ip6 saddr != @specialok6 ${log(PREFIX_SEEN)} return`);
    lines.push(`add rule ${t} probe ${log(PREFIX_KILL)}`);
    lines.push(`add rule ${t} probe meta nfproto ipv4 add @blocked4 { ip saddr timeout ${ttl}s } counter drop comment "portsnare: kernel block on a decoy packet"`);
    lines.push(`add rule ${t} probe meta nfproto ipv6 add @blocked6 { ip6 saddr timeout ${ttl}s } counter drop comment "portsnare: kernel block on a decoy packet"`);
  } else {
    lines.push(`add rule ${t} probe ${log(PREFIX_SEEN)}`);
  }

  lines.push(`add chain ${t} handshake`, `flush chain ${t} handshake`);
  lines.push(`add rule ${t} handshake ip saddr . tcp sport . tcp dport @conn4 return`);
  lines.push(`add rule ${t} handshake ip6 saddr . tcp sport . tcp dport @conn6 return`);
  lines.push(`add rule ${t} handshake update @rate4 { ip saddr limit rate over ${rate}/second burst ${rate * 2} packets } return`);
  lines.push(`add rule ${t} handshake update @rate6 { ip6 saddr limit rate over ${rate}/second burst ${rate * 2} packets } return`);
  lines.push(`add rule ${t} handshake meta nfproto ipv4 add @conn4 { ip saddr . tcp sport . tcp dport }`);
  lines.push(`add rule ${t} handshake meta nfproto ipv6 add @conn6 { ip6 saddr . tcp sport . tcp dport }`);
  lines.push(`add rule ${t} handshake ${log(PREFIX_CONNECT)}`);

  lines.push(`add chain ${t} detect { type filter hook prerouting priority ${DETECT_PRIORITY}; policy accept; }`, `flush chain ${t} detect`);
  lines.push(`add rule ${t} detect ip saddr @exempt4 return`, `add rule ${t} detect ip6 saddr @exempt6 return`);
  lines.push(`add rule ${t} detect fib daddr type != local return`);
  lines.push(`add rule ${t} detect tcp flags & rst == rst return`);
  if (o.tcpPorts !== 'all-unused' && o.tcpPorts.length > 0) lines.push(`add rule ${t} detect ct state established ct direction original tcp dport @tcpdecoy jump handshake`);
  lines.push(`add rule ${t} detect ct state established,related return`);
  const hasTcp = o.tcpPorts === 'all-unused' || o.tcpPorts.length > 0;
  const hasUdp = o.udpPorts === 'all-unused' || o.udpPorts.length > 0;
  if (hasTcp) lines.push(`add rule ${t} detect tcp dport ${o.tcpPorts === 'all-unused' ? '!= @tcpkeep' : '@tcpdecoy'} counter jump probe`);
  if (hasUdp) lines.push(`add rule ${t} detect udp dport ${o.udpPorts === 'all-unused' ? '!= @udpkeep' : '@udpdecoy'} counter jump probe`);
  return lines.join('\n') + '\n';
}

/** The script that removes the detector's chains and sets (those present in `existing`). */
export function removalScript(existing: { chains: ReadonlySet<string>; sets: ReadonlySet<string> }): string {
  const lines: string[] = [];
  for (const chain of DETECTOR_CHAINS) if (existing.chains.has(chain)) lines.push(`flush chain ${TABLE_REF} ${chain}`);
  for (const chain of DETECTOR_CHAINS) if (existing.chains.has(chain)) lines.push(`delete chain ${TABLE_REF} ${chain}`);
  for (const set of DETECTOR_SETS) if (existing.sets.has(set)) lines.push(`delete set ${TABLE_REF} ${set}`);
  return lines.length ? lines.join('\n') + '\n' : '';
}
