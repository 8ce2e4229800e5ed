/**
 * The desired state in DynamoDB, through the table contract of core/table.ts. Every write of a
 * record is conditional on the version read, so two deciders racing on the same target (or the
 * same event delivered twice) cannot both count an offence.
 * https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ConditionExpressions.html
 *
 * DynamoDB rules this file keeps (tested against a real engine in test/wire/repository.test.ts):
 * - every attribute named in an expression goes through ExpressionAttributeNames: `count`, `ttl`,
 *   `version` and `active` are reserved words and a bare reserved word fails the whole request.
 *   https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ReservedWords.html
 * - numbers: DynamoDB keeps 38 digits, but the SDK's Document client refuses to write a JS number
 *   past Number.MAX_SAFE_INTEGER and reads one back as a BigInt; counters are clamped to
 *   MAX_SAFE_INTEGER on write and read back as plain numbers, so a hit count past 2^53 never
 *   makes a record unwritable (nor crashes the arithmetic of the next decision).
 *   https://docs.aws.amazon.com/AWSJavaScriptSDK/v3/latest/Package/-aws-sdk-util-dynamodb/
 * - a record field named like a table attribute (key, version, index key, ttl) is never written
 *   over it.
 */
import { DeleteCommand, type DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { Placement, PlacementState } from '../../core/nacl';
import type { BlockRecord } from '../../core/policy';
import { minuteOf } from '../../core/policy';
import {
  ACTIVE_INDEX,
  ACTIVE_KEY,
  ACTIVE_KEY_ATTRIBUTE,
  EXPIRES_AT_ATTRIBUTE,
  HISTORY_RETENTION_SECONDS,
  TABLE_PARTITION_KEY,
  TABLE_SORT_KEY,
  TABLE_TTL_ATTRIBUTE,
  VERSION_ATTRIBUTE,
  NACL_RULE_SK_PREFIX,
  PLACEMENT_ATTRIBUTES,
  BURST_COUNT_ATTRIBUTE,
  burstKey,
  historyKey,
  isBlockRecordItem,
  naclLedgerKey,
  naclPartition,
  naclRuleKey,
  ruleNumberOfSortKey,
  stateKey,
} from '../../core/table';
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

/** The table's own attributes: a record field of the same name is never written over them. */
const TABLE_ATTRIBUTES = new Set<string>([TABLE_PARTITION_KEY, TABLE_SORT_KEY, VERSION_ATTRIBUTE, ACTIVE_KEY_ATTRIBUTE, TABLE_TTL_ATTRIBUTE]);

/** A number the Document client can write and read back exactly: clamped to the safe integers. */
export function safeNumber(value: number | bigint, what: string): number {
  if (typeof value === 'bigint') {
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) return Number.MAX_SAFE_INTEGER;
    if (value < BigInt(Number.MIN_SAFE_INTEGER)) return Number.MIN_SAFE_INTEGER;
    return Number(value);
  }
  if (Number.isNaN(value)) throw new Error(`${what} is NaN: not a number DynamoDB can store`);
  return Math.min(Number.MAX_SAFE_INTEGER, Math.max(Number.MIN_SAFE_INTEGER, value));
}

/** The record's fields as stored: defined ones only, numbers made safe, no table attribute. */
function recordAttributes(record: BlockRecord): Record<string, unknown> {
  const item: Record<string, unknown> = {};
  for (const [field, value] of Object.entries(record)) {
    if (value === undefined || TABLE_ATTRIBUTES.has(field)) continue;
    item[field] = typeof value === 'number' || typeof value === 'bigint' ? safeNumber(value, `record ${record.target}: ${field}`) : value;
  }
  return item;
}

function toRecord(item: Record<string, unknown>): BlockRecord {
  const record: Record<string, unknown> = {};
  for (const field of RECORD_FIELDS) {
    const value = item[field];
    if (value === undefined) continue;
    // A number past 2^53 (written before the clamp, or by another tool) comes back as a BigInt.
    record[field] = typeof value === 'bigint' ? safeNumber(value, field) : value;
  }
  record.eventIds = Array.isArray(item.eventIds) ? item.eventIds : [];
  record.sensors = Array.isArray(item.sensors) ? item.sensors : [];
  return record as unknown as BlockRecord;
}

function versionOf(item: Record<string, unknown>): number {
  const version = item[VERSION_ATTRIBUTE];
  return typeof version === 'number' ? version : typeof version === 'bigint' ? safeNumber(version, VERSION_ATTRIBUTE) : 0;
}

function isConditionFailure(error: unknown): boolean {
  return errorName(error) === 'ConditionalCheckFailedException';
}

export interface BlockRepositoryOptions {
  /** told of each item on the `active` index that is not a block record (listActive skips it) */
  readonly onForeignItem?: (key: { pk: unknown; sk: unknown }) => void;
}

export class BlockRepository {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
    private readonly options: BlockRepositoryOptions = {},
  ) {}

  async get(target: string): Promise<StoredRecord | undefined> {
    const out = await this.client.send(
      new GetCommand({ TableName: this.tableName, Key: stateKey(target), ConsistentRead: true }),
    );
    if (!out.Item) return undefined;
    return { record: toRecord(out.Item), version: versionOf(out.Item) };
  }

  /**
   * Writes the record if nobody wrote it since `expectedVersion` was read (undefined: only if it
   * does not exist). False when the condition failed: read again and decide again.
   */
  async save(record: BlockRecord, expectedVersion: number | undefined, now: number): Promise<boolean> {
    const item: Record<string, unknown> = {
      ...recordAttributes(record),
      ...stateKey(record.target),
      [VERSION_ATTRIBUTE]: (expectedVersion ?? 0) + 1,
    };
    if (record.active) item[ACTIVE_KEY_ATTRIBUTE] = ACTIVE_KEY;
    else item[TABLE_TTL_ATTRIBUTE] = Math.floor(now / 1000) + HISTORY_RETENTION_SECONDS;
    try {
      await this.client.send(
        new PutCommand({
          TableName: this.tableName,
          Item: item,
          ...(expectedVersion === undefined
            ? { ConditionExpression: 'attribute_not_exists(#pk)', ExpressionAttributeNames: { '#pk': TABLE_PARTITION_KEY } }
            : {
                ConditionExpression: '#version = :expected',
                ExpressionAttributeNames: { '#version': VERSION_ATTRIBUTE },
                ExpressionAttributeValues: { ':expected': expectedVersion },
              }),
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
          ...detail,
          ...historyKey(record.target, now, action),
          action,
          at: now,
          record: recordAttributes(record),
          [TABLE_TTL_ATTRIBUTE]: Math.floor(now / 1000) + HISTORY_RETENTION_SECONDS,
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
          ExpressionAttributeNames: { '#count': BURST_COUNT_ATTRIBUTE, '#ttl': TABLE_TTL_ATTRIBUTE },
          ExpressionAttributeValues: { ':one': 1, ':limit': limit, ':ttl': Math.floor(minute / 1000) + 86400 },
        }),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }

  /**
   * Every block record on the `active` index (optionally only those expiring at or before
   * `expiringBy`). An item that is not a block record (core/table.ts isBlockRecordItem) is
   * skipped, whatever it holds: only a block record is desired state.
   */
  async listActive(expiringBy?: number): Promise<StoredRecord[]> {
    const result: StoredRecord[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const out = await this.client.send(
        new QueryCommand({
          TableName: this.tableName,
          IndexName: ACTIVE_INDEX,
          KeyConditionExpression: expiringBy === undefined ? '#activeKey = :active' : '#activeKey = :active AND #expiresAt <= :by',
          ExpressionAttributeNames: { '#activeKey': ACTIVE_KEY_ATTRIBUTE, ...(expiringBy === undefined ? {} : { '#expiresAt': EXPIRES_AT_ATTRIBUTE }) },
          ExpressionAttributeValues: { ':active': ACTIVE_KEY, ...(expiringBy === undefined ? {} : { ':by': safeNumber(expiringBy, 'expiringBy') }) },
          ...(startKey ? { ExclusiveStartKey: startKey } : {}),
        }),
      );
      for (const item of out.Items ?? []) {
        if (isBlockRecordItem(item)) result.push({ record: toRecord(item), version: versionOf(item) });
        else this.options.onForeignItem?.({ pk: item[TABLE_PARTITION_KEY], sk: item[TABLE_SORT_KEY] });
      }
      startKey = out.LastEvaluatedKey;
    } while (startKey);
    return result;
  }
}

const PLACEMENT_STATES: readonly PlacementState[] = ['pending', 'confirmed', 'freed'];
/** the ledger header's attribute: when the stack let go of the ACL */
const RETIRED_AT = 'retiredAt';

/**
 * The NACL placement ledger (core/nacl.ts): this stack's claim on each rule number it placed an
 * entry at, in the stack's own table. Reads are strongly consistent, so a claim written before a
 * CreateNetworkAclEntry is seen by every later run.
 */
export class PlacementLedger {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  /** Every row of the ACL's ledger (freed ones included). */
  async list(aclId: string): Promise<Placement[]> {
    const result: Placement[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const out = await this.client.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: '#pk = :pk AND begins_with(#sk, :rule)',
          ExpressionAttributeNames: { '#pk': TABLE_PARTITION_KEY, '#sk': TABLE_SORT_KEY },
          ExpressionAttributeValues: { ':pk': naclPartition(aclId), ':rule': NACL_RULE_SK_PREFIX },
          ConsistentRead: true,
          ...(startKey ? { ExclusiveStartKey: startKey } : {}),
        }),
      );
      for (const item of out.Items ?? []) {
        const ruleNumber = ruleNumberOfSortKey(item[TABLE_SORT_KEY]);
        const cidr = item[PLACEMENT_ATTRIBUTES.cidr];
        const state = PLACEMENT_STATES.find((s) => s === item[PLACEMENT_ATTRIBUTES.state]);
        if (ruleNumber === undefined || typeof cidr !== 'string' || !state) continue;
        // `previous` (one CIDR) is how rows written before `maybe` name a CIDR that may be there
        const previous = item[PLACEMENT_ATTRIBUTES.previous];
        const listed = item[PLACEMENT_ATTRIBUTES.maybe];
        const maybe = [...(Array.isArray(listed) ? listed.filter((c): c is string => typeof c === 'string') : []), ...(typeof previous === 'string' ? [previous] : [])];
        const heldUntil = item[PLACEMENT_ATTRIBUTES.heldUntil];
        result.push({
          ruleNumber,
          cidr,
          state,
          ...(maybe.length ? { maybe } : {}),
          ...(typeof heldUntil === 'number' || typeof heldUntil === 'bigint' ? { heldUntil: safeNumber(heldUntil, 'heldUntil') } : {}),
        });
      }
      startKey = out.LastEvaluatedKey;
    } while (startKey);
    return result;
  }

  /** Claims the number BEFORE the entry is written; `maybe`: every other CIDR of ours that may be there. */
  async pending(aclId: string, ruleNumber: number, cidr: string, maybe: readonly string[] = []): Promise<void> {
    const others = [...new Set(maybe.filter((c) => c !== cidr))];
    await this.put(aclId, ruleNumber, { [PLACEMENT_ATTRIBUTES.cidr]: cidr, [PLACEMENT_ATTRIBUTES.state]: 'pending', ...(others.length ? { [PLACEMENT_ATTRIBUTES.maybe]: others } : {}) });
  }

  /** The entry is in the ACL. */
  async confirm(aclId: string, ruleNumber: number, cidr: string): Promise<void> {
    await this.put(aclId, ruleNumber, { [PLACEMENT_ATTRIBUTES.cidr]: cidr, [PLACEMENT_ATTRIBUTES.state]: 'confirmed' });
  }

  /** The entry is gone: the number is held until `heldUntil`, then DynamoDB may drop the row. */
  async free(aclId: string, ruleNumber: number, cidr: string, heldUntil: number): Promise<void> {
    await this.put(aclId, ruleNumber, {
      [PLACEMENT_ATTRIBUTES.cidr]: cidr,
      [PLACEMENT_ATTRIBUTES.state]: 'freed',
      [PLACEMENT_ATTRIBUTES.heldUntil]: safeNumber(heldUntil, 'heldUntil'),
      [TABLE_TTL_ATTRIBUTE]: Math.ceil(heldUntil / 1000) + 86400,
    });
  }

  /** Withdraws a pending claim that was never carried out (only if it is still that claim). */
  async withdraw(aclId: string, ruleNumber: number, cidr: string): Promise<void> {
    try {
      await this.client.send(
        new DeleteCommand({
          TableName: this.tableName,
          Key: naclRuleKey(aclId, ruleNumber),
          ConditionExpression: '#state = :pending AND #cidr = :cidr',
          ExpressionAttributeNames: { '#state': PLACEMENT_ATTRIBUTES.state, '#cidr': PLACEMENT_ATTRIBUTES.cidr },
          ExpressionAttributeValues: { ':pending': 'pending', ':cidr': cidr },
        }),
      );
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
    }
  }

  /** Puts a row back as it was (a claim overwritten by a create that was refused). */
  async restore(aclId: string, placement: Placement): Promise<void> {
    if (placement.state === 'freed') await this.free(aclId, placement.ruleNumber, placement.cidr, placement.heldUntil ?? 0);
    else if (placement.state === 'pending') await this.pending(aclId, placement.ruleNumber, placement.cidr, placement.maybe);
    else await this.confirm(aclId, placement.ruleNumber, placement.cidr);
  }

  /** True once the ACL's ledger is set up (legacy entries adopted, or a new stack). */
  async isSetUp(aclId: string): Promise<boolean> {
    return (await this.header(aclId)) !== undefined;
  }

  /** True once the stack has let go of the ACL (its Delete, or an Update that dropped it): no new claim may be made. */
  async isRetired(aclId: string): Promise<boolean> {
    return (await this.header(aclId))?.[RETIRED_AT] !== undefined;
  }

  /** Sets the ACL's ledger up (a Create, or an Update that lists the ACL again): not retired. */
  async markSetUp(aclId: string, at: number): Promise<void> {
    await this.client.send(new PutCommand({ TableName: this.tableName, Item: { ...naclLedgerKey(aclId), at } }));
  }

  /**
   * The stack lets go of the ACL: every claim made after this is withdrawn by its writer
   * (NaclAdapter checks after claiming), so a run in flight during the cleanup adds nothing the
   * cleanup would not see.
   */
  async retire(aclId: string, at: number): Promise<void> {
    await this.client.send(new PutCommand({ TableName: this.tableName, Item: { ...naclLedgerKey(aclId), at, [RETIRED_AT]: safeNumber(at, 'retiredAt') } }));
  }

  private async header(aclId: string): Promise<Record<string, unknown> | undefined> {
    const out = await this.client.send(new GetCommand({ TableName: this.tableName, Key: naclLedgerKey(aclId), ConsistentRead: true }));
    return out.Item;
  }

  private async put(aclId: string, ruleNumber: number, attributes: Record<string, unknown>): Promise<void> {
    await this.client.send(
      new PutCommand({ TableName: this.tableName, Item: { ...attributes, ...naclRuleKey(aclId, ruleNumber), [PLACEMENT_ATTRIBUTES.ruleNumber]: ruleNumber } }),
    );
  }
}
