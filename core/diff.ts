/**
 * Desired state ↔ actual state: the change set per enforcer (WAF IP sets, each NACL). Pure and
 * level-triggered: the plan depends only on the records, the clock and what the enforcers hold
 * now, so a retry, a crash half-way or an edit in the console all converge on the next run.
 */
import { type Family, canonicalTarget, targetOf, tryParseCidr } from './address';
import { NeverBlockGuard } from './guard';
import { type NaclChange, type NaclEntry, type Shadow, applyNaclChanges, isNaclShape, ownEntryTarget, planNacl, shadowsOf } from './nacl';
import { isActive, type PolicySettings, type SimulationSettings, simulationOf } from './policy';
import type { DesiredRecord } from './points';
import type { PipelineSettings } from './settings';
import { type WafSetState, type WafSetUpdate, planWaf } from './waf';

export interface ActualState {
  /** `held`: rule numbers this stack freed within the cool-down (core/nacl.ts heldRuleNumbers) */
  readonly nacls: ReadonlyArray<{ readonly aclId: string; readonly entries: readonly NaclEntry[]; readonly held?: readonly number[] }>;
  readonly wafSets: readonly WafSetState[];
}

export interface NaclAclPlan {
  readonly aclId: string;
  readonly changes: readonly NaclChange[];
  readonly evicted: readonly string[];
  readonly full: readonly Family[];
  /** placed denies an earlier foreign allow lets traffic past (rules are evaluated lowest first) */
  readonly shadowed?: ReadonlyArray<{ readonly target: string; readonly ruleNumber: number; readonly by: readonly Shadow[] }>;
  /** ledger rows to delete whose entry the read did not show (core/nacl.ts NaclPlan.unresolved) */
  readonly unresolved?: readonly number[];
}

export interface EnforcementPlan {
  readonly waf: readonly WafSetUpdate[];
  readonly nacl: readonly NaclAclPlan[];
  /** active targets no WAF set had room for */
  readonly wafOverflow: readonly string[];
  /** active records the guard or the policy's widest prefix refuses: never enforced, and removed where they were */
  readonly refused: ReadonlyArray<{ readonly target: string; readonly rule: string }>;
  /** targets enforced nowhere before and somewhere after */
  readonly blocked: readonly string[];
  /** targets enforced somewhere before and nowhere after */
  readonly unblocked: readonly string[];
  /** the desired targets (active, blockable) */
  readonly desired: readonly string[];
}

export interface Candidate {
  readonly target: string;
  readonly family: Family;
  readonly recency: number;
  /** NACL entries take it: a host, or an IPv6 prefix (core/nacl.ts `isNaclShape`), and it is not simulated */
  readonly nacl: boolean;
}

/**
 * The active, blockable records as enforcement candidates; the refused ones apart: what the guard
 * protects, and a CIDR wider than the policy's widest prefix (`widest`). Decide never writes such
 * a record, so one in the desired state was written by something else (another tool, a hand in
 * the console, an older version): enforce refuses it rather than trust the table.
 * Simulation (core/policy.ts simulationOf): a record of a simulated input is no candidate (in
 * `simulated` instead); with `all`, every record is a candidate for WAF only (whose rules then
 * count, lib/WafBlocklist.ts), never for a NACL.
 */
export function desiredCandidates(
  records: readonly DesiredRecord[],
  now: number,
  guard: NeverBlockGuard,
  widest?: Pick<PolicySettings, 'widestIpv4Prefix' | 'widestIpv6Prefix'>,
  simulation?: SimulationSettings,
): { candidates: Candidate[]; refused: Array<{ target: string; rule: string }>; simulated: string[] } {
  const candidates: Candidate[] = [];
  const refused: Array<{ target: string; rule: string }> = [];
  const simulated: string[] = [];
  const seen = new Set<string>();
  for (const record of records) {
    if (!isActive(record, now) || seen.has(record.target)) continue;
    seen.add(record.target);
    const verdict = guard.check(record.target);
    if (!verdict.blockable) {
      refused.push({ target: record.target, rule: verdict.rule });
      continue;
    }
    const cidr = tryParseCidr(record.target, false);
    if (!cidr) {
      refused.push({ target: record.target, rule: 'not an address or CIDR' });
      continue;
    }
    const limit = widest && (cidr.family === 'ipv4' ? widest.widestIpv4Prefix : widest.widestIpv6Prefix);
    if (limit !== undefined && cidr.prefix < limit) {
      refused.push({ target: record.target, rule: `wider than /${limit} (policy.widest${cidr.family === 'ipv4' ? 'Ipv4' : 'Ipv6'}Prefix)` });
      continue;
    }
    const simulatedBy = simulationOf(record, simulation);
    if (simulatedBy !== undefined) simulated.push(targetOf(cidr));
    if (simulatedBy === 'input') continue;
    // lastSeen is the attacker's latest activity; blockedAt breaks ties (a fresh manual block).
    candidates.push({ target: targetOf(cidr), family: cidr.family, recency: Math.max(record.lastSeen, record.blockedAt), nacl: simulatedBy === undefined && isNaclShape(cidr) });
  }
  return { candidates, refused, simulated };
}

export function enforcedTargets(actual: ActualState, range: readonly [number, number]): Set<string> {
  const targets = new Set<string>();
  for (const set of actual.wafSets) {
    for (const raw of set.addresses) {
      const target = canonicalTarget(raw, true);
      if (target !== undefined) targets.add(target);
    }
  }
  for (const acl of actual.nacls) {
    for (const entry of acl.entries) {
      const target = ownEntryTarget(entry, range);
      if (target !== undefined) targets.add(target);
    }
  }
  return targets;
}

/** The complete change set that makes every enforcer hold the desired state. */
export function planEnforcement(records: readonly DesiredRecord[], actual: ActualState, settings: PipelineSettings, now: number): EnforcementPlan {
  const guard = new NeverBlockGuard(settings.guard);
  const range = settings.nacl.ruleRange;
  const { candidates, refused } = desiredCandidates(records, now, guard, settings.policy, settings.simulation);
  const waf = planWaf(actual.wafSets, candidates);
  const naclTargets = candidates.filter((candidate) => candidate.nacl);
  const nacl = actual.nacls.map((acl) => planAcl(acl, naclTargets, settings, now));
  const before = enforcedTargets(actual, range);
  const after = enforcedTargets(applyPlan(actual, { waf: waf.updates, nacl }), range);
  return {
    waf: waf.updates,
    nacl,
    // a pipeline without IP sets (NACLs only: a plane with wafScopes []) has no WAF to be full
    wafOverflow: settings.waf.sets.length === 0 ? [] : waf.overflow,
    refused,
    blocked: [...after].filter((target) => !before.has(target)).sort(),
    unblocked: [...before].filter((target) => !after.has(target)).sort(),
    desired: candidates.map((candidate) => candidate.target),
  };
}

/**
 * One ACL's plan from the candidates NACL entries take (`nacl` true), most recent first or in any
 * order. With `now`, our entries placed less than `settings.nacl.residenceSeconds` ago keep their
 * place while their target is a candidate (core/nacl.ts planNacl `residence`).
 */
export function planAcl(
  acl: { readonly aclId: string; readonly entries: readonly NaclEntry[]; readonly held?: readonly number[] },
  naclCandidates: readonly Candidate[],
  settings: Pick<PipelineSettings, 'nacl'>,
  now?: number,
): NaclAclPlan {
  const { aclId, entries, held } = acl;
  const residence = now !== undefined ? { residence: { now, ms: settings.nacl.residenceSeconds * 1000 } } : {};
  const plan = planNacl({ entries, range: settings.nacl.ruleRange, quota: settings.nacl.quotaPerDirection, candidates: naclCandidates, ...(held ? { held } : {}), ...residence });
  const after = applyNaclChanges(entries, plan.changes);
  const shadowed = [...plan.placed]
    .map(([target, ruleNumber]) => ({ target, ruleNumber, by: shadowsOf(after, ruleNumber, target) }))
    .filter((s) => s.by.length > 0)
    .sort((a, b) => a.ruleNumber - b.ruleNumber);
  return { aclId, changes: plan.changes, evicted: plan.evicted, full: plan.full, shadowed, unresolved: plan.unresolved };
}

/** True when the plan changes nothing. */
export function isNoop(plan: Pick<EnforcementPlan, 'waf' | 'nacl'>): boolean {
  return plan.waf.length === 0 && plan.nacl.every((acl) => acl.changes.length === 0);
}

/** The actual state once the plan is applied: what AWS would hold. */
export function applyPlan(actual: ActualState, plan: Pick<EnforcementPlan, 'waf' | 'nacl'>): ActualState {
  return {
    nacls: actual.nacls.map(({ aclId, entries }) => {
      const changes = plan.nacl.find((acl) => acl.aclId === aclId)?.changes ?? [];
      return { aclId, entries: applyNaclChanges(entries, changes) };
    }),
    wafSets: actual.wafSets.map((set) => {
      const update = plan.waf.find((u) => u.ref.scope === set.ref.scope && u.ref.id === set.ref.id);
      return update ? { ref: set.ref, addresses: [...update.addresses] } : set;
    }),
  };
}

