/**
 * cdk-nag v3 acknowledgements (CDK's Validations API), with the exact finding ids cdk-nag
 * reports, so an acknowledgement covers one finding and never a whole rule by accident.
 */
import { Stack, Validations, type CfnElement } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type { IConstruct } from 'constructs';

/**
 * Context key: `false` makes `acknowledge` record nothing, so a synthesis shows every finding
 * portsnare acknowledges (the tests use it to prove each acknowledgement is still needed).
 */
export const ACKNOWLEDGE_FINDINGS_CONTEXT = 'portsnare:acknowledgeFindings';

/** Acknowledges `id` ("AwsSolutions-EC23", "AwsSolutions-IAM5[Resource::*]") on `scope` and below. */
export function acknowledge(scope: IConstruct, id: string, reason: string): void {
  if (scope.node.tryGetContext(ACKNOWLEDGE_FINDINGS_CONTEXT) === false) return;
  Validations.of(scope).acknowledge({ id, reason });
}

/**
 * The IAM5 finding for a wildcard resource built on `element`'s ARN attribute, as cdk-nag
 * spells it: `AwsSolutions-IAM5[Resource::<LogicalId.Arn>/index/*]`.
 */
export function arnWildcardFinding(element: IConstruct, suffix: string): string {
  const cfn = (element.node.defaultChild ?? element) as CfnElement;
  return `AwsSolutions-IAM5[Resource::<${Stack.of(element).getLogicalId(cfn)}.Arn>${suffix}]`;
}

/**
 * The IAM5 finding an EventBridge Scheduler LambdaInvoke target leaves on the scheduler's role,
 * acknowledged once for `fn`: the grant names the function's ARN and "<function ARN>:*".
 */
export function acknowledgeScheduledInvoke(schedulerRole: IConstruct, fn: IConstruct): void {
  acknowledge(
    schedulerRole,
    arnWildcardFinding(fn, ':*'),
    'LambdaInvoke grants lambda:InvokeFunction on the function ARN and "<function ARN>:*" (its versions and aliases); the wildcard never reaches another function.',
  );
}

/**
 * A read-only statement that must name Resource "*" (an action without resource-level
 * permissions), in a policy of its own attached to `fn`'s role, with the IAM5 finding
 * acknowledged on that policy alone: a later statement with a wildcard added to the role's other
 * policies is still reported. The function waits for the policy, as it does for its role's default one.
 */
export function wildcardReadPolicy(fn: IConstruct & { readonly role: iam.IRole; readonly function: lambda.IFunction }, id: string, statement: iam.PolicyStatement, reason: string): iam.Policy {
  const policy = new iam.Policy(fn, id, { statements: [statement], roles: [fn.role] });
  fn.function.node.addDependency(policy);
  acknowledge(policy, 'AwsSolutions-IAM5[Resource::*]', reason);
  return policy;
}
