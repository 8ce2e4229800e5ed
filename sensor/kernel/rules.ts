/**
 * The kernel detector's nftables objects in `inet portsnare` (pure: builds the script text).
 *
 *   chain quarantine { type filter hook prerouting priority -190; policy accept;  # after conntrack (-200)
 *     ip saddr @exempt4 return; ip6 saddr @exempt6 return
 *     ip saddr @quar4 tcp flags & (fin|syn|rst|ack) == syn tcp dport @tcpdecoy return       (list mode)
 *     ip saddr @quar4 tcp flags & (fin|syn|rst|ack) == syn tcp dport != @tcpkeep return     (with redirectPort)
 *     ip saddr @quar4 ct state established ct direction original return   # a connection it was let make
 *     ip saddr @quar4 tcp flags & (fin|syn|rst|ack) == syn reject with tcp reset   (quarantineAnswer reset)
 *     ip saddr @quar4 drop; (ip6 alike) }                      # seconds-long hold, see below
 *   chain detect { type filter hook prerouting priority -150; policy accept;
 *     ip saddr @exempt4 return; ip6 saddr @exempt6 return      # ignore list, own addresses, allowlist
 *     fib daddr type != local return                           # broadcast, multicast, forwarded
 *     tcp flags & rst == rst return                            # an RST is never a probe
 *     ct state established,related return                      # replies, and connections already seen
 *     tcp dport @tcpdecoy jump probe    |  tcp dport != @tcpkeep jump probe     (list | all-unused)
 *     udp dport @udpdecoy jump probe    |  udp dport != @udpkeep jump probe
 *   }
 *   chain probe {
 *     update @rate4 { ip saddr limit rate over R/second burst B packets } return   # per-source cap
 *     update @rate6 { ip6 saddr limit rate over … } return
 *     ip saddr @keep4 log group G prefix "portsnare:seen" return             # protected: never held
 *     ip saddr @special4 ip saddr != @specialok4 log … "portsnare:seen" return  # special ranges
 *     # with killTtlSeconds (the agent's blockUnverified), within K kills a minute:
 *     meta nfproto ipv4 limit rate K/minute … log … "portsnare:kill" add @blocked4 { ip saddr timeout Ns } drop
 *     # quarantine (on by default), once per source per period, within Q a minute:
 *     ip saddr @quarseen4 log … "portsnare:seen" return
 *     # a SYN a socket will answer (a decoy listener, or the redirect): held, and let through, so
 *     # a connect scanner's first connection completes and proves it (the socket's accept)
 *     tcp flags & (…) == syn meta nfproto ipv4 limit name "quarbudget4" … log … "portsnare:quar"
 *       add @quar4 { ip saddr timeout Ss } add @quarseen4 { ip saddr timeout Ps } accept
 *     meta nfproto ipv4 limit name "quarbudget4" … log … "portsnare:quar"
 *       add @quar4 { ip saddr timeout Ss } add @quarseen4 { ip saddr timeout Ps } drop
 *     log group G snaplen 128 prefix "portsnare:seen"                        # everything else
 *   }
 *   chain divert { type nat hook prerouting priority -100;   # with redirectPort only
 *     ip saddr @exempt4 return; ip6 saddr @exempt6 return
 *     ct state new fib daddr type local tcp dport != @tcpkeep redirect to :P               (all-unused)
 *     ip saddr @quarseen4 ct state new fib daddr type local tcp dport != @tcpkeep redirect to :P  (list mode)
 *   }
 *
 * Quarantine: a SYN, FIN, NULL, XMAS, ACK or UDP datagram can be forged, so one proves nothing
 * about its source. The first one from a source holds that source for S seconds (default 10) —
 * long enough to blind a scanner's first sweep, short enough that a forged address of an innocent
 * host loses seconds — and at most once per P seconds (default 3600: `quarseen`), within Q holds
 * a minute (default 100) for the whole host. A held source's SYNs to ports a socket of ours
 * answers still go through: its connect to a decoy completes, and proves it at once; every real
 * service is closed to it for the hold.
 *
 * Proof is never the kernel's: nothing here reports or blocks on a "completed handshake".
 * Conntrack calls a connection established once it has seen any reply — a duplicated SYN after
 * our SYN/ACK is "established" — and its window check accepts a guessed ACK about one time in
 * 65,000. The socket's accept() is the check: Linux completes a connection only on an ACK of
 * exactly our initial sequence number plus one (sensor/listeners/redirect.ts, docs/kernel.md).
 *
 * Rescans (with redirectPort): in all-unused mode every unused port is redirected to the agent's
 * socket for every source; in list mode every source seen probing a decoy this period
 * (`quarseen`) gets the same, so a second scan sees hundreds of open ports instead of the
 * decoys and the real services apart. A connect to any of them is proof.
 *
 * The `quarantine` chain runs after conntrack (it must tell a held source's own connection from
 * a new one) and before `detect` and NAT; the enforcer's `block` chain runs earlier (-300), so a
 * blocked source's packets are dropped before anything else sees them.
 */
import { SPECIAL_CIDRS, tryParseCidr } from '../../core/address';
import { TABLE_REF } from '../local/nft';

export const DETECT_PRIORITY = -150;
/** after conntrack (-200): a held source's own connections are told from new ones */
export const QUARANTINE_PRIORITY = -190;
export const PREFIX_SEEN = 'portsnare:seen';
export const PREFIX_KILL = 'portsnare:kill';
export const PREFIX_QUARANTINE = 'portsnare:quar';
export const DEFAULT_NFLOG_GROUP = 2718;
export const NAT_PRIORITY = -100;
export const DEFAULT_QUARANTINE_SECONDS = 10;
export const DEFAULT_QUARANTINE_PERIOD_SECONDS = 3600;
export const DEFAULT_QUARANTINE_PER_MINUTE = 100;
export const DEFAULT_KILL_PER_MINUTE = 100;

/**
 * The sets and chains the detector owns (deleted on stop; the blocked sets are the enforcer's).
 * `handshake`, `conn4` and `conn6` are no longer written (the kernel proves nothing); they are
 * removed when an older agent left them.
 */
export const DETECTOR_CHAINS = ['detect', 'probe', 'handshake', 'quarantine', 'divert'] as const;
/**
 * Named limits: the quarantine budget is one limiter per address family shared by its two rules
 * (the SYN that passes and the packet that is dropped); an anonymous `limit` is the rule's own.
 * An existing limit keeps its rate when added again, so start() removes them first.
 */
export const DETECTOR_LIMITS = ['quarbudget4', 'quarbudget6'] as const;
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
  'quar4',
  'quar6',
  'quarseen4',
  'quarseen6',
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
  /** at most this many in-kernel blocks a minute for the host (default 100); beyond it, quarantine */
  readonly killPerMinute?: number;
  /** seconds a source is held on its first forgeable decoy packet (default 10; 0 turns quarantine off) */
  readonly quarantineSeconds?: number;
  /** a source is quarantined at most once in this many seconds (default 3600) */
  readonly quarantinePeriodSeconds?: number;
  /** at most this many quarantines a minute for the host (default 100) */
  readonly quarantinePerMinute?: number;
  /**
   * what a quarantined source's TCP connection attempts (SYN) get: "reset" (default; refused at
   * once) or "drop"; every other packet of it is dropped
   */
  readonly quarantineAnswer?: 'reset' | 'drop';
  /**
   * new TCP connections to unused ports are redirected to this local port, where the agent's
   * socket accepts them: from every source in all-unused mode, from sources seen probing a decoy
   * this period (quarseen) in list mode
   */
  readonly redirectPort?: number;
  readonly killGuard?: KillGuard;
  /** ports that are not decoys (listening + excluded): all-unused mode, and list mode with redirectPort */
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

/** a bare SYN (ECN bits aside): a connection attempt */
const SYN_ONLY = 'tcp flags & (fin|syn|rst|ack) == syn';

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

function wholeNumber(key: string, value: number | undefined, fallback: number, min: number, max: number): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v < min || v > max) throw new Error(`${key} must be a whole number ${min}..${max}, got ${value}`);
  return v;
}

/** The detector's script: its sets and chains, created or rewritten (set contents replaced). */
export function detectorScript(o: DetectorRuleOptions): string {
  const group = o.nflogGroup;
  if (!Number.isInteger(group) || group < 0 || group > 65535) throw new Error(`nflog group must be 0..65535, got ${group}`);
  const ttl = o.killTtlSeconds;
  if (ttl !== undefined && !(Number.isInteger(ttl) && ttl >= 1)) throw new Error(`killTtlSeconds must be a whole number of seconds >= 1, got ${ttl}`);
  const killPerMinute = wholeNumber('killPerMinute', o.killPerMinute, DEFAULT_KILL_PER_MINUTE, 1, 1_000_000);
  const quarantine = wholeNumber('quarantineSeconds', o.quarantineSeconds, DEFAULT_QUARANTINE_SECONDS, 0, 86_400);
  const period = wholeNumber('quarantinePeriodSeconds', o.quarantinePeriodSeconds, DEFAULT_QUARANTINE_PERIOD_SECONDS, 1, 30 * 86_400);
  const quarPerMinute = wholeNumber('quarantinePerMinute', o.quarantinePerMinute, DEFAULT_QUARANTINE_PER_MINUTE, 1, 1_000_000);
  if (quarantine > 0 && period < quarantine) throw new Error(`quarantinePeriodSeconds (${period}) must be at least quarantineSeconds (${quarantine})`);
  const answer = o.quarantineAnswer ?? 'reset';
  if (answer !== 'reset' && answer !== 'drop') throw new Error(`quarantineAnswer must be "reset" or "drop", got ${JSON.stringify(answer)}`);
  // the redirect in list mode rests on quarseen: without quarantine nobody would be redirected
  const redirect = o.redirectPort === undefined || (o.tcpPorts !== 'all-unused' && quarantine === 0) ? undefined : wholeNumber('redirectPort', o.redirectPort, 0, 1, 65535);
  const list = o.tcpPorts !== 'all-unused' && o.tcpPorts.length > 0;
  // the probe chain sees only decoy packets: in list mode a decoy listener answers each TCP one,
  // in all-unused mode the redirect does (when there is one)
  const answered = list ? 'tcp dport @tcpdecoy' : o.tcpPorts === 'all-unused' && redirect !== undefined ? 'meta l4proto tcp' : undefined;
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
  // quarantine sets: elements carry their own timeout; contents survive a rewrite (a restart
  // removes them with the detector)
  for (const [name, type] of [
    ['quar4', 'ipv4_addr'],
    ['quar6', 'ipv6_addr'],
    ['quarseen4', 'ipv4_addr'],
    ['quarseen6', 'ipv6_addr'],
  ] as const) {
    lines.push(`add set ${t} ${name} { type ${type}; flags dynamic,timeout; size 65535; }`);
  }
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
  if (ttl !== undefined || quarantine > 0) {
    lines.push(`add rule ${t} probe ip saddr @keep4 ${log(PREFIX_SEEN)} return`);
    lines.push(`add rule ${t} probe ip6 saddr @keep6 ${log(PREFIX_SEEN)} return`);
    lines.push(`add rule ${t} probe ip saddr @special4 ip saddr != @specialok4 ${log(PREFIX_SEEN)} return`);
    lines.push(`add rule ${t} probe ip6 saddr @special6 ip6 saddr != @specialok6 ${log(PREFIX_SEEN)} return`);
  }
  // each budget is one limiter per address family (a rule's anonymous limit is its own; the
  // quarantine's two rules share a named one)
  const budget = (perMinute: number): string => `limit rate ${perMinute}/minute burst ${perMinute} packets`;
  if (ttl !== undefined) {
    lines.push(`add rule ${t} probe meta nfproto ipv4 ${budget(killPerMinute)} ${log(PREFIX_KILL)} add @blocked4 { ip saddr timeout ${ttl}s } counter drop comment "portsnare: kernel block on a decoy packet"`);
    lines.push(`add rule ${t} probe meta nfproto ipv6 ${budget(killPerMinute)} ${log(PREFIX_KILL)} add @blocked6 { ip6 saddr timeout ${ttl}s } counter drop comment "portsnare: kernel block on a decoy packet"`);
  }
  if (quarantine > 0) {
    for (const name of DETECTOR_LIMITS) lines.push(`add limit ${t} ${name} { rate ${quarPerMinute}/minute burst ${quarPerMinute} packets }`);
    lines.push(`add rule ${t} probe ip saddr @quarseen4 ${log(PREFIX_SEEN)} return`);
    lines.push(`add rule ${t} probe ip6 saddr @quarseen6 ${log(PREFIX_SEEN)} return`);
    const hold4 = `${log(PREFIX_QUARANTINE)} add @quar4 { ip saddr timeout ${quarantine}s } add @quarseen4 { ip saddr timeout ${period}s } counter`;
    const hold6 = `${log(PREFIX_QUARANTINE)} add @quar6 { ip6 saddr timeout ${quarantine}s } add @quarseen6 { ip6 saddr timeout ${period}s } counter`;
    if (answered !== undefined) {
      // the SYN reaches a socket of ours: let it through, so a connect completes and proves its
      // source at once (the socket's accept); a SYN scanner learns only that a decoy is open
      lines.push(`add rule ${t} probe ${SYN_ONLY} ${answered} meta nfproto ipv4 limit name "quarbudget4" ${hold4} accept comment "portsnare: quarantine on a SYN to a decoy socket"`);
      lines.push(`add rule ${t} probe ${SYN_ONLY} ${answered} meta nfproto ipv6 limit name "quarbudget6" ${hold6} accept comment "portsnare: quarantine on a SYN to a decoy socket"`);
    }
    lines.push(`add rule ${t} probe meta nfproto ipv4 limit name "quarbudget4" ${hold4} drop comment "portsnare: quarantine on a decoy packet"`);
    lines.push(`add rule ${t} probe meta nfproto ipv6 limit name "quarbudget6" ${hold6} drop comment "portsnare: quarantine on a decoy packet"`);
  }
  lines.push(`add rule ${t} probe ${log(PREFIX_SEEN)}`);

  // a chain's hook priority cannot be changed in place: an older agent's quarantine chain (at the
  // block priority) is deleted by the detector's start (removalScript) before this runs
  lines.push(`add chain ${t} quarantine { type filter hook prerouting priority ${QUARANTINE_PRIORITY}; policy accept; }`, `flush chain ${t} quarantine`);
  lines.push(`add rule ${t} quarantine ip saddr @exempt4 return`, `add rule ${t} quarantine ip6 saddr @exempt6 return`);
  // what a held source may still do: connect to a socket of ours (which proves it), and go on
  // with a connection it was let make; nothing else, so a FIN/ACK/NULL scan of it sees nothing
  if (list) {
    lines.push(`add rule ${t} quarantine ip saddr @quar4 ${SYN_ONLY} tcp dport @tcpdecoy return`);
    lines.push(`add rule ${t} quarantine ip6 saddr @quar6 ${SYN_ONLY} tcp dport @tcpdecoy return`);
  }
  if (redirect !== undefined) {
    lines.push(`add rule ${t} quarantine ip saddr @quar4 ${SYN_ONLY} fib daddr type local tcp dport != @tcpkeep return`);
    lines.push(`add rule ${t} quarantine ip6 saddr @quar6 ${SYN_ONLY} fib daddr type local tcp dport != @tcpkeep return`);
  }
  lines.push(`add rule ${t} quarantine ip saddr @quar4 ct state established ct direction original return`);
  lines.push(`add rule ${t} quarantine ip6 saddr @quar6 ct state established ct direction original return`);
  if (answer === 'reset') {
    // a connection attempt is refused at once, not left to time out: a scanner's sweep ends while
    // it is held (every port closed) instead of retrying into the end of the hold
    lines.push(`add rule ${t} quarantine ip saddr @quar4 ${SYN_ONLY} counter reject with tcp reset comment "portsnare: quarantined address"`);
    lines.push(`add rule ${t} quarantine ip6 saddr @quar6 ${SYN_ONLY} counter reject with tcp reset comment "portsnare: quarantined address"`);
  }
  lines.push(`add rule ${t} quarantine ip saddr @quar4 counter drop comment "portsnare: quarantined address"`);
  lines.push(`add rule ${t} quarantine ip6 saddr @quar6 counter drop comment "portsnare: quarantined address"`);

  if (redirect !== undefined) {
    // a nat chain only when asked for: it needs the kernel's NAT support
    lines.push(`add chain ${t} divert { type nat hook prerouting priority ${NAT_PRIORITY}; policy accept; }`, `flush chain ${t} divert`);
    lines.push(`add rule ${t} divert ip saddr @exempt4 return`, `add rule ${t} divert ip6 saddr @exempt6 return`);
    if (o.tcpPorts === 'all-unused') {
      lines.push(`add rule ${t} divert ct state new fib daddr type local tcp dport != @tcpkeep counter redirect to :${redirect} comment "portsnare: unused port to the agent's socket"`);
    } else {
      // list mode: only a source seen probing a decoy this period sees every unused port answer
      lines.push(`add rule ${t} divert ip saddr @quarseen4 ct state new fib daddr type local tcp dport != @tcpkeep counter redirect to :${redirect} comment "portsnare: a decoy prober's unused port to the agent's socket"`);
      lines.push(`add rule ${t} divert ip6 saddr @quarseen6 ct state new fib daddr type local tcp dport != @tcpkeep counter redirect to :${redirect} comment "portsnare: a decoy prober's unused port to the agent's socket"`);
    }
  }

  lines.push(`add chain ${t} detect { type filter hook prerouting priority ${DETECT_PRIORITY}; policy accept; }`, `flush chain ${t} detect`);
  lines.push(`add rule ${t} detect ip saddr @exempt4 return`, `add rule ${t} detect ip6 saddr @exempt6 return`);
  lines.push(`add rule ${t} detect fib daddr type != local return`);
  lines.push(`add rule ${t} detect tcp flags & rst == rst return`);
  lines.push(`add rule ${t} detect ct state established,related return`);
  const hasTcp = o.tcpPorts === 'all-unused' || o.tcpPorts.length > 0;
  const hasUdp = o.udpPorts === 'all-unused' || o.udpPorts.length > 0;
  if (hasTcp) lines.push(`add rule ${t} detect tcp dport ${o.tcpPorts === 'all-unused' ? '!= @tcpkeep' : '@tcpdecoy'} counter jump probe`);
  if (hasUdp) lines.push(`add rule ${t} detect udp dport ${o.udpPorts === 'all-unused' ? '!= @udpkeep' : '@udpdecoy'} counter jump probe`);
  return lines.join('\n') + '\n';
}

/** The script that removes the detector's chains, sets and limits (those present in `existing`). */
export function removalScript(existing: { chains: ReadonlySet<string>; sets: ReadonlySet<string>; limits?: ReadonlySet<string> }): string {
  const lines: string[] = [];
  for (const chain of DETECTOR_CHAINS) if (existing.chains.has(chain)) lines.push(`flush chain ${TABLE_REF} ${chain}`);
  for (const chain of DETECTOR_CHAINS) if (existing.chains.has(chain)) lines.push(`delete chain ${TABLE_REF} ${chain}`);
  for (const set of DETECTOR_SETS) if (existing.sets.has(set)) lines.push(`delete set ${TABLE_REF} ${set}`);
  for (const limit of DETECTOR_LIMITS) if (existing.limits?.has(limit)) lines.push(`delete limit ${TABLE_REF} ${limit}`);
  return lines.length ? lines.join('\n') + '\n' : '';
}
