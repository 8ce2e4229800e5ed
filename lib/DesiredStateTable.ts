/**
 * The desired-state table (core/table.ts is its contract: key, index and attribute names): pay
 * per request, encrypted, point-in-time recovery on, DynamoDB TTL on `ttl`, the sparse index
 * `active` (key `activeKey`, sort `expiresAt`) that lists active blocks by expiry, and the sparse
 * index `changes` (key `chgKey`, sort `chgAt`, INCLUDE projection of what enforcement reads): the
 * change log enforce reads (core/table.ts). CloudFormation adds one GSI per stack update, so an
 * existing stack takes this one in a plain update.
 * https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html
 * https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-dynamodb-table.html#cfn-dynamodb-table-globalsecondaryindexes
 */
import { RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as iam from 'aws-cdk-lib/aws-iam';
import type { Construct } from 'constructs';
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
  TABLE_TTL_ATTRIBUTE,
} from '../core/table';

export interface DesiredStateTableProps {
  /** @default RemovalPolicy.DESTROY */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * A fixed physical name (an organization's decision table, named by the planes in other
   * accounts: lib/org/names.ts).
   * @default - a generated name
   */
  readonly tableName?: string;
  /**
   * Cross-account access through a resource-based policy does not work with the AWS managed key,
   * so the decision table uses the AWS owned key (TableEncryption.DEFAULT):
   * https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/rbac-considerations.html
   * @default dynamodb.TableEncryption.AWS_MANAGED
   */
  readonly encryption?: dynamodb.TableEncryption;
  /**
   * The table's resource-based policy (the planes of an organization, lib/org/DecisionPlane.ts).
   * @default - none
   */
  readonly resourcePolicy?: iam.PolicyDocument;
}

export class DesiredStateTable extends dynamodb.Table {
  constructor(scope: Construct, id: string, props: DesiredStateTableProps = {}) {
    super(scope, id, {
      partitionKey: { name: TABLE_PARTITION_KEY, type: dynamodb.AttributeType.STRING },
      sortKey: { name: TABLE_SORT_KEY, type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      tableName: props.tableName,
      encryption: props.encryption ?? dynamodb.TableEncryption.AWS_MANAGED,
      resourcePolicy: props.resourcePolicy,
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
    this.addGlobalSecondaryIndex({
      indexName: CHANGES_INDEX,
      partitionKey: { name: CHANGE_KEY_ATTRIBUTE, type: dynamodb.AttributeType.STRING },
      sortKey: { name: CHANGE_AT_ATTRIBUTE, type: dynamodb.AttributeType.STRING },
      projectionType: dynamodb.ProjectionType.INCLUDE,
      nonKeyAttributes: [...CHANGES_PROJECTION],
    });
  }
}
