/**
 * The decision core: what every stack that decides builds alike — the single-account pipeline
 * (lib/EnumerationBlocker.ts) and the organization's decision plane (lib/org/DecisionPlane.ts).
 * The desired-state table (DesiredStateTable), the decide and expiry functions with their IAM on
 * it, the expiry schedule and the expiry timer queue, and which alarms are its own (`monitoring`: decide publishes the
 * circuit breaker and own-instance metrics; its functions' errors), for the composer's one
 * Monitoring. Where its wake-ups go (the enforce queue, or the decision plane's fan-out queue)
 * is the composer's: `sendWakeUpsTo`.
 *
 * Like lib/EnforcementCore.ts it builds into its composer's scope, with no construct level of its
 * own, so that no logical id changed when the code moved here.
 */
import { Duration, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as logs from 'aws-cdk-lib/aws-logs';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as schedulerTargets from 'aws-cdk-lib/aws-scheduler-targets';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import { FUNCTION_ENV, functionEnvironment } from '../core/environment';
import type { DigestSettings } from '../core/digest';
import { FINDINGS_CURSOR_PK } from '../core/findings';
import { ACTIVE_INDEX, CHANGES_INDEX } from '../core/table';
import { DesiredStateTable, type DesiredStateTableProps } from './DesiredStateTable';
import { Digest } from './Digest';
import type { MetricEmitter } from './Monitoring';
import { acknowledge, acknowledgeScheduledInvoke, arnWildcardFinding } from './nag';
import { PortsnareFunction } from './PortsnareFunction';

export interface DecisionCoreProps {
  /** PORTSNARE_SETTINGS (core/settings.ts), as the composer's stack resolves it */
  readonly settingsJson: string;
  readonly table?: DesiredStateTableProps;
  /** failed asynchronous invocations and undeliverable schedule targets (the composer's) */
  readonly failureQueue: sqs.IQueue;
  /** the role EventBridge Scheduler invokes expiry with (the composer's, shared with its other schedules) */
  readonly schedulerRole: iam.IRole;
  readonly logRetention: logs.RetentionDays;
  readonly alarmAction?: cloudwatch.IAlarmAction;
  /** descriptions of the functions, and the table index acknowledgement's reason */
  readonly texts: { readonly decide: string; readonly expiry: string; readonly indexWildcard: string };
  /** the Security Hub export (lambda/findings): off unless `enabled` */
  readonly securityHub?: { readonly enabled?: boolean };
}

export class DecisionCore {
  public readonly table: DesiredStateTable;
  public readonly functions: { readonly decide: PortsnareFunction; readonly expiry: PortsnareFunction };
  public readonly expirySchedule: scheduler.Schedule;
  /** expiry's message timers (lambda/shared/timer-queue.ts): it sends them and consumes them */
  public readonly expiryTimerQueue: sqs.Queue;
  /** the Security Hub export, when enabled: the findings function and its every-minute schedule */
  public readonly findings?: { readonly function: PortsnareFunction; readonly schedule: scheduler.Schedule };
  /** the alarms that are this core's: decide publishes CircuitBreakerOpen and OwnInstanceScanning */
  public readonly monitoring: { readonly emitters: readonly MetricEmitter[] };

  constructor(
    private readonly scope: Construct,
    private readonly props: DecisionCoreProps,
  ) {
    this.table = new DesiredStateTable(scope, 'Table', props.table);
    const common = { logRetention: props.logRetention, alarmAction: props.alarmAction, onFailure: props.failureQueue };
    const environment = functionEnvironment({ settings: props.settingsJson, table: this.table.tableName });
    const decide = new PortsnareFunction(scope, 'Decide', { ...common, name: 'decide', description: props.texts.decide, environment });
    const expiry = new PortsnareFunction(scope, 'Expiry', { ...common, name: 'expiry', description: props.texts.expiry, environment });
    this.functions = { decide, expiry };
    for (const fn of [decide, expiry]) {
      this.table.grantReadWriteData(fn.function);
      acknowledge(fn.role, arnWildcardFinding(this.table, '/index/*'), props.texts.indexWildcard);
    }

    this.expirySchedule = new scheduler.Schedule(scope, 'ExpirySchedule', {
      description: 'portsnare: lift expired blocks',
      schedule: scheduler.ScheduleExpression.rate(Duration.minutes(1)),
      target: new schedulerTargets.LambdaInvoke(expiry.function, { role: props.schedulerRole, deadLetterQueue: props.failureQueue, retryAttempts: 2, maxEventAge: Duration.minutes(5) }),
    });
    acknowledgeScheduledInvoke(props.schedulerRole, expiry.function);

    // The expiry timers (lambda/expiry/handler.ts): a STANDARD queue, as only a standard queue takes
    // a per-message DelaySeconds (0–900 s); see lambda/shared/timer-queue.ts for the documentation.
    // A timer that keeps failing (its expiry run threw 3 times) goes to the composer's failure queue,
    // which is alarmed; a timer is only a wake-up, so an hour's retention is plenty (the minute
    // ticks cover any record whose timer was lost).
    this.expiryTimerQueue = new sqs.Queue(scope, 'ExpiryTimerQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      // Lambda's advice for an SQS event source: at least 6 × the function's timeout (30 s)
      visibilityTimeout: Duration.seconds(180),
      retentionPeriod: Duration.hours(1),
      deadLetterQueue: { queue: props.failureQueue, maxReceiveCount: 3 },
    });
    // least privilege: expiry may send to this queue (sqs:SendMessage, which SendMessageBatch needs) and consume it, nothing else
    this.expiryTimerQueue.grantSendMessages(expiry.function);
    expiry.function.addEnvironment(FUNCTION_ENV.expiryTimerQueueUrl, this.expiryTimerQueue.queueUrl);
    expiry.function.addEventSource(new SqsEventSource(this.expiryTimerQueue, { batchSize: 5 }));
    this.monitoring = { emitters: ['decide'] };
    if (props.securityHub?.enabled) this.findings = this.exportFindings(scope, props, environment);
  }

  /**
   * The Security Hub export (issue 21; lambda/findings/handler.ts): every minute, the blocks
   * changed since its cursor become ASFF findings of this account's default product. Least
   * privilege: securityhub:BatchImportFindings on that product ARN alone (the action's resource
   * type is `product`: https://docs.aws.amazon.com/service-authorization/latest/reference/list_awssecurityhub.html);
   * on the table GetItem (a changed record in full), Query on the `changes` and `active` indexes
   * (the first run reads the active blocks), and PutItem only in the cursor's own partition
   * (dynamodb:LeadingKeys: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/specifying-conditions.html).
   */
  private exportFindings(scope: Construct, props: DecisionCoreProps, environment: Record<string, string>): { function: PortsnareFunction; schedule: scheduler.Schedule } {
    const stack = Stack.of(scope);
    const productArn = `arn:${stack.partition}:securityhub:${stack.region}:${stack.account}:product/${stack.account}/default`;
    const fn = new PortsnareFunction(scope, 'Findings', {
      name: 'findings',
      description: 'portsnare: blocks changed since the last run → AWS Security Hub findings (one per blocked source)',
      environment: { ...environment, ...functionEnvironment({ settings: props.settingsJson, findingsProductArn: productArn }) },
      logRetention: props.logRetention,
      alarmAction: props.alarmAction,
      onFailure: props.failureQueue,
      // a minute of paced calls at most: 100 findings a call, 10 calls a second
      timeout: Duration.seconds(60),
    });
    const table = this.table.tableArn;
    fn.role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['securityhub:BatchImportFindings'], resources: [productArn] }));
    fn.role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['dynamodb:GetItem'], resources: [table] }));
    fn.role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['dynamodb:Query'], resources: [`${table}/index/${CHANGES_INDEX}`, `${table}/index/${ACTIVE_INDEX}`] }));
    fn.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['dynamodb:PutItem'],
        resources: [table],
        conditions: { 'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': [FINDINGS_CURSOR_PK] } },
      }),
    );
    const schedule = new scheduler.Schedule(scope, 'FindingsSchedule', {
      description: 'portsnare: export changed blocks to AWS Security Hub',
      schedule: scheduler.ScheduleExpression.rate(Duration.minutes(1)),
      target: new schedulerTargets.LambdaInvoke(fn.function, { role: props.schedulerRole, deadLetterQueue: props.failureQueue, retryAttempts: 2, maxEventAge: Duration.minutes(5) }),
    });
    acknowledgeScheduledInvoke(props.schedulerRole, fn.function);
    return { function: fn, schedule };
  }

  /**
   * The optional notification digest (lib/Digest.ts): its function, schedule (on the scheduler
   * role of the other schedules), IAM on this table, alarm and topic. `deadLetterQueues`: the
   * queues of this stack whose waiting messages the digest reports.
   */
  addDigest(settings: DigestSettings, options: { readonly label: string; readonly deadLetterQueues: readonly sqs.IQueue[] }): Digest {
    return new Digest(this.scope, 'Digest', {
      settings,
      table: this.table,
      schedulerRole: this.props.schedulerRole,
      failureQueue: this.props.failureQueue,
      deadLetterQueues: options.deadLetterQueues,
      label: options.label,
      logRetention: this.props.logRetention,
      alarmAction: this.props.alarmAction,
    });
  }

  /** decide and expiry wake enforcement through `queue` (ENFORCE_QUEUE_URL, core/environment.ts): its URL and the right to send. */
  sendWakeUpsTo(queue: sqs.IQueue): void {
    for (const fn of Object.values(this.functions)) {
      fn.function.addEnvironment(FUNCTION_ENV.enforceQueueUrl, queue.queueUrl);
      queue.grantSendMessages(fn.function);
    }
  }
}
