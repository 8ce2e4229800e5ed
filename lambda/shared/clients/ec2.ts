/** The EC2 client, created once per container. Loads only the EC2 SDK. */
import { EC2Client } from '@aws-sdk/client-ec2';

let client: EC2Client | undefined;

export function ec2Client(): EC2Client {
  client ??= new EC2Client({});
  return client;
}
