/** The DynamoDB document client, created once per container. Loads only the DynamoDB SDK. */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { timedClientConfig } from './timeouts';

let client: DynamoDBDocumentClient | undefined;

export function documentClient(): DynamoDBDocumentClient {
  client ??= DynamoDBDocumentClient.from(new DynamoDBClient(timedClientConfig()), { marshallOptions: { removeUndefinedValues: true } });
  return client;
}
