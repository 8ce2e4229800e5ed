/**
 * Re-enforces as soon as a stack update has reset an IP set. CloudFormation's IP set resource
 * holds the address list (`Addresses`, https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-wafv2-ipset.html),
 * and the template's list is empty: any update that touches an IP set (a description, a tag, a
 * scope change) writes `[]` over the blocks enforce put there. CloudFormation sends a
 * `CloudFormation Resource Status Change` event for every resource to the account's default
 * bus (https://docs.aws.amazon.com/eventbridge/latest/ref/events-ref-cloudformation.html); a
 * rule on this stack's IP sets reaching UPDATE_COMPLETE puts a `reconcile` wake-up on the
 * enforce queue, so the sets are refilled within seconds instead of at the next 5-minute
 * reconcile. Each event's wake-up carries the event's id, so the FIFO queue's content-based
 * deduplication never swallows a second update's.
 */
import { Stack } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as eventTargets from 'aws-cdk-lib/aws-events-targets';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

export interface RepairAfterUpdateProps {
  /** the enforce FIFO queue */
  readonly enforceQueue: sqs.IQueue;
  /** the FIFO message group every enforce message uses (lambda/shared/queue.ts) */
  readonly messageGroupId: string;
}

export class RepairAfterUpdate extends Construct {
  public readonly rule: events.Rule;

  constructor(scope: Construct, id: string, props: RepairAfterUpdateProps) {
    super(scope, id);
    this.rule = new events.Rule(this, 'Rule', {
      description: 'portsnare: refill the WAF IP sets as soon as a stack update has reset them',
      eventPattern: {
        source: ['aws.cloudformation'],
        detailType: ['CloudFormation Resource Status Change'],
        detail: {
          'stack-id': [Stack.of(this).stackId],
          'resource-type': ['AWS::WAFv2::IPSet'],
          'status-details': { status: ['UPDATE_COMPLETE'] },
        },
      },
      targets: [
        new eventTargets.SqsQueue(props.enforceQueue, {
          messageGroupId: props.messageGroupId,
          // the event's id makes each update's wake-up its own: the queue deduplicates by content
          // (five minutes), and a second update within them must refill the sets again
          message: events.RuleTargetInput.fromObject({ kind: 'reconcile', event: events.EventField.eventId }),
        }),
      ],
    });
  }
}
