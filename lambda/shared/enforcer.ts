/**
 * One enforcement run over every enforcement point (core/points.ts; aws/points.ts):
 * each WAF scope's IP sets of a family, then each network ACL. WAF first — it holds every
 * attacker — then the NACLs. A conflict in an ACL (a rule number taken, an entry gone, the quota
 * lower than configured) re-reads that ACL and re-plans, at most MAX_PASSES times. In
 * "reconcile" mode every change is drift: each is logged and counted as a repair.
 *
 * Two kinds of run (ARCHITECTURE.md, "enforce"):
 * - incremental (mode `enforce`, a warm container whose cursor is younger than
 *   CURSOR_MAX_AGE_MS): the records changed since the cursor (the `changes` index,
 *   repo.changesSince), applied to the cached IP sets as a delta (core/waf.ts planWafDelta), and
 *   the most recently active records for the NACLs (repo.recentActive): a few items read and
 *   usually one UpdateIPSet, however many blocks are active;
 * - full (mode `reconcile`, a cold container, a stale cursor, or after a run with a transient
 *   failure): every active record (repo.listEnforced) against every point; it refreshes the
 *   cache and the cursor, and repairs whatever an incremental run missed (an index entry later
 *   than the overlap, a console edit under a warm cache, a lost wake-up).
 *
 * Every point is read and written on its own: one that fails (a set deleted out of band, a
 * permission missing, an API failing) is recorded as a failure and the others are still
 * enforced, so a WAF that keeps failing never holds back the NACL entries (nor the reverse). A
 * WAF point with a set that could not be read is not written at all this run (its addresses are
 * unknown, so a write could drop them). The caller decides what a failure means for the run
 * (lambda/enforce/handler.ts): a transient one is retried shortly, a permanent one by the next
 * reconcile.
 */
import { desiredCandidates } from '../../core/diff';
import { NeverBlockGuard } from '../../core/guard';
import type { ChangedRecord } from '../../core/policy';
import { type DesiredInput, type DesiredRecord, type EnforceMode, type EnforceSummary, type EnforcementPoint, type PointReport, latestPerTarget, runPoint } from '../../core/points';
import type { PipelineSettings } from '../../core/settings';
import type { Clock } from '../../aws/clock';
import type { NaclAdapter } from '../../aws/nacl-adapter';
import type { Observability } from '../../aws/observability';
import { type CachedSet, desiredOf, failureOf as pointFailureOf, type NaclCache, type NaclKnownRecords, NaclPoint, newPointContext, type WafRunDeferral, wafPointsOf } from '../../aws/points';
import type { BlockRepository } from '../../aws/repository';
import type { WafAdapter } from '../../aws/waf-adapter';
import { SETTLE_MS, WAKE_WINDOW_MS } from './queue';

export { WAF_WRITE_ATTEMPTS } from '../../aws/points';

export const MAX_PASSES = 3;

/**
 * An incremental run reads the changes from this long before its cursor: a decision whose index
 * entry became visible late (the `changes` index is eventually consistent, typically well under
 * a second; decide's clock a little behind enforce's) is still read. Re-applying a change is a
 * no-op, so the overlap costs a few re-read items, never a wrong write. A lag past it is
 * repaired by the next full run (reconcile).
 * https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html#GSI.Writes
 */
export const OVERLAP_MS = 20_000;
/** a cursor older than this (a container idle for a while) is not trusted: the run is a full one */
export const CURSOR_MAX_AGE_MS = 10 * 60_000;


/** What an enforce run needs of the decision table (aws/repository.ts BlockRepository). */
export type DesiredStateReader = Pick<BlockRepository, 'listEnforced' | 'changesSince' | 'recentActive'>;

/**
 * What a container remembers between runs (lambda/enforce/handler.ts keeps one per handler:
 * nothing module-global, so a test or bench runs many planes in one process).
 */
export interface EnforcerState {
  /** epoch ms at which the last successful run started reading the desired state; undefined: the next run is a full one */
  cursor?: number;
  /** epoch ms of the last full run */
  lastFull?: number;
  /** the records the last full run read as the desired state */
  desired?: number;
  /** each WAF IP set ("<scope>/<id>") as last read or written, with its lock token */
  readonly sets: Map<string, CachedSet>;
  /** the records an ACL can hold, as the last full run found them and the incremental runs since changed them */
  naclRecent?: NaclRecentCache;
  /**
   * each network ACL as last read or written (aws/points.ts NaclCache): an incremental run reads an
   * ACL only when planning against this changes something
   */
  nacls?: NaclCache;
  /** the records of the targets that hold NACL entries (aws/points.ts NaclKnownRecords), kept current by each run's changes */
  naclKnown?: NaclKnownRecords;
  /** the simulation settings (JSON) the cache was built under: other settings make the next run a full one */
  simulation?: string;
  /**
   * removals from WAF IP sets that incremental runs left pending (aws/points.ts LIFT_DEFER_MS):
   * per set ("<scope>/<id>") address → deadline; the cached set still holds the address until
   * written. A full run writes everything and clears them.
   */
  readonly wafPending: Map<string, Map<string, number>>;
  /** the last wake-up this container sent itself for its pending removals (lambda/enforce/handler.ts) */
  selfWake?: { readonly sentAt: number; readonly notBefore: number };
  /** when the handler was last invoked: a plane woken at most BUSY_GAP_MS apart is busy and wakes itself no more (lambda/enforce/handler.ts) */
  lastInvokedAt?: number;
}

/** a run starts this long after its wake-up's notBefore at the latest (delivery, the function's start) */
export const WAKE_DELIVERY_MS = 2_000;
/**
 * the longest from a self wake-up's send to the run it brings: it is for the next window
 * (lambda/shared/queue.ts selfWakeUp: its notBefore at most two windows and the settle, 5 s,
 * away) plus WAKE_DELIVERY_MS
 */
export const SELF_WAKE_ARRIVAL_MS = 2 * WAKE_WINDOW_MS + SETTLE_MS + WAKE_DELIVERY_MS;

/**
 * The time by which a run must write a pending removal: when the plane's next run is sure to come,
 * so a removal due later can wait for it. A self wake-up on its way: its run. None: the one this
 * run sends at its end when it leaves removals pending (lambda/enforce/handler.ts wakeForPending),
 * whose run comes within SELF_WAKE_ARRIVAL_MS.
 */
export function wafWriteBy(state: Pick<EnforcerState, 'selfWake'>, now: number): number {
  const wake = state.selfWake;
  if (wake && wake.notBefore > now) return wake.notBefore + WAKE_DELIVERY_MS;
  return now + SELF_WAKE_ARRIVAL_MS;
}

/**
 * The most recently active records that can hold a NACL entry, kept between runs so that an
 * incremental run plans the ACLs without reading the index: the last full run keeps the
 * NACL_CACHE_FACTOR × capacity most recent of each family, and notes the highest recency it left
 * out (`unknownBelow`). Each incremental run folds its changes in (a record's recency only rises
 * with a save, which stamps a change, so a record the cache does not hold is still below that
 * mark). The cache answers exactly while, per family, it holds the whole family or its
 * capacity-th record is above the mark; otherwise (many lifts since the full run) the run reads
 * the index instead (BlockRepository.recentActive).
 */
export interface NaclRecentCache {
  readonly records: Map<string, DesiredRecord>;
  readonly unknownBelow: Record<'ipv4' | 'ipv6', number>;
}

export const NACL_CACHE_FACTOR = 3;

function recencyOf(record: DesiredRecord): number {
  return Math.max(record.lastSeen, record.blockedAt);
}

function familyOf(target: string): 'ipv4' | 'ipv6' {
  return target.includes(':') ? 'ipv6' : 'ipv4';
}

function naclPerFamily(settings: PipelineSettings): number {
  // no ACL holds more of a family than its quota (core/nacl.ts naclCapacity) nor more than the range
  return Math.min(settings.nacl.quotaPerDirection, settings.nacl.ruleRange[1] - settings.nacl.ruleRange[0] + 1);
}

function naclEligible(settings: PipelineSettings, now: number): (record: DesiredRecord) => boolean {
  const guard = new NeverBlockGuard(settings.guard);
  return (record) => desiredCandidates([record], now, guard, settings.policy, settings.simulation).candidates[0]?.nacl === true;
}

/** The cache a full run leaves: per family the most recent eligible records, and the mark below which it knows nothing. */
export function naclCacheOf(records: readonly DesiredRecord[], settings: PipelineSettings, now: number): NaclRecentCache {
  const keep = NACL_CACHE_FACTOR * naclPerFamily(settings);
  const eligible = naclEligible(settings, now);
  const byFamily = { ipv4: [] as DesiredRecord[], ipv6: [] as DesiredRecord[] };
  for (const record of records) if (eligible(record)) byFamily[familyOf(record.target)].push(record);
  const cache: NaclRecentCache = { records: new Map(), unknownBelow: { ipv4: -Infinity, ipv6: -Infinity } };
  for (const family of ['ipv4', 'ipv6'] as const) {
    const sorted = byFamily[family].sort((a, b) => recencyOf(b) - recencyOf(a));
    for (const record of sorted.slice(0, keep)) cache.records.set(record.target, record);
    if (sorted.length > keep) cache.unknownBelow[family] = recencyOf(sorted[keep]!);
  }
  return cache;
}

/**
 * Folds an incremental run's changes into the cache and answers the ACLs' records from it, or
 * undefined when it cannot answer exactly (the caller reads the index).
 */
export function naclRecentFromCache(cache: NaclRecentCache, changes: readonly ChangedRecord[], settings: PipelineSettings, now: number): DesiredRecord[] | undefined {
  const eligible = naclEligible(settings, now);
  for (const change of latestPerTarget(changes)) {
    cache.records.delete(change.target);
    if (eligible(change)) cache.records.set(change.target, change);
  }
  for (const [target, record] of cache.records) if (!(record.active && record.expiresAt > now)) cache.records.delete(target);
  const perFamily = naclPerFamily(settings);
  const out: DesiredRecord[] = [];
  for (const family of ['ipv4', 'ipv6'] as const) {
    const ranked = [...cache.records.values()].filter((r) => familyOf(r.target) === family).sort((a, b) => recencyOf(b) - recencyOf(a) || (a.target < b.target ? -1 : 1));
    const mark = cache.unknownBelow[family];
    if (mark !== -Infinity && (ranked.length < perFamily || recencyOf(ranked[perFamily - 1]!) <= mark)) return undefined;
    out.push(...ranked.slice(0, perFamily));
  }
  return out;
}

export function newEnforcerState(): EnforcerState {
  return { sets: new Map(), wafPending: new Map() };
}

export interface EnforcerDeps {
  readonly repo: BlockRepository;
  readonly nacl: NaclAdapter;
  readonly waf: WafAdapter;
  readonly settings: PipelineSettings;
  readonly obs: Observability;
  readonly clock: Clock;
  /** the container's state; without it every run is a full one */
  readonly state?: EnforcerState;
  /** addresses per IP set (default: WAF's quota, core/settings.ts WAF_MAX_ADDRESSES_PER_SET); tests lower it to fill sets */
  readonly wafMaxPerSet?: number;
}

export type { EnforceFailure, EnforceMode, EnforceSummary } from '../../core/points';

export const failureOf = pointFailureOf;

/**
 * The records an incremental run gives the NACLs: per family the most recently active ones that
 * can hold an entry (active, not expired, allowed by the guard and the widest prefix, a host or
 * an IPv6 prefix: core/diff.ts desiredCandidates), as many as an ACL can hold. A record that
 * cannot hold an entry takes no place, so an ACL never drops an older entry for it.
 */
async function recentForNacl(deps: EnforcerDeps, now: number): Promise<DesiredRecord[]> {
  const { repo, settings } = deps;
  // no ACL holds more of a family than its quota (core/nacl.ts naclCapacity) nor more than the range
  return repo.recentActive(naclPerFamily(settings), naclEligible(settings, now));
}

/**
 * One run. Incremental when the mode is `enforce` and the container holds a cursor younger than
 * CURSOR_MAX_AGE_MS: the WAF points apply the changes since the cursor (minus OVERLAP_MS) to
 * their cached sets; the NACL points plan from the most recent active records. Otherwise a full
 * run: every active record against every point, which refreshes the cache and the cursor.
 */
export async function enforce(deps: EnforcerDeps, mode: EnforceMode): Promise<EnforceSummary> {
  const { repo, nacl, waf, settings, obs, clock } = deps;
  const state = deps.state ?? newEnforcerState();
  const started = clock.now();
  // switching simulation on or off changes what every point should hold, not only what changed since
  // the cursor: a full run applies what is still active (or lifts the simulated) everywhere
  const simulation = JSON.stringify(settings.simulation);
  const incremental =
    mode === 'enforce' && state.simulation === simulation && state.cursor !== undefined && started - state.cursor >= 0 && started - state.cursor < CURSOR_MAX_AGE_MS;
  state.simulation = simulation;
  const ctx = newPointContext(settings, obs, mode === 'reconcile');
  // a full run writes every set's whole list: nothing stays pending
  if (!incremental) state.wafPending.clear();
  state.nacls ??= new Map();
  state.naclKnown ??= new Map();
  const known = state.naclKnown;
  const naclPoints = settings.nacl.aclIds.map((aclId) => new NaclPoint(aclId, nacl, ctx, { cache: state.nacls, useCache: incremental, ...(incremental ? { known } : {}) }));

  let wafInput: DesiredInput;
  let naclInput: DesiredInput;
  let changesRead: number | undefined;
  let desired: number;
  const byTarget = new Map<string, DesiredRecord>();
  // a read that fails fails the run (the handler retries it soon) and makes the next run a full one
  const cursor = state.cursor as number;
  state.cursor = undefined;
  let deferral: WafRunDeferral | undefined;
  if (incremental) {
    const changes = await repo.changesSince(cursor - OVERLAP_MS, started);
    wafInput = { kind: 'changes', changes };
    deferral = { pending: state.wafPending, writeBy: wafWriteBy(state, started) };
    // a record of an entry's target changed (a lift, an expiry refreshed, a new sighting): known as it is now
    for (const change of latestPerTarget(changes)) if (known.has(change.target)) known.set(change.target, change);
    const cached = naclPoints.length && state.naclRecent ? naclRecentFromCache(state.naclRecent, changes, settings, started) : undefined;
    if (naclPoints.length && cached === undefined) state.naclRecent = undefined;
    const recent = naclPoints.length ? (cached ?? (await recentForNacl(deps, started))) : [];
    naclInput = { kind: 'recent', records: recent };
    changesRead = changes.length;
    desired = state.desired ?? 0;
    for (const record of [...recent, ...changes]) byTarget.set(record.target, record);
  } else {
    const records = await repo.listEnforced();
    wafInput = naclInput = { kind: 'full', records };
    state.naclRecent = naclPoints.length ? naclCacheOf(records, settings, started) : undefined;
    desired = records.length;
    state.desired = desired;
    for (const record of records) byTarget.set(record.target, record);
  }

  const wafPoints = wafPointsOf(settings.waf.sets, waf, ctx, state.sets, incremental, deps.wafMaxPerSet, deferral);

  // WAF first: it holds every attacker; then each ACL. Each point on its own.
  const reports: PointReport[] = [];
  const points: Array<[EnforcementPoint<never, never>, DesiredInput]> = [
    ...wafPoints.map((point) => [point as unknown as EnforcementPoint<never, never>, wafInput] as [EnforcementPoint<never, never>, DesiredInput]),
    ...naclPoints.map((point) => [point as unknown as EnforcementPoint<never, never>, naclInput] as [EnforcementPoint<never, never>, DesiredInput]),
  ];
  for (const [point, input] of points) {
    // every point plans at the run's time: one set of candidates for all (aws/points.ts desiredOf)
    reports.push(await runPoint(point, input, () => started, point.id.startsWith('nacl:') ? MAX_PASSES : 1, failureOf));
  }

  const refusedRecords =
    wafInput.kind === 'changes'
      ? desiredCandidates(latestPerTarget(wafInput.changes), started, new NeverBlockGuard(settings.guard), settings.policy, settings.simulation).refused
      : desiredOf(ctx, wafInput, started).refused;
  for (const refused of refusedRecords) obs.log.warn('active record is protected by the never-block rules; not enforced', refused);
  // the records of the targets the ACLs hold now, for the residents of the next incremental run
  const holders = new Set(reports.filter((r) => r.point.startsWith('nacl:')).flatMap((r) => [...r.after]));
  const nextKnown: NaclKnownRecords = new Map();
  for (const target of holders) {
    const record = byTarget.get(target) ?? known.get(target);
    if (record) nextKnown.set(target, record);
  }
  state.naclKnown = nextKnown;
  const failures = reports.flatMap((r) => r.failures);
  const incomplete = reports.flatMap((r) => r.incomplete);
  const before = new Set(reports.flatMap((r) => [...r.before]));
  const after = new Set(reports.flatMap((r) => [...r.after]));
  const blocked = [...after].filter((target) => !before.has(target)).sort();
  const unblocked = [...before].filter((target) => !after.has(target)).sort();
  const changes = reports.reduce((sum, r) => sum + r.applied, 0);
  obs.count('Blocks', blocked.length);
  obs.count('Unblocks', unblocked.length);
  const lags = blocked
    .map((target) => byTarget.get(target))
    .filter((r): r is DesiredRecord => r !== undefined)
    .map((r) => (clock.now() - r.blockedAt) / 1000);
  // decision → enforced; a repair of an old block is drift, not lag
  if (lags.length && mode === 'enforce') obs.seconds('EnforcementLagSeconds', Math.max(0, ...lags));

  // a transient failure leaves what a point holds uncertain: the next run is a full one
  if (failures.some((f) => f.transient)) state.cursor = undefined;
  else state.cursor = started;
  if (!incremental) state.lastFull = started;

  const passes = Math.max(1, ...reports.map((r) => r.passes));
  return { passes, changes, blocked: blocked.length, unblocked: unblocked.length, converged: failures.length === 0 && incomplete.length === 0, failures, desired, ...(changesRead !== undefined ? { changesRead } : {}), incomplete, run: incremental ? 'incremental' : 'full' };
}
