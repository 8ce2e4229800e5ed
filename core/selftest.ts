/**
 * `portsnare selftest`'s canary: one address an operator block may land on in a deployed stack to
 * prove the pipeline end to end (bus → decide → table → enforce → every NACL and IP set, then
 * lifted). It must be an address nobody uses: a single address of the documentation ranges
 * (RFC 5737 TEST-NET-1/2/3, RFC 3849 2001:db8::/32), which are never routed on the internet.
 * Those ranges are special-purpose ("reserved"), so the never-block guard refuses them unless
 * opened: the stack opens exactly the canary's host CIDR (guard.blockableSpecialCidrs), nothing
 * else, so every private, own or allowlisted address stays refused.
 */
import { cidrCovers, cidrOverlaps, hostCidr, tryCanonicalAddress, tryParseCidr } from './address';

/** the canary when the config names none: TEST-NET-1 (RFC 5737), reserved for documentation */
export const DEFAULT_CANARY_ADDRESS = '192.0.2.254';

/** how long a canary block is asked for: it expires by itself if the selftest never lifts it */
export const CANARY_TTL_SECONDS = 600;

/** how long `portsnare selftest` waits for the canary to appear in (and leave) every point, by default */
export const DEFAULT_SELFTEST_TIMEOUT_SECONDS = 180;

/** the reason the canary's block records carry (history shows it) */
export const CANARY_REASON = 'portsnare selftest canary';

/** the ranges a canary may be taken from (RFC 5737, RFC 3849) */
export const CANARY_RANGES = ['192.0.2.0/24', '198.51.100.0/24', '203.0.113.0/24', '2001:db8::/32'] as const;

/**
 * Why `address` cannot be the canary of a stack that protects `protectedCidrs` and allowlists
 * `allowlist`, or undefined when it can. The key is named by the caller.
 */
export function canaryProblem(address: string, own: { protectedCidrs?: readonly string[]; allowlist?: readonly string[] } = {}): string | undefined {
  const canonical = tryCanonicalAddress(address);
  if (canonical === undefined) return `${JSON.stringify(address)} is not one IP address (a canary is a single address, not a CIDR)`;
  const cidr = tryParseCidr(hostCidr(canonical));
  if (!cidr) return `${JSON.stringify(address)} is not one IP address`;
  const inRange = CANARY_RANGES.some((range) => {
    const outer = tryParseCidr(range);
    return outer !== undefined && cidrCovers(outer, cidr);
  });
  if (!inRange) return `${JSON.stringify(address)} is not in a documentation range (${CANARY_RANGES.join(', ')}): the canary is blocked for real, so it must be an address nobody uses`;
  for (const [list, name] of [
    [own.protectedCidrs ?? [], 'protected network'],
    [own.allowlist ?? [], 'allowlist'],
  ] as const) {
    for (const entry of list) {
      const other = tryParseCidr(entry, true);
      if (other && cidrOverlaps(other, cidr)) return `${JSON.stringify(address)} is in the ${name} ${entry}: the guard must keep refusing it`;
    }
  }
  return undefined;
}

/** The canary's host CIDR ("192.0.2.254/32"), the one special-purpose CIDR the guard opens for it. */
export function canaryCidr(address: string): string {
  return hostCidr(address);
}
