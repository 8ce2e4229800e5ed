/**
 * cdk-nag v3 acknowledgements (CDK's Validations API), with the exact finding ids cdk-nag
 * reports, so an acknowledgement covers one finding and never a whole rule by accident.
 */
import { Stack, Validations, type CfnElement } from 'aws-cdk-lib';
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
