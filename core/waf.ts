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
  /**
   * a removal (present false) may wait until this epoch ms (a deferral, WafDeferral); absent: it
   * is written in this run
   */
  readonly deadline?: number;
}

/** Per set ("<scope>/<id>"): address → deadline (epoch ms) of a removal planned but not yet written. */
export type WafPendingRemovals = ReadonlyMap<string, ReadonlyMap<string, number>>;

/**
 * Deferred removals (an incremental run): a removal waits in its set until the set is written
 * anyway, or until its deadline comes near. Every UpdateIPSet of an account and Region waits for
 * the pacer (one a second), and at 100,000 blocks the lifts of one run are spread over many
 * full sets: writing each of them would cost a second per extra set.
 */
export interface WafDeferral {
  /** the removals earlier runs left pending (a later change can cancel them) */
  readonly pending: WafPendingRemovals;
  /** a set whose pending removal's deadline is at or before this (epoch ms) is written this run */
  readonly writeBy: number;
  /**
   * when no set must be written, write the one whose removal is due first (default true); false
   * when another point already wrote in this account and Region this run (its call was the one
   * the pacer lets through without a wait)
   */
  readonly opportunistic?: boolean;
}

export interface WafDeltaPlan {
  /** only the sets whose content changes, each its complete new list */
  readonly updates: readonly WafSetUpdate[];
  /** addresses to be present that no set of their family (in that scope) had room for */
  readonly overflow: readonly string[];
  /** with a deferral: the removals still pending after the updates, per set not written (an empty map: none) */
  readonly pending: Map<string, Map<string, number>>;
  /** with a deferral: the pending removals each written set carries (still due if its write fails) */
  readonly carried: Map<string, Map<string, number>>;
}

/**
 * The incremental counterpart of planWaf: applies only the changed targets to the sets' current
 * contents (a cache from the last read or write), touching as few sets as it can, since every
 * UpdateIPSet of an account and Region waits for the pacer (1 call/s):
 * - an address no longer desired leaves every set that holds it — at once without a deferral;
 *   with one, it is a pending removal of that set (the set still holds it) until the set is written;
 * - a newly desired address that no set holds is never deferred: it goes into a set this plan
 *   writes anyway when one has room (the fullest such), else (no set written yet) into the set
 *   with room whose pending removal is due first (written anyway before long), else into the
 *   fullest set with room; when that set is full, into the next (a second, paced call). None:
 *   overflow (the full run, planWaf, keeps the most recent ones);
 * - an address already held stays where it is (re-applying a change is a no-op), and a pending
 *   removal of it is cancelled (blocked again before the removal was written);
 * - with a deferral, per scope and family the sets written are: the one taking new blocks (if
 *   any), every set with a pending removal due by `writeBy`, and, when that makes none and
 *   `opportunistic` allows it, the set whose pending removal is due first (one call a run drains
 *   the pending removals). A set written carries all its pending removals.
 * Several changes of one address: the last one wins. Every other address of a set is left as it
 * is (only a set that is written is rewritten in canonical form), so an address an operator put
 * in a set is not removed by an incremental run. Pure.
 */
export function planWafDelta(sets: readonly WafSetState[], changes: readonly WafChange[], maxPerSet = WAF_MAX_ADDRESSES_PER_SET, deferral?: WafDeferral): WafDeltaPlan {
  const last = new Map<string, WafChange>();
  for (const change of changes) {
    const canonical = canonicalOrUndefined(change.address);
    if (!canonical || canonical.family !== change.family) continue;
    last.delete(canonical.text);
    last.set(canonical.text, { ...change, address: canonical.text });
  }
  const updates: WafSetUpdate[] = [];
  const overflow = new Set<string>();
  const pendingOut = new Map<string, Map<string, number>>();
  const carried = new Map<string, Map<string, number>>();
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
      // pending removals of addresses the set no longer holds (another writer removed them) are done
      const pending = new Map<string, number>();
      for (const [address, deadline] of deferral?.pending.get(setKey(set.ref)) ?? []) if (have.has(address)) pending.set(address, deadline);
      return { set, before: list, next: new Set(list), pending, write: false };
    });
    const mine = [...last.values()].filter((change) => change.family === group.family);
    for (const change of mine) {
      for (const s of state) {
        if (change.present) {
          s.pending.delete(change.address); // blocked again: the pending removal is cancelled
        } else if (s.next.has(change.address)) {
          if (deferral) {
            const deadline = Math.min(s.pending.get(change.address) ?? Infinity, change.deadline ?? -Infinity);
            s.pending.set(change.address, deadline);
          } else {
            s.next.delete(change.address);
            s.write = true;
          }
        }
      }
    }
    const firstDue = (s: (typeof state)[number]) => Math.min(Infinity, ...s.pending.values());
    if (deferral) for (const s of state) if (s.pending.size && firstDue(s) <= deferral.writeBy) s.write = true;
    // the size a set has once written: a set written carries its pending removals
    const sizeIfWritten = (s: (typeof state)[number]) => s.next.size - s.pending.size;
    for (const change of mine) {
      if (!change.present || state.some((s) => s.next.has(change.address))) continue;
      const room = state.filter((s) => sizeIfWritten(s) < maxPerSet);
      const fullest = (list: typeof room) => list.reduce<(typeof room)[number] | undefined>((best, s) => (best === undefined || sizeIfWritten(s) > sizeIfWritten(best) ? s : best), undefined);
      const dueFirst = (list: typeof room) => list.reduce<(typeof room)[number] | undefined>((best, s) => (best === undefined || firstDue(s) < firstDue(best) ? s : best), undefined);
      const into = fullest(room.filter((s) => s.write)) ?? dueFirst(room.filter((s) => s.pending.size > 0)) ?? fullest(room);
      if (!into) {
        overflow.add(change.address);
        continue;
      }
      into.next.add(change.address);
      into.write = true;
    }
    if (deferral && deferral.opportunistic !== false && !state.some((s) => s.write)) {
      const first = state.filter((s) => s.pending.size > 0).reduce<(typeof state)[number] | undefined>((best, s) => (best === undefined || firstDue(s) < firstDue(best) ? s : best), undefined);
      if (first) first.write = true;
    }
    for (const s of state) {
      if (!s.write) {
        if (s.pending.size) pendingOut.set(setKey(s.set.ref), s.pending);
        continue;
      }
      for (const address of s.pending.keys()) s.next.delete(address);
      if (s.pending.size) carried.set(setKey(s.set.ref), s.pending);
      const addresses = [...s.next].filter((text) => canonicalOrUndefined(text)?.family === group.family);
      const before = new Set(s.before);
      const after = new Set(addresses);
      const added = addresses.filter((a) => !before.has(a));
      const removed = s.before.filter((a) => !after.has(a));
      // a set chosen to be written whose content does not change (a cancelled removal) is not written
      if (added.length || removed.length || !deferral) updates.push({ ref: s.set.ref, addresses, added, removed });
    }
  }
  for (const change of last.values()) {
    if (change.present && !sets.some((set) => set.ref.family === change.family)) overflow.add(change.address);
  }
  return { updates, overflow: [...overflow], pending: pendingOut, carried };
}
