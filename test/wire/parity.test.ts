/**
 * The in-process DynamoDB fake (test/fakes/dynamodb.ts, used by the handler tests) must refuse
 * what the real engine refuses: the same requests go to the fake and, through the real Document
 * client, to dynalite, and must end the same way (success, or the same error name).
 */
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, expect, it } from 'vitest';
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
