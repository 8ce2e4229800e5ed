/**
 * An INDEPENDENT specification of what the cloud pipeline must converge to, written from the
 * documented rules, not from the code: it imports no logic from core/ or lambda/ (types only)
 * and parses addresses with ipaddr.js itself. The convergence property (test/wire/convergence.test.ts)
 * and the benchmark (bench/convergence.bench.ts) compare the real handlers' AWS state with it.
 *
 * Rules, and where they are written down:
 * - Never block: the IANA special-purpose address registries (private, loopback, link-local,
 *   documentation, …) unless the operator lists a range as blockable, the allowlist, and the
 *   protected CIDRs. https://www.iana.org/assignments/iana-ipv4-special-registry/
 *   https://www.iana.org/assignments/iana-ipv6-special-registry/ and the multicast blocks
 *   (224.0.0.0/4, ff00::/8: https://www.iana.org/assignments/multicast-addresses/).
 * - TTL: a verified sighting of an address not blocked now is an offence; the n-th offence in the
 *   offence window (n counted from the previous offence's start) blocks for
 *   min(maxTtl, base × factor^(n−1)); a sighting during an active block only refreshes "last
 *   seen"; a sighting without a TCP handshake counts only when blockUnverified is on; one event
 *   (same id) counts once. (docs: README "How long a block lasts", core/policy.ts doc comments)
 * - WAF: at most 10,000 addresses per IP set; every active address is in a set of its family.
 *   https://docs.aws.amazon.com/waf/latest/developerguide/limits.html
 * - NACL: rules per ACL, per direction, IPv4 and IPv6 counted apart, 20 by default with the
 *   default deny included; an entry can hold a single host; rule numbers are one per entry in
 *   the direction. https://docs.aws.amazon.com/vpc/latest/userguide/amazon-vpc-limits.html
 *   The stack's host entries go to the most recently active attackers that fit (lambda/README.md
 *   "Quota and eviction"); the rest are blocked in WAF only.
 * - NACL residence time (README "Network ACL residence time", `enforcement.naclResidenceSeconds`):
 *   an entry of the stack created less than R ago (by the EC2 fake's own record of when it created
 *   each entry, test/fakes/ec2.ts createdAt) whose address is still active keeps its place ahead
 *   of active addresses without one; the other places go by recency. An address no longer active
 *   has no place whatever its entry's age.
 */
import ipaddr from 'ipaddr.js';
import type { GuardSettings } from '../../core/guard';
import type { PolicySettings } from '../../core/policy';

export const WAF_ADDRESSES_PER_SET = 10_000;

const IPV4_SPECIAL = [
  '0.0.0.0/8', '10.0.0.0/8', '100.64.0.0/10', '127.0.0.0/8', '169.254.0.0/16', '172.16.0.0/12', '192.0.0.0/24', '192.0.2.0/24',
  '192.31.196.0/24', '192.52.193.0/24', '192.88.99.0/24', '192.168.0.0/16', '192.175.48.0/24', '198.18.0.0/15', '198.51.100.0/24',
  '203.0.113.0/24', '224.0.0.0/4', '240.0.0.0/4', '255.255.255.255/32',
];
const IPV6_SPECIAL = [
  '::/128', '::1/128', '::ffff:0:0/96', '64:ff9b::/96', '64:ff9b:1::/48', '100::/64', '2001::/23', '2001:db8::/32', '2002::/16',
  '2620:4f:8000::/48', '3fff::/20', '5f00::/16', 'fc00::/7', 'fe80::/10', 'ff00::/8',
];

function inAny(address: string, cidrs: readonly string[]): boolean {
  const addr = ipaddr.parse(address);
  return cidrs.some((text) => {
    const [range, bits] = ipaddr.parseCIDR(text);
    return range.kind() === addr.kind() && addr.match(range, bits);
  });
}

/** Why `address` must never be blocked, or undefined when it may be. */
export function neverBlockReason(address: string, guard: GuardSettings): string | undefined {
  if (inAny(address, guard.allowlist)) return 'allowlist';
  if (inAny(address, guard.protectedCidrs)) return 'protected';
  const special = ipaddr.parse(address).kind() === 'ipv4' ? IPV4_SPECIAL : IPV6_SPECIAL;
  if (!guard.blockSpecialRanges && inAny(address, special) && !inAny(address, guard.blockableSpecialCidrs)) return 'special-purpose';
  return undefined;
}

/** base × factor^(n−1), capped at maxTtl; seconds. */
export function ttlSeconds(offences: number, policy: Pick<PolicySettings, 'baseTtlSeconds' | 'escalationFactor' | 'maxTtlSeconds'>): number {
  return Math.min(policy.maxTtlSeconds, Math.round(policy.baseTtlSeconds * policy.escalationFactor ** (Math.max(1, offences) - 1)));
}

export type SpecFamily = 'ipv4' | 'ipv6';

export function familyOfAddress(address: string): SpecFamily {
  return ipaddr.parse(address).kind() === 'ipv4' ? 'ipv4' : 'ipv6';
}

/** The host CIDR AWS stores for an address: "203.0.113.7/32", "2001:db8::7/128". */
export function hostCidrText(address: string): string {
  const addr = ipaddr.parse(address);
  return `${addr.toString()}/${addr.kind() === 'ipv4' ? 32 : 128}`;
}

interface Attacker {
  offences: number;
  blockedAt: number;
  expiresAt: number;
  lastSeen: number;
  /** when the current offence was detected (for detect → enforced) */
  detectedAt: number;
}

/** The desired state, by the rules above, for the sightings the schedule made. */
export class Spec {
  private readonly attackers = new Map<string, Attacker>();
  private readonly seen = new Set<string>();
  private readonly history: Array<{ address: string; blockedAt: number; expiresAt: number }> = [];

  constructor(
    private readonly policy: PolicySettings,
    private readonly guard: GuardSettings,
  ) {}

  /** One `Scan Detected` event at `now` (its time), as the decide function receives it. */
  sighting(eventId: string, written: string, handshake: boolean, now: number): void {
    // one host, however it is written (RFC 5952 text is what AWS and the table keep)
    const address = ipaddr.parse(written).toString();
    if (this.seen.has(eventId)) return;
    this.seen.add(eventId);
    if (!handshake && !this.policy.blockUnverified) return;
    if (neverBlockReason(address, this.guard)) return;
    const previous = this.attackers.get(address);
    if (previous && previous.expiresAt > now) {
      previous.lastSeen = Math.max(previous.lastSeen, now);
      return;
    }
    const offences = previous && now - previous.blockedAt <= this.policy.offenceWindowSeconds * 1000 ? previous.offences + 1 : 1;
    this.attackers.set(address, { offences, blockedAt: now, expiresAt: now + ttlSeconds(offences, this.policy) * 1000, lastSeen: now, detectedAt: now });
    this.history.push({ address, blockedAt: now, expiresAt: now + ttlSeconds(offences, this.policy) * 1000 });
  }

  /** Every block the sightings made, in order: the address and when it started and ends. */
  blocks(): ReadonlyArray<{ readonly address: string; readonly blockedAt: number; readonly expiresAt: number }> {
    return this.history;
  }

  /** The addresses to block at `now`, most recently active first (ties: by address text). */
  active(now: number): Array<{ address: string; family: SpecFamily; lastSeen: number; detectedAt: number }> {
    return [...this.attackers]
      .filter(([, a]) => a.expiresAt > now)
      .map(([address, a]) => ({ address, family: familyOfAddress(address), lastSeen: a.lastSeen, detectedAt: a.detectedAt }))
      .sort((x, y) => y.lastSeen - x.lastSeen || (x.address < y.address ? -1 : x.address > y.address ? 1 : 0));
  }

  /** Every address with a record (for "was it ever blocked"). */
  known(): string[] {
    return [...this.attackers.keys()];
  }
}

/**
 * Which active addresses hold this stack's NACL entries in one ACL: the most recently active
 * first, per family no more than the quota minus the default deny and every other ingress entry
 * of that family (`others`), in total no more than the rule numbers of the range nobody else uses.
 */
export function naclHolders(
  active: ReadonlyArray<{ address: string; family: SpecFamily }>,
  others: Readonly<Record<SpecFamily, number>>,
  quota: number,
  freeRuleNumbers: number,
  /**
   * the residence time: the stack's entries now (address, when EC2 created the entry) and R in ms;
   * absent or R 0: by recency alone
   */
  residence?: { readonly incumbents: ReadonlyArray<{ address: string; createdAt: number }>; readonly now: number; readonly ms: number },
): Set<string> {
  // `others` counts every ingress entry of the family that is not this stack's, the default deny included.
  const room: Record<SpecFamily, number> = { ipv4: quota - others.ipv4, ipv6: quota - others.ipv6 };
  const holders = new Set<string>();
  const young = new Set(
    (residence?.incumbents ?? []).filter((i) => residence !== undefined && residence.now - i.createdAt < residence.ms).map((i) => ipaddr.parse(i.address).toString()),
  );
  // residents first (in their order of recency), then everyone else by recency
  const ordered = [...active.filter((a) => young.has(a.address)), ...active.filter((a) => !young.has(a.address))];
  for (const { address, family } of ordered) {
    if (holders.size >= freeRuleNumbers) break;
    if (room[family] <= 0) continue;
    room[family]--;
    holders.add(address);
  }
  return holders;
}
