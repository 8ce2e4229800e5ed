/**
 * The Security Hub exporter's cursor: one item of its own partition in the decision table
 * (core/findings.ts FINDINGS_CURSOR_PK / _SK: not a block record, on no index), so the findings
 * function may write only that partition (lib/DecisionCore.ts, dynamodb:LeadingKeys).
 * - `at`: epoch ms the last successful run's change read started (the next run reads from it,
 *   less an overlap);
 * - `retry`: the targets whose import failed, each with the change time it failed at and its
 *   attempts, imported again by the next run;
 * - `initial`: the first import of the active records, while it takes more than one run: when it
 *   started (the change read then starts there) and the last target done (records go by target);
 * - `version`: every write is conditional on the version read, so two runs at once (a duplicated
 *   scheduler invocation) never move the cursor back: the loser's write is refused and its window
 *   is read again by the next run (imports are idempotent).
 * https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ConditionExpressions.html
 */
import { GetCommand, PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { FINDINGS_CURSOR_PK, FINDINGS_CURSOR_SK } from '../../core/findings';
import { TABLE_PARTITION_KEY, TABLE_SORT_KEY, VERSION_ATTRIBUTE } from '../../core/table';
import { errorName } from '../../aws/retry';

export interface RetryEntry {
  /** the change time (UpdatedAt) the import failed at */
  readonly changedAt: number;
  readonly attempts: number;
}

export interface InitialProgress {
  readonly startedAt: number;
  readonly after?: string;
}

export interface CursorPosition {
  /** undefined: the first import of the active records has not finished */
  readonly at?: number;
  readonly initial?: InitialProgress;
  readonly retry: Readonly<Record<string, RetryEntry>>;
}

export interface CursorState extends CursorPosition {
  /** 0: no item yet */
  readonly version: number;
}

export interface CursorStore {
  read(): Promise<CursorState>;
  /** False when another run wrote it since `expectedVersion` was read. */
  write(position: CursorPosition, expectedVersion: number): Promise<boolean>;
}

function num(value: unknown): number | undefined {
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value === 'bigint') return Number(value);
  return undefined;
}

export class DynamoCursorStore implements CursorStore {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async read(): Promise<CursorState> {
    const out = await this.client.send(
      new GetCommand({ TableName: this.tableName, Key: { [TABLE_PARTITION_KEY]: FINDINGS_CURSOR_PK, [TABLE_SORT_KEY]: FINDINGS_CURSOR_SK }, ConsistentRead: true }),
    );
    const item = out.Item;
    if (!item) return { retry: {}, version: 0 };
    const retry: Record<string, RetryEntry> = {};
    const stored = item.retry;
    if (typeof stored === 'object' && stored !== null) {
      for (const [target, entry] of Object.entries(stored as Record<string, unknown>)) {
        const changedAt = num((entry as { changedAt?: unknown })?.changedAt);
        const attempts = num((entry as { attempts?: unknown })?.attempts);
        if (changedAt !== undefined && attempts !== undefined) retry[target] = { changedAt, attempts };
      }
    }
    const at = num(item.at);
    const initial = item.initial as { startedAt?: unknown; after?: unknown } | undefined;
    const startedAt = num(initial?.startedAt);
    return {
      ...(at === undefined ? {} : { at }),
      ...(startedAt === undefined ? {} : { initial: { startedAt, ...(typeof initial?.after === 'string' ? { after: initial.after } : {}) } }),
      retry,
      version: num(item[VERSION_ATTRIBUTE]) ?? 0,
    };
  }

  async write(position: CursorPosition, expectedVersion: number): Promise<boolean> {
    const { at, initial, retry } = position;
    try {
      await this.client.send(
        new PutCommand({
          TableName: this.tableName,
          Item: {
            [TABLE_PARTITION_KEY]: FINDINGS_CURSOR_PK,
            [TABLE_SORT_KEY]: FINDINGS_CURSOR_SK,
            ...(at === undefined ? {} : { at }),
            ...(initial ? { initial } : {}),
            retry,
            [VERSION_ATTRIBUTE]: expectedVersion + 1,
          },
          ...(expectedVersion === 0
            ? { ConditionExpression: 'attribute_not_exists(#pk)', ExpressionAttributeNames: { '#pk': TABLE_PARTITION_KEY } }
            : { ConditionExpression: '#version = :expected', ExpressionAttributeNames: { '#version': VERSION_ATTRIBUTE }, ExpressionAttributeValues: { ':expected': expectedVersion } }),
        }),
      );
      return true;
    } catch (error) {
      if (errorName(error) === 'ConditionalCheckFailedException') return false;
      throw error;
    }
  }
}
