/**
 * AWS SDK clients, created once per container (outside the handler) and handed to adapters.
 * CLOUDFRONT-scope IP sets live in us-east-1, so that scope gets its own WAFV2 client.
 * https://docs.aws.amazon.com/waf/latest/APIReference/API_IPSet.html (Scope)
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EC2Client } from '@aws-sdk/client-ec2';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { SQSClient } from '@aws-sdk/client-sqs';
import { WAFV2Client } from '@aws-sdk/client-wafv2';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

let dynamo: DynamoDBDocumentClient | undefined;
let ec2: EC2Client | undefined;
let eventBridge: EventBridgeClient | undefined;
let sqs: SQSClient | undefined;
const waf: { REGIONAL?: WAFV2Client; CLOUDFRONT?: WAFV2Client } = {};

export function documentClient(): DynamoDBDocumentClient {
  dynamo ??= DynamoDBDocumentClient.from(new DynamoDBClient({}), { marshallOptions: { removeUndefinedValues: true } });
  return dynamo;
}

export function ec2Client(): EC2Client {
  ec2 ??= new EC2Client({});
  return ec2;
}

export function eventBridgeClient(): EventBridgeClient {
  eventBridge ??= new EventBridgeClient({});
  return eventBridge;
}

export function sqsClient(): SQSClient {
  sqs ??= new SQSClient({});
  return sqs;
}

export function wafClients(): { REGIONAL: WAFV2Client; CLOUDFRONT: WAFV2Client } {
  waf.REGIONAL ??= new WAFV2Client({});
  waf.CLOUDFRONT ??= new WAFV2Client({ region: 'us-east-1' });
  return { REGIONAL: waf.REGIONAL, CLOUDFRONT: waf.CLOUDFRONT };
}
