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
import { Duration } from 'aws-cdk-lib';
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as iam from 'aws-cdk-lib/aws-iam';
import type * as logs from 'aws-cdk-lib/aws-logs';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as schedulerTargets from 'aws-cdk-lib/aws-scheduler-targets';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import { FUNCTION_ENV, functionEnvironment } from '../core/environment';
import type { DigestSettings } from '../core/digest';
import { DesiredStateTable, type DesiredStateTableProps } from './DesiredStateTable';
import { Digest } from './Digest';
import type { MetricEmitter } from './Monitoring';
import { acknowledge, arnWildcardFinding } from './nag';
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
}

export class DecisionCore {
  public readonly table: DesiredStateTable;
  public readonly functions: { readonly decide: PortsnareFunction; readonly expiry: PortsnareFunction };
  public readonly expirySchedule: scheduler.Schedule;
  /** expiry's message timers (lambda/shared/timer-queue.ts): it sends them and consumes them */
  public readonly expiryTimerQueue: sqs.Queue;
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
    acknowledge(
      props.schedulerRole,
      arnWildcardFinding(expiry.function, ':*'),
      'LambdaInvoke grants lambda:InvokeFunction on the function ARN and "<function ARN>:*" (its versions and aliases); the wildcard never reaches another function.',
    );

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
