/** The SQS client, created once per container. Loads only the SQS SDK. */
import { SQSClient } from '@aws-sdk/client-sqs';
import { timedClientConfig } from './timeouts';

let client: SQSClient | undefined;

export function sqsClient(): SQSClient {
  client ??= new SQSClient(timedClientConfig());
  return client;
}
