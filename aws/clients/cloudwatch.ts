/** The CloudWatch client, created once per container. Loads only the CloudWatch SDK (the digest function's GetMetricData). */
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { timedClientConfig } from './timeouts';

let client: CloudWatchClient | undefined;

export function cloudWatchClient(): CloudWatchClient {
  client ??= new CloudWatchClient(timedClientConfig());
  return client;
}
