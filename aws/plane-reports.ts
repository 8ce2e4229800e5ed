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
   * Records one run of plane `id`. `firstRunAt` is written once; `lastConvergedAt` is set only by
   * a converged run, so the last one is kept across runs that did not converge (one UpdateItem: no read, no race with itself,
   * since a plane's runs are serial on its FIFO queue).
   */
  async record(id: string, summary: EnforceSummary, mode: EnforceMode, at: number): Promise<void> {
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
    await this.client.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: planeReportKey(id),
        UpdateExpression: `SET ${set.join(', ')}`,
        ExpressionAttributeNames: {
          ...REPORT_NAMES,
          ...(summary.converged ? { '#lastConvergedAt': 'lastConvergedAt' } : {}),
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
