/**
 * On stack deletion, removes the network ACL entries portsnare made — entries in its rule range
 * of its ACLs, nothing else — through a custom resource whose Delete runs the cleanup function
 * (lambda/cleanup). Create and Update do nothing. Custom resources:
 * https://docs.aws.amazon.com/cdk/api/v2/docs/aws-cdk-lib.custom_resources-readme.html.
 */
import { CustomResource, RemovalPolicy } from 'aws-cdk-lib';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as cr from 'aws-cdk-lib/custom-resources';
import { Construct } from 'constructs';
import { acknowledge, arnWildcardFinding } from './nag';
import type { PortsnareFunction } from './PortsnareFunction';

export const NACL_CLEANUP_RESOURCE_TYPE = 'Custom::PortsnareNaclCleanup';

export interface NaclCleanupProps {
  /** the cleanup function (lambda/cleanup/handler.ts) */
  readonly cleanup: PortsnareFunction;
  readonly aclIds: readonly string[];
  readonly ruleRange: readonly [number, number];
  /** @default logs.RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
}

export class NaclCleanup extends Construct {
  public readonly provider: cr.Provider;
  public readonly resource: CustomResource;

  constructor(scope: Construct, id: string, props: NaclCleanupProps) {
    super(scope, id);
    const logGroup = new logs.LogGroup(this, 'ProviderLogs', {
      retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.provider = new cr.Provider(this, 'Provider', { onEventHandler: props.cleanup.function, logGroup });
    this.resource = new CustomResource(this, 'Resource', {
      serviceToken: this.provider.serviceToken,
      resourceType: NACL_CLEANUP_RESOURCE_TYPE,
      properties: { AclIds: [...props.aclIds], RuleRange: [...props.ruleRange] },
    });
    acknowledge(this.provider, 'AwsSolutions-L1', 'The Provider framework function and its runtime are created and kept current by aws-cdk-lib, not by portsnare.');
    acknowledge(
      this.provider,
      'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
      'The Provider framework function (aws-cdk-lib) is given AWSLambdaBasicExecutionRole, and the framework offers no way to replace it: logs:CreateLogGroup, CreateLogStream and PutLogEvents on every log group of the account (Resource "*"), nothing beyond CloudWatch Logs. Accepted for a function that runs only during a stack update or delete.',
    );
    acknowledge(
      this.provider,
      arnWildcardFinding(props.cleanup.function, ':*'),
      'The Provider framework may invoke the cleanup function and its versions ("<function ARN>:*"), nothing else.',
    );
  }

  /** The Provider framework's function: its ARN is the custom resource's ServiceToken, which CloudFormation never lets change. */
  get frameworkFunction(): Construct {
    return this.provider.node.findChild('framework-onEvent') as Construct;
  }
}
