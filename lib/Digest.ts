/**
 * The optional notification digest (core/digest.ts, lambda/digest/handler.ts): the digest
 * function on its own EventBridge Scheduler schedule, its IAM, the alarm on undelivered digests
 * and, unless an existing topic is named, its SNS topic. Built only when `digest` is configured,
 * by the decision core of the single-account stack and of the organization's decision plane
 * (lib/DecisionCore.ts `addDigest`): the digest reads the decision table, so it runs where the table is.
 *
 * IAM, least privilege: Query on the table and its `changes` index (the window's changed targets,
 * then their history partitions), Scan on the table (a window longer than a day), GetItem and
 * UpdateItem only on the digest's own item (dynamodb:LeadingKeys "DIGEST"), sns:Publish on the
 * one topic, cloudwatch:GetMetricData (no resource-level permissions: its own read-only policy).
 */
import { CfnOutput, Duration, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as iam from 'aws-cdk-lib/aws-iam';
import { CHANGES_INDEX } from '../core/table';
import type * as logs from 'aws-cdk-lib/aws-logs';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as schedulerTargets from 'aws-cdk-lib/aws-scheduler-targets';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { DIGEST_SETTINGS_ENV, DIGEST_STATE_KEY, hasSnsChannel, type DigestRuntime, type DigestSettings } from '../core/digest';
import { FUNCTION_ENV } from '../core/environment';
import type { DesiredStateTable } from './DesiredStateTable';
import { portsnareMetric } from './Monitoring';
import { acknowledgeScheduledInvoke, wildcardReadPolicy } from './nag';
import { PortsnareFunction } from './PortsnareFunction';

/** the digest function's timeout; its claim's lease (lambda/digest/handler.ts CLAIM_LEASE_MS, 180 s) is longer */
export const DIGEST_TIMEOUT_SECONDS = 120;

export interface DigestProps {
  readonly settings: DigestSettings;
  readonly table: DesiredStateTable;
  readonly schedulerRole: iam.IRole;
  /** failed invocations and undeliverable schedule targets (the composer's) */
  readonly failureQueue: sqs.IQueue;
  /** queues whose waiting messages the digest reports (AWS/SQS ApproximateNumberOfMessagesVisible) */
  readonly deadLetterQueues: readonly sqs.IQueue[];
  /** what the digest calls the deployment (the stack name) */
  readonly label: string;
  readonly logRetention: logs.RetentionDays;
  readonly alarmAction?: cloudwatch.IAlarmAction;
}

export class Digest extends Construct {
  public readonly function: PortsnareFunction;
  public readonly schedule: scheduler.Schedule;
  /** the topic digests are published to (created here unless settings.topicArn names one), if SNS is a channel */
  public readonly topic?: sns.ITopic;
  /** DigestUndelivered ≥ 1: a digest could not be delivered after its retries */
  public readonly undeliveredAlarm: cloudwatch.Alarm;

  constructor(scope: Construct, id: string, props: DigestProps) {
    super(scope, id);
    const { settings } = props;
    const stack = Stack.of(this);

    if (settings.topicArn) {
      this.topic = sns.Topic.fromTopicArn(this, 'Topic', settings.topicArn);
    } else if (hasSnsChannel(settings)) {
      // like lib/alarmTopic.ts: TLS only, not encrypted (a digest carries no secret: addresses that scanned us and counts)
      const topic = new sns.Topic(this, 'Topic', { displayName: 'portsnare digest', enforceSSL: true });
      if (settings.email) topic.addSubscription(new subscriptions.EmailSubscription(settings.email));
      new CfnOutput(this, 'TopicArn', { value: topic.topicArn, description: 'portsnare digest topic: subscribe email or AWS Chatbot (Slack, Teams) to it' });
      this.topic = topic;
    }

    const runtime: DigestRuntime = {
      everyMinutes: settings.everyMinutes,
      ...(this.topic ? { topicArn: this.topic.topicArn } : {}),
      ...(settings.webhookUrl ? { webhookUrl: settings.webhookUrl } : {}),
      minNewBlocks: settings.minNewBlocks,
      ...(settings.quietHours ? { quietHours: settings.quietHours } : {}),
      timeZone: settings.timeZone,
      chatbot: settings.chatbot,
      top: settings.top,
      label: props.label.slice(0, 60),
      deadLetterQueues: props.deadLetterQueues.map((q) => q.queueName),
    };
    this.function = new PortsnareFunction(this, 'Function', {
      name: 'digest',
      description: `portsnare: a digest of new blocks, top sources and ports, escalations, failures every ${settings.everyMinutes} minutes`,
      timeout: Duration.seconds(DIGEST_TIMEOUT_SECONDS),
      memorySize: 512,
      environment: { [FUNCTION_ENV.table]: props.table.tableName, [DIGEST_SETTINGS_ENV]: stack.toJsonString(runtime) },
      onFailure: props.failureQueue,
      logRetention: props.logRetention,
      alarmAction: props.alarmAction,
    });
    const role = this.function.role;
    // history: the change log's targets (Query on the `changes` index), their history partitions
    // (Query on the table); a window longer than a day falls back to a Scan (lambda/digest/store.ts)
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({ sid: 'PortsnareDigestHistory', actions: ['dynamodb:Query', 'dynamodb:Scan'], resources: [props.table.tableArn, `${props.table.tableArn}/index/${CHANGES_INDEX}`] }),
    );
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'PortsnareDigestClaim',
        actions: ['dynamodb:GetItem', 'dynamodb:UpdateItem'],
        resources: [props.table.tableArn],
        // https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/specifying-conditions.html (dynamodb:LeadingKeys)
        conditions: { 'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': [DIGEST_STATE_KEY.pk] } },
      }),
    );
    if (this.topic) this.topic.grantPublish(role);
    wildcardReadPolicy(
      this.function,
      'MetricsReadPolicy',
      new iam.PolicyStatement({ sid: 'PortsnareDigestMetrics', actions: ['cloudwatch:GetMetricData'], resources: ['*'] }),
      'cloudwatch:GetMetricData supports no resource-level permissions (Service Authorization Reference, Amazon CloudWatch), so its resource must be "*"; it is read-only, and alone in this policy.',
    );

    this.schedule = new scheduler.Schedule(this, 'Schedule', {
      description: `portsnare: the digest, every ${settings.everyMinutes} minutes`,
      schedule: scheduler.ScheduleExpression.rate(Duration.minutes(settings.everyMinutes)),
      target: new schedulerTargets.LambdaInvoke(this.function.function, {
        role: props.schedulerRole,
        deadLetterQueue: props.failureQueue,
        retryAttempts: 2,
        maxEventAge: Duration.minutes(10),
        // the window ends at the tick's own time, so a delivery that is late or repeated names the same window
        // https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-schedule-context-attributes.html
        input: scheduler.ScheduleTargetInput.fromObject({ scheduledTime: scheduler.ContextAttribute.scheduledTime }),
      }),
    });
    acknowledgeScheduledInvoke(props.schedulerRole, this.function.function);

    this.undeliveredAlarm = new cloudwatch.Alarm(this, 'UndeliveredAlarm', {
      alarmDescription: 'portsnare: a digest could not be delivered after its retries (SNS or the webhook): see the digest function\'s log; the next digest covers its window',
      metric: portsnareMetric('DigestUndelivered'),
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    if (props.alarmAction) this.undeliveredAlarm.addAlarmAction(props.alarmAction);
  }
}
