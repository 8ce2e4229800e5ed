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
  /** canonical CIDR → the set ("<scope>/<id>") that holds it after the updates (the last scope's, when several scopes hold it) */
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
  const overflow = new Set<string>();
  // A scope is its own WAF (CLOUDFRONT in us-east-1, REGIONAL per Region): each scope's sets of a
  // family hold every wanted address of that family, the point "waf:<scope>/<family>" (core/points.ts).
  for (const group of wafGroupsOf(sets)) {
    const family = group.family;
    const familySets = group.sets;
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
    for (const address of ordered.slice(capacity)) overflow.add(address);

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
    const here = new Set<string>();
    current.forEach(({ list, set }, index) => {
      for (const address of list) {
        if (wanted.has(address) && !here.has(address) && (next[index] as string[]).length < maxPerSet) {
          (next[index] as string[]).push(address);
          here.add(address);
          placed.set(address, setKey(set.ref));
        }
      }
    });
    let index = 0;
    for (const address of wanted) {
      if (here.has(address)) continue;
      while (index < next.length && (next[index] as string[]).length >= maxPerSet) index++;
      const target = next[index];
      const state = current[index];
      if (!target || !state) break; // cannot happen: wanted.size <= capacity
      target.push(address);
      here.add(address);
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
  // a family with no set at all: every wanted address of it overflows (nothing holds it)
  for (const family of ['ipv4', 'ipv6'] as const) {
    if (sets.some((set) => set.ref.family === family)) continue;
    for (const candidate of candidates) {
      const address = candidate.family === family ? wafAddressOf(candidate.target) : undefined;
      if (address !== undefined) overflow.add(address);
    }
  }
  return { updates, placed, overflow: [...overflow] };
}

/** The sets of one family in one scope, in configuration order: one WAF enforcement point. */
export interface WafGroup {
  readonly scope: WafSetRef['scope'];
  readonly family: Family;
  readonly sets: WafSetState[];
}

/** Groups sets by scope and family, in the order each group first appears. */
export function wafGroupsOf<S extends WafSetState>(sets: readonly S[]): Array<{ scope: WafSetRef['scope']; family: Family; sets: S[] }> {
  const groups = new Map<string, { scope: WafSetRef['scope']; family: Family; sets: S[] }>();
  for (const set of sets) {
    const key = `${set.ref.scope}/${set.ref.family}`;
    const group = groups.get(key) ?? { scope: set.ref.scope, family: set.ref.family, sets: [] };
    group.sets.push(set);
    groups.set(key, group);
  }
  return [...groups.values()];
}

/** One target's desired WAF state after a change: held by a set of its family, or by none. */
export interface WafChange {
  /** the WAF form (wafAddressOf) */
  readonly address: string;
  readonly family: Family;
  readonly present: boolean;
}

export interface WafDeltaPlan {
  /** only the sets whose content changes, each its complete new list */
  readonly updates: readonly WafSetUpdate[];
  /** addresses to be present that no set of their family (in that scope) had room for */
  readonly overflow: readonly string[];
}

/**
 * The incremental counterpart of planWaf: applies only the changed targets to the sets' current
 * contents (a cache from the last read or write), touching as few sets as it can, since every
 * UpdateIPSet of a scope waits for the pacer (1 call/s per account and Region):
 * - an address no longer desired leaves every set that holds it;
 * - a newly desired address that no set holds goes into a set this plan writes anyway when one
 *   has room (the fullest such), else into the fullest set with room; none: overflow (the full
 *   run, planWaf, keeps the most recent ones);
 * - an address already held stays where it is (re-applying a change is a no-op).
 * Several changes of one address: the last one wins. Every other address of a set is left as it
 * is (only a set that is written is rewritten in canonical form), so an address an operator put
 * in a set is not removed by an incremental run. Pure.
 */
export function planWafDelta(sets: readonly WafSetState[], changes: readonly WafChange[], maxPerSet = WAF_MAX_ADDRESSES_PER_SET): WafDeltaPlan {
  const last = new Map<string, WafChange>();
  for (const change of changes) {
    const canonical = canonicalOrUndefined(change.address);
    if (!canonical || canonical.family !== change.family) continue;
    last.delete(canonical.text);
    last.set(canonical.text, { ...change, address: canonical.text });
  }
  const updates: WafSetUpdate[] = [];
  const overflow = new Set<string>();
  for (const group of wafGroupsOf(sets)) {
    const state = group.sets.map((set) => {
      const list: string[] = [];
      const have = new Set<string>();
      for (const raw of set.addresses) {
        const canonical = canonicalOrUndefined(raw);
        const text = canonical?.text ?? raw;
        if (!have.has(text)) {
          have.add(text);
          list.push(text);
        }
      }
      return { set, before: list, next: new Set(list), touched: false };
    });
    const mine = [...last.values()].filter((change) => change.family === group.family);
    for (const change of mine) {
      if (change.present) continue;
      for (const s of state) {
        if (s.next.delete(change.address)) s.touched = true;
      }
    }
    for (const change of mine) {
      if (!change.present || state.some((s) => s.next.has(change.address))) continue;
      const room = state.filter((s) => s.next.size < maxPerSet);
      const fullest = (list: typeof room) => list.reduce<(typeof room)[number] | undefined>((best, s) => (best === undefined || s.next.size > best.next.size ? s : best), undefined);
      const into = fullest(room.filter((s) => s.touched)) ?? fullest(room);
      if (!into) {
        overflow.add(change.address);
        continue;
      }
      into.next.add(change.address);
      into.touched = true;
    }
    for (const s of state) {
      if (!s.touched) continue;
      const addresses = [...s.next].filter((text) => canonicalOrUndefined(text)?.family === group.family);
      const before = new Set(s.before);
      const after = new Set(addresses);
      updates.push({
        ref: s.set.ref,
        addresses,
        added: addresses.filter((a) => !before.has(a)),
        removed: s.before.filter((a) => !after.has(a)),
      });
    }
  }
  for (const change of last.values()) {
    if (change.present && !sets.some((set) => set.ref.family === change.family)) overflow.add(change.address);
  }
  return { updates, overflow: [...overflow] };
}
