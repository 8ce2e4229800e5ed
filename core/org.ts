/**
 * The organization topology's contracts (docs/organization.md): one decision plane (bus, decide,
 * desired-state table, expiry) and any number of enforcement planes, one per account and Region,
 * each the one writer of its own network ACL entries and WAF IP sets.
 *
 * - Fan-out: every wake-up the decision plane sends (lambda/shared/queue.ts, coalesced per
 *   second) is put on the decision bus as one `Desired State Changed` event from
 *   `portsnare.decision`; a rule forwards it to every plane's bus, and each plane's rule turns it
 *   into the same wake-up on its own enforce queue. An event carries no block: each plane's
 *   enforce run reads the whole desired state from the decision table, so a plane that missed
 *   events (a Region down for an hour) catches up at its next run or reconcile, from the table.
 * - Reports: after every run a plane writes one report item into the decision table, under its
 *   own key (`PLANE#<account>/<region>`); `portsnare status --org` reads them.
 */
import { z } from 'zod';
import type { TableKey } from './table';

/** the source of the decision plane's fan-out events */
export const DECISION_SOURCE = 'portsnare.decision';
/** the detail type of a fan-out event; its detail holds an enforce wake-up ({kind, notBefore?}) under FAN_OUT_WAKE_UP */
export const DESIRED_STATE_CHANGED = 'Desired State Changed';
/** the key of a fan-out event's detail that holds the wake-up: `{"wakeUp": {"kind": "enforce", "notBefore": …}}` */
export const FAN_OUT_WAKE_UP = 'wakeUp';

/** the partition prefix of plane reports in the decision table */
export const PLANE_PARTITION_PREFIX = 'PLANE#';
export const PLANE_REPORT_SK = 'REPORT';

/** minutes between two full reconciles of a plane when the configuration names none (`portsnare.enforcement.reconcileMinutes`, lib/settings.ts) */
export const DEFAULT_RECONCILE_MINUTES = 10;

/**
 * A plane is healthy while it reported a run within two of its reconcile periods: every plane runs
 * at least every reconcile, and a reconcile always writes its report (aws/plane-reports.ts
 * ReportThrottle), so a quiet plane reports once a period and a busy one at least once a minute.
 */
export function planeSilentAfterMs(reconcileMinutes: number = DEFAULT_RECONCILE_MINUTES): number {
  return 2 * reconcileMinutes * 60_000;
}

const ACCOUNT = /^\d{12}$/;
const REGION = /^[a-z]{2}(-[a-z]+)+-\d$/;

/** "<account>/<region>": one enforcement plane */
export function planeId(account: string, region: string): string {
  if (!ACCOUNT.test(account)) throw new Error(`not an AWS account id: ${JSON.stringify(account)}`);
  if (!REGION.test(region)) throw new Error(`not an AWS Region: ${JSON.stringify(region)}`);
  return `${account}/${region}`;
}

export function planeReportKey(id: string): TableKey {
  return { pk: `${PLANE_PARTITION_PREFIX}${id}`, sk: PLANE_REPORT_SK };
}

/** what a plane reports after each enforce run */
export const PlaneReportSchema = z.strictObject({
  planeId: z.string().regex(/^\d{12}\/[a-z]{2}(-[a-z]+)+-\d$/),
  /** epoch ms the plane's first reported run ended */
  firstRunAt: z.number().int().nonnegative().optional(),
  /** epoch ms the last run ended */
  lastRunAt: z.number().int().nonnegative(),
  /** epoch ms the last run that left every point equal to the desired state ended */
  lastConvergedAt: z.number().int().nonnegative().optional(),
  converged: z.boolean(),
  /** addresses the desired state held in the last run */
  desired: z.number().int().nonnegative(),
  /** points that failed in the last run ("waf:<set>", "nacl:<acl>"), at most 10 */
  failures: z.array(z.string()).max(10),
  mode: z.enum(['enforce', 'reconcile']),
});
export type PlaneReport = z.output<typeof PlaneReportSchema>;

export type PlaneHealth = 'healthy' | 'lagging' | 'silent';

export interface PlaneStatus {
  readonly planeId: string;
  readonly health: PlaneHealth;
  /** how long the plane has been behind the desired state, in ms (0 when its last run converged) */
  readonly lagMs: number;
  /** since its last report, in ms */
  readonly silentMs: number;
  readonly report: PlaneReport;
}

/**
 * A plane's state at `now`, from its own report: silent when it has not reported for
 * planeSilentAfterMs(reconcileMinutes) (the organization's reconcile period, from the decision
 * stack's output; the default when it has none), lagging when its
 * last run did not converge (the lag runs from its last converged run, or, for a plane that never
 * converged, from its first report).
 */
export function planeStatus(report: PlaneReport, now: number, reconcileMinutes: number = DEFAULT_RECONCILE_MINUTES): PlaneStatus {
  const silentMs = Math.max(0, now - report.lastRunAt);
  const lagMs = report.converged ? 0 : Math.max(0, now - (report.lastConvergedAt ?? report.firstRunAt ?? report.lastRunAt));
  const health: PlaneHealth = silentMs > planeSilentAfterMs(reconcileMinutes) ? 'silent' : report.converged ? 'healthy' : 'lagging';
  return { planeId: report.planeId, health, lagMs, silentMs, report };
}
