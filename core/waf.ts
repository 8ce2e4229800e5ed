/**
 * WAF IP set sharding: which of portsnare's IP sets holds which address. Pure.
 *
 * AWS facts this module relies on:
 * - An IP set holds addresses of one IP version (IPAddressVersion IPV4 or IPV6), in CIDR
 *   notation; every prefix except /0 is supported.
 *   https://docs.aws.amazon.com/waf/latest/APIReference/API_IPSet.html
 * - At most 10,000 addresses in one IP set (AWS WAF quotas).
 *   https://docs.aws.amazon.com/waf/latest/developerguide/limits.html
 * - UpdateIPSet replaces the whole address list, so a change to a set is its complete new list.
 *   https://docs.aws.amazon.com/waf/latest/APIReference/API_UpdateIPSet.html
 */
import { type Family, tryParseCidr } from './address';
import type { WafSetRef } from './settings';
import { WAF_MAX_ADDRESSES_PER_SET } from './settings';

export interface WafCandidate {
  /** canonical address or CIDR */
  readonly target: string;
  readonly family: Family;
  /** higher is more recently active */
  readonly recency: number;
}

export interface WafSetState {
  readonly ref: WafSetRef;
  /** the addresses GetIPSet returned, in any spelling */
  readonly addresses: readonly string[];
}

export interface WafSetUpdate {
  readonly ref: WafSetRef;
  /** the complete new list, canonical CIDR text */
  readonly addresses: readonly string[];
  readonly added: readonly string[];
  readonly removed: readonly string[];
}

export interface WafPlan {
  /** only the sets whose content changes */
  readonly updates: readonly WafSetUpdate[];
  /** canonical CIDR → the set (by id) that holds it after the updates */
  readonly placed: ReadonlyMap<string, string>;
  /** active targets no set of their family had room for (or no set of their family exists) */
  readonly overflow: readonly string[];
}

/** The WAF form of a target: "198.51.100.7/32", "2001:db8::/32"; undefined for /0 or garbage. */
export function wafAddressOf(target: string): string | undefined {
  const cidr = tryParseCidr(target, false);
  if (!cidr || cidr.prefix === 0) return undefined;
  return cidr.text;
}

function canonicalOrUndefined(address: string): { text: string; family: Family } | undefined {
  const cidr = tryParseCidr(address, true);
  return cidr ? { text: cidr.text, family: cidr.family } : undefined;
}

function setKey(ref: WafSetRef): string {
  return `${ref.scope}/${ref.id}`;
}

/**
 * Spreads the active targets over the configured sets of their family: the most recent first
 * when they do not all fit; an address stays in the set that already holds it (no churn); new
 * addresses fill the sets in configuration order. A set's content that is not a wanted address
 * of its family (expired, lifted, another family, unparseable) is removed.
 */
export function planWaf(sets: readonly WafSetState[], candidates: readonly WafCandidate[], maxPerSet = WAF_MAX_ADDRESSES_PER_SET): WafPlan {
  const updates: WafSetUpdate[] = [];
  const placed = new Map<string, string>();
  const overflow: string[] = [];
  for (const family of ['ipv4', 'ipv6'] as const) {
    const familySets = sets.filter((set) => set.ref.family === family);
    const capacity = familySets.length * maxPerSet;
    const seen = new Set<string>();
    const ordered: string[] = [];
    for (const candidate of [...candidates]
      .filter((c) => c.family === family)
      .sort((a, b) => b.recency - a.recency || (a.target < b.target ? -1 : a.target > b.target ? 1 : 0))) {
      const address = wafAddressOf(candidate.target);
      if (address === undefined || seen.has(address)) continue;
      seen.add(address);
      ordered.push(address);
    }
    const wanted = new Set(ordered.slice(0, capacity));
    overflow.push(...ordered.slice(capacity));

    const current = familySets.map((set) => {
      const list: string[] = [];
      const have = new Set<string>();
      for (const raw of set.addresses) {
        const canonical = canonicalOrUndefined(raw);
        if (canonical && canonical.family === family && !have.has(canonical.text)) {
          have.add(canonical.text);
          list.push(canonical.text);
        }
      }
      return { set, list, raw: set.addresses };
    });
    const next = current.map(() => [] as string[]);
    current.forEach(({ list, set }, index) => {
      for (const address of list) {
        if (wanted.has(address) && !placed.has(address) && (next[index] as string[]).length < maxPerSet) {
          (next[index] as string[]).push(address);
          placed.set(address, setKey(set.ref));
        }
      }
    });
    let index = 0;
    for (const address of wanted) {
      if (placed.has(address)) continue;
      while (index < next.length && (next[index] as string[]).length >= maxPerSet) index++;
      const target = next[index];
      const state = current[index];
      if (!target || !state) break; // cannot happen: wanted.size <= capacity
      target.push(address);
      placed.set(address, setKey(state.set.ref));
    }
    current.forEach(({ set, list, raw }, i) => {
      const list2 = next[i] as string[];
      const before = new Set(list);
      const after = new Set(list2);
      const added = list2.filter((a) => !before.has(a));
      const removed = list.filter((a) => !after.has(a));
      // A raw list with duplicates or non-canonical spellings is rewritten too.
      const rawClean = raw.length === list.length && raw.every((a, k) => a === list[k]);
      if (added.length || removed.length || !rawClean) {
        updates.push({ ref: set.ref, addresses: list2, added, removed });
      }
    });
  }
  return { updates, placed, overflow };
}
