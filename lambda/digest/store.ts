/**
 * The digest's reads and writes of the decision table (core/digest.ts DIGEST_STATE_KEY, core/table.ts
 * history keys). It reads history entries and writes only its own claim item, never a block record:
 * aws/repository.ts stays the one writer of desired state.
 *
 * The claim (exactly-once-ish): a conditional UpdateItem takes the window ending at `until` only
 * when no live claim exists; each channel's `sent_<channel>` moves forward only while the claim is
 * ours and only to a later end. A duplicated or redelivered invocation of the same schedule tick
 * finds the claim held (at the same time) or the channel already past `until` (later), and sends
 * nothing. A run that dies holding the claim loses it at `claimExpires` (the lease).
 * https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ConditionExpressions.html
 * https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_Scan.html (pages of at most 1 MB, LastEvaluatedKey)
 */
import { GetCommand, QueryCommand, ScanCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { CLAIM_ATTRIBUTES, DIGEST_STATE_KEY, sentAttribute, type DigestChannel, type DigestEntry } from '../../core/digest';
import { blockPartition, HISTORY_SK_PREFIX, parseHistorySortKey, TABLE_PARTITION_KEY, TABLE_SORT_KEY, targetOfPartition } from '../../core/table';
import { BlockRepository, MAX_CHANGES_SPAN_MS } from '../../aws/repository';
import { errorName } from '../../aws/retry';

export interface DigestState {
  /** per channel, the end of the last window delivered (epoch ms) */
  readonly sent: Partial<Record<DigestChannel, number>>;
}

function num(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : typeof value === 'bigint' ? Number(value) : undefined;
}

/** how many targets' history partitions the digest Queries at once */
export const HISTORY_QUERY_CONCURRENCY = 16;

export class DigestStore {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async read(): Promise<DigestState> {
    const out = await this.client.send(new GetCommand({ TableName: this.tableName, Key: DIGEST_STATE_KEY, ConsistentRead: true }));
    const sent: Partial<Record<DigestChannel, number>> = {};
    for (const channel of ['sns', 'webhook'] as const) {
      const at = num(out.Item?.[sentAttribute(channel)]);
      if (at !== undefined) sent[channel] = at;
    }
    return { sent };
  }

  /** Takes the window ending at `until` for `id` until `expires`; false when another run holds a live claim. */
  async claim(id: string, until: number, now: number, expires: number): Promise<boolean> {
    try {
      await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: DIGEST_STATE_KEY,
          UpdateExpression: 'SET #id = :id, #until = :until, #expires = :expires',
          ConditionExpression: 'attribute_not_exists(#expires) OR #expires <= :now',
          ExpressionAttributeNames: { '#id': CLAIM_ATTRIBUTES.id, '#until': CLAIM_ATTRIBUTES.until, '#expires': CLAIM_ATTRIBUTES.expires },
          ExpressionAttributeValues: { ':id': id, ':until': until, ':expires': expires, ':now': now },
        }),
      );
      return true;
    } catch (error) {
      if (errorName(error) === 'ConditionalCheckFailedException') return false;
      throw error;
    }
  }

  /** Records the window ending at `until` as delivered to `channel`; false when the claim is no longer ours or the channel is already past it. */
  async markSent(id: string, channel: DigestChannel, until: number): Promise<boolean> {
    try {
      await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: DIGEST_STATE_KEY,
          UpdateExpression: 'SET #sent = :until',
          ConditionExpression: '#id = :id AND (attribute_not_exists(#sent) OR #sent < :until)',
          ExpressionAttributeNames: { '#sent': sentAttribute(channel), '#id': CLAIM_ATTRIBUTES.id },
          ExpressionAttributeValues: { ':id': id, ':until': until },
        }),
      );
      return true;
    } catch (error) {
      if (errorName(error) === 'ConditionalCheckFailedException') return false;
      throw error;
    }
  }

  /** Lets go of the claim if it is still ours. */
  async release(id: string): Promise<void> {
    try {
      await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: DIGEST_STATE_KEY,
          UpdateExpression: 'REMOVE #id, #until, #expires',
          ConditionExpression: '#id = :id',
          ExpressionAttributeNames: { '#id': CLAIM_ATTRIBUTES.id, '#until': CLAIM_ATTRIBUTES.until, '#expires': CLAIM_ATTRIBUTES.expires },
          ExpressionAttributeValues: { ':id': id },
        }),
      );
    } catch (error) {
      if (errorName(error) !== 'ConditionalCheckFailedException') throw error;
    }
  }

  /**
   * Every history entry written in [from, until). A window of at most a day reads the change log
   * (core/table.ts `changes` index, BlockRepository.changesSince): every target with a history
   * entry in the window had its record saved then, so its last change is at or after `from`; then
   * the window's entries of each such target, one Query of its partition (`HIST#<from>` to
   * `HIST#<until>`), HISTORY_QUERY_CONCURRENCY at a time. Its cost follows the window's activity,
   * not the table's size. A longer window (a digest held back for more than a day: nothing met the
   * threshold) falls back to a Scan of the table, page by page: history has no index across
   * sources, and such a window only happens when there was little to report. `onMalformed` is
   * told of an entry it cannot read, which is skipped.
   * https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_Query.html
   */
  async *history(from: number, until: number, onMalformed: (key: unknown) => void = () => undefined): AsyncGenerator<DigestEntry> {
    // history sort keys are `HIST#<ISO time>#<action>`: those at or after `from` and before `until` sort between these two
    const lo = `${HISTORY_SK_PREFIX}${new Date(from).toISOString()}`;
    const hi = `${HISTORY_SK_PREFIX}${new Date(until).toISOString()}`;
    const names = { '#pk': TABLE_PARTITION_KEY, '#sk': TABLE_SORT_KEY, '#at': 'at', '#action': 'action', '#record': 'record' };
    const projection = '#pk, #sk, #at, #action, #record';
    const since = from - 1;
    const end = Math.max(until, from);
    if (end - since <= MAX_CHANGES_SPAN_MS) {
      const targets = (await new BlockRepository(this.client, this.tableName).changesSince(since, end)).map((r) => r.target);
      const queue = [...targets];
      const found: Array<Record<string, unknown>> = [];
      const worker = async (): Promise<void> => {
        for (let target = queue.shift(); target !== undefined; target = queue.shift()) {
          let start: Record<string, unknown> | undefined;
          do {
            const out = await this.client.send(
              new QueryCommand({
                TableName: this.tableName,
                KeyConditionExpression: '#pk = :pk AND #sk BETWEEN :lo AND :hi',
                ProjectionExpression: projection,
                ExpressionAttributeNames: names,
                ExpressionAttributeValues: { ':pk': blockPartition(target), ':lo': lo, ':hi': hi },
                ...(start ? { ExclusiveStartKey: start } : {}),
              }),
            );
            found.push(...(out.Items ?? []));
            start = out.LastEvaluatedKey;
          } while (start);
        }
      };
      await Promise.all(Array.from({ length: Math.min(HISTORY_QUERY_CONCURRENCY, queue.length) }, worker));
      for (const item of found) {
        const entry = entryOf(item);
        if (entry) yield entry;
        else onMalformed({ pk: item[TABLE_PARTITION_KEY], sk: item[TABLE_SORT_KEY] });
      }
      return;
    }
    let start: Record<string, unknown> | undefined;
    do {
      const out = await this.client.send(
        new ScanCommand({
          TableName: this.tableName,
          FilterExpression: '#sk BETWEEN :lo AND :hi',
          ProjectionExpression: projection,
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: { ':lo': lo, ':hi': hi },
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      );
      for (const item of out.Items ?? []) {
        const entry = entryOf(item);
        if (entry) yield entry;
        else onMalformed({ pk: item[TABLE_PARTITION_KEY], sk: item[TABLE_SORT_KEY] });
      }
      start = out.LastEvaluatedKey;
    } while (start);
  }
}

/** One history item as a digest entry, or undefined when it is not one (another writer's item, a damaged one). */
export function entryOf(item: Record<string, unknown>): DigestEntry | undefined {
  const target = targetOfPartition(item[TABLE_PARTITION_KEY]);
  const key = parseHistorySortKey(item[TABLE_SORT_KEY]);
  if (!target || !key) return undefined;
  const at = num(item.at) ?? Date.parse(key.at);
  if (!Number.isFinite(at)) return undefined;
  const record = typeof item.record === 'object' && item.record !== null ? (item.record as Record<string, unknown>) : {};
  const ports = Array.isArray(record.ports) ? record.ports.filter((p): p is number => Number.isInteger(p) && p >= 0 && p <= 65535).slice(0, 32) : undefined;
  return {
    at,
    action: typeof item.action === 'string' ? item.action : key.action,
    target,
    hitCount: num(record.hitCount) ?? 0,
    offences: num(record.offences) ?? 1,
    ...(typeof record.reason === 'string' ? { reason: record.reason } : {}),
    ...(ports && ports.length ? { ports } : {}),
    ...(typeof record.liftedBy === 'string' ? { liftedBy: record.liftedBy } : {}),
  };
}
