/**
 * One enforcement run: read the desired state (GSI `active`) and the actual state (NACL entries,
 * IP sets), diff (core/diff.ts), apply. WAF first — it holds every attacker — then the NACLs.
 * A conflict in an ACL (a rule number taken, an entry gone, the quota lower than configured)
 * re-reads and re-plans, at most MAX_PASSES times. In "reconcile" mode every change is drift:
 * each is logged and counted as a repair.
 *
 * Every enforcement point — each WAF IP set, each network ACL — is read and written on its own:
 * one that fails (a set deleted out of band, a permission missing, an API failing) is recorded
 * as a failure and the others are still enforced, so a WAF that keeps failing never holds back
 * the NACL entries (nor the reverse). A WAF family with a set that could not be read is not
 * written at all this run (its addresses are unknown, so a write could drop them). The caller
 * decides what a failure means for the run (lambda/enforce/handler.ts): a transient one is
 * retried shortly, a permanent one by the next reconcile.
 */
import type { Family } from '../../core/address';
import { type EnforcementPlan, isNoop, planEnforcement } from '../../core/diff';
import { describeShadows, type NaclChange, type NaclEntry } from '../../core/nacl';
import type { BlockRecord } from '../../core/policy';
import type { PipelineSettings, WafSetRef } from '../../core/settings';
import type { Clock } from './clock';
import { ERR_RETIRED, type NaclAdapter } from './nacl-adapter';
import type { Observability } from './observability';
import type { BlockRepository } from './repository';
import { errorName } from './retry';
import { ERR_LIMITS, ERR_NONEXISTENT, type ReadSet, type WafAdapter } from './waf-adapter';

export const MAX_PASSES = 3;
/**
 * UpdateIPSet attempts within one run: a WAF that keeps failing costs the run a few seconds
 * (the adapter's backoff), not a minute, before the NACLs are written.
 */
export const WAF_WRITE_ATTEMPTS = 3;

export type EnforceMode = 'enforce' | 'reconcile';

export interface EnforcerDeps {
  readonly repo: BlockRepository;
  readonly nacl: NaclAdapter;
  readonly waf: WafAdapter;
  readonly settings: PipelineSettings;
  readonly obs: Observability;
  readonly clock: Clock;
}

/** One enforcement point that could not be brought to the desired state this run. */
export interface EnforceFailure {
  /** "waf:<set name>" or "nacl:<acl id>" */
  readonly point: string;
  readonly error: string;
  readonly message: string;
  /** worth retrying soon (throttling, internal errors, timeouts); false: needs an operator */
  readonly transient: boolean;
}

export interface EnforceSummary {
  readonly passes: number;
  readonly changes: number;
  readonly blocked: number;
  readonly unblocked: number;
  /**
   * true only when every enforcement point holds the whole desired state: no failure, no
   * conflict left, and nothing in `incomplete`
   */
  readonly converged: boolean;
  /**
   * why the desired state is not fully enforced although nothing failed: a deny an earlier allow
   * shadows, a full IP set or ACL (attackers left out of it), ledger entries a read has not shown
   */
  readonly incomplete?: string[];
  readonly failures: EnforceFailure[];
  /** records the desired state held in the last pass */
  readonly desired: number;
}

/** Errors no retry within minutes will cure: a resource gone, a permission or parameter wrong, a limit reached. */
const PERMANENT_ERRORS = new Set([
  ERR_NONEXISTENT,
  ERR_LIMITS,
  'WAFInvalidParameterException',
  'WAFInvalidOperationException',
  'WAFInvalidPermissionPolicyException',
  'AccessDeniedException',
  'AccessDenied',
  'UnauthorizedOperation',
  'ValidationException',
  'InvalidParameterValue',
  'InvalidNetworkAclID.NotFound',
  ERR_RETIRED,
]);

export function failureOf(point: string, error: unknown): EnforceFailure {
  const name = errorName(error) ?? 'Error';
  const message = error instanceof Error ? error.message : String(error);
  return { point, error: name, message, transient: !PERMANENT_ERRORS.has(name) };
}

interface ReadState {
  readonly acls: Array<{ aclId: string; entries: NaclEntry[]; held?: number[]; foreignInRange?: NaclEntry[]; strays?: NaclChange[] }>;
  readonly sets: ReadSet[];
  /** families with a set that could not be read: no WAF write for them this run */
  readonly unreadable: Set<Family>;
  /** families with a configured set that does not exist */
  readonly missing: Set<Family>;
}

async function readActual(deps: EnforcerDeps, failures: EnforceFailure[], first: boolean): Promise<ReadState> {
  const { nacl, waf, settings, obs } = deps;
  const acls: ReadState['acls'] = [];
  for (const aclId of settings.nacl.aclIds) {
    try {
      const got = await nacl.describe([aclId]);
      if (got.length === 0) {
        // the adapter logged it; an ACL that does not exist is a configuration error
        if (first) failures.push({ point: `nacl:${aclId}`, error: 'InvalidNetworkAclID.NotFound', message: `network ACL ${aclId} does not exist`, transient: false });
        continue;
      }
      acls.push(...got);
    } catch (error) {
      failures.push(failureOf(`nacl:${aclId}`, error));
      obs.log.error('could not read network ACL; its entries are left as they are this run', { aclId, error: String(error) });
    }
  }
  const sets: ReadSet[] = [];
  const unreadable = new Set<Family>();
  const missing = new Set<Family>();
  for (const ref of settings.waf.sets) {
    try {
      const got = await waf.read([ref]);
      if (got.length === 0) {
        missing.add(ref.family);
        if (first) reportMissingSet(ref, obs, failures, 'GetIPSet');
        continue;
      }
      sets.push(...got);
    } catch (error) {
      unreadable.add(ref.family);
      failures.push(failureOf(`waf:${ref.name}`, error));
      obs.log.error('could not read WAF IP set; its family is not written this run', { set: ref.name, id: ref.id, family: ref.family, error: String(error) });
    }
  }
  return { acls, sets, unreadable, missing };
}

function reportMissingSet(ref: WafSetRef, obs: Observability, failures: EnforceFailure[], call: string): void {
  obs.count('WafSetMissing');
  obs.log.error('WAF IP set does not exist (deleted out of band, or a wrong id): its addresses are not blocked in WAF', {
    set: ref.name,
    id: ref.id,
    scope: ref.scope,
    family: ref.family,
    call,
  });
  failures.push({ point: `waf:${ref.name}`, error: ERR_NONEXISTENT, message: `WAF IP set ${ref.name} (${ref.scope}/${ref.id}) does not exist`, transient: false });
}

export async function enforce(deps: EnforcerDeps, mode: EnforceMode): Promise<EnforceSummary> {
  const { repo, nacl, waf, settings, obs, clock } = deps;
  let changes = 0;
  let blocked = 0;
  let unblocked = 0;
  let desired = 0;
  const failures: EnforceFailure[] = [];
  const reportedFull = new Set<string>();
  const configured = new Set(settings.waf.sets.map((ref) => ref.family));
  const conflicted = new Map<string, string>();
  for (let pass = 1; pass <= MAX_PASSES; pass++) {
    const now = clock.now();
    const records: BlockRecord[] = (await repo.listActive()).map((stored) => stored.record);
    desired = records.length;
    const actual = await readActual(deps, failures, pass === 1);
    const planned = planEnforcement(records, { nacls: actual.acls, wafSets: actual.sets }, settings, now);
    const familyOf = (address: string): Family => (address.includes(':') ? 'ipv6' : 'ipv4');
    // our entries outside the range (a run on the old range after an Update's cleanup) go first
    const strays = new Map(actual.acls.map((acl) => [acl.aclId, acl.strays ?? []]));
    const plan: EnforcementPlan = {
      ...planned,
      nacl: planned.nacl.map((acl) => (strays.get(acl.aclId)?.length ? { ...acl, changes: [...strays.get(acl.aclId)!, ...acl.changes] } : acl)),
      waf: planned.waf.filter((update) => !actual.unreadable.has(update.ref.family)),
      // a family short of a set it should have is a failure of its own, reported above, not "full"
      // a family with no set configured is not enforced in WAF at all (a NACL-only stack): not "full"
      wafOverflow: planned.wafOverflow.filter(
        (address) => configured.has(familyOf(address)) && !actual.unreadable.has(familyOf(address)) && !actual.missing.has(familyOf(address)),
      ),
    };
    report(plan, obs, reportedFull, pass === 1);
    if (pass === 1) reportForeign(actual, obs);
    const incomplete = incompleteOf(plan);
    if (isNoop(plan)) return { passes: pass, changes, blocked, unblocked, converged: failures.length === 0 && incomplete.length === 0, failures, desired, incomplete };

    let conflict = false;
    conflicted.clear();
    for (const update of plan.waf) {
      const read = actual.sets.find((s) => s.ref.scope === update.ref.scope && s.ref.id === update.ref.id);
      try {
        await waf.write(update, read?.lockToken ?? '', WAF_WRITE_ATTEMPTS);
        changes++;
        if (mode === 'reconcile') {
          obs.count('Repairs');
          obs.log.warn('repaired WAF IP set', { set: update.ref.name, added: update.added, removed: update.removed });
        } else {
          obs.log.info('updated WAF IP set', { set: update.ref.name, added: update.added.length, removed: update.removed.length, size: update.addresses.length });
        }
      } catch (error) {
        if (errorName(error) === ERR_NONEXISTENT) {
          reportMissingSet(update.ref, obs, failures, 'UpdateIPSet');
          continue;
        }
        failures.push(failureOf(`waf:${update.ref.name}`, error));
        obs.log.error('could not update WAF IP set', { set: update.ref.name, error: String(error) });
        if (errorName(error) === ERR_LIMITS) obs.count('WafCapacityFull');
      }
    }
    for (const acl of plan.nacl) {
      if (acl.changes.length === 0) continue;
      try {
        const result = await nacl.apply(acl.aclId, acl.changes);
        changes += result.applied.length;
        for (const change of result.applied) {
          const attributes = { aclId: acl.aclId, op: change.op, ruleNumber: change.ruleNumber, cidr: change.cidr };
          if (mode === 'reconcile') {
            obs.count('Repairs');
            obs.log.warn('repaired network ACL entry', attributes);
          } else {
            obs.log.info('network ACL entry', attributes);
          }
        }
        if (result.quotaFull) obs.count('NaclQuotaFull');
        if (result.conflicts.length) {
          conflict = true;
          conflicted.set(acl.aclId, result.conflicts.map((c) => `${c.change.op} ${c.change.ruleNumber} ${c.change.cidr}: ${c.error}`).join('; '));
          obs.log.warn('network ACL changed under us; re-planning', { aclId: acl.aclId, conflicts: result.conflicts.map((c) => ({ ...c.change, error: c.error })) });
        }
      } catch (error) {
        failures.push(failureOf(`nacl:${acl.aclId}`, error));
        obs.log.error('could not change network ACL; the other enforcement points are still enforced', { aclId: acl.aclId, error: String(error) });
      }
    }
    if (pass === 1) {
      // The first plan is the run's intent; later passes only finish it.
      blocked = plan.blocked.length;
      unblocked = plan.unblocked.length;
      obs.count('Blocks', plan.blocked.length);
      obs.count('Unblocks', plan.unblocked.length);
      for (const acl of plan.nacl) obs.count('Evictions', acl.evicted.length);
      const byTarget = new Map(records.map((r) => [r.target, r]));
      const lags = plan.blocked
        .map((target) => byTarget.get(target))
        .filter((r): r is BlockRecord => r !== undefined)
        .map((r) => (clock.now() - r.blockedAt) / 1000);
      // decision → enforced; a repair of an old block is drift, not lag
      if (lags.length && mode === 'enforce') obs.seconds('EnforcementLagSeconds', Math.max(0, ...lags));
    }
    if (!conflict || failures.length) {
      return { passes: pass, changes, blocked, unblocked, converged: !conflict && failures.length === 0 && incomplete.length === 0, failures, desired, incomplete };
    }
  }
  // Every pass met a conflict (stale reads, a lost answer): a transient failure, so the batch is
  // retried shortly (lambda/enforce/handler.ts) instead of waiting for the next reconcile.
  for (const [aclId, what] of conflicted) {
    failures.push({ point: `nacl:${aclId}`, error: 'Conflict', message: `the ACL did not settle in ${MAX_PASSES} passes: ${what}`, transient: true });
  }
  return { passes: MAX_PASSES, changes, blocked, unblocked, converged: false, failures, desired, incomplete: [] };
}

/** What keeps a plan without failures from being the whole desired state (EnforceSummary.incomplete). */
function incompleteOf(plan: EnforcementPlan): string[] {
  const reasons: string[] = [];
  if (plan.wafOverflow.length) reasons.push(`waf: IP sets full, ${plan.wafOverflow.length} addresses left out`);
  for (const acl of plan.nacl) {
    for (const shadow of acl.shadowed ?? []) reasons.push(`nacl:${acl.aclId}: ${shadow.target} at rule ${shadow.ruleNumber} ${describeShadows(shadow.by)}`);
    for (const family of acl.full) reasons.push(`nacl:${acl.aclId}: ${family} entries full, ${acl.evicted.length} evicted (blocked in WAF only)`);
    if (acl.unresolved?.length) reasons.push(`nacl:${acl.aclId}: rules ${acl.unresolved.join(', ')} to remove once a read shows them`);
  }
  return reasons;
}

/** Entries inside our range that are not ours: another stack using our range, or an operator. Never touched. */
function reportForeign(actual: ReadState, obs: Observability): void {
  for (const acl of actual.acls) {
    const foreign = acl.foreignInRange ?? [];
    if (!foreign.length) continue;
    obs.count('NaclForeignInRange', foreign.length);
    obs.log.warn('entries inside this stack\'s rule range that it did not place (another stack on the same range, or an operator): left as they are', {
      aclId: acl.aclId,
      entries: foreign.map((e) => ({ ruleNumber: e.ruleNumber, ruleAction: e.ruleAction, protocol: e.protocol, cidr: e.cidrBlock ?? e.ipv6CidrBlock })),
    });
  }
}

function report(plan: EnforcementPlan, obs: Observability, reportedFull: Set<string>, first: boolean): void {
  if (first) {
    for (const refused of plan.refused) {
      obs.log.warn('active record is protected by the never-block rules; not enforced', refused);
    }
  }
  if (plan.wafOverflow.length && first) {
    obs.count('WafCapacityFull', plan.wafOverflow.length);
    obs.log.error('WAF IP sets are full; add sets of this family', { overflow: plan.wafOverflow.length, sample: plan.wafOverflow.slice(0, 5) });
  }
  for (const acl of plan.nacl) {
    for (const shadow of first ? (acl.shadowed ?? []) : []) {
      obs.count('NaclShadowed');
      obs.log.warn(`nacl (${describeShadows(shadow.by)})`, { aclId: acl.aclId, target: shadow.target, ruleNumber: shadow.ruleNumber, shadowedBy: shadow.by });
    }
    for (const family of acl.full) {
      const key = `${acl.aclId}/${family}`;
      if (reportedFull.has(key)) continue;
      reportedFull.add(key);
      obs.count('NaclQuotaFull');
      obs.log.info('network ACL quota reached; least recently active attackers are blocked in WAF only', { aclId: acl.aclId, family, evicted: acl.evicted });
    }
  }
}
