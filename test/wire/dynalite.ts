/**
 * A real DynamoDB engine for the wire tests: dynalite (an implementation of the DynamoDB API on
 * LevelDB, in memory here) started by the test itself on a free loopback port, with the table
 * created exactly as lib/EnumerationBlocker.ts defines it (key schema, the sparse `active`
 * index and the change log's `changes` index, from core/table.ts), and the REAL DynamoDBDocumentClient pointed at it. Every test file
 * gets its own server and port, so files and runs on one machine never share state.
 * https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_CreateTable.html
 */
import type { AddressInfo } from 'node:net';
import { CreateTableCommand, DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import dynalite from 'dynalite';
import {
  ACTIVE_INDEX,
  ACTIVE_KEY_ATTRIBUTE,
  CHANGE_AT_ATTRIBUTE,
  CHANGE_KEY_ATTRIBUTE,
  CHANGES_INDEX,
  CHANGES_PROJECTION,
  EXPIRES_AT_ATTRIBUTE,
  TABLE_PARTITION_KEY,
  TABLE_SORT_KEY,
} from '../../core/table';

export interface LocalTable {
  readonly endpoint: string;
  readonly tableName: string;
  /** the low-level client (raw attribute values, for oracles that must not go through the code under test) */
  readonly raw: DynamoDBClient;
  /** the Document client as the Lambda functions build it (aws/clients/dynamodb.ts) */
  readonly doc: DynamoDBDocumentClient;
  /** Another table of the same schema on this server (a second stack, or a fresh run). */
  addTable(tableName: string): Promise<string>;
  stop(): Promise<void>;
}

export async function startDynalite(tableName = 'portsnare-test'): Promise<LocalTable> {
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const raw = new DynamoDBClient({
    region: 'eu-west-1',
    endpoint,
    credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'test-secret' },
    maxAttempts: 2,
  });
  const doc = DynamoDBDocumentClient.from(raw, { marshallOptions: { removeUndefinedValues: true } });
  await createTable(raw, tableName);
  return {
    endpoint,
    tableName,
    raw,
    doc,
    async addTable(name: string) {
      await createTable(raw, name);
      return name;
    },
    async stop() {
      raw.destroy();
      server.closeAllConnections?.();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Creates the table exactly as the stack defines it and waits until it and its index are ACTIVE. */
async function createTable(raw: DynamoDBClient, tableName: string): Promise<void> {
  await raw.send(
    new CreateTableCommand({
      TableName: tableName,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [
        { AttributeName: TABLE_PARTITION_KEY, AttributeType: 'S' },
        { AttributeName: TABLE_SORT_KEY, AttributeType: 'S' },
        { AttributeName: ACTIVE_KEY_ATTRIBUTE, AttributeType: 'S' },
        { AttributeName: EXPIRES_AT_ATTRIBUTE, AttributeType: 'N' },
        { AttributeName: CHANGE_KEY_ATTRIBUTE, AttributeType: 'S' },
        { AttributeName: CHANGE_AT_ATTRIBUTE, AttributeType: 'S' },
      ],
      KeySchema: [
        { AttributeName: TABLE_PARTITION_KEY, KeyType: 'HASH' },
        { AttributeName: TABLE_SORT_KEY, KeyType: 'RANGE' },
      ],
      GlobalSecondaryIndexes: [
        {
          IndexName: ACTIVE_INDEX,
          KeySchema: [
            { AttributeName: ACTIVE_KEY_ATTRIBUTE, KeyType: 'HASH' },
            { AttributeName: EXPIRES_AT_ATTRIBUTE, KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'ALL' },
        },
        {
          IndexName: CHANGES_INDEX,
          KeySchema: [
            { AttributeName: CHANGE_KEY_ATTRIBUTE, KeyType: 'HASH' },
            { AttributeName: CHANGE_AT_ATTRIBUTE, KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'INCLUDE', NonKeyAttributes: [...CHANGES_PROJECTION] },
        },
      ],
    }),
  );
  // createTableMs 0: the table turns ACTIVE on the next tick; wait for the state, not a time.
  for (;;) {
    const out = await raw.send(new DescribeTableCommand({ TableName: tableName }));
    if (out.Table?.TableStatus === 'ACTIVE' && out.Table.GlobalSecondaryIndexes?.every((i) => i.IndexStatus === 'ACTIVE')) break;
    await new Promise((resolve) => setImmediate(resolve));
  }
}
