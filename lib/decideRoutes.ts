/**
 * What reaches decide, wired once for the single-account pipeline (EnumerationBlocker) and an
 * organization's decision plane (lib/org/DecisionPlane.ts): the rules from the bus (sensor events,
 * operator requests, and GuardDuty's Recon:EC2 findings on the default bus), the bus-policy deny
 * that keeps operator requests to the named principals, and the stack outputs the CLI reads.
 */
import { CfnOutput, Duration } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as eventTargets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import { DETAIL_TYPE_BLOCK_REQUESTED, DETAIL_TYPE_UNBLOCK_REQUESTED } from '../core/commands';
import { DETAIL_TYPE_SCAN_DETECTED, EVENT_SOURCE_CLI, EVENT_SOURCE_SENSOR } from '../core/event';
import { DETAIL_TYPE_GUARDDUTY_FINDING, EVENT_SOURCE_GUARDDUTY, GUARDDUTY_PORT_PROBE, GUARDDUTY_PORTSCAN } from '../core/intake';

/** GuardDuty finding types that name an address probing us (core/intake.ts). */
export const GUARDDUTY_RECON_TYPES = [GUARDDUTY_PORT_PROBE, GUARDDUTY_PORTSCAN] as const;

/**
 * Operator requests (`portsnare.cli`) only from the named principals: an explicit deny in the
 * bus's resource policy, which no identity policy in the account can override.
 * https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-conditions.html
 */
export function denyOperatorRequestsExceptFrom(bus: events.EventBus, operatorPrincipals: readonly string[]): void {
  bus.addToResourcePolicy(
    new iam.PolicyStatement({
      sid: 'PortsnareOperatorRequestsOnlyFromOperators',
      effect: iam.Effect.DENY,
      principals: [new iam.AnyPrincipal()],
      actions: ['events:PutEvents'],
      resources: [bus.eventBusArn],
      conditions: {
        StringEquals: { 'events:source': EVENT_SOURCE_CLI },
        ArnNotLike: { 'aws:PrincipalArn': [...operatorPrincipals] },
      },
    }),
  );
}

export interface DecideRoutesProps {
  readonly bus: events.IEventBus;
  readonly decide: lambda.IFunction;
  /** where events decide could not take, after EventBridge's retries, are kept */
  readonly failureQueue: sqs.IQueue;
  /** also route GuardDuty's Recon:EC2 findings (from the account's default bus) */
  readonly guardDuty: boolean;
  /** the rules' descriptions, as the console shows them */
  readonly descriptions: { readonly sensors: string; readonly guardDuty: string };
}

/** The rules SensorRule, CliRule and (with guardDuty) GuardDutyRule in `scope`, each → decide. */
export function routeToDecide(scope: Construct, props: DecideRoutesProps): void {
  const target = new eventTargets.LambdaFunction(props.decide, { deadLetterQueue: props.failureQueue, retryAttempts: 8, maxEventAge: Duration.hours(2) });
  new events.Rule(scope, 'SensorRule', {
    eventBus: props.bus,
    description: props.descriptions.sensors,
    eventPattern: { source: [EVENT_SOURCE_SENSOR], detailType: [DETAIL_TYPE_SCAN_DETECTED] },
    targets: [target],
  });
  new events.Rule(scope, 'CliRule', {
    eventBus: props.bus,
    description: 'portsnare: operator requests from the portsnare command line → decide',
    eventPattern: { source: [EVENT_SOURCE_CLI], detailType: [DETAIL_TYPE_SCAN_DETECTED, DETAIL_TYPE_BLOCK_REQUESTED, DETAIL_TYPE_UNBLOCK_REQUESTED] },
    targets: [target],
  });
  if (!props.guardDuty) return;
  new events.Rule(scope, 'GuardDutyRule', {
    description: props.descriptions.guardDuty,
    eventPattern: {
      source: [EVENT_SOURCE_GUARDDUTY],
      detailType: [DETAIL_TYPE_GUARDDUTY_FINDING],
      detail: { type: events.Match.anyOf(...GUARDDUTY_RECON_TYPES.map((t) => events.Match.prefix(t))) },
    },
    targets: [target],
  });
}

/** A stack output under a fixed logical id (core/outputs.ts STACK_OUTPUTS): the CLI reads it by that name in any app. */
export function fixedOutput(scope: Construct, logicalId: string, value: string, description: string): void {
  new CfnOutput(scope, logicalId, { value, description }).overrideLogicalId(logicalId);
}
