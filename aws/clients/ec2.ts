/**
 * The EC2 client, created once per container. Loads only the EC2 SDK. One attempt per call: the
 * NACL adapter retries what is safe to retry itself (a create is never sent twice for one answer,
 * aws/nacl-adapter.ts); every call has the timeouts of ./timeouts.ts.
 */
import { EC2Client } from '@aws-sdk/client-ec2';
import { timedClientConfig } from './timeouts';

let client: EC2Client | undefined;

export function ec2Client(): EC2Client {
  client ??= new EC2Client({ ...timedClientConfig(), maxAttempts: 1 });
  return client;
}
