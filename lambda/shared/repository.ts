/**
 * The desired state in DynamoDB, through the table contract of core/table.ts. Every write of a
 * record is conditional on the version read, so two deciders racing on the same target (or the
 * same event delivered twice) cannot both count an offence.
 * https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ConditionExpressions.html
 */
import { type DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { BlockRecord } from '../../core/policy';
import { minuteOf } from '../../core/policy';
import { ACTIVE_INDEX, ACTIVE_KEY, HISTORY_RETENTION_SECONDS, burstKey, historyKey, stateKey } from '../../core/table';
import { errorName } from './retry';


export interface StoredRecord {
  readonly record: BlockRecord;
  readonly version: number;
}

const RECORD_FIELDS = [
  'target',
  'family',
  'reason',
  'firstSeen',
  'lastSeen',
  'hitCount',
  'offences',
  'blockedAt',
  'expiresAt',
  'active',
  'eventIds',
  'sensors',
  'note',
  'liftedBy',
] as const;

function toRecord(item: Record<string, unknown>): BlockRecord {
  const record: Record<string, unknown> = {};
  for (const field of RECORD_FIELDS) if (item[field] !== undefined) record[field] = item[field];
  record.eventIds = Array.isArray(item.eventIds) ? item.eventIds : [];
  record.sensors = Array.isArray(item.sensors) ? item.sensors : [];
  return record as unknown as BlockRecord;
}

function isConditionFailure(error: unknown): boolean {
  return errorName(error) === 'ConditionalCheckFailedException';
}

export class BlockRepository {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async get(target: string): Promise<StoredRecord | undefined> {
    const out = await this.client.send(
      new GetCommand({ TableName: this.tableName, Key: stateKey(target), ConsistentRead: true }),
    );
    if (!out.Item) return undefined;
    return { record: toRecord(out.Item), version: typeof out.Item.version === 'number' ? out.Item.version : 0 };
  }

  /**
   * Writes the record if nobody wrote it since `expectedVersion` was read (undefined: only if it
   * does not exist). False when the condition failed: read again and decide again.
   */
  async save(record: BlockRecord, expectedVersion: number | undefined, now: number): Promise<boolean> {
    const item: Record<string, unknown> = {
      ...stateKey(record.target),
      ...record,
      version: (expectedVersion ?? 0) + 1,
    };
    if (record.active) item.activeKey = ACTIVE_KEY;
    else item.ttl = Math.floor(now / 1000) + HISTORY_RETENTION_SECONDS;
    try {
      await this.client.send(
        new PutCommand({
          TableName: this.tableName,
          Item: item,
          ...(expectedVersion === undefined
            ? { ConditionExpression: 'attribute_not_exists(pk)' }
            : { ConditionExpression: '#version = :expected', ExpressionAttributeNames: { '#version': 'version' }, ExpressionAttributeValues: { ':expected': expectedVersion } }),
        }),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }

  async appendHistory(record: BlockRecord, action: string, now: number, detail: Record<string, unknown> = {}): Promise<void> {
    await this.client.send(
      new PutCommand({
        TableName: this.tableName,
        Item: {
          ...historyKey(record.target, now, action),
          action,
          at: now,
          record,
          ...detail,
          ttl: Math.floor(now / 1000) + HISTORY_RETENTION_SECONDS,
        },
      }),
    );
  }

  /**
   * Counts one new block in the minute of `now` unless `limit` were already counted: the burst
   * circuit breaker. False when the breaker is open.
   */
  async admitBurst(now: number, limit: number): Promise<boolean> {
    const minute = minuteOf(now);
    try {
      await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: burstKey(minute),
          UpdateExpression: 'ADD #count :one SET #ttl = :ttl',
          ConditionExpression: 'attribute_not_exists(#count) OR #count < :limit',
          ExpressionAttributeNames: { '#count': 'count', '#ttl': 'ttl' },
          ExpressionAttributeValues: { ':one': 1, ':limit': limit, ':ttl': Math.floor(minute / 1000) + 86400 },
        }),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }

  /** Every record on the `active` index (optionally only those expiring at or before `expiringBy`). */
  async listActive(expiringBy?: number): Promise<StoredRecord[]> {
    const result: StoredRecord[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const out = await this.client.send(
        new QueryCommand({
          TableName: this.tableName,
          IndexName: ACTIVE_INDEX,
          KeyConditionExpression: expiringBy === undefined ? '#activeKey = :active' : '#activeKey = :active AND #expiresAt <= :by',
          ExpressionAttributeNames: { '#activeKey': 'activeKey', ...(expiringBy === undefined ? {} : { '#expiresAt': 'expiresAt' }) },
          ExpressionAttributeValues: { ':active': ACTIVE_KEY, ...(expiringBy === undefined ? {} : { ':by': expiringBy }) },
          ...(startKey ? { ExclusiveStartKey: startKey } : {}),
        }),
      );
      for (const item of out.Items ?? []) {
        result.push({ record: toRecord(item), version: typeof item.version === 'number' ? item.version : 0 });
      }
      startKey = out.LastEvaluatedKey;
    } while (startKey);
    return result;
  }
}
