/**
 * The in-process DynamoDB fake (test/fakes/dynamodb.ts, used by the handler tests) must refuse
 * what the real engine refuses: the same requests go to the fake and, through the real Document
 * client, to dynalite, and must end the same way (success, or the same error name).
 */
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { BlockRecord } from '../../core/policy';
import { BlockRepository } from '../../aws/repository';
import { FakeDynamoDb } from '../fakes/dynamodb';
import { type LocalTable, startDynalite } from './dynalite';

let table: LocalTable;
const fake = new FakeDynamoDb('portsnare-test');

beforeAll(async () => {
  table = await startDynalite('portsnare-test');
});
afterAll(async () => {
  await table?.stop();
});

type Request = (client: DynamoDBDocumentClient, tableName: string) => Promise<unknown>;

const cases: Array<[string, string, Request]> = [
  ['a put', 'ok', (c, t) => c.send(new PutCommand({ TableName: t, Item: { pk: 'p1', sk: 's', n: 1 } }))],
  ['a put refused by its condition', 'ConditionalCheckFailedException', (c, t) => c.send(new PutCommand({ TableName: t, Item: { pk: 'p1', sk: 's' }, ConditionExpression: 'attribute_not_exists(#pk)', ExpressionAttributeNames: { '#pk': 'pk' } }))],
  ['bare reserved word `count` in an update', 'ValidationException', (c, t) => c.send(new UpdateCommand({ TableName: t, Key: { pk: 'p2', sk: 's' }, UpdateExpression: 'ADD count :one', ExpressionAttributeValues: { ':one': 1 } }))],
  ['bare reserved word `ttl` in a condition', 'ValidationException', (c, t) => c.send(new PutCommand({ TableName: t, Item: { pk: 'p3', sk: 's' }, ConditionExpression: 'attribute_not_exists(ttl)' }))],
  ['`count` through a name', 'ok', (c, t) => c.send(new UpdateCommand({ TableName: t, Key: { pk: 'p4', sk: 's' }, UpdateExpression: 'ADD #c :one', ExpressionAttributeNames: { '#c': 'count' }, ExpressionAttributeValues: { ':one': 1 } }))],
  ['a number past 2^53', 'Error', (c, t) => c.send(new PutCommand({ TableName: t, Item: { pk: 'p5', sk: 's', n: 2 ** 53 + 2 } }))],
  ['NaN', 'Error', (c, t) => c.send(new PutCommand({ TableName: t, Item: { pk: 'p6', sk: 's', n: Number.NaN } }))],
];

async function outcome(request: Request, client: DynamoDBDocumentClient, tableName: string): Promise<string> {
  try {
    await request(client, tableName);
    return 'ok';
  } catch (error) {
    return (error as Error).name;
  }
}

it.each(cases)('%s: %s, in the real engine and in the fake', async (_name, expected, request) => {
  expect(await outcome(request, table.doc, table.tableName)).toBe(expected);
  expect(await outcome(request, fake.client, fake.tableName)).toBe(expected);
});

/**
 * The change log (issue 20) through the repository on both: the `changes` index (INCLUDE
 * projection), ScanIndexForward, Limit before FilterExpression. The same operations give the same
 * answers; the expectations are literal too, so a fake and an engine wrong alike still fail.
 */
it('the change log reads alike in the real engine and in the fake', async () => {
  const NOW = 1795953600000; // 2026-11-29T12:00:00Z
  const run = async (client: DynamoDBDocumentClient, tableName: string) => {
    const repo = new BlockRepository(client, tableName);
    const record = (target: string, at: number, active = true): BlockRecord => ({
      target, family: target.includes(':') ? 'ipv6' : 'ipv4', reason: 'sensor', firstSeen: at, lastSeen: at, hitCount: 1, offences: 1, blockedAt: at, expiresAt: at + 3600_000, active, eventIds: [], sensors: [],
    });
    await repo.save(record('192.0.2.1', NOW), undefined, NOW);
    await repo.save(record('192.0.2.2', NOW + 1000), undefined, NOW + 1000);
    await repo.save(record('2001:db8::1', NOW + 2000), undefined, NOW + 2000);
    await repo.save(record('192.0.2.1', NOW, false), 1, NOW + 3000);
    await repo.save(record('192.0.2.3', NOW - 50_000), undefined, NOW + 4000); // a refresh: old activity, new change
    await client.send(new PutCommand({ TableName: tableName, Item: { ...record('192.0.2.9', NOW - 90_000), pk: 'BLOCK#192.0.2.9', sk: 'STATE', version: 1, activeKey: 'ACTIVE' } }));
    const before = (await repo.listEnforced()).map((r) => r.target).sort();
    const steps = [await repo.backfillChanges(NOW, 1, 1), await repo.backfillChanges(NOW, 1, 1), await repo.backfillChanges(NOW, 1, 1), await repo.backfillChanges(NOW, 1, 1)];
    return {
      before,
      steps,
      since: (await repo.changesSince(NOW + 500, NOW + 10_000)).map((r) => [r.target, r.changedAt, r.active]),
      recent: (await repo.recentActive(1)).map((r) => r.target),
      enforced: (await repo.listEnforced()).map((r) => r.target).sort(),
    };
  };
  const real = await run(table.doc, await table.addTable('portsnare-changes'));
  const faked = await run(new FakeDynamoDb('portsnare-changes', undefined, 2).client, 'portsnare-changes');
  expect(real).toEqual({
    before: ['192.0.2.2', '192.0.2.3', '192.0.2.9', '2001:db8::1'],
    // pages of 1 over `active` by expiry (4 records; the unstamped one expires first): the filter
    // drops the stamped ones; the 4th page is full, so a LastEvaluatedKey still comes back
    steps: [
      { done: false, found: 1, stamped: 1, passEnded: false },
      { done: false, found: 0, stamped: 0, passEnded: false },
      { done: false, found: 0, stamped: 0, passEnded: false },
      { done: false, found: 0, stamped: 0, passEnded: false },
    ],
    since: [
      ['192.0.2.2', NOW + 1000, true],
      ['2001:db8::1', NOW + 2000, true],
      ['192.0.2.1', NOW + 3000, false],
      ['192.0.2.3', NOW + 4000, true],
    ],
    recent: ['2001:db8::1', '192.0.2.2'],
    enforced: ['192.0.2.2', '192.0.2.3', '192.0.2.9', '2001:db8::1'],
  });
  expect(faked).toEqual(real);
});
