/**
 * On stack deletion, removes the network ACL entries portsnare made — entries in its rule range
 * of its ACLs, nothing else — through a custom resource whose Delete runs the cleanup function
 * (lambda/cleanup). Create and Update do nothing. Custom resources:
 * https://docs.aws.amazon.com/cdk/api/v2/docs/aws-cdk-lib.custom_resources-readme.html.
 */
import { CustomResource, RemovalPolicy, Token } from 'aws-cdk-lib';
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

/** Every NaclCleanup of an app (by its root): the rule ranges each claims in which ACLs. */
const CLAIMS = new WeakMap<object, Array<{ path: string; aclIds: readonly string[]; range: readonly [number, number] }>>();

/**
 * Each stack owns its rule range in each of its ACLs, and no other stack may use it
 * (core/nacl.ts, "Ownership"): two portsnare pipelines of one app that list the same ACL with
 * overlapping ranges are refused at synth, naming both. (Stacks of different apps cannot be seen
 * here; at run time an entry inside the range that the stack did not place is reported,
 * NaclForeignInRange, and alarmed.)
 */
export function claimRuleRange(scope: Construct, aclIds: readonly string[], range: readonly [number, number]): void {
  const root = scope.node.root;
  const claims = CLAIMS.get(root) ?? [];
  const concrete = aclIds.filter((id) => !Token.isUnresolved(id));
  for (const claim of claims) {
    const shared = concrete.filter((id) => claim.aclIds.includes(id));
    if (shared.length && range[0] <= claim.range[1] && claim.range[0] <= range[1]) {
      throw new Error(
        `naclRuleRange [${range.join(', ')}] of ${scope.node.path} overlaps [${claim.range.join(', ')}] of ${claim.path} in ${shared.join(', ')}: each stack must own a rule range of its own in a shared network ACL`,
      );
    }
  }
  claims.push({ path: scope.node.path, aclIds: concrete, range });
  CLAIMS.set(root, claims);
}

export class NaclCleanup extends Construct {
  public readonly provider: cr.Provider;
  public readonly resource: CustomResource;

  constructor(scope: Construct, id: string, props: NaclCleanupProps) {
    super(scope, id);
    claimRuleRange(this, props.aclIds, props.ruleRange);
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
