/**
 * Enforcement points: one interface for every place a block is enforced, so a new target is one
 * new module. A point is
 * - "waf:<scope>/<family>": a family's IP sets in one WAF scope (an account and Region's
 *   REGIONAL WAF, or CLOUDFRONT in us-east-1), aws/points.ts WafPoint;
 * - "nacl:<aclId>": one VPC network ACL, aws/points.ts NaclPoint;
 * - later "nft:<table>" on a host.
 * Each is read, planned and applied on its own (runPoint), and reports on its own (applied,
 * failures, incomplete): one failing never holds the others back (lambda/shared/enforcer.ts).
 *
 * The desired state reaches a point in one of two forms:
 * - `full`: every active record (a full run: reconcile, a cold container, a stale cursor);
 * - `changes`: the records changed since the last run (an incremental run). A change is
 *   level-triggered: per target its latest record says "present" (active and blockable) or
 *   "absent", so re-applying a change is a no-op and reading one twice is harmless.
 * A point that cannot plan from changes alone (a NACL holds only the most recently active: who
 * is evicted depends on everyone) is given `recent`: the most recently active records, enough
 * of them to fill it (aws/repository.ts recentActive).
 */
import type { ChangedRecord, EnforcementRecord } from './policy';

/** What enforcement needs of a record (the `changes` index projects exactly these). */
export type DesiredRecord = EnforcementRecord;

/** A record and the time of its last change (the `changes` index sort key). */
export type ChangedDesiredRecord = ChangedRecord;

export type DesiredInput =
  | { readonly kind: 'full'; readonly records: readonly DesiredRecord[] }
  | { readonly kind: 'changes'; readonly changes: readonly ChangedDesiredRecord[] }
  | { readonly kind: 'recent'; readonly records: readonly DesiredRecord[] };

/** One point that could not be brought to the desired state this run. */
export interface PointFailure {
  /** the failed resource: "waf:<set name>" or "nacl:<acl id>" */
  readonly point: string;
  readonly error: string;
  readonly message: string;
  /** worth retrying soon (throttling, internal errors, timeouts); false: needs an operator */
  readonly transient: boolean;
}

/** What applying one plan did. */
export interface ApplyResult {
  /** writes carried out (an UpdateIPSet, a NACL entry created, replaced or deleted) */
  readonly applied: number;
  readonly failures: readonly PointFailure[];
  /** why the desired state is not wholly held although nothing failed (full, shadowed, unresolved) */
  readonly incomplete: readonly string[];
  /** targets the point held before (as read) and holds after (as written) */
  readonly before: ReadonlySet<string>;
  readonly after: ReadonlySet<string>;
  /** the point changed under the plan (a rule number taken, an entry gone): read and plan again */
  readonly conflict?: string;
}

export interface PointReport extends Omit<ApplyResult, 'conflict'> {
  readonly point: string;
  /** read/plan/apply rounds: more than one when the point changed under a plan */
  readonly passes: number;
}

/**
 * A point: read its actual state, plan the changes that make it hold the desired input, apply
 * them. A read that throws is the point's failure (its state is unknown: nothing is written).
 */
export interface EnforcementPoint<Actual = unknown, Plan = unknown> {
  readonly id: string;
  read(): Promise<Actual>;
  plan(input: DesiredInput, actual: Actual, now: number): Plan;
  apply(plan: Plan): Promise<ApplyResult>;
}

/**
 * Runs one point to the end and never throws: read → plan → apply, again (at most `maxPasses`
 * rounds) while the point changed under the plan; a point still conflicting after the last
 * round fails transiently ("Conflict"), so the run is retried shortly.
 */
export async function runPoint<A, P>(
  point: EnforcementPoint<A, P>,
  input: DesiredInput,
  now: () => number,
  maxPasses: number,
  failureOf: (point: string, error: unknown) => PointFailure,
): Promise<PointReport> {
  let first: ApplyResult | undefined;
  let applied = 0;
  let last: ApplyResult | undefined;
  let passes = 0;
  for (let pass = 1; pass <= maxPasses; pass++) {
    passes = pass;
    let actual: A;
    try {
      actual = await point.read();
    } catch (error) {
      const empty = first?.after ?? new Set<string>();
      return { point: point.id, applied, failures: [...(last?.failures ?? []), failureOf(point.id, error)], incomplete: last?.incomplete ?? [], before: first?.before ?? empty, after: empty, passes };
    }
    last = await point.apply(point.plan(input, actual, now()));
    first ??= last;
    applied += last.applied;
    if (last.conflict === undefined || last.failures.length) break;
  }
  const result = last as ApplyResult;
  const failures = [...result.failures];
  if (result.conflict !== undefined && failures.length === 0) {
    failures.push({ point: point.id, error: 'Conflict', message: `the point did not settle in ${maxPasses} passes: ${result.conflict}`, transient: true });
  }
  return { point: point.id, applied, failures, incomplete: result.incomplete, before: (first as ApplyResult).before, after: result.after, passes };
}

export function wafPointId(scope: string, family: string): string {
  return `waf:${scope}/${family}`;
}

export function naclPointId(aclId: string): string {
  return `nacl:${aclId}`;
}

/**
 * The latest record of each target among `changes` (ascending by change time, ties in input
 * order): a target changed twice since the cursor is planned from its last change only.
 */
export function latestPerTarget<R extends ChangedDesiredRecord>(changes: readonly R[]): R[] {
  const latest = new Map<string, R>();
  for (const change of changes) {
    const seen = latest.get(change.target);
    if (seen === undefined || change.changedAt >= seen.changedAt) latest.set(change.target, change);
  }
  return [...latest.values()];
}

/** A run of enforce: `reconcile` is the full repair, every change in it logged and counted as one. */
export type EnforceMode = 'enforce' | 'reconcile';

/** One enforcement point that could not be brought to the desired state this run. */
export type EnforceFailure = PointFailure;

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
  /** records the desired state held at the last full run (this one, when it is full): the count a plane reports */
  readonly desired: number;
  /** an incremental run: the changed records it read (the overlap's included) */
  readonly changesRead?: number;
  /** full: the whole desired state against every point; incremental: the changes since the cursor */
  readonly run?: 'full' | 'incremental';
}

