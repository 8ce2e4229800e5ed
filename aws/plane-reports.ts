/**
 * Enforcement planes' reports in the decision plane's reports table (core/org.ts), apart from the
 * desired state: each plane writes only its own item (`PLANE#<account>/<region>`, the one
 * partition its IAM allows: dynamodb:LeadingKeys), and `portsnare status --org` reads the items
 * of the planes the decision stack lists.
 * The table is named by its ARN across accounts (DynamoDB resource-based policies:
 * https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/access-control-resource-based.html).
 */
import { BatchGetCommand, type DynamoDBDocumentClient, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { type PlaneReport, PlaneReportSchema, planeReportKey } from '../core/org';
import type { EnforceMode, EnforceSummary } from '../core/points';

/** at most this many failed points are kept in a report */
const MAX_FAILURES = 10;
/** BatchGetItem reads at most 100 keys a call */
const BATCH = 100;

/** The attribute names every write of a plane's report sets. */
const REPORT_NAMES = { '#planeId': 'planeId', '#firstRunAt': 'firstRunAt', '#lastRunAt': 'lastRunAt', '#converged': 'converged', '#desired': 'desired', '#failures': 'failures', '#mode': 'mode' };

export class PlaneReports {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  /**
   * Records one run of plane `id`. `firstRunAt` is written once; `lastConvergedAt` is set by
   * a converged run (or, for a run that did not converge, to `lastConvergedAt` when the caller
   * knows of a later converged run it did not write), so the last one is kept across runs that did not converge (one UpdateItem: no read, no race with itself,
   * since a plane's runs are serial on its FIFO queue).
   */
  async record(id: string, summary: EnforceSummary, mode: EnforceMode, at: number, lastConvergedAt?: number): Promise<void> {
    const failures = summary.failures.slice(0, MAX_FAILURES).map((f) => f.point);
    const values: Record<string, unknown> = {
      ':planeId': id,
      ':at': at,
      ':converged': summary.converged,
      ':desired': summary.desired,
      ':failures': failures,
      ':mode': mode,
    };
    const set = ['#planeId = :planeId', '#firstRunAt = if_not_exists(#firstRunAt, :at)', '#lastRunAt = :at', '#converged = :converged', '#desired = :desired', '#failures = :failures', '#mode = :mode'];
    if (summary.converged) set.push('#lastConvergedAt = :at');
    else if (lastConvergedAt !== undefined) {
      // the last converged run was not written (ReportThrottle): it is still when the plane last converged
      set.push('#lastConvergedAt = :convergedAt');
      values[':convergedAt'] = lastConvergedAt;
    }
    await this.client.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: planeReportKey(id),
        UpdateExpression: `SET ${set.join(', ')}`,
        ExpressionAttributeNames: {
          ...REPORT_NAMES,
          ...(summary.converged || lastConvergedAt !== undefined ? { '#lastConvergedAt': 'lastConvergedAt' } : {}),
        },
        ExpressionAttributeValues: values,
      }),
    );
  }

  /**
   * Records a run that could not read the desired state: not converged, `point` its one failure;
   * `desired` keeps the last count read (0 when none), `lastConvergedAt` is left as it was.
   */
  async recordUnreadable(id: string, point: string, mode: EnforceMode, at: number): Promise<void> {
    await this.client.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: planeReportKey(id),
        UpdateExpression:
          'SET #planeId = :planeId, #firstRunAt = if_not_exists(#firstRunAt, :at), #lastRunAt = :at, #converged = :converged, #desired = if_not_exists(#desired, :zero), #failures = :failures, #mode = :mode',
        ExpressionAttributeNames: REPORT_NAMES,
        ExpressionAttributeValues: { ':planeId': id, ':at': at, ':converged': false, ':zero': 0, ':failures': [point], ':mode': mode },
      }),
    );
  }

  /** The reports of `ids`; a plane that never reported (or wrote an unreadable item) is absent. */
  async read(ids: readonly string[]): Promise<Map<string, PlaneReport>> {
    const found = new Map<string, PlaneReport>();
    for (let i = 0; i < ids.length; i += BATCH) {
      let keys: Record<string, unknown>[] | undefined = ids.slice(i, i + BATCH).map((id) => ({ ...planeReportKey(id) }));
      for (let attempt = 0; keys && keys.length > 0; attempt++) {
        if (attempt === 5) throw new Error(`BatchGetItem left ${keys.length} plane reports unread after 5 attempts`);
        if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, 50 * 2 ** attempt));
        const out = await this.client.send(new BatchGetCommand({ RequestItems: { [this.tableName]: { Keys: keys, ConsistentRead: true } } }));
        for (const item of out.Responses?.[this.tableName] ?? []) {
          const rest: Record<string, unknown> = { ...item };
          delete rest.pk;
          delete rest.sk;
          const parsed = PlaneReportSchema.safeParse(rest);
          if (parsed.success) found.set(parsed.data.planeId, parsed.data);
        }
        keys = out.UnprocessedKeys?.[this.tableName]?.Keys as Record<string, unknown>[] | undefined;
      }
    }
    return found;
  }
}

/** While nothing about it changes, a plane's report is written at most this often. */
export const REPORT_EVERY_MS = 60_000;

/**
 * Which runs of a plane write its report (issue 20). A report write is a DynamoDB write per run of
 * every plane (≈ 43,000 runs a day each at 100,000 blocks: ≈ 130 USD a month for 200 planes,
 * docs/scale.md) while `status --org` needs only to know that the plane runs, whether it
 * converged and since when. So a run writes when the plane's state changed (first run of the
 * container, converged or not, the failed points, a reconcile) or REPORT_EVERY_MS after the last
 * write; a skipped converged run is remembered, and a later write that is not converged carries
 * its time as `lastConvergedAt`, so the lag `status --org` shows is not overstated. One per
 * handler (container): nothing module-global.
 */
export class ReportThrottle {
  private last?: { readonly at: number; readonly converged: boolean; readonly failures: string };
  private convergedAt?: number;

  /** Whether this run's report is written; call `written` after a successful write. */
  due(summary: EnforceSummary | 'unreadable', mode: EnforceMode, at: number): boolean {
    if (summary !== 'unreadable' && summary.converged) this.convergedAt = at;
    if (summary === 'unreadable' || mode === 'reconcile' || !this.last) return true;
    return summary.converged !== this.last.converged || failuresKey(summary) !== this.last.failures || at - this.last.at >= REPORT_EVERY_MS;
  }

  /** the latest converged run this container saw, for a report that is not converged */
  lastConvergedAt(): number | undefined {
    return this.convergedAt;
  }

  written(summary: EnforceSummary | 'unreadable', at: number): void {
    this.last = summary === 'unreadable' ? { at, converged: false, failures: '\u0000unreadable' } : { at, converged: summary.converged, failures: failuresKey(summary) };
  }
}

function failuresKey(summary: EnforceSummary): string {
  return summary.failures
    .map((f) => f.point)
    .sort()
    .join('\n');
}
