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
 * - a global secondary index is read eventually consistent only (ConsistentRead is refused on
 *   it), so the change log's readers read from a little before their last position, and a Query
 *   page cut by Limit may carry a LastEvaluatedKey with nothing after it; Limit counts the items
 *   evaluated before a FilterExpression (the backfill's pages may come back empty).
 *   https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html#GSI.Reading
 *   https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Query.FilterExpression.html
 */
import { DeleteCommand, type DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { Placement, PlacementState } from '../core/nacl';
import { BLOCK_REASONS, type BlockRecord, type ChangedRecord, type EnforcementRecord } from '../core/policy';
import { minuteOf } from '../core/policy';
import {
  ACTIVE_CHANGE_KEY,
  ACTIVE_INDEX,
  ACTIVE_KEY,
  BACKFILL_KEY,
  BACKFILL_MARKER_CHANGE_AT,
  BACKFILL_MARKER_CHANGE_KEY,
  CHANGE_AT_ATTRIBUTE,
  CHANGE_KEY_ATTRIBUTE,
  CHANGES_INDEX,
  changeSortKey,
  changeTimeKey,
  liftedChangeKey,
  parseChangeSortKey,
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
} from '../core/table';
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
  'ports',
] as const;

/** The table's own attributes: a record field of the same name is never written over them. */
const TABLE_ATTRIBUTES = new Set<string>([TABLE_PARTITION_KEY, TABLE_SORT_KEY, VERSION_ATTRIBUTE, ACTIVE_KEY_ATTRIBUTE, TABLE_TTL_ATTRIBUTE, CHANGE_KEY_ATTRIBUTE, CHANGE_AT_ATTRIBUTE]);

/** the largest time a `chgAt` can hold (13 digits: the year 2286) */
const MAX_CHANGE_AT = 9_999_999_999_999;
/** changesSince refuses a longer span: the caller does a full run instead */
export const MAX_CHANGES_SPAN_MS = 86_400_000;
/** a lift stamped by a writer whose clock is ahead of the reader's by up to this is still read (one more day partition near midnight) */
export const CHANGE_CLOCK_SKEW_MS = 60_000;
/**
 * The backfill writes its marker only after an empty pass that began this long after a first
 * empty pass: any invocation of a function version that does not stamp (in flight while the stack
 * update replaced it) has ended by then (Lambda's longest timeout is 900 s).
 * https://docs.aws.amazon.com/lambda/latest/dg/configuration-timeout.html
 */
export const BACKFILL_SETTLE_MS = 16 * 60_000;

/**
 * The time a save stamps into `chgAt`: its `now`, or the record's recency (max(lastSeen,
 * blockedAt)) when that is later (a sensor clock ahead of ours), so a record's change time is never
 * before its recency: recentActive relies on it. Clamped to what 13 digits hold.
 */
export function changeStampOf(record: Pick<BlockRecord, 'lastSeen' | 'blockedAt'>, now: number): number {
  const at = Math.max(...[now, record.lastSeen, record.blockedAt].filter((n) => typeof n === 'number' && Number.isFinite(n)));
  if (!Number.isFinite(at)) throw new Error(`save: now ${now} is not a time`);
  return Math.min(MAX_CHANGE_AT, Math.max(0, Math.ceil(at)));
}

/** The recency enforcement ranks a record by (core/diff.ts): the attacker's latest activity, or a later block. */
function recencyOf(record: Pick<EnforcementRecord, 'lastSeen' | 'blockedAt'>): number {
  return Math.max(record.lastSeen, record.blockedAt);
}

function familyOfTarget(target: string): 'ipv4' | 'ipv6' {
  return target.includes(':') ? 'ipv6' : 'ipv4';
}

function numberOf(value: unknown): number | undefined {
  if (typeof value === 'bigint') return safeNumber(value, 'number');
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

/** The record an item of the `changes` index holds, or undefined when it is not a block record's entry. */
function toChangedRecord(item: Record<string, unknown>): ChangedRecord | undefined {
  if (!isBlockRecordItem(item)) return undefined;
  const change = parseChangeSortKey(item[CHANGE_AT_ATTRIBUTE]);
  if (!change || change.target !== item.target) return undefined;
  const lastSeen = numberOf(item.lastSeen);
  const blockedAt = numberOf(item.blockedAt);
  const expiresAt = numberOf(item.expiresAt);
  if (lastSeen === undefined || blockedAt === undefined || expiresAt === undefined || typeof item.active !== 'boolean') return undefined;
  // the reason decides simulation (core/policy.ts simulationOf); one no version of portsnare writes is left out, and only `all` simulates that record
  const reason = BLOCK_REASONS.find((known) => known === item.reason);
  return { target: change.target, lastSeen, blockedAt, expiresAt, active: item.active, ...(reason !== undefined ? { reason } : {}), changedAt: change.at };
}

/** Most recent first, equal recency by target: the order core/nacl.ts ranks candidates in. */
function byRecency(a: ChangedRecord, b: ChangedRecord): number {
  return recencyOf(b) - recencyOf(a) || (a.target < b.target ? -1 : a.target > b.target ? 1 : 0);
}

/** The UTC days (as their first millisecond) from the day of `from` to the day of `to`, both included. */
function utcDaysBetween(from: number, to: number): number[] {
  const days: number[] = [];
  for (let day = Math.floor(from / 86_400_000) * 86_400_000; day <= to; day += 86_400_000) days.push(day);
  return days;
}

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
  if (item.ports !== undefined) {
    const ports = Array.isArray(item.ports) ? item.ports.map(Number).filter((p) => Number.isInteger(p) && p >= 0 && p <= 65535) : [];
    if (ports.length) record.ports = ports;
    else delete record.ports;
  }
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
   * does not exist). False when the condition failed: read again and decide again. Stamps the
   * change log (core/table.ts): `chgKey` A or the lifted day, `chgAt` changeStampOf(record, now).
   */
  async save(record: BlockRecord, expectedVersion: number | undefined, now: number): Promise<boolean> {
    const item: Record<string, unknown> = {
      ...recordAttributes(record),
      ...stateKey(record.target),
      [VERSION_ATTRIBUTE]: (expectedVersion ?? 0) + 1,
    };
    const changedAt = changeStampOf(record, now);
    item[CHANGE_AT_ATTRIBUTE] = changeSortKey(changedAt, record.target);
    if (record.active) {
      item[ACTIVE_KEY_ATTRIBUTE] = ACTIVE_KEY;
      item[CHANGE_KEY_ATTRIBUTE] = ACTIVE_CHANGE_KEY;
    } else {
      item[TABLE_TTL_ATTRIBUTE] = Math.floor(now / 1000) + HISTORY_RETENTION_SECONDS;
      item[CHANGE_KEY_ATTRIBUTE] = liftedChangeKey(changedAt);
    }
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

  /**
   * Every record whose last change is after `since` (epoch ms), ascending by change time, once per
   * target: the `A` partition of the `changes` index from `since`, plus the lifted partition of
   * each UTC day from the day of `since` to the day of `now` (a minute more: a lift stamped by a
   * clock slightly ahead of ours near midnight). Eventually consistent, as every GSI read: the
   * caller reads from a little before its last position. Throws when `now − since` is more than a
   * day (MAX_CHANGES_SPAN_MS): the caller does a full run instead.
   */
  async changesSince(since: number, now: number): Promise<ChangedRecord[]> {
    if (!Number.isFinite(since) || !Number.isFinite(now)) throw new Error(`changesSince: since ${since} and now ${now} must both be epoch-ms times`);
    if (now - since > MAX_CHANGES_SPAN_MS) {
      throw new Error(`changesSince: since ${since} is ${now - since} ms before now ${now}, more than ${MAX_CHANGES_SPAN_MS}: do a full run`);
    }
    // changed at since + 1 or later: `chgAt` is the time's digits then `#`, so ">= digits" starts there
    const from = changeTimeKey(Math.min(MAX_CHANGE_AT, Math.max(0, Math.floor(since) + 1)));
    const partitions = [ACTIVE_CHANGE_KEY, ...utcDaysBetween(Math.max(0, since), Math.min(MAX_CHANGE_AT, now + CHANGE_CLOCK_SKEW_MS)).map(liftedChangeKey)];
    const latest = new Map<string, ChangedRecord>();
    for (const partition of partitions) {
      for await (const record of this.changeEntries(partition, { from })) {
        // a record moved between partitions while they were read is in both: its later change wins
        const seen = latest.get(record.target);
        if (!seen || record.changedAt > seen.changedAt) latest.set(record.target, record);
      }
    }
    return [...latest.values()].sort((a, b) => a.changedAt - b.changedAt || (a.target < b.target ? -1 : a.target > b.target ? 1 : 0));
  }

  /**
   * For each family (IPv4, IPv6), the `perFamily` active records most recently active
   * (max(lastSeen, blockedAt), equal recency by target: core/nacl.ts's order), most recent first:
   * what the NACL plan needs. Reads the `A` partition newest change first and stops as soon as each
   * family has `perFamily` records read whose recency is after the change time of the next item
   * (a save stamps a change time never before the record's recency, changeStampOf, so no unread
   * record can rank before them). A few items per call when the newest changes are new blocks; a
   * long run of refreshes with old activity (a manual note, an expiry extension) is read through.
   * `eligible` (optional): only the records it accepts count and come back (e.g. not yet expired,
   * NACL-shaped and allowed by the guard), so the answer is the n most recent of those.
   */
  async recentActive(perFamily: number, eligible?: (record: ChangedRecord) => boolean): Promise<ChangedRecord[]> {
    if (!Number.isInteger(perFamily) || perFamily < 0) throw new Error(`recentActive: perFamily ${perFamily} is not a non-negative integer`);
    if (perFamily === 0) return [];
    const read: Record<'ipv4' | 'ipv6', ChangedRecord[]> = { ipv4: [], ipv6: [] };
    // per family: the recencies not yet known to rank before every unread record, and how many are
    const open = { ipv4: new MaxHeap(), ipv6: new MaxHeap() };
    const ranked = { ipv4: 0, ipv6: 0 };
    const enough = (bound: number): boolean =>
      (['ipv4', 'ipv6'] as const).every((family) => {
        while (open[family].size > 0 && open[family].peek() > bound) {
          open[family].pop();
          ranked[family]++;
        }
        return ranked[family] >= perFamily;
      });
    const pageSize = Math.min(1000, 2 * perFamily + 2);
    for await (const record of this.changeEntries(ACTIVE_CHANGE_KEY, { newestFirst: true, pageSize })) {
      if (enough(record.changedAt)) break;
      if (eligible && !eligible(record)) continue;
      const family = familyOfTarget(record.target);
      read[family].push(record);
      open[family].push(recencyOf(record));
    }
    return [...read.ipv4.sort(byRecency).slice(0, perFamily), ...read.ipv6.sort(byRecency).slice(0, perFamily)].sort(byRecency);
  }

  /**
   * The whole desired state for a full enforce run: the `A` partition of the `changes` index; and,
   * until the change-log backfill has written its marker, the `active` index too (records saved
   * before the change log existed carry no stamp: a full run that did not see them would lift them).
   */
  async listEnforced(): Promise<EnforcementRecord[]> {
    const backfilled = await this.hasBackfillMarker();
    const byTarget = new Map<string, EnforcementRecord>();
    for await (const record of this.changeEntries(ACTIVE_CHANGE_KEY, {})) {
      byTarget.set(record.target, { target: record.target, lastSeen: record.lastSeen, blockedAt: record.blockedAt, expiresAt: record.expiresAt, active: record.active, reason: record.reason });
    }
    if (!backfilled) {
      for (const { record } of await this.listActive()) {
        if (byTarget.has(record.target)) continue;
        byTarget.set(record.target, { target: record.target, lastSeen: record.lastSeen, blockedAt: record.blockedAt, expiresAt: record.expiresAt, active: record.active, reason: record.reason });
      }
    }
    return [...byTarget.values()];
  }

  /** True once the change-log backfill is done: its marker is on the `changes` index (readable with Query on that index alone). */
  async hasBackfillMarker(): Promise<boolean> {
    const out = await this.client.send(
      new QueryCommand({
        TableName: this.tableName,
        IndexName: CHANGES_INDEX,
        KeyConditionExpression: '#chgKey = :marker AND #chgAt = :done',
        ExpressionAttributeNames: { '#chgKey': CHANGE_KEY_ATTRIBUTE, '#chgAt': CHANGE_AT_ATTRIBUTE },
        ExpressionAttributeValues: { ':marker': BACKFILL_MARKER_CHANGE_KEY, ':done': BACKFILL_MARKER_CHANGE_AT },
      }),
    );
    // only the marker's own key counts: another writer's item with the same index keys is not it
    return (out.Items ?? []).some((item) => item[TABLE_PARTITION_KEY] === BACKFILL_KEY.pk && item[TABLE_SORT_KEY] === BACKFILL_KEY.sk);
  }

  /**
   * One step of the change-log backfill (run by expiry every minute until done): reads up to
   * `maxPages` pages of the `active` index filtered to records without a stamp, from where the last
   * step stopped, and stamps each (`chgKey` A, `chgAt` its recency: it has not changed since) with
   * an UpdateItem conditional on no stamp, still active and the version read, so a save that raced
   * it (which stamps its own, later, time) is never overwritten. A pass is the whole index; after a
   * pass that found none it waits BACKFILL_SETTLE_MS and makes one more pass, and only when that
   * one finds none either writes the marker. The progress is kept in the marker's item, written
   * conditionally on its revision (two expiry runs at once: one step counts, the other is lost).
   */
  async backfillChanges(now: number, maxPages = BACKFILL_PAGES_PER_RUN, pageSize = BACKFILL_PAGE_SIZE): Promise<BackfillStep> {
    const state = (await this.client.send(new GetCommand({ TableName: this.tableName, Key: BACKFILL_KEY, ConsistentRead: true }))).Item;
    if (state?.[CHANGE_KEY_ATTRIBUTE] === BACKFILL_MARKER_CHANGE_KEY) return { done: true, found: 0, stamped: 0, passEnded: false };
    const revision = numberOf(state?.[BACKFILL_ATTRIBUTES.revision]) ?? 0;
    const emptySince = numberOf(state?.[BACKFILL_ATTRIBUTES.emptySince]);
    const saved = state?.[BACKFILL_ATTRIBUTES.cursor];
    let cursor = saved !== null && typeof saved === 'object' ? (saved as Record<string, unknown>) : undefined;
    let passFound = state?.[BACKFILL_ATTRIBUTES.passFound] === true;
    // after an empty pass, the next one starts only once every writer that did not stamp has stopped
    if (cursor === undefined && emptySince !== undefined && now < emptySince + BACKFILL_SETTLE_MS) return { done: false, found: 0, stamped: 0, passEnded: false };
    let found = 0;
    let stamped = 0;
    let pages = 0;
    do {
      const out = await this.client.send(
        new QueryCommand({
          TableName: this.tableName,
          IndexName: ACTIVE_INDEX,
          KeyConditionExpression: '#activeKey = :active',
          FilterExpression: 'attribute_not_exists(#chgKey)',
          ExpressionAttributeNames: { '#activeKey': ACTIVE_KEY_ATTRIBUTE, '#chgKey': CHANGE_KEY_ATTRIBUTE },
          ExpressionAttributeValues: { ':active': ACTIVE_KEY },
          Limit: pageSize,
          ...(cursor ? { ExclusiveStartKey: cursor } : {}),
        }),
      );
      const records = (out.Items ?? []).filter((item) => {
        if (isBlockRecordItem(item)) return true;
        this.options.onForeignItem?.({ pk: item[TABLE_PARTITION_KEY], sk: item[TABLE_SORT_KEY] });
        return false;
      });
      found += records.length;
      const results = await inBatches(records, BACKFILL_CONCURRENCY, (item) => this.stamp(item));
      stamped += results.filter(Boolean).length;
      cursor = out.LastEvaluatedKey;
      pages++;
    } while (cursor && pages < maxPages);
    passFound ||= found > 0;
    const passEnded = cursor === undefined;
    const done = passEnded && !passFound && emptySince !== undefined;
    const next: Record<string, unknown> = !passEnded
      ? { [BACKFILL_ATTRIBUTES.cursor]: cursor, [BACKFILL_ATTRIBUTES.passFound]: passFound, ...(emptySince === undefined ? {} : { [BACKFILL_ATTRIBUTES.emptySince]: emptySince }) }
      : passFound
        ? {} // records were stamped in this pass: another pass, and then the settle
        : { [BACKFILL_ATTRIBUTES.emptySince]: emptySince ?? now };
    if (done) Object.assign(next, { [CHANGE_KEY_ATTRIBUTE]: BACKFILL_MARKER_CHANGE_KEY, [CHANGE_AT_ATTRIBUTE]: BACKFILL_MARKER_CHANGE_AT, [BACKFILL_ATTRIBUTES.doneAt]: safeNumber(now, 'now') });
    try {
      await this.client.send(
        new PutCommand({
          TableName: this.tableName,
          Item: { ...next, ...BACKFILL_KEY, [BACKFILL_ATTRIBUTES.revision]: revision + 1 },
          ...(state === undefined
            ? { ConditionExpression: 'attribute_not_exists(#pk)', ExpressionAttributeNames: { '#pk': TABLE_PARTITION_KEY } }
            : { ConditionExpression: '#revision = :revision', ExpressionAttributeNames: { '#revision': BACKFILL_ATTRIBUTES.revision }, ExpressionAttributeValues: { ':revision': revision } }),
        }),
      );
    } catch (error) {
      // another run moved the backfill on meanwhile: its step counts, this one's stamps stay
      if (isConditionFailure(error)) return { done: false, found, stamped, passEnded: false };
      throw error;
    }
    return { done, found, stamped, passEnded };
  }

  /** Stamps one unstamped active record with its recency as its change time; false when a save got there first. */
  private async stamp(item: Record<string, unknown>): Promise<boolean> {
    const target = item.target as string;
    const at = changeStampOf({ lastSeen: numberOf(item.lastSeen) ?? 0, blockedAt: numberOf(item.blockedAt) ?? 0 }, 0);
    try {
      await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: stateKey(target),
          UpdateExpression: 'SET #chgKey = :active, #chgAt = :at',
          ConditionExpression: 'attribute_not_exists(#chgKey) AND #active = :true AND #version = :version',
          ExpressionAttributeNames: { '#chgKey': CHANGE_KEY_ATTRIBUTE, '#chgAt': CHANGE_AT_ATTRIBUTE, '#active': 'active', '#version': VERSION_ATTRIBUTE },
          ExpressionAttributeValues: { ':active': ACTIVE_CHANGE_KEY, ':at': changeSortKey(at, target), ':true': true, ':version': versionOf(item) },
        }),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }

  /** The block records of one `changes` partition, page by page (foreign items skipped and reported). */
  private async *changeEntries(partition: string, options: { from?: string; newestFirst?: boolean; pageSize?: number }): AsyncGenerator<ChangedRecord> {
    let startKey: Record<string, unknown> | undefined;
    do {
      const out = await this.client.send(
        new QueryCommand({
          TableName: this.tableName,
          IndexName: CHANGES_INDEX,
          KeyConditionExpression: options.from === undefined ? '#chgKey = :partition' : '#chgKey = :partition AND #chgAt >= :from',
          ExpressionAttributeNames: { '#chgKey': CHANGE_KEY_ATTRIBUTE, ...(options.from === undefined ? {} : { '#chgAt': CHANGE_AT_ATTRIBUTE }) },
          ExpressionAttributeValues: { ':partition': partition, ...(options.from === undefined ? {} : { ':from': options.from }) },
          ...(options.newestFirst ? { ScanIndexForward: false } : {}),
          ...(options.pageSize ? { Limit: options.pageSize } : {}),
          ...(startKey ? { ExclusiveStartKey: startKey } : {}),
        }),
      );
      for (const item of out.Items ?? []) {
        const record = toChangedRecord(item);
        if (record) yield record;
        else this.options.onForeignItem?.({ pk: item[TABLE_PARTITION_KEY], sk: item[TABLE_SORT_KEY] });
      }
      startKey = out.LastEvaluatedKey;
    } while (startKey);
  }
}

/** pages of the `active` index one backfill step reads at most (expiry's 30 s timeout holds a few thousand conditional updates) */
export const BACKFILL_PAGES_PER_RUN = 4;
/** items per page of the backfill's read (Limit counts before the filter) */
export const BACKFILL_PAGE_SIZE = 500;
/** conditional updates of the backfill in flight at once */
const BACKFILL_CONCURRENCY = 16;
/** the backfill item's own attributes */
const BACKFILL_ATTRIBUTES = { revision: 'rev', cursor: 'cursor', passFound: 'passFound', emptySince: 'emptySince', doneAt: 'doneAt' } as const;

export interface BackfillStep {
  /** the marker exists (written by this step or before) */
  readonly done: boolean;
  /** unstamped active records this step read */
  readonly found: number;
  /** of those, the ones it stamped (the others a save stamped first) */
  readonly stamped: number;
  /** this step read the index to its end */
  readonly passEnded: boolean;
}

/** `work` over `items`, at most `concurrency` at once, results in order. */
async function inBatches<T, R>(items: readonly T[], concurrency: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  for (let i = 0; i < items.length; i += concurrency) results.push(...(await Promise.all(items.slice(i, i + concurrency).map(work))));
  return results;
}

/** A binary max-heap of numbers (recentActive's open recencies). */
class MaxHeap {
  private readonly items: number[] = [];
  get size(): number {
    return this.items.length;
  }
  peek(): number {
    return this.at(0);
  }
  push(value: number): void {
    this.items.push(value);
    for (let i = this.items.length - 1; i > 0; ) {
      const parent = (i - 1) >> 1;
      if (this.at(parent) >= this.at(i)) break;
      this.swap(parent, i);
      i = parent;
    }
  }
  pop(): number {
    const top = this.at(0);
    const last = this.items.pop() as number;
    if (this.items.length > 0) {
      this.items[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let largest = i;
        if (l < this.items.length && this.at(l) > this.at(largest)) largest = l;
        if (r < this.items.length && this.at(r) > this.at(largest)) largest = r;
        if (largest === i) break;
        this.swap(largest, i);
        i = largest;
      }
    }
    return top;
  }
  private at(i: number): number {
    return this.items[i] as number;
  }
  private swap(i: number, j: number): void {
    const t = this.at(i);
    this.items[i] = this.at(j);
    this.items[j] = t;
  }
}

const PLACEMENT_STATES: readonly PlacementState[] = ['pending', 'confirmed', 'freed'];

function placedAtItem(placedAt: number | undefined): Record<string, number> {
  return placedAt === undefined ? {} : { [PLACEMENT_ATTRIBUTES.placedAt]: safeNumber(placedAt, 'placedAt') };
}
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
        // rows written before the residence time have no placedAt: placed long ago
        const placedAt = item[PLACEMENT_ATTRIBUTES.placedAt];
        result.push({
          ruleNumber,
          cidr,
          state,
          ...(maybe.length ? { maybe } : {}),
          ...(typeof heldUntil === 'number' || typeof heldUntil === 'bigint' ? { heldUntil: safeNumber(heldUntil, 'heldUntil') } : {}),
          ...(typeof placedAt === 'number' || typeof placedAt === 'bigint' ? { placedAt: safeNumber(placedAt, 'placedAt') } : {}),
        });
      }
      startKey = out.LastEvaluatedKey;
    } while (startKey);
    return result;
  }

  /**
   * Claims the number BEFORE the entry is written; `maybe`: every other CIDR of ours that may be
   * there; `placedAt` (epoch ms): when `cidr` is being placed (the residence time, core/nacl.ts).
   */
  async pending(aclId: string, ruleNumber: number, cidr: string, maybe: readonly string[] = [], placedAt?: number): Promise<void> {
    const others = [...new Set(maybe.filter((c) => c !== cidr))];
    await this.put(aclId, ruleNumber, {
      [PLACEMENT_ATTRIBUTES.cidr]: cidr,
      [PLACEMENT_ATTRIBUTES.state]: 'pending',
      ...(others.length ? { [PLACEMENT_ATTRIBUTES.maybe]: others } : {}),
      ...placedAtItem(placedAt),
    });
  }

  /** The entry is in the ACL; `placedAt` (epoch ms): when it was written (absent: long ago, as rows of older versions). */
  async confirm(aclId: string, ruleNumber: number, cidr: string, placedAt?: number): Promise<void> {
    await this.put(aclId, ruleNumber, { [PLACEMENT_ATTRIBUTES.cidr]: cidr, [PLACEMENT_ATTRIBUTES.state]: 'confirmed', ...placedAtItem(placedAt) });
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
    else if (placement.state === 'pending') await this.pending(aclId, placement.ruleNumber, placement.cidr, placement.maybe, placement.placedAt);
    else await this.confirm(aclId, placement.ruleNumber, placement.cidr, placement.placedAt);
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
