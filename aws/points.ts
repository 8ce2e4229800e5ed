/**
 * The AWS enforcement points (core/points.ts): a family's IP sets in one WAF scope, and one VPC
 * network ACL. Each reads, plans and applies on its own; lambda/shared/enforcer.ts runs them.
 *
 * WafPoint keeps what it read and wrote in a cache the enforce handler holds for the container
 * (EnforcerState.sets: per set its addresses and lock token), so an incremental run writes a
 * delta without a GetIPSet: a set changed since (another writer, an operator in the console)
 * makes UpdateIPSet fail with WAFOptimisticLockException, and the adapter reads it again and
 * applies the delta on the fresh contents (aws/waf-adapter.ts write's `rebase`).
 * https://docs.aws.amazon.com/waf/latest/APIReference/API_UpdateIPSet.html
 */
import { type Family, canonicalTarget } from '../core/address';
import { type Candidate, desiredCandidates, planAcl } from '../core/diff';
import { NeverBlockGuard } from '../core/guard';
import { applyNaclChanges, describeShadows, type NaclChange, type NaclEntry, ownEntryTarget, RULE_NUMBER_COOL_DOWN_MS, residentTargets } from '../core/nacl';
import { type ApplyResult, type DesiredInput, type DesiredRecord, type EnforcementPoint, latestPerTarget, naclPointId, type PointFailure, wafPointId } from '../core/points';
import type { PipelineSettings, WafSetRef } from '../core/settings';
import { WAF_MAX_ADDRESSES_PER_SET } from '../core/settings';
import { type WafChange, type WafSetUpdate, planWaf, planWafDelta, wafAddressOf } from '../core/waf';
import type { ChangedRecord } from '../core/policy';
import { ERR_RETIRED, type NaclAdapter } from './nacl-adapter';
import type { Observability } from './observability';
import { errorName } from './retry';
import { ERR_LIMITS, ERR_NONEXISTENT, type ReadSet, type WafAdapter } from './waf-adapter';

/** UpdateIPSet attempts within one run: a WAF that keeps failing costs the run seconds, not a minute. */
export const WAF_WRITE_ATTEMPTS = 3;

/**
 * How long an incremental run may leave a removal from a WAF IP set pending (core/waf.ts
 * WafDeferral), from the removal's due time (a record's expiresAt for an expiry lift, else its
 * change time): 45 s. Each run writes one set per scope and family, the one whose pending removal
 * is due first (or the one taking new blocks), so with 10 full sets and a run every 2–3 s each set
 * comes round every ≈ 20–30 s. The deferral must exceed that round plus the 7 s a run leaves for
 * the next one (lambda/shared/enforcer.ts wafWriteBy), or removals fall due faster than the
 * rounds and every run writes several sets: at 30 s a us-east-1 plane with two scopes (two paced
 * calls a set) fell into runs of 10–17 s back to back in bench/incremental.bench.ts; at 45 s it
 * keeps one set a run. A removal seen past its deadline is written at once, one seen before it by
 * the deadline: 45 s after its expiry, inside the 60 s of issue 17; where a family has one set
 * (fewer than 10,000 blocked, bench/convergence.bench.ts) the set with the removal is the one a
 * run writes, so nothing waits.
 */
export const LIFT_DEFER_MS = 45_000;

/** Pending removals per set ("<scope>/<id>": address → deadline) and the time by which this run writes a pending removal. */
export interface WafRunDeferral {
  /** the container's pending removals (lambda/shared/enforcer.ts EnforcerState.wafPending): read, and kept up to date by apply */
  readonly pending: Map<string, Map<string, number>>;
  readonly writeBy: number;
}

/** A set as last read or written: its addresses and the token to write it with next. */
export interface CachedSet {
  readonly addresses: readonly string[];
  readonly lockToken: string;
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

export function failureOf(point: string, error: unknown): PointFailure {
  const name = errorName(error) ?? 'Error';
  const message = error instanceof Error ? error.message : String(error);
  return { point, error: name, message, transient: !PERMANENT_ERRORS.has(name) };
}

function setKey(ref: WafSetRef): string {
  return `${ref.scope}/${ref.id}`;
}

function targetsOf(addresses: Iterable<string>): Set<string> {
  const targets = new Set<string>();
  for (const raw of addresses) {
    const target = canonicalTarget(raw, true);
    if (target !== undefined) targets.add(target);
  }
  return targets;
}

/**
 * The targets of one set's address list, parsed once per list: a cached set's list is the same
 * array from run to run, so an incremental run does not parse 100,000 addresses twice to say
 * what it blocked (the bench measured ≈ 5 s of CPU a run before). A pure memo keyed by the array:
 * nothing in it belongs to a plane.
 */
const listTargetsMemo = new WeakMap<readonly string[], ReadonlySet<string>>();
function listTargets(list: readonly string[]): ReadonlySet<string> {
  let targets = listTargetsMemo.get(list);
  if (!targets) {
    targets = targetsOf(list);
    listTargetsMemo.set(list, targets);
  }
  return targets;
}

/** A written list's targets from the list it replaced and the update's delta, when the write carried exactly the planned list. */
function rememberWritten(previous: readonly string[] | undefined, update: WafSetUpdate, written: readonly string[]): void {
  if (previous === undefined || written !== update.addresses || listTargetsMemo.has(written)) return;
  const targets = new Set(listTargets(previous));
  for (const removed of targetsOf(update.removed)) targets.delete(removed);
  for (const added of targetsOf(update.added)) targets.add(added);
  listTargetsMemo.set(written, targets);
}

function unionTargets(lists: Iterable<readonly string[]>): Set<string> {
  const out = new Set<string>();
  for (const list of lists) for (const target of listTargets(list)) out.add(target);
  return out;
}

export interface PointContext {
  readonly settings: PipelineSettings;
  readonly obs: Observability;
  /** reconcile: every change is drift, logged and counted as a repair */
  readonly repair: boolean;
  /** one run's candidates per desired input, computed once for all its points (newPointContext) */
  readonly candidates: Map<DesiredInput, { readonly now: number; readonly candidates: readonly Candidate[]; readonly refused: ReadonlyArray<{ target: string; rule: string }> }>;
  /** the WAF pacer keys (account and Region) an UpdateIPSet was sent in this run: a later point there defers what can wait */
  readonly wafWrites: Set<string>;
}

export function newPointContext(settings: PipelineSettings, obs: Observability, repair: boolean): PointContext {
  return { settings, obs, repair, candidates: new Map(), wafWrites: new Set() };
}

/**
 * The active, blockable records of a full or recent input as candidates (core/diff.ts
 * desiredCandidates), computed once per run and input: at 100,000 records it is the costliest
 * step of a plan, and every point of the run needs it.
 */
export function candidatesOf(ctx: PointContext, input: Exclude<DesiredInput, { kind: 'changes' }>, now: number): readonly Candidate[] {
  return desiredOf(ctx, input, now).candidates;
}

/** candidatesOf and the records refused (guard, widest prefix), computed once per run and input. */
export function desiredOf(ctx: PointContext, input: Exclude<DesiredInput, { kind: 'changes' }>, now: number) {
  const known = ctx.candidates.get(input);
  if (known && known.now === now) return known;
  const { candidates, refused } = desiredCandidates(input.records, now, new NeverBlockGuard(ctx.settings.guard), ctx.settings.policy, ctx.settings.simulation);
  const result = { now, candidates, refused };
  ctx.candidates.set(input, result);
  return result;
}

interface WafActual {
  readonly sets: ReadSet[];
  readonly failures: PointFailure[];
  /** a set could not be read: its addresses are unknown, so the point writes nothing this run */
  readonly unreadable: boolean;
  /** a configured set does not exist: its failure is reported; overflow is not "full" then */
  readonly missing: boolean;
  /** the pacer's key of the point's scope (WafAdapter.pacerKey: its account and Region) */
  readonly pacerKey: string;
}

interface WafPointPlan {
  readonly actual: WafActual;
  readonly updates: readonly WafSetUpdate[];
  readonly overflow: readonly string[];
  /** for an incremental plan: recomputes a set's list from fresh contents on a lock conflict */
  readonly changes?: readonly WafChange[];
  /** for an incremental plan with a deferral: the removals still pending after the updates, per set, and those the updates carry */
  readonly pending?: Map<string, Map<string, number>>;
  readonly carried?: Map<string, Map<string, number>>;
}

/**
 * When a removal of `record` from WAF became due: its expiry (expiresAt) for a record that
 * expired — lifted by expiry, or still active past it — else the time of the change that made it
 * not blockable (an unblock, a record the guard or the simulation now refuses).
 */
export function removalDueOf(record: ChangedRecord, now: number): number {
  if (record.active) return record.expiresAt <= now ? record.expiresAt : record.changedAt;
  return Math.min(record.changedAt, record.expiresAt);
}

/**
 * The desired WAF state of each changed target: present when active, blockable and not of a
 * simulated input (the full run's rules), else absent, with the deadline of its removal (due +
 * LIFT_DEFER_MS).
 */
export function wafChangesOf(input: Extract<DesiredInput, { kind: 'changes' }>, now: number, settings: PipelineSettings): WafChange[] {
  const guard = new NeverBlockGuard(settings.guard);
  const changes: WafChange[] = [];
  for (const record of latestPerTarget(input.changes)) {
    const { candidates } = desiredCandidates([record], now, guard, settings.policy, settings.simulation);
    const candidate = candidates[0];
    const address = wafAddressOf(candidate?.target ?? record.target);
    if (address === undefined) continue;
    const family = address.includes(':') ? 'ipv6' : 'ipv4';
    changes.push(candidate !== undefined ? { address, family, present: true } : { address, family, present: false, deadline: removalDueOf(record, now) + LIFT_DEFER_MS });
  }
  return changes;
}

/** One family's IP sets in one WAF scope: "waf:<scope>/<family>". */
export class WafPoint implements EnforcementPoint<WafActual, WafPointPlan> {
  readonly id: string;

  constructor(
    readonly scope: WafSetRef['scope'],
    readonly family: Family,
    private readonly refs: readonly WafSetRef[],
    private readonly waf: WafAdapter,
    private readonly ctx: PointContext,
    /** the container's cache of the sets; read from, and kept up to date by every write */
    private readonly cache: Map<string, CachedSet>,
    /** take a set from the cache instead of GetIPSet when it holds it (incremental runs) */
    private readonly useCache: boolean,
    private readonly maxPerSet = WAF_MAX_ADDRESSES_PER_SET,
    /** an incremental run's deferred removals; without it every removal is written at once */
    private readonly deferral?: WafRunDeferral,
  ) {
    this.id = wafPointId(scope, family);
  }

  async read(): Promise<WafActual> {
    const { obs } = this.ctx;
    const sets: ReadSet[] = [];
    const failures: PointFailure[] = [];
    let unreadable = false;
    let missing = false;
    for (const ref of this.refs) {
      const cached = this.useCache ? this.cache.get(setKey(ref)) : undefined;
      if (cached) {
        sets.push({ ref, addresses: cached.addresses, lockToken: cached.lockToken });
        continue;
      }
      try {
        const got = await this.waf.read([ref]);
        if (got.length === 0) {
          missing = true;
          this.cache.delete(setKey(ref));
          failures.push(reportMissingSet(ref, obs, 'GetIPSet'));
          continue;
        }
        for (const set of got) {
          sets.push(set);
          this.cache.set(setKey(ref), { addresses: set.addresses, lockToken: set.lockToken });
        }
      } catch (error) {
        unreadable = true;
        this.cache.delete(setKey(ref));
        failures.push(failureOf(`waf:${ref.name}`, error));
        obs.log.error('could not read WAF IP set; its family is not written this run', { set: ref.name, id: ref.id, family: ref.family, error: String(error) });
      }
    }
    const pacerKey = this.refs[0] ? await this.waf.pacerKey(this.refs[0]) : this.scope;
    return { sets, failures, unreadable, missing, pacerKey };
  }

  plan(input: DesiredInput, actual: WafActual, now: number): WafPointPlan {
    if (actual.unreadable) return { actual, updates: [], overflow: [] };
    const { settings } = this.ctx;
    if (input.kind === 'changes') {
      const changes = wafChangesOf(input, now, settings).filter((change) => change.family === this.family);
      const delta = planWafDelta(actual.sets, changes, this.maxPerSet, this.deferral ? { pending: this.deferral.pending, writeBy: this.deferral.writeBy, opportunistic: !this.ctx.wafWrites.has(actual.pacerKey) } : undefined);
      return { actual, updates: delta.updates, overflow: delta.overflow, changes, ...(this.deferral ? { pending: delta.pending, carried: delta.carried } : {}) };
    }
    const mine: Candidate[] = candidatesOf(this.ctx, input, now).filter((candidate) => candidate.family === this.family);
    const plan = planWaf(actual.sets, mine, this.maxPerSet);
    return { actual, updates: plan.updates, overflow: plan.overflow };
  }

  async apply(plan: WafPointPlan): Promise<ApplyResult> {
    const { obs, repair } = this.ctx;
    const failures = [...plan.actual.failures];
    const incomplete: string[] = [];
    const lists = new Map(plan.actual.sets.map((set) => [setKey(set.ref), set.addresses]));
    const before = unionTargets(lists.values());
    // a point short of a set it should have reports that failure, not "full"
    if (plan.overflow.length && !plan.actual.missing) {
      obs.count('WafCapacityFull', plan.overflow.length);
      obs.log.error('WAF IP sets are full; add sets of this family', { point: this.id, overflow: plan.overflow.length, sample: plan.overflow.slice(0, 5) });
      incomplete.push(`${this.id}: IP sets full, ${plan.overflow.length} addresses left out`);
    }
    // the pending removals of this point's sets are what the plan left; a set it writes carries its
    // own (core/waf.ts planWafDelta) and takes them back if the write fails (they are still due)
    const pending = this.deferral?.pending;
    if (pending && plan.pending) {
      for (const ref of this.refs) {
        const key = setKey(ref);
        const left = plan.pending.get(key);
        if (left?.size) pending.set(key, left);
        else pending.delete(key);
      }
    }
    let applied = 0;
    for (const update of plan.updates) {
      const key = setKey(update.ref);
      const read = plan.actual.sets.find((set) => setKey(set.ref) === key);
      const rebase = plan.changes
        ? (fresh: readonly string[]) => {
            // the delta again, on what the set holds now: only this set's additions and removals
            const mine = [...update.added.map((address) => ({ address, family: this.family, present: true })), ...update.removed.map((address) => ({ address, family: this.family, present: false }))];
            const again = planWafDelta([{ ref: update.ref, addresses: fresh }], mine, this.maxPerSet);
            if (again.overflow.length) {
              obs.count('WafCapacityFull', again.overflow.length);
              obs.log.error('WAF IP set filled up under this run; the full run places these', { set: update.ref.name, overflow: again.overflow });
            }
            return again.updates[0]?.addresses ?? fresh;
          }
        : undefined;
      this.ctx.wafWrites.add(plan.actual.pacerKey);
      try {
        const written = await this.waf.write(update, read?.lockToken ?? '', WAF_WRITE_ATTEMPTS, rebase);
        rememberWritten(lists.get(key), update, written.addresses);
        lists.set(key, written.addresses);
        if (written.lockToken) this.cache.set(key, { addresses: written.addresses, lockToken: written.lockToken });
        else this.cache.delete(key);
        applied++;
        if (repair) {
          obs.count('Repairs');
          obs.log.warn('repaired WAF IP set', { set: update.ref.name, added: update.added, removed: update.removed });
        } else {
          obs.log.info('updated WAF IP set', { set: update.ref.name, added: update.added.length, removed: update.removed.length, size: written.addresses.length });
        }
      } catch (error) {
        // what the set holds now is unknown: the next run reads it
        this.cache.delete(key);
        const back = plan.carried?.get(key);
        if (pending && back?.size) pending.set(key, back);
        if (errorName(error) === ERR_NONEXISTENT) {
          failures.push(reportMissingSet(update.ref, obs, 'UpdateIPSet'));
          lists.delete(key);
          continue;
        }
        failures.push(failureOf(`waf:${update.ref.name}`, error));
        obs.log.error('could not update WAF IP set', { set: update.ref.name, error: String(error) });
        if (errorName(error) === ERR_LIMITS) obs.count('WafCapacityFull');
      }
    }
    return { applied, failures, incomplete, before, after: unionTargets(lists.values()) };
  }
}

function reportMissingSet(ref: WafSetRef, obs: Observability, call: string): PointFailure {
  obs.count('WafSetMissing');
  obs.log.error('WAF IP set does not exist (deleted out of band, or a wrong id): its addresses are not blocked in WAF', {
    set: ref.name,
    id: ref.id,
    scope: ref.scope,
    family: ref.family,
    call,
  });
  return { point: `waf:${ref.name}`, error: ERR_NONEXISTENT, message: `WAF IP set ${ref.name} (${ref.scope}/${ref.id}) does not exist`, transient: false };
}

/** The WAF points of the configured sets: one per scope and family, in configuration order. */
export function wafPointsOf(
  refs: readonly WafSetRef[],
  waf: WafAdapter,
  ctx: PointContext,
  cache: Map<string, CachedSet>,
  useCache: boolean,
  maxPerSet = WAF_MAX_ADDRESSES_PER_SET,
  deferral?: WafRunDeferral,
): WafPoint[] {
  const groups = new Map<string, WafSetRef[]>();
  for (const ref of refs) {
    const key = `${ref.scope}/${ref.family}`;
    groups.set(key, [...(groups.get(key) ?? []), ref]);
  }
  return [...groups.values()].map((group) => new WafPoint(group[0]!.scope, group[0]!.family, group, waf, ctx, cache, useCache, maxPerSet, deferral));
}

type NaclRead = {
  aclId: string;
  entries: NaclEntry[];
  held?: number[];
  heldUntil?: ReadonlyMap<number, number>;
  foreignInRange?: NaclEntry[];
  strays?: NaclChange[];
  /** taken from the container's cache (NaclCache), not read: a plan that changes anything reads first */
  cached?: boolean;
};

/**
 * Each ACL as this container last read or wrote it (EnforcerState.nacls): its entries (with the
 * ledger's placedAt), the freed numbers' cool-downs and the foreign entries of our range. An
 * incremental run plans against it and reads the ACL (DescribeNetworkAcls, the ledger) only when
 * that plan changes something; a console edit under it is the reconcile's to repair (a full run
 * always reads).
 */
export type NaclCache = Map<string, NaclRead>;

/**
 * The records an incremental run knows of the targets that hold an entry (EnforcerState.naclKnown,
 * kept current by the changes each run reads): the records of residents that are no longer among
 * the most recent, so an eligible resident keeps its place and a lifted one loses it at once.
 */
export type NaclKnownRecords = Map<string, DesiredRecord>;

interface NaclPointOptions {
  /** the container's cache of the ACLs: kept up to date by every read and write of this point */
  readonly cache?: NaclCache;
  /** take the ACL from the cache instead of reading it (incremental runs) */
  readonly useCache?: boolean;
  /** records of the targets that hold entries, for a `recent` input (incremental runs) */
  readonly known?: NaclKnownRecords;
}

interface NaclPointPlan {
  readonly actual: NaclRead | undefined;
  /** what the plan was made from, to plan again on a fresh read (a cached plan that changes something) */
  readonly input?: DesiredInput;
  readonly now?: number;
  readonly changes: readonly NaclChange[];
  readonly evicted: readonly string[];
  readonly full: readonly Family[];
  readonly shadowed: ReadonlyArray<{ readonly target: string; readonly ruleNumber: number; readonly by: Parameters<typeof describeShadows>[0] }>;
  readonly unresolved: readonly number[];
}

/** One network ACL: "nacl:<aclId>". Plans from every active record (a full run) or the most recent ones (core/points.ts `recent`). */
export class NaclPoint implements EnforcementPoint<NaclRead | undefined, NaclPointPlan> {
  readonly id: string;
  private passes = 0;
  private readonly reportedFull = new Set<Family>();

  constructor(
    readonly aclId: string,
    private readonly nacl: NaclAdapter,
    private readonly ctx: PointContext,
    private readonly options: NaclPointOptions = {},
  ) {
    this.id = naclPointId(aclId);
  }

  async read(): Promise<NaclRead | undefined> {
    this.passes++;
    const cached = this.options.useCache && this.passes === 1 ? this.options.cache?.get(this.aclId) : undefined;
    if (cached) return { ...cached, cached: true };
    return this.readFresh();
  }

  private async readFresh(): Promise<NaclRead | undefined> {
    this.options.cache?.delete(this.aclId);
    try {
      const got = (await this.nacl.describe([this.aclId]))[0];
      if (got) this.options.cache?.set(this.aclId, got);
      return got;
    } catch (error) {
      this.ctx.obs.log.error('could not read network ACL; its entries are left as they are this run', { aclId: this.aclId, error: String(error) });
      throw error;
    }
  }

  plan(input: DesiredInput, actual: NaclRead | undefined, now: number): NaclPointPlan {
    if (!actual) return { actual, changes: [], evicted: [], full: [], shadowed: [], unresolved: [] };
    if (input.kind === 'changes') throw new Error('a network ACL is planned from the active records (full or recent), not from changes');
    const candidates = candidatesOf(this.ctx, input, now).filter((candidate) => candidate.nacl);
    const { settings } = this.ctx;
    if (input.kind === 'recent' && this.options.known) {
      // a resident no longer among the most recent: planned from its known record (eligible or not)
      const listed = new Set(input.records.map((record) => record.target));
      const extra: DesiredRecord[] = [];
      for (const target of residentTargets(actual.entries, settings.nacl.ruleRange, { now, ms: settings.nacl.residenceSeconds * 1000 })) {
        const record = this.options.known.get(target);
        if (record && !listed.has(target)) extra.push(record);
      }
      if (extra.length) candidates.push(...desiredCandidates(extra, now, new NeverBlockGuard(settings.guard), settings.policy, settings.simulation).candidates.filter((candidate) => candidate.nacl));
    }
    const held = actual.heldUntil ? [...actual.heldUntil].filter(([, until]) => until > now).map(([n]) => n) : actual.held;
    const planned = planAcl({ ...actual, ...(held ? { held } : {}) }, candidates, settings, now);
    // our entries outside the range (a run on the old range after an Update's cleanup) go first
    const changes = actual.strays?.length ? [...actual.strays, ...planned.changes] : planned.changes;
    return { actual, input, now, changes, evicted: planned.evicted, full: planned.full, shadowed: planned.shadowed ?? [], unresolved: planned.unresolved ?? [] };
  }

  /** The ACL once every planned change succeeded: the cache for the next incremental run. */
  private remember(actual: NaclRead, written: NaclEntry[], applied: readonly NaclChange[], now: number | undefined): void {
    if (!this.options.cache) return;
    const rest: NaclRead = { aclId: actual.aclId, entries: actual.entries, ...(actual.foreignInRange ? { foreignInRange: actual.foreignInRange } : {}) };
    let heldUntil = actual.heldUntil;
    const deleted = applied.filter((change) => change.op === 'delete');
    if (heldUntil && deleted.length && now !== undefined) {
      // the ledger holds a deleted number from its answer on (never earlier than now): a plan that
      // takes it too early is a change, which reads the ledger first
      const until = new Map(heldUntil);
      for (const change of deleted) until.set(change.ruleNumber, now + RULE_NUMBER_COOL_DOWN_MS);
      heldUntil = until;
    }
    this.options.cache.set(this.aclId, { ...rest, entries: written, ...(heldUntil ? { heldUntil } : {}) });
  }

  async apply(given: NaclPointPlan): Promise<ApplyResult> {
    const { obs, repair, settings } = this.ctx;
    const range = settings.nacl.ruleRange;
    const first = this.passes === 1;
    let plan = given;
    if (plan.actual?.cached && (plan.changes.length || plan.unresolved.length) && plan.input && plan.now !== undefined) {
      // the cache says something changes: plan again on what the ACL and the ledger hold now
      try {
        plan = this.plan(plan.input, await this.readFresh(), plan.now);
      } catch (error) {
        const before = new Set<string>();
        return { applied: 0, failures: [failureOf(this.id, error)], incomplete: [], before, after: before };
      }
    }
    if (!plan.actual) {
      // the adapter logged it; an ACL that does not exist is a configuration error
      const failures: PointFailure[] = first ? [{ point: this.id, error: 'InvalidNetworkAclID.NotFound', message: `network ACL ${this.aclId} does not exist`, transient: false }] : [];
      return { applied: 0, failures, incomplete: [], before: new Set(), after: new Set() };
    }
    const entries = plan.actual.entries;
    const held = (list: readonly NaclEntry[]) => {
      const targets = new Set<string>();
      for (const entry of list) {
        const target = ownEntryTarget(entry, range);
        if (target !== undefined) targets.add(target);
      }
      return targets;
    };
    if (first) {
      reportForeign(plan.actual, obs);
      for (const shadow of plan.shadowed) {
        obs.count('NaclShadowed');
        obs.log.warn(`nacl (${describeShadows(shadow.by)})`, { aclId: this.aclId, target: shadow.target, ruleNumber: shadow.ruleNumber, shadowedBy: shadow.by });
      }
      obs.count('Evictions', plan.evicted.length);
    }
    for (const family of plan.full) {
      if (this.reportedFull.has(family)) continue;
      this.reportedFull.add(family);
      obs.count('NaclQuotaFull');
      obs.log.info('network ACL quota reached; least recently active attackers are blocked in WAF only', { aclId: this.aclId, family, evicted: plan.evicted });
    }
    const incomplete: string[] = [];
    for (const shadow of plan.shadowed) incomplete.push(`${this.id}: ${shadow.target} at rule ${shadow.ruleNumber} ${describeShadows(shadow.by)}`);
    for (const family of plan.full) incomplete.push(`${this.id}: ${family} entries full, ${plan.evicted.length} evicted (blocked in WAF only)`);
    if (plan.unresolved.length) incomplete.push(`${this.id}: rules ${plan.unresolved.join(', ')} to remove once a read shows them`);
    const before = held(entries);
    if (plan.changes.length === 0) return { applied: 0, failures: [], incomplete, before, after: before };
    // what the ACL holds during and after the writes is known again only once they all succeed
    this.options.cache?.delete(this.aclId);
    try {
      const result = await this.nacl.apply(this.aclId, plan.changes);
      for (const change of result.applied) {
        const attributes = { aclId: this.aclId, op: change.op, ruleNumber: change.ruleNumber, cidr: change.cidr };
        if (repair) {
          obs.count('Repairs');
          obs.log.warn('repaired network ACL entry', attributes);
        } else {
          obs.log.info('network ACL entry', attributes);
        }
      }
      if (result.quotaFull) obs.count('NaclQuotaFull');
      const written = applyNaclChanges(entries, result.applied).map((entry) => {
        const at = entry.egress ? undefined : result.placedAt.get(entry.ruleNumber);
        return at === undefined ? entry : { ...entry, placedAt: at };
      });
      const after = held(written);
      if (result.conflicts.length === 0) this.remember(plan.actual, written, result.applied, plan.now);
      if (result.conflicts.length) {
        obs.log.warn('network ACL changed under us; re-planning', { aclId: this.aclId, conflicts: result.conflicts.map((c) => ({ ...c.change, error: c.error })) });
        const conflict = result.conflicts.map((c) => `${c.change.op} ${c.change.ruleNumber} ${c.change.cidr}: ${c.error}`).join('; ');
        return { applied: result.applied.length, failures: [], incomplete, before, after, conflict };
      }
      return { applied: result.applied.length, failures: [], incomplete, before, after };
    } catch (error) {
      obs.log.error('could not change network ACL; the other enforcement points are still enforced', { aclId: this.aclId, error: String(error) });
      return { applied: 0, failures: [failureOf(this.id, error)], incomplete, before, after: before };
    }
  }
}

/** Entries inside our range that are not ours: another stack using our range, or an operator. Never touched. */
function reportForeign(acl: NaclRead, obs: Observability): void {
  const foreign = acl.foreignInRange ?? [];
  if (!foreign.length) return;
  obs.count('NaclForeignInRange', foreign.length);
  obs.log.warn('entries inside this stack\'s rule range that it did not place (another stack on the same range, or an operator): left as they are', {
    aclId: acl.aclId,
    entries: foreign.map((e) => ({ ruleNumber: e.ruleNumber, ruleAction: e.ruleAction, protocol: e.protocol, cidr: e.cidrBlock ?? e.ipv6CidrBlock })),
  });
}
