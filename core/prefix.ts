/**
 * The IPv6 prefix policy (README.md "IPv6 attackers"): a detected IPv6 attacker is blocked by its
 * prefix (`policy.ipv6BlockPrefix`, /64 by default: core/policy.ts `ipv6BlockPrefixOf`), since one host picks its addresses from a
 * whole /64 (SLAAC privacy addresses, RFC 8981) and a block of one /128 is dodged by the next.
 * Pure: the caller hands in the guard and the policy.
 *
 * The never-block guard is applied to the prefix, not only to the address:
 * - the prefix holds nothing protected (allowlist, own network, special range): the prefix;
 * - it does: the address alone, and the sighting's note says why (the guard then checks the
 *   address, so a protected address is still refused);
 * - an address that carries an IPv4 address (NAT64 64:ff9b::/96, 6to4, Teredo, IPv4-compatible,
 *   IPv4-translated: core/address.ts `embeddedIpv4`) is blocked alone: its /64 holds other IPv4
 *   hosts (every one behind a NAT64 gateway, every client of a Teredo server). The guard checks
 *   the IPv4 address it carries. An IPv4-mapped address (::ffff:a.b.c.d) is never an IPv6
 *   attacker: core/address.ts folds it to a.b.c.d when it is parsed, so it is an IPv4 block.
 * Manual blocks are taken as asked (`portsnare block 2001:db8::/64` blocks a prefix).
 */
import { embeddedIpv4, tryParseCidr } from './address';
import type { NeverBlockGuard } from './guard';
import { ipv6BlockPrefixOf, type PolicySettings, type Sighting } from './policy';

type PrefixPolicy = Pick<PolicySettings, 'ipv6BlockPrefix' | 'widestIpv6Prefix'>;

export interface BlockTarget {
  /** the canonical target to block: the prefix ("2001:db8:1:2::/64") or the address */
  readonly target: string;
  /** why the address is blocked alone although the policy asks for a prefix */
  readonly narrowed?: string;
}

/**
 * The target a detected `address` is blocked by under `policy.ipv6BlockPrefix`. IPv4 addresses,
 * CIDRs and anything unparseable come back as they are (the guard and the policy judge them).
 */
export function blockTargetOf(address: string, policy: PrefixPolicy, guard: Pick<NeverBlockGuard, 'check'>): BlockTarget {
  const length = ipv6BlockPrefixOf(policy);
  const cidr = tryParseCidr(address, false);
  if (!cidr || cidr.family !== 'ipv6' || cidr.prefix !== 128 || length >= 128) return { target: address };
  const embedded = embeddedIpv4(cidr)[0];
  if (embedded) return { target: cidr.network, narrowed: `blocked alone: ${cidr.network} carries the IPv4 address ${embedded.cidr.network} (${embedded.name})` };
  const prefix = tryParseCidr(`${cidr.network}/${length}`, true);
  if (!prefix) return { target: cidr.network };
  const verdict = guard.check(prefix.text);
  if (verdict.blockable) return { target: prefix.text };
  return { target: cidr.network, narrowed: `blocked alone: its /${prefix.prefix} ${prefix.text} holds a protected address (${verdict.rule})` };
}

/**
 * The sighting as the prefix policy blocks it: a detected IPv6 address becomes its prefix (the
 * note names the address seen), or stays the address with the note saying why. Manual sightings
 * come back as they are.
 */
export function prefixSighting(sighting: Sighting, policy: PrefixPolicy, guard: Pick<NeverBlockGuard, 'check'>): Sighting {
  if (sighting.reason === 'manual') return sighting;
  const { target, narrowed } = blockTargetOf(sighting.target, policy, guard);
  const why = narrowed ?? (target === sighting.target ? undefined : `prefix of ${sighting.target} (policy.ipv6BlockPrefix ${ipv6BlockPrefixOf(policy)})`);
  if (why === undefined) return sighting;
  return { ...sighting, target, note: sighting.note === undefined ? why : `${sighting.note}; ${why}` };
}
