/**
 * AWS SDK clients, created once per container (outside the handler) and handed to adapters.
 * Each client lives in a small module of its own (lambda/shared/clients/<service>.ts) that loads
 * only its SDK package; new code imports that module directly. This module forwards to them
 * lazily — each getter loads its client's module on first call — so a handler that imports it
 * for the DynamoDB client never loads EC2 or WAFV2 at cold start.
 */
/* eslint-disable @typescript-eslint/no-require-imports -- deferred loading is the point of this module */
import type * as DynamoDb from './clients/dynamodb';
import type * as Ec2 from './clients/ec2';
import type * as EventBridge from './clients/eventbridge';
import type * as Sqs from './clients/sqs';
import type * as WafV2 from './clients/wafv2';

export function documentClient(): ReturnType<typeof DynamoDb.documentClient> {
  return (require('./clients/dynamodb') as typeof DynamoDb).documentClient();
}

export function ec2Client(): ReturnType<typeof Ec2.ec2Client> {
  return (require('./clients/ec2') as typeof Ec2).ec2Client();
}

export function eventBridgeClient(): ReturnType<typeof EventBridge.eventBridgeClient> {
  return (require('./clients/eventbridge') as typeof EventBridge).eventBridgeClient();
}

export function sqsClient(): ReturnType<typeof Sqs.sqsClient> {
  return (require('./clients/sqs') as typeof Sqs).sqsClient();
}

export function wafClients(): ReturnType<typeof WafV2.wafClients> {
  return (require('./clients/wafv2') as typeof WafV2).wafClients();
}
