/**
 * Network ACL deny entries: which entries are portsnare's, how many fit, and which rule numbers
 * the blocks get. Pure: the caller reads the ACL (DescribeNetworkAcls) and applies the changes.
 *
 * AWS facts this module relies on:
 * - Rule numbers run 1–32766; ingress and egress are numbered apart, IPv4 and IPv6 entries share
 *   the numbering of their direction; entries are evaluated in ascending rule-number order.
 *   https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateNetworkAclEntry.html
 * - The default deny entry ("*") cannot be changed; the API reports it as "rule number 32767 for
 *   IPv4 and 32768 for IPv6", both above the numbers a caller may use.
 *   https://docs.aws.amazon.com/vpc/latest/userguide/nacl-rules.html
 *   https://docs.aws.amazon.com/vpc/latest/userguide/amazon-vpc-limits.html
 * - Rules per network ACL: 20 per direction by default, adjustable to 40; the quota is counted
 *   for IPv4 and IPv6 rules apart. https://docs.aws.amazon.com/vpc/latest/userguide/amazon-vpc-limits.html
 *
 * How portsnare recognises its own entries (and never touches anything else):
 *   an INGRESS entry, RuleAction "deny", Protocol "-1" (all traffic), no port range or ICMP
 *   code, whose CIDR is a single host (/32 or /128) or an IPv6 prefix of /48 or narrower (the
 *   IPv6 prefix policy, core/prefix.ts: `MIN_IPV6_BLOCK_PREFIX`), with a rule number inside the
 *   reserved range — and, inside the range, held by the stack's ledger (Ownership, below).
 *   Anything else — outside the range, egress, allow, a port- or protocol-specific deny, a wider
 *   CIDR — is foreign: it is left as it is, its rule number is allocated around and it counts
 *   against the quota. (An IPv4 CIDR block request, e.g. "198.51.100.0/24", or an IPv6 one wider
 *   than /48, is therefore enforced in WAF only.)
 */
import { type Cidr, type Family, cidrCovers, cidrOverlaps, hostPrefix, isHostCidr, targetOf, tryParseCidr } from './address';
import { MIN_IPV6_BLOCK_PREFIX } from './policy';

/** True when a target of this CIDR gets NACL entries: one host, or an IPv6 prefix of /48 or narrower. */
export function isNaclShape(cidr: Cidr): boolean {
  return isHostCidr(cidr) || (cidr.family === 'ipv6' && cidr.prefix >= MIN_IPV6_BLOCK_PREFIX);
}

/** The highest rule number a caller may create (CreateNetworkAclEntry: 1–32766). */
export const NACL_MAX_RULE_NUMBER = 32766;
/** The IPv4 default deny's rule number. */
export const NACL_DEFAULT_DENY_RULE = 32767;
/** The IPv6 default deny's rule number. */
export const NACL_DEFAULT_DENY_RULE_IPV6 = 32768;
/** The default deny's rule number per family. */
export const NACL_DEFAULT_DENY_RULES: Readonly<Record<Family, number>> = { ipv4: NACL_DEFAULT_DENY_RULE, ipv6: NACL_DEFAULT_DENY_RULE_IPV6 };

/**
 * True for the "*" default deny: a rule number above the callers' range can only be AWS's own
 * (32767 for IPv4, 32768 for IPv6).
 */
export function isDefaultDeny(entry: NaclEntry): boolean {
  return entry.ruleNumber > NACL_MAX_RULE_NUMBER;
}

/** One NACL entry as DescribeNetworkAcls reports it (only the fields portsnare looks at). */
export interface NaclEntry {
  readonly ruleNumber: number;
  readonly egress: boolean;
  readonly ruleAction: 'allow' | 'deny';
  /** protocol number as text; "-1" is all protocols */
  readonly protocol: string;
  readonly cidrBlock?: string;
  readonly ipv6CidrBlock?: string;
  readonly portRange?: { readonly from?: number; readonly to?: number };
  readonly icmpTypeCode?: { readonly type?: number; readonly code?: number };
  /**
   * Set by the reader when this stack's placement ledger does not hold the entry: it has
   * portsnare's shape but another stack (or an operator) put it there, so it is foreign.
   */
  readonly foreign?: boolean;
  /**
   * Set by the reader for a rule number this stack's ledger holds while the read shows nothing
   * there: the ledger is the truth for our range, so the number is ours and occupied (a stale
   * read, or an entry removed out of band). Such an entry is never replaced or deleted (there is
   * nothing to check the overwrite against); the planner only re-creates it (a create never
   * overwrites anything) when its target is still wanted.
   */
  readonly unseen?: boolean;
  /**
   * Set by the reader from this stack's ledger row (Placement.placedAt): epoch ms at which the
   * entry was placed. Absent (an entry placed by a version before the residence time, or read
   * without a ledger): placed long ago.
   */
  readonly placedAt?: number;
}

/** A candidate for a NACL deny entry: an active, blockable single address. */
export interface NaclCandidate {
  /** canonical address */
  readonly target: string;
  readonly family: Family;
  /** higher is more recently active; ties broken by target */
  readonly recency: number;
}

export type NaclChange =
  | { readonly op: 'create'; readonly ruleNumber: number; readonly cidr: string; readonly family: Family; readonly target: string }
  | {
      readonly op: 'replace';
      readonly ruleNumber: number;
      readonly cidr: string;
      readonly family: Family;
      readonly target: string;
      readonly previous: string;
    }
  | { readonly op: 'delete'; readonly ruleNumber: number; readonly cidr: string; readonly family: Family; readonly target: string };

export interface NaclPlanInput {
  readonly entries: readonly NaclEntry[];
  readonly range: readonly [number, number];
  /** rules per direction per ACL for each family, the default deny included (AWS: 20, up to 40) */
  readonly quota: number;
  readonly candidates: readonly NaclCandidate[];
  /** rule numbers this stack freed recently: not reused until their cool-down ends (core/nacl.ts heldRuleNumbers) */
  readonly held?: readonly number[];
  /**
   * The residence time: an entry of ours placed less than `ms` before `now` (NaclEntry.placedAt)
   * whose target is a candidate keeps its place ahead of every candidate without an entry. Absent
   * or `ms` 0: places go by recency alone.
   */
  readonly residence?: { readonly now: number; readonly ms: number };
}

export interface NaclPlan {
  /** apply in this order: deletes, then replaces, then creates (the counts never exceed the quota) */
  readonly changes: readonly NaclChange[];
  /** target → rule number once the changes are applied */
  readonly placed: ReadonlyMap<string, number>;
  /** targets that had an entry and lose it while still active (they stay blocked in WAF) */
  readonly evicted: readonly string[];
  /** families where more candidates were active than the ACL could hold */
  readonly full: readonly Family[];
  /** how many entries each family may hold after the foreign ones */
  readonly capacity: Readonly<Record<Family, number>>;
  /**
   * rule numbers the ledger holds for targets no longer wanted whose entry the read did not show:
   * left for a later run (a delete needs a read that shows the entry), so the ACL has not converged
   */
  readonly unresolved: readonly number[];
}

function entryCidr(entry: NaclEntry): Cidr | undefined {
  const raw = entry.cidrBlock ?? entry.ipv6CidrBlock;
  if (raw === undefined || (entry.cidrBlock !== undefined && entry.ipv6CidrBlock !== undefined)) return undefined;
  return tryParseCidr(raw, true);
}

/** The family of the entry's CIDR, or undefined when it has none that parses. */
export function entryFamily(entry: NaclEntry): Family | undefined {
  return entryCidr(entry)?.family;
}

/** True when the rule number lies inside the reserved range [first, last]. */
export function inRange(ruleNumber: number, range: readonly [number, number]): boolean {
  return ruleNumber >= range[0] && ruleNumber <= range[1];
}

/**
 * The host address of a portsnare entry, or undefined when the entry is not portsnare's
 * (see the recognition rule at the top of this file).
 */
export function ownEntryTarget(entry: NaclEntry, range: readonly [number, number]): string | undefined {
  if (entry.foreign === true) return undefined;
  if (entry.egress || entry.ruleAction !== 'deny' || entry.protocol !== '-1') return undefined;
  if (!inRange(entry.ruleNumber, range)) return undefined;
  if (entry.portRange !== undefined || entry.icmpTypeCode !== undefined) return undefined;
  const cidr = entryCidr(entry);
  if (!cidr) return undefined;
  return isNaclShape(cidr) ? targetOf(cidr) : undefined;
}

export function isOwnEntry(entry: NaclEntry, range: readonly [number, number]): boolean {
  return ownEntryTarget(entry, range) !== undefined;
}

/** The entry's CIDR of a canonical target: "198.51.100.7/32", "2001:db8::7/128", "2001:db8:1:2::/64". */
export function hostCidrOf(target: string, family: Family): string {
  return target.includes('/') ? target : `${target}/${hostPrefix(family)}`;
}

/** Most recent first; equal recency by target, so the order is total and deterministic. */
export function byRecency(a: NaclCandidate, b: NaclCandidate): number {
  return b.recency - a.recency || (a.target < b.target ? -1 : a.target > b.target ? 1 : 0);
}

/**
 * How many portsnare entries each family may hold in this ACL: the quota minus every foreign
 * ingress entry of the family. The default deny counts; when DescribeNetworkAcls does not list
 * one for a family (IPv6 on a VPC without IPv6), one is reserved for it all the same.
 */
export function naclCapacity(entries: readonly NaclEntry[], range: readonly [number, number], quota: number): Record<Family, number> {
  const foreign: Record<Family, number> = { ipv4: 0, ipv6: 0 };
  const defaultDeny: Record<Family, boolean> = { ipv4: false, ipv6: false };
  for (const entry of entries) {
    if (entry.egress || isOwnEntry(entry, range)) continue;
    const family = entryFamily(entry);
    if (!family) continue;
    foreign[family]++;
    if (isDefaultDeny(entry)) defaultDeny[family] = true;
  }
  return {
    ipv4: Math.max(0, quota - foreign.ipv4 - (defaultDeny.ipv4 ? 0 : 1)),
    ipv6: Math.max(0, quota - foreign.ipv6 - (defaultDeny.ipv6 ? 0 : 1)),
  };
}

/**
 * The targets of our entries placed less than the residence time ago (NaclPlanInput.residence):
 * whatever their recency, they are placed first while they are candidates. An entry without
 * `placedAt` (an older version's ledger row) was placed long ago; an `unseen` one is pinned anyway.
 */
export function residentTargets(entries: readonly NaclEntry[], range: readonly [number, number], residence: NaclPlanInput['residence']): Set<string> {
  const resident = new Set<string>();
  if (!residence || residence.ms <= 0) return resident;
  for (const entry of entries) {
    if (entry.egress || entry.unseen === true || entry.placedAt === undefined) continue;
    if (residence.now - entry.placedAt >= residence.ms) continue;
    const target = ownEntryTarget(entry, range);
    if (target !== undefined) resident.add(target);
  }
  return resident;
}

/**
 * The minimal changes that make the ACL's portsnare entries hold exactly the candidates that
 * fit, in this order: first the residents (our entries placed less than the residence time ago
 * whose target is still a candidate: residentTargets), then the most recently active; per family
 * no more than the capacity, in total no more than the free rule numbers of the range. A target
 * that is no longer a candidate (lifted, expired, refused by the guard) has no place, whatever
 * its entry's age. An existing entry for a chosen target keeps its number; an entry no longer
 * wanted is replaced in place by a new target of the same family (one call, the count
 * unchanged) or deleted; new targets take the lowest free numbers.
 */
export function planNacl(input: NaclPlanInput): NaclPlan {
  const { range, quota } = input;
  // Entries the ledger holds but the read did not show are pinned: their number is ours and
  // occupied, they count against the quota like any entry, and they are never replaced or deleted
  // this run. One whose target is still wanted keeps its number (re-created there if it is gone).
  const pinned = input.entries.filter((entry) => !entry.egress && entry.unseen === true && isOwnEntry(entry, range));
  const entries = input.entries.map((entry) => (entry.unseen === true ? { ...entry, foreign: true } : entry));
  const ingress = entries.filter((entry) => !entry.egress);
  const own = ingress.filter((entry) => isOwnEntry(entry, range));
  const foreignNumbers = new Set(ingress.filter((entry) => !isOwnEntry(entry, range)).map((entry) => entry.ruleNumber));
  const ownNumbers = new Set(own.map((entry) => entry.ruleNumber));
  // A number freed moments ago is not free: a stale read could still show our old entry there.
  for (const n of input.held ?? []) if (!ownNumbers.has(n)) foreignNumbers.add(n);
  let freeNumbers = 0;
  for (let n = range[0]; n <= range[1]; n++) if (!foreignNumbers.has(n)) freeNumbers++;

  const capacity = naclCapacity(entries, range, quota);
  const seen = new Set<string>();
  const resident = residentTargets(entries, range, input.residence);
  const ordered = [...input.candidates]
    .sort((a, b) => Number(resident.has(b.target)) - Number(resident.has(a.target)) || byRecency(a, b))
    .filter((candidate) => {
      if (seen.has(candidate.target)) return false;
      seen.add(candidate.target);
      return true;
    });
  const activeTargets = new Set(ordered.map((candidate) => candidate.target));
  const placed = new Map<string, number>();
  const reprobes: NaclChange[] = [];
  for (const entry of [...pinned].sort((a, b) => a.ruleNumber - b.ruleNumber)) {
    const target = ownEntryTarget({ ...entry, unseen: false }, range) as string;
    if (!activeTargets.has(target) || placed.has(target)) continue;
    placed.set(target, entry.ruleNumber);
    const family = entryFamily(entry) as Family;
    reprobes.push({ op: 'create', ruleNumber: entry.ruleNumber, cidr: hostCidrOf(target, family), family, target });
  }
  const taken: Record<Family, number> = { ipv4: 0, ipv6: 0 };
  const wanted: Record<Family, number> = { ipv4: 0, ipv6: 0 };
  const chosen = new Map<string, NaclCandidate>();
  for (const candidate of ordered) {
    wanted[candidate.family]++;
    if (placed.has(candidate.target)) {
      taken[candidate.family]++; // pinned: its entry is already counted among the foreign ones
      continue;
    }
    if (taken[candidate.family] >= capacity[candidate.family] + pinnedOf(candidate.family)) continue;
    if (chosen.size >= freeNumbers) continue;
    taken[candidate.family]++;
    chosen.set(candidate.target, candidate);
  }
  function pinnedOf(family: Family): number {
    let n = 0;
    for (const [target] of placed) if ((target.includes(':') ? 'ipv6' : 'ipv4') === family) n++;
    return n;
  }

  // Keep the first (lowest-numbered) entry of each chosen target; every other own entry is spare.
  const spare: Array<{ entry: NaclEntry; target: string; family: Family }> = [];
  for (const entry of [...own].sort((a, b) => a.ruleNumber - b.ruleNumber)) {
    const target = ownEntryTarget(entry, range) as string;
    const family = entryFamily(entry) as Family;
    if (chosen.has(target) && !placed.has(target)) placed.set(target, entry.ruleNumber);
    else spare.push({ entry, target, family });
  }
  const evicted = [...new Set(spare.map((s) => s.target))].filter((target) => activeTargets.has(target) && !placed.has(target));

  const newcomers = [...chosen.values()].filter((candidate) => !placed.has(candidate.target));
  const deletes: NaclChange[] = [];
  const replaces: NaclChange[] = [];
  const creates: NaclChange[] = [...reprobes];
  const spareByFamily: Record<Family, typeof spare> = { ipv4: [], ipv6: [] };
  for (const s of spare) spareByFamily[s.family].push(s);
  const pending: NaclCandidate[] = [];
  for (const candidate of newcomers) {
    const slot = spareByFamily[candidate.family].shift();
    if (slot) {
      replaces.push({
        op: 'replace',
        ruleNumber: slot.entry.ruleNumber,
        cidr: hostCidrOf(candidate.target, candidate.family),
        family: candidate.family,
        target: candidate.target,
        previous: hostCidrOf(slot.target, slot.family),
      });
      placed.set(candidate.target, slot.entry.ruleNumber);
    } else {
      pending.push(candidate);
    }
  }
  for (const s of [...spareByFamily.ipv4, ...spareByFamily.ipv6]) {
    deletes.push({ op: 'delete', ruleNumber: s.entry.ruleNumber, cidr: hostCidrOf(s.target, s.family), family: s.family, target: s.target });
  }
  const used = new Set<number>([...foreignNumbers, ...placed.values()]);
  let next = range[0];
  for (const candidate of pending) {
    while (next <= range[1] && used.has(next)) next++;
    if (next > range[1]) break; // cannot happen: chosen.size <= freeNumbers
    used.add(next);
    placed.set(candidate.target, next);
    creates.push({ op: 'create', ruleNumber: next, cidr: hostCidrOf(candidate.target, candidate.family), family: candidate.family, target: candidate.target });
  }
  deletes.sort((a, b) => a.ruleNumber - b.ruleNumber);
  const full = (['ipv4', 'ipv6'] as const).filter((family) => wanted[family] > taken[family]);
  const unresolved = pinned.filter((entry) => !reprobes.some((c) => c.ruleNumber === entry.ruleNumber)).map((entry) => entry.ruleNumber);
  return { changes: [...deletes, ...replaces, ...creates], placed, evicted, full, capacity, unresolved };
}

/** The ACL's entries once `changes` are applied (what AWS would hold); used by tests and fakes. */
export function applyNaclChanges(entries: readonly NaclEntry[], changes: readonly NaclChange[]): NaclEntry[] {
  let result = [...entries];
  for (const change of changes) {
    const entry: NaclEntry = {
      ruleNumber: change.ruleNumber,
      egress: false,
      ruleAction: 'deny',
      protocol: '-1',
      ...(change.family === 'ipv4' ? { cidrBlock: change.cidr } : { ipv6CidrBlock: change.cidr }),
    };
    const others = result.filter((e) => e.egress || e.ruleNumber !== change.ruleNumber);
    result = change.op === 'delete' ? others : [...others, entry];
  }
  return result.sort((a, b) => Number(a.egress) - Number(b.egress) || a.ruleNumber - b.ruleNumber);
}

/*
 * Ownership: each stack owns a rule-number RANGE of each of its ACLs, which no other stack may use
 * (lib refuses overlapping ranges on one ACL at synth where it can see both stacks; at run time a
 * foreign entry inside the range is reported, NaclForeignInRange). Inside its range the stack's
 * placement ledger (its own table, core/table.ts naclRuleKey) is the TRUTH of which entries are
 * its own; a read of the ACL (DescribeNetworkAcls, eventually consistent) never adds to nor
 * removes from what is ours, it can only show that a number is occupied:
 *
 * - A ledger row names every CIDR of ours that may be at its number: `cidr` plus, while a write's
 *   outcome is unknown, `maybe`. CIDRs leave a row ONLY on a write's answer: a create or replace
 *   that succeeded (the number holds exactly `cidr`), a delete that succeeded or found nothing
 *   (the row is freed), a create refused at its first attempt (NetworkAclEntryAlreadyExists or
 *   the quota: it was not carried out, the row is put back as it was). A lost answer, a timeout or
 *   an AlreadyExists after an SDK retry leaves the CIDR in the row. So no read, however stale, and
 *   no interleaving of runs can make the ledger forget an entry it placed.
 * - An entry the read shows at a number the ledger holds, with a CIDR of that row, is ours. Any
 *   other entry is foreign: never adopted, replaced or deleted; its number is allocated around.
 * - A number the ledger holds while the read shows nothing there is ours and occupied (`unseen`):
 *   never replaced or deleted on that read; if its target is still wanted it is re-created there
 *   (a create never overwrites, so this is safe whatever is really there).
 * - Replace and delete are sent only when the ledger holds the entry AND a re-read right before
 *   shows it (an entry of another CIDR there is somebody else's).
 * - A freed row keeps its CIDR for RULE_NUMBER_COOL_DOWN_MS: a stale read that still shows our
 *   deleted entry is not reported as foreign, and the number is not reused meanwhile.
 * https://docs.aws.amazon.com/ec2/latest/devguide/eventual-consistency.html
 */

/** How long a freed rule number stays unused by this stack. */
export const RULE_NUMBER_COOL_DOWN_MS = 10 * 60_000;

export type PlacementState = 'pending' | 'confirmed' | 'freed';

/** One ledger row: this stack's claim on one rule number of one ACL. */
export interface Placement {
  readonly ruleNumber: number;
  /** the host CIDR placed (or being placed) there */
  readonly cidr: string;
  readonly state: PlacementState;
  /** a pending row: the other CIDRs of ours that may be at the number (writes whose outcome is unknown) */
  readonly maybe?: readonly string[];
  /** a freed row: epoch ms until which the number is not reused */
  readonly heldUntil?: number;
  /**
   * epoch ms at which `cidr` was placed at the number (the residence time, planNacl); absent on
   * rows an older version wrote: placed long ago
   */
  readonly placedAt?: number;
}

function sameCidr(a: string | undefined, b: string | undefined): boolean {
  if (a === undefined || b === undefined) return false;
  const x = tryParseCidr(a, true);
  const y = tryParseCidr(b, true);
  return x !== undefined && y !== undefined && x.text === y.text;
}

/** Every CIDR of ours that may be at the row's number (none for a freed row). */
export function possibleCidrs(placement: Placement | undefined): string[] {
  if (!placement || placement.state === 'freed') return [];
  const all = [placement.cidr, ...(placement.maybe ?? [])];
  return all.filter((cidr, i) => all.findIndex((other) => sameCidr(other, cidr)) === i);
}

/** The live (not freed) row of a rule number. */
export function liveRow(placements: readonly Placement[], ruleNumber: number): Placement | undefined {
  return placements.find((p) => p.ruleNumber === ruleNumber && p.state !== 'freed');
}

/** True when the ledger holds the entry: its number has a live row naming the entry's CIDR. */
export function ledgerHolds(placements: readonly Placement[], entry: NaclEntry): boolean {
  const cidr = entry.cidrBlock ?? entry.ipv6CidrBlock;
  return possibleCidrs(liveRow(placements, entry.ruleNumber)).some((c) => sameCidr(c, cidr));
}

/**
 * The entries as this stack must see them: every entry of portsnare's shape in the range that
 * the ledger does not hold is marked foreign (another stack's, an operator's, or a stale read's
 * ghost).
 */
export function withOwnership(entries: readonly NaclEntry[], placements: readonly Placement[], range: readonly [number, number]): NaclEntry[] {
  return entries.map((entry) => (isOwnEntry(entry, range) && !ledgerHolds(placements, entry) ? { ...entry, foreign: true } : entry));
}

/** One ACL as the ledger makes this stack see it (ledgerView). */
export interface LedgerView {
  /** the read's entries, foreign ones marked, plus an `unseen` entry for each live row the read did not show */
  readonly entries: NaclEntry[];
  /** entries inside our range that are not ours (an operator's, another stack's), stale ghosts of our deleted entries left out */
  readonly foreignInRange: NaclEntry[];
}

/**
 * What is ours in one ACL: the ledger's live rows in the range, whatever the read shows. A row
 * whose number the read shows empty becomes an `unseen` entry of its `cidr`; a row whose number
 * holds an entry of another CIDR leaves that entry foreign (occupied, never touched).
 */
export function ledgerView(entries: readonly NaclEntry[], placements: readonly Placement[], range: readonly [number, number], now: number): LedgerView {
  // an entry of ours carries its row's placedAt when it is the row's `cidr` (a `maybe` one's time is unknown: long ago)
  const marked = withOwnership(entries, placements, range).map((entry) => {
    if (entry.foreign === true || entry.egress) return entry;
    const row = liveRow(placements, entry.ruleNumber);
    return row?.placedAt !== undefined && sameCidr(row.cidr, entry.cidrBlock ?? entry.ipv6CidrBlock) ? { ...entry, placedAt: row.placedAt } : entry;
  });
  const shown = new Set(entries.filter((e) => !e.egress).map((e) => e.ruleNumber));
  const unseen: NaclEntry[] = [];
  for (const p of placements) {
    if (p.state === 'freed' || shown.has(p.ruleNumber) || !inRange(p.ruleNumber, range)) continue;
    const cidr = tryParseCidr(p.cidr, true);
    if (!cidr) continue;
    unseen.push({ ruleNumber: p.ruleNumber, egress: false, ruleAction: 'deny', protocol: '-1', ...(cidr.family === 'ipv4' ? { cidrBlock: cidr.text } : { ipv6CidrBlock: cidr.text }), unseen: true });
  }
  const ghost = (entry: NaclEntry) =>
    placements.some((p) => p.state === 'freed' && p.ruleNumber === entry.ruleNumber && (p.heldUntil ?? 0) > now && sameCidr(p.cidr, entry.cidrBlock ?? entry.ipv6CidrBlock));
  const foreignInRange = marked.filter((e) => !e.egress && inRange(e.ruleNumber, range) && (e.foreign === true || !isOwnEntry(e, range)) && !ghost(e));
  return { entries: [...marked, ...unseen], foreignInRange };
}

/** Rule numbers freed less than the cool-down ago. */
export function heldRuleNumbers(placements: readonly Placement[], now: number): number[] {
  return placements.filter((p) => p.state === 'freed' && (p.heldUntil ?? 0) > now).map((p) => p.ruleNumber);
}

/** True when `entry` is exactly the deny-all host entry for `cidr` at `ruleNumber` (an ingress entry). */
export function isExactDeny(entry: NaclEntry, ruleNumber: number, cidr: string): boolean {
  return (
    !entry.egress &&
    entry.ruleNumber === ruleNumber &&
    entry.ruleAction === 'deny' &&
    entry.protocol === '-1' &&
    entry.portRange === undefined &&
    entry.icmpTypeCode === undefined &&
    sameCidr(entry.cidrBlock ?? entry.ipv6CidrBlock, cidr)
  );
}

/*
 * Shadowing. Network ACL rules are evaluated in order, lowest rule number first, and the first
 * rule that matches the traffic decides: https://docs.aws.amazon.com/vpc/latest/userguide/nacl-rules.html
 * So a deny at rule N for a host does nothing for the traffic an earlier ALLOW (rule < N) whose
 * CIDR covers the host already lets in.
 */

/** One earlier allow that lets part (or all) of a denied host's traffic in. */
export interface Shadow {
  readonly ruleNumber: number;
  /** "all", "tcp/443", "udp/1000-2000", "icmp", "proto 47" */
  readonly traffic: string;
  /** true when the allow covers all traffic: the deny blocks nothing */
  readonly complete: boolean;
}

const PROTOCOL_NAMES: Readonly<Record<string, string>> = { '-1': 'all', '6': 'tcp', '17': 'udp', '1': 'icmp', '58': 'icmpv6' };

/** The traffic an entry matches, as text: "all", "tcp/443", "udp/1000-2000", "icmp". */
export function trafficOf(entry: NaclEntry): string {
  const name = PROTOCOL_NAMES[entry.protocol] ?? `proto ${entry.protocol}`;
  if ((entry.protocol === '6' || entry.protocol === '17') && entry.portRange) {
    const { from, to } = entry.portRange;
    if (from !== undefined && to !== undefined) return `${name}/${from === to ? from : `${from}-${to}`}`;
  }
  return name;
}

/**
 * The ingress allows numbered below `ruleNumber` whose CIDR shares addresses with `target` (a
 * canonical address or prefix), lowest first: each lets the matching traffic in before the deny
 * is reached; complete when it lets all traffic of the whole target in.
 */
export function shadowsOf(entries: readonly NaclEntry[], ruleNumber: number, target: string): Shadow[] {
  const shadows: Shadow[] = [];
  const denied = tryParseCidr(target, false);
  if (!denied) return shadows;
  for (const entry of [...entries].sort((a, b) => a.ruleNumber - b.ruleNumber)) {
    if (entry.egress || entry.ruleAction !== 'allow' || entry.ruleNumber >= ruleNumber) continue;
    const cidr = entryCidr(entry);
    if (!cidr || !cidrOverlaps(cidr, denied)) continue;
    const traffic = trafficOf(entry);
    shadows.push({ ruleNumber: entry.ruleNumber, traffic, complete: traffic === 'all' && cidrCovers(cidr, denied) });
  }
  return shadows;
}

/** "nacl (shadowed by rule 10 tcp/443)" style text for a report. */
export function describeShadows(shadows: readonly Shadow[]): string {
  return `shadowed by ${shadows.map((s) => `rule ${s.ruleNumber} ${s.traffic}`).join(', ')}`;
}
