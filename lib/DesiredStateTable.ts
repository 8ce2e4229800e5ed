/**
 * The desired-state table (core/table.ts is its contract: key, index and attribute names): pay
 * per request, encrypted, point-in-time recovery on, DynamoDB TTL on `ttl`, and the sparse index
 * `active` (key `activeKey`, sort `expiresAt`) that lists active blocks by expiry.
 * https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html
 */
import { RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type { Construct } from 'constructs';
import { ACTIVE_INDEX, ACTIVE_KEY_ATTRIBUTE, EXPIRES_AT_ATTRIBUTE, TABLE_PARTITION_KEY, TABLE_SORT_KEY, TABLE_TTL_ATTRIBUTE } from '../core/table';

export interface DesiredStateTableProps {
  /** @default RemovalPolicy.DESTROY */
  readonly removalPolicy?: RemovalPolicy;
}

export class DesiredStateTable extends dynamodb.Table {
  constructor(scope: Construct, id: string, props: DesiredStateTableProps = {}) {
    super(scope, id, {
      partitionKey: { name: TABLE_PARTITION_KEY, type: dynamodb.AttributeType.STRING },
      sortKey: { name: TABLE_SORT_KEY, type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      timeToLiveAttribute: TABLE_TTL_ATTRIBUTE,
      removalPolicy: props.removalPolicy ?? RemovalPolicy.DESTROY,
    });
    this.addGlobalSecondaryIndex({
      indexName: ACTIVE_INDEX,
      partitionKey: { name: ACTIVE_KEY_ATTRIBUTE, type: dynamodb.AttributeType.STRING },
      sortKey: { name: EXPIRES_AT_ATTRIBUTE, type: dynamodb.AttributeType.NUMBER },
      projectionType: dynamodb.ProjectionType.ALL,
    });
  }
}
