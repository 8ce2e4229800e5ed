/**
 * IP addresses and CIDRs, IPv4 and IPv6, on top of ipaddr.js.
 *
 * Canonical text: IPv4 dotted quad; IPv6 in RFC 5952 form; an IPv4-mapped IPv6 address
 * (::ffff:198.51.100.7) folds to its IPv4 address. A CIDR is canonical when its host bits are
 * zero and a single address is written as /32 or /128.
 */
import ipaddr from 'ipaddr.js';

export type Family = 'ipv4' | 'ipv6';

export interface Cidr {
  readonly family: Family;
  /** canonical network address (host bits cleared) */
  readonly network: string;
  readonly prefix: number;
  /** canonical text, e.g. "198.51.100.0/24" or "2001:db8::/32" */
  readonly text: string;
}

type Addr = ipaddr.IPv4 | ipaddr.IPv6;

function toText(addr: Addr): string {
  return addr.kind() === 'ipv6' ? (addr as ipaddr.IPv6).toRFC5952String() : addr.toString();
}

/** Folds an IPv4-mapped IPv6 address to IPv4; other addresses are returned as they are. */
function fold(addr: Addr): Addr {
  if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress()) {
    return (addr as ipaddr.IPv6).toIPv4Address();
  }
  return addr;
}

function parseStrict(text: string): Addr | undefined {
  if (typeof text !== 'string') return undefined;
  const trimmed = text.trim();
  // Zone ids (fe80::1%eth0) are not addresses another host can be blocked by.
  if (trimmed.includes('%')) return undefined;
  if (ipaddr.IPv4.isValidFourPartDecimal(trimmed)) return ipaddr.IPv4.parse(trimmed);
  if (ipaddr.IPv6.isValid(trimmed)) return ipaddr.IPv6.parse(trimmed);
  return undefined;
}

/** True when `text` is one IPv4 address (four decimal parts) or one IPv6 address. */
export function isAddress(text: string): boolean {
  return parseStrict(text) !== undefined;
}

/**
 * An IPv4 address in the form ipaddr.js's four-part decimal check accepts (no leading zero, no
 * sign, no other base), and an optional prefix of one or two digits: the form every address and
 * CIDR portsnare writes takes. Parsed here without ipaddr.js: a full enforce run parses every
 * active address a few times (100,000 at the documented scale, docs/scale.md), and ipaddr.js's
 * general parser (several regular expressions, objects per address) was most of its CPU.
 * test/core/address.test.ts checks this path against ipaddr.js on random input.
 */
const DOTTED_QUAD = /^(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})(?:\/(0|[1-9]\d?))?$/;

/** The address's four bytes (and the prefix, undefined when none), or undefined when `text` is not in that form or a byte is over 255. */
function quadOf(text: string): { bytes: [number, number, number, number]; prefix: number | undefined } | undefined {
  const match = DOTTED_QUAD.exec(text);
  if (!match) return undefined;
  const bytes = [Number(match[1]), Number(match[2]), Number(match[3]), Number(match[4])] as [number, number, number, number];
  if (bytes.some((b) => b > 255)) return undefined;
  return { bytes, prefix: match[5] === undefined ? undefined : Number(match[5]) };
}

/** The fast path of parseCidrUncached for IPv4; undefined when it does not apply (the general parser decides). */
function parseQuadCidr(text: string, loose: boolean): Cidr | undefined | 'general' {
  const quad = quadOf(text);
  if (!quad) return 'general';
  const prefix = quad.prefix ?? 32;
  if (prefix > 32) return undefined;
  const network = quad.bytes.map((b, i) => b & ((0xff << (8 - Math.max(0, Math.min(8, prefix - i * 8)))) & 0xff));
  if (!loose && network.some((b, i) => b !== quad.bytes[i])) return undefined;
  const networkText = network.join('.');
  return Object.freeze({ family: 'ipv4' as Family, network: networkText, prefix, text: `${networkText}/${prefix}` });
}

/** Canonical text of one address, or undefined when `text` is not an address. */
export function tryCanonicalAddress(text: string): string | undefined {
  if (typeof text === 'string') {
    const quad = quadOf(text);
    if (quad && quad.prefix === undefined) return text;
  }
  if (canonicalCache.has(text)) return canonicalCache.get(text);
  const addr = parseStrict(text);
  const canonical = addr ? toText(fold(addr)) : undefined;
  if (canonicalCache.size >= CIDR_CACHE_LIMIT) canonicalCache.clear();
  if (typeof text === 'string') canonicalCache.set(text, canonical);
  return canonical;
}

const canonicalCache = new Map<string, string | undefined>();

/** Canonical text of one address; throws with the offending text when it is not one. */
export function canonicalAddress(text: string): string {
  const canonical = tryCanonicalAddress(text);
  if (canonical === undefined) throw new Error(`not an IP address: ${JSON.stringify(text)}`);
  return canonical;
}

export function familyOf(address: string): Family {
  const addr = parseStrict(address);
  if (!addr) throw new Error(`not an IP address: ${JSON.stringify(address)}`);
  return fold(addr).kind() as Family;
}

/**
 * Parses "a.b.c.d/n", "x::/n" or a bare address (a host CIDR). Host bits must be zero unless
 * `loose` is set, in which case they are cleared.
 */
export function tryParseCidr(text: string, loose = false): Cidr | undefined {
  if (typeof text !== 'string') return undefined;
  const quad = parseQuadCidr(text, loose);
  if (quad !== 'general') return quad;
  // Parsing IPv6 text through ipaddr.js costs tens of microseconds; the same few thousand
  // addresses are parsed again on every diff, so results are memoised (bounded, pure).
  const key = loose ? `~${text}` : text;
  if (cidrCache.has(key)) return cidrCache.get(key);
  const cidr = parseCidrUncached(text, loose);
  if (cidrCache.size >= CIDR_CACHE_LIMIT) cidrCache.clear();
  cidrCache.set(key, cidr);
  return cidr;
}

const CIDR_CACHE_LIMIT = 100_000;
const cidrCache = new Map<string, Cidr | undefined>();

function parseCidrUncached(text: string, loose: boolean): Cidr | undefined {
  const trimmed = text.trim();
  const slash = trimmed.indexOf('/');
  let addr: Addr | undefined;
  let prefix: number;
  if (slash < 0) {
    addr = parseStrict(trimmed);
    if (!addr) return undefined;
    addr = fold(addr);
    prefix = addr.kind() === 'ipv4' ? 32 : 128;
  } else {
    const prefixText = trimmed.slice(slash + 1);
    if (!/^\d{1,3}$/.test(prefixText)) return undefined;
    addr = parseStrict(trimmed.slice(0, slash));
    if (!addr) return undefined;
    prefix = Number(prefixText);
    if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress() && prefix >= 96) {
      addr = (addr as ipaddr.IPv6).toIPv4Address();
      prefix -= 96;
    }
  }
  const bits = addr.kind() === 'ipv4' ? 32 : 128;
  if (prefix > bits) return undefined;
  const network = networkOf(addr, prefix);
  if (!loose && toText(network) !== toText(addr)) return undefined;
  const networkText = toText(network);
  return Object.freeze({ family: addr.kind() as Family, network: networkText, prefix, text: `${networkText}/${prefix}` });
}

export function parseCidr(text: string): Cidr {
  const cidr = tryParseCidr(text);
  if (!cidr) throw new Error(`not an IP address or CIDR with its host bits zero: ${JSON.stringify(text)}`);
  return cidr;
}

function networkOf(addr: Addr, prefix: number): Addr {
  const bytes = addr.toByteArray();
  for (let i = 0; i < bytes.length; i++) {
    const keep = Math.max(0, Math.min(8, prefix - i * 8));
    bytes[i] = (bytes[i] ?? 0) & ((0xff << (8 - keep)) & 0xff);
  }
  return ipaddr.fromByteArray(bytes) as Addr;
}

const networkBytesCache = new WeakMap<Cidr, number[]>();

/** The network address of a CIDR as bytes, computed once per Cidr object. */
function networkBytes(cidr: Cidr): number[] {
  let bytes = networkBytesCache.get(cidr);
  if (!bytes) {
    bytes = (parseStrict(cidr.network) as Addr).toByteArray();
    networkBytesCache.set(cidr, bytes);
  }
  return bytes;
}

/** True when the first `prefix` bits of `bytes` equal those of `network`. */
function prefixMatches(network: readonly number[], prefix: number, bytes: readonly number[]): boolean {
  if (network.length !== bytes.length) return false;
  for (let i = 0; i < network.length && prefix > i * 8; i++) {
    const keep = Math.min(8, prefix - i * 8);
    const mask = (0xff << (8 - keep)) & 0xff;
    if (((network[i] ?? 0) & mask) !== ((bytes[i] ?? 0) & mask)) return false;
  }
  return true;
}

/** True when the address `address` lies inside `cidr` (same family only). */
export function cidrContains(cidr: Cidr | string, address: string): boolean {
  const range = typeof cidr === 'string' ? parseCidr(cidr) : cidr;
  const addr = parseStrict(address);
  if (!addr) return false;
  const folded = fold(addr);
  if (folded.kind() !== range.family) return false;
  return prefixMatches(networkBytes(range), range.prefix, folded.toByteArray());
}

/** True when every address of `inner` lies inside `outer`. */
export function cidrCovers(outer: Cidr, inner: Cidr): boolean {
  return outer.family === inner.family && outer.prefix <= inner.prefix && prefixMatches(networkBytes(outer), outer.prefix, networkBytes(inner));
}

/** True when the two CIDRs share at least one address. */
export function cidrOverlaps(a: Cidr, b: Cidr): boolean {
  return cidrCovers(a, b) || cidrCovers(b, a);
}

/** The prefix length of one address of a family: 32 or 128. */
export function hostPrefix(family: Family): number {
  return family === 'ipv4' ? 32 : 128;
}

/** True when the CIDR holds exactly one address. */
export function isHostCidr(cidr: Cidr): boolean {
  return cidr.prefix === hostPrefix(cidr.family);
}

/**
 * The canonical text of a block target: a host CIDR is its address ("198.51.100.7"), any other
 * CIDR its canonical text ("198.51.100.0/24"). Stores, events and commands all key targets so.
 */
export function targetOf(cidr: Cidr): string {
  return isHostCidr(cidr) ? cidr.network : cidr.text;
}

/**
 * The canonical target of an address or CIDR text, or undefined when it is neither (host bits
 * must be zero unless `loose`).
 */
export function canonicalTarget(text: string, loose = false): string | undefined {
  const cidr = tryParseCidr(text, loose);
  return cidr ? targetOf(cidr) : undefined;
}

/** The host CIDR of an address ("/32" or "/128"), the form NACL entries and WAF IP sets take. */
export function hostCidr(address: string): string {
  const canonical = canonicalAddress(address);
  return `${canonical}/${hostPrefix(familyOf(canonical))}`;
}

/**
 * The special-purpose range an address belongs to, or undefined for a global unicast address.
 * Names follow ipaddr.js: private, loopback, linkLocal, multicast, reserved, unspecified,
 * broadcast, carrierGradeNat, uniqueLocal, …
 */
export function specialRange(address: string): string | undefined {
  const addr = parseStrict(address);
  if (!addr) return undefined;
  const range = fold(addr).range();
  return range === 'unicast' ? undefined : range;
}

/** The ranges never blocked unless configured, by ipaddr.js's names (IANA special-purpose registries). */
const SPECIAL_NAMES: Record<Family, readonly string[]> = {
  ipv4: ['unspecified', 'broadcast', 'multicast', 'linkLocal', 'loopback', 'carrierGradeNat', 'private', 'reserved'],
  ipv6: ['unspecified', 'linkLocal', 'multicast', 'loopback', 'uniqueLocal', 'deprecatedSiteLocal', 'discard', 'benchmarking', 'reserved'],
};

type RangeTable = Record<string, Array<[Addr, number]> | [Addr, number]>;

/** The special-purpose ranges (by ipaddr.js name) never blocked unless configured. */
export const SPECIAL_CIDRS: ReadonlyArray<{ name: string; cidr: Cidr }> = (['ipv4', 'ipv6'] as const).flatMap((family) => {
  const table = (family === 'ipv4' ? ipaddr.IPv4.prototype : ipaddr.IPv6.prototype) as unknown as { SpecialRanges: RangeTable };
  return SPECIAL_NAMES[family].flatMap((name) => {
    const entry = table.SpecialRanges[name];
    if (!entry) return [];
    const list = (Array.isArray(entry[0]) ? entry : [entry]) as Array<[Addr, number]>;
    return list.map(([addr, prefix]) => ({ name, cidr: tryParseCidr(`${toText(addr)}/${prefix}`, true) as Cidr }));
  });
});

/** The first special-purpose range (private, loopback, reserved, …) that overlaps `cidr`. */
export function specialRangeOverlapping(cidr: Cidr): { name: string; cidr: Cidr } | undefined {
  return SPECIAL_CIDRS.find((special) => cidrOverlaps(special.cidr, cidr));
}

/** A set of CIDRs answering "does any contain this address?", built once. */
export class CidrList {
  readonly cidrs: readonly Cidr[];

  constructor(entries: readonly string[]) {
    this.cidrs = entries.map((entry) => {
      const cidr = tryParseCidr(entry, true);
      if (!cidr) throw new Error(`not an IP address or CIDR: ${JSON.stringify(entry)}`);
      return cidr;
    });
  }

  /** The first CIDR containing the address, or undefined. */
  match(address: string): Cidr | undefined {
    return this.cidrs.find((cidr) => cidrContains(cidr, address));
  }

  /** The first CIDR overlapping the given CIDR, or undefined. */
  overlap(target: Cidr): Cidr | undefined {
    return this.cidrs.find((cidr) => cidrOverlaps(cidr, target));
  }
}

/**
 * IPv6 forms that carry an IPv4 address, so a block of the IPv6 form reaches the IPv4 host:
 * - NAT64 well-known prefix 64:ff9b::/96, IPv4 in the last 32 bits (RFC 6052, section 2.1);
 * - IPv4-translated ::ffff:0:0:0/96 (RFC 2765, section 2.1) and the deprecated IPv4-compatible
 *   ::/96 (RFC 4291, section 2.5.5.1), IPv4 in the last 32 bits (IPv4-mapped ::ffff:0:0/96
 *   is folded to IPv4 when parsed);
 * - 6to4 2002::/16, IPv4 in bits 16–47 (RFC 3056, section 2);
 * - Teredo 2001::/32: the server's IPv4 in bits 32–63, the client's in bits 96–127 with every
 *   bit inverted (RFC 4380, section 4).
 */
const IPV4_EMBEDDINGS: ReadonlyArray<{ name: string; range: string; offset: number; inverted: boolean }> = [
  { name: 'NAT64', range: '64:ff9b::/96', offset: 96, inverted: false },
  { name: 'IPv4-translated', range: '::ffff:0:0:0/96', offset: 96, inverted: false },
  { name: 'IPv4-compatible', range: '::/96', offset: 96, inverted: false },
  { name: '6to4', range: '2002::/16', offset: 16, inverted: false },
  { name: 'Teredo server', range: '2001::/32', offset: 32, inverted: false },
  { name: 'Teredo client', range: '2001::/32', offset: 96, inverted: true },
];

/**
 * The IPv4 ranges an IPv6 CIDR reaches through the embeddings above: for each embedding it
 * overlaps, the IPv4 CIDR its bits fix (0.0.0.0/0 when it fixes none of them). Empty for IPv4
 * and for IPv6 outside every embedding.
 */
export function embeddedIpv4(cidr: Cidr): Array<{ name: string; cidr: Cidr }> {
  if (cidr.family !== 'ipv6') return [];
  const bytes = networkBytes(cidr);
  const found: Array<{ name: string; cidr: Cidr }> = [];
  for (const embedding of IPV4_EMBEDDINGS) {
    const range = tryParseCidr(embedding.range) as Cidr;
    if (!cidrOverlaps(range, cidr)) continue;
    const fixedBits = Math.max(0, Math.min(32, cidr.prefix - embedding.offset));
    const v4 = [0, 0, 0, 0];
    for (let bit = 0; bit < fixedBits; bit++) {
      const at = embedding.offset + bit;
      let value = ((bytes[at >> 3] ?? 0) >> (7 - (at & 7))) & 1;
      if (embedding.inverted) value ^= 1;
      v4[bit >> 3] = (v4[bit >> 3] ?? 0) | (value << (7 - (bit & 7)));
    }
    found.push({ name: embedding.name, cidr: tryParseCidr(`${v4.join('.')}/${fixedBits}`) as Cidr });
  }
  return found;
}
