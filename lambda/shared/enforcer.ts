/**
 * One enforcement run: read the desired state (GSI `active`) and the actual state (NACL entries,
 * IP sets), diff (core/diff.ts), apply. WAF first — it holds every attacker — then the NACLs.
 * A conflict in an ACL (a rule number taken, an entry gone, the quota lower than configured)
 * re-reads and re-plans, at most MAX_PASSES times. In "reconcile" mode every change is drift:
 * each is logged and counted as a repair.
 */
import { type EnforcementPlan, isNoop, planEnforcement } from '../../core/diff';
import { describeShadows } from '../../core/nacl';
import type { BlockRecord } from '../../core/policy';
import type { PipelineSettings } from '../../core/settings';
import type { Clock } from './clock';
import type { NaclAdapter } from './nacl-adapter';
import type { Observability } from './observability';
import type { BlockRepository } from './repository';
import type { WafAdapter } from './waf-adapter';

export const MAX_PASSES = 3;

export type EnforceMode = 'enforce' | 'reconcile';

export interface EnforcerDeps {
  readonly repo: BlockRepository;
  readonly nacl: NaclAdapter;
  readonly waf: WafAdapter;
  readonly settings: PipelineSettings;
  readonly obs: Observability;
  readonly clock: Clock;
}

export interface EnforceSummary {
  readonly passes: number;
  readonly changes: number;
  readonly blocked: number;
  readonly unblocked: number;
  readonly converged: boolean;
  readonly failures: string[];
}

export async function enforce(deps: EnforcerDeps, mode: EnforceMode): Promise<EnforceSummary> {
  const { repo, nacl, waf, settings, obs, clock } = deps;
  let changes = 0;
  let blocked = 0;
  let unblocked = 0;
  const failures: string[] = [];
  const reportedFull = new Set<string>();
  for (let pass = 1; pass <= MAX_PASSES; pass++) {
    const now = clock.now();
    const records: BlockRecord[] = (await repo.listActive()).map((stored) => stored.record);
    const acls = await nacl.describe(settings.nacl.aclIds);
    const sets = await waf.read(settings.waf.sets);
    const plan = planEnforcement(records, { nacls: acls, wafSets: sets }, settings, now);
    report(plan, obs, reportedFull, pass === 1);
    if (isNoop(plan)) return { passes: pass, changes, blocked, unblocked, converged: true, failures };

    let conflict = false;
    for (const update of plan.waf) {
      const read = sets.find((s) => s.ref.scope === update.ref.scope && s.ref.id === update.ref.id);
      try {
        await waf.write(update, read?.lockToken ?? '');
        changes++;
        if (mode === 'reconcile') {
          obs.count('Repairs');
          obs.log.warn('repaired WAF IP set', { set: update.ref.name, added: update.added, removed: update.removed });
        } else {
          obs.log.info('updated WAF IP set', { set: update.ref.name, added: update.added.length, removed: update.removed.length, size: update.addresses.length });
        }
      } catch (error) {
        failures.push(`${update.ref.name}: ${(error as Error).name ?? 'Error'}`);
        obs.log.error('could not update WAF IP set', { set: update.ref.name, error: String(error) });
        if ((error as Error).name === 'WAFLimitsExceededException') obs.count('WafCapacityFull');
      }
    }
    for (const acl of plan.nacl) {
      if (acl.changes.length === 0) continue;
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
        obs.log.warn('network ACL changed under us; re-planning', { aclId: acl.aclId, conflicts: result.conflicts.map((c) => ({ ...c.change, error: c.error })) });
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
    if (!conflict && failures.length === 0) {
      return { passes: pass, changes, blocked, unblocked, converged: true, failures };
    }
    if (failures.length) break;
  }
  return { passes: MAX_PASSES, changes, blocked, unblocked, converged: false, failures };
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
