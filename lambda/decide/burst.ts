/**
 * The cloud's burst circuit breaker: at most `limit` new blocks per calendar minute, counted in
 * the table (core/table.ts `burstKey`), each new attacker counted ONCE however many deciders race
 * on it. Several sensors report one attacker at the same moment; every one of those invocations
 * finds no active block and wants a new one, but only one of them will win the record's
 * conditional write. Counting per invocation would spend a slot for each of them (six sensors,
 * limit 5: the breaker open after one attacker). So the slot is claimed per target:
 *
 * 1. a claim item per (minute, target), put only if absent: exactly one invocation wins it;
 * 2. the winner counts the minute (conditional ADD, `count < limit`) and writes the verdict,
 *    `admitted` or `open`, on the claim;
 * 3. every other invocation for that target reads the claim's verdict (consistent reads, short
 *    jittered pauses while it is still pending) and takes the same answer.
 *
 * A later lost race of the record write needs no release: the slot belongs to the target, whose
 * block is written by whichever invocation wins. DynamoDB has no multi-item atomicity without
 * transactions (TransactWriteItems), and single-item conditional writes are what the repository's
 * engine contract covers. If the winner dies between claim and verdict, the others give up after
 * PENDING_WAIT_MS with an error, so Lambda retries their events (a later minute has a fresh claim).
 * https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ConditionExpressions.html
 * https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/WorkingWithItems.html#WorkingWithItems.AtomicCounters
 *
 * The minute's counter is BlockRepository.admitBurst; the claim and its verdict live here.
 */
import { type DynamoDBDocumentClient, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { minuteOf } from '../../core/policy';
import { TABLE_PARTITION_KEY, TABLE_TTL_ATTRIBUTE, type TableKey, burstClaimKey } from '../../core/table';
import { BlockRepository } from '../../aws/repository';

export { burstClaimKey };
import type { Clock } from '../../aws/clock';
import { backoffMs, errorName } from '../../aws/retry';

export type Admission = 'admitted' | 'open';

/** how long an invocation waits for the verdict of the one that claimed the target */
export const PENDING_WAIT_MS = 3_000;
const VERDICT_ATTRIBUTE = 'verdict';
const PENDING = 'pending';

function isConditionFailure(error: unknown): boolean {
  return errorName(error) === 'ConditionalCheckFailedException';
}

export class BurstGate {
  private readonly repo: BlockRepository;

  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
    private readonly clock: Clock,
    private readonly random: () => number = Math.random,
  ) {
    this.repo = new BlockRepository(client, tableName);
  }

  /** Admits `target` as one of the minute's new blocks, or says the breaker is open. */
  async admit(target: string, now: number, limit: number): Promise<Admission> {
    const minute = minuteOf(now);
    const claim = burstClaimKey(minute, target);
    const ttl = Math.floor(minute / 1000) + 86400;
    try {
      await this.client.send(
        new PutCommand({
          TableName: this.tableName,
          Item: { ...claim, [VERDICT_ATTRIBUTE]: PENDING, [TABLE_TTL_ATTRIBUTE]: ttl },
          ConditionExpression: 'attribute_not_exists(#pk)',
          ExpressionAttributeNames: { '#pk': TABLE_PARTITION_KEY },
        }),
      );
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      return this.awaitVerdict(claim, target);
    }
    // the minute's counter is the repository's (the same item `portsnare status --stack` reads)
    const verdict: Admission = (await this.repo.admitBurst(now, limit)) ? 'admitted' : 'open';
    await this.client.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: claim,
        UpdateExpression: 'SET #verdict = :verdict',
        ExpressionAttributeNames: { '#verdict': VERDICT_ATTRIBUTE },
        ExpressionAttributeValues: { ':verdict': verdict },
      }),
    );
    return verdict;
  }

  private async awaitVerdict(claim: TableKey, target: string): Promise<Admission> {
    const start = this.clock.now();
    for (let attempt = 0; ; attempt++) {
      const out = await this.client.send(new GetCommand({ TableName: this.tableName, Key: claim, ConsistentRead: true }));
      const verdict = out.Item?.[VERDICT_ATTRIBUTE];
      if (verdict === 'admitted' || verdict === 'open') return verdict;
      if (this.clock.now() - start >= PENDING_WAIT_MS) {
        throw new Error(`burst admission of ${target} still pending after ${PENDING_WAIT_MS} ms (the invocation that claimed it did not finish); retry later`);
      }
      await this.clock.sleep(Math.max(5, backoffMs(attempt, 10, 250, this.random)));
    }
  }
}
