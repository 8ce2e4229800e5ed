/**
 * Reads of the desired-state table that aws/repository.ts does not offer yet: a
 * target's history and the burst counter of one minute. Keys only through core/table.ts, so a
 * change of the key schema changes both sides; these belong in BlockRepository.
 * https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_Query.html
 */
import { GetCommand, type DynamoDBDocumentClient, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { BURST_COUNT_ATTRIBUTE, TABLE_PARTITION_KEY, TABLE_SORT_KEY, blockPartition, burstKey, parseHistorySortKey } from '../../../core/table';

/** One history item as BlockRepository.appendHistory writes it. */
export interface HistoryItem {
  readonly at: number;
  readonly action: string;
  readonly item: Record<string, unknown>;
}

/** Every history item of a target (all pages), oldest first. */
export async function readHistory(client: DynamoDBDocumentClient, tableName: string, target: string): Promise<HistoryItem[]> {
  const entries: HistoryItem[] = [];
  let startKey: Record<string, unknown> | undefined;
  do {
    const page = await client.send(
      new QueryCommand({
        TableName: tableName,
        // the whole partition (the state record is one item more); history items are told by their sort key
        KeyConditionExpression: '#pk = :pk',
        ExpressionAttributeNames: { '#pk': TABLE_PARTITION_KEY },
        ExpressionAttributeValues: { ':pk': blockPartition(target) },
        ConsistentRead: true,
        ...(startKey ? { ExclusiveStartKey: startKey } : {}),
      }),
    );
    for (const item of page.Items ?? []) {
      const key = parseHistorySortKey(item[TABLE_SORT_KEY]);
      if (!key) continue;
      const at = typeof item['at'] === 'number' ? item['at'] : Date.parse(key.at);
      entries.push({ at: Number.isFinite(at) ? at : 0, action: typeof item['action'] === 'string' ? item['action'] : key.action, item });
    }
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return entries.sort((a, b) => a.at - b.at);
}

/** The new blocks BlockRepository.admitBurst counted in the minute starting at `minuteStart`. */
export async function readBurstCount(client: DynamoDBDocumentClient, tableName: string, minuteStart: number): Promise<number> {
  const answer = await client.send(new GetCommand({ TableName: tableName, Key: burstKey(minuteStart), ConsistentRead: true }));
  // the repository's counter attribute (UpdateExpression "ADD #count :one")
  const count = answer.Item?.[BURST_COUNT_ATTRIBUTE];
  return typeof count === 'number' ? count : 0;
}
