/** The SNS client, created once per container. Loads only the SNS SDK (the digest function's). */
import { SNSClient } from '@aws-sdk/client-sns';
import { timedClientConfig } from './timeouts';

let client: SNSClient | undefined;

export function snsClient(): SNSClient {
  client ??= new SNSClient(timedClientConfig());
  return client;
}
