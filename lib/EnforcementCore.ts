/**
 * The enforcement core: what every stack that enforces builds alike — the single-account
 * pipeline (lib/EnumerationBlocker.ts) and each organization enforcement plane
 * (lib/org/EnforcementPlane.ts). The FIFO enforce queue and its dead-letter queue; the enforce,
 * reconcile and cleanup functions and their IAM (the ledger table, the ACL ARNs, the IP sets);
 * the reconcile schedule; the NACL cleanup custom resource; the repair-after-update rule; and
 * which alarms are its own (`monitoring`: enforce's metrics, the enforce DLQ, its functions'
 * errors), for the composer's one Monitoring.
 *
 * It builds into its composer's scope and has no construct level of its own: a level would
 * change the path, hence the CloudFormation logical id, of every resource in it, and CloudFormation
 * replaces a resource whose logical id changes (a new queue, a cleanup run that deletes the
 * stack's NACL entries). https://docs.aws.amazon.com/cdk/v2/guide/identifiers.html#identifiers-logical-ids
 * What differs between composers — the tables, the environment, names, texts — comes in as props.
 */
import { Duration, Names, Stack } from 'aws-cdk-lib';
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import type * as logs from 'aws-cdk-lib/aws-logs';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as schedulerTargets from 'aws-cdk-lib/aws-scheduler-targets';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import type { Construct, IConstruct } from 'constructs';
import { functionEnvironment } from '../core/environment';
import { ENFORCE_GROUP_ID } from '../core/settings';
import type { MetricEmitter } from './Monitoring';
import { acknowledge, acknowledgeScheduledInvoke, arnWildcardFinding, wildcardReadPolicy } from './nag';
import { NaclCleanup } from './NaclCleanup';
import { PortsnareFunction } from './PortsnareFunction';
import { RepairAfterUpdate } from './RepairAfterUpdate';
import type { PortsnareIpSet } from './WafBlocklist';

/** The enforce function's timeout; the queue's visibility timeout is six times it (AWS, SQS event source). */
const ENFORCE_TIMEOUT = Duration.seconds(60);
/**
 * The enforce function's memory. An incremental run is a few calls (docs/scale.md: ≈ 0.06 s),
 * paid per GB-second on every wake-up of every plane, so memory is most of its price; a full run
 * at 100,000 blocks is CPU-bound (256/1,769 of a vCPU here) and still ends well within the
 * timeout (`reconcile_one_plane_s`, BENCHMARKS.md).
 * https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html
 */
export const ENFORCE_MEMORY_MB = 256;

export interface EnforcementCoreProps {
  /** PORTSNARE_SETTINGS (core/settings.ts), as the composer's stack resolves it */
  readonly settingsJson: string;
  /** the environments (core/environment.ts `functionEnvironment`): enforce reads the desired state, cleanup only the ledger */
  readonly environment: { readonly enforce: Record<string, string>; readonly cleanup: Record<string, string> };
  /** the table holding the NACL placement ledger: enforce and cleanup read and write it; the NACL cleanup runs before it is deleted */
  readonly ledger: dynamodb.ITable;
  /** the ledger table has global secondary indexes (the single-account table's `active`): acknowledge the index wildcard of its grant */
  readonly ledgerHasIndexes: boolean;
  readonly naclIds: readonly string[];
  readonly ruleRange: readonly [number, number];
  /** the IP sets enforce writes */
  readonly ipSets: readonly PortsnareIpSet[];
  /** failed asynchronous invocations and undeliverable schedule targets (the composer's, shared with its other functions) */
  readonly failureQueue: sqs.IQueue;
  /** the role EventBridge Scheduler invokes the reconcile function with (the composer's, shared with its other schedules) */
  readonly schedulerRole: iam.IRole;
  readonly logRetention: logs.RetentionDays;
  readonly alarmAction?: cloudwatch.IAlarmAction;
  /** a fixed name for enforce's role (an organization plane: the decision table's resource-based policy names it) */
  readonly enforceRoleName?: string;
  /** more statements for enforce's role (an organization plane: the decision plane's tables) */
  readonly enforceStatements?: readonly iam.PolicyStatement[];
  /**
   * The composer's rules that put wake-ups on the enforce queue (an organization plane: from its
   * bus), built with the queue, before the repair rule; they stop before the NACL cleanup runs.
   */
  readonly wakeUps?: (enforceQueue: sqs.IQueue) => readonly IConstruct[];
  /** minutes between two reconciles (lib/settings.ts reconcileMinutesOf: validated, default applied) */
  readonly reconcileMinutes: number;
  /** descriptions of the functions and the schedule, and how the ACL acknowledgement names the ACLs */
  readonly texts: {
    readonly enforce: string;
    readonly reconcile: string;
    readonly cleanup: string;
    readonly reconcileSchedule: string;
    /** e.g. "the configured ACL ARNs" */
    readonly acls: string;
  };
}

export class EnforcementCore {
  /** FIFO queue feeding the enforce function, one message group: one enforcer at a time. */
  public readonly enforceQueue: sqs.Queue;
  public readonly enforceDeadLetterQueue: sqs.Queue;
  public readonly functions: { readonly enforce: PortsnareFunction; readonly reconcile: PortsnareFunction; readonly cleanup: PortsnareFunction };
  public readonly naclArns: readonly string[];
  public readonly reconcileSchedule: scheduler.Schedule;
  /** what `props.wakeUps` built */
  public readonly wakeUps: readonly IConstruct[];
  public readonly naclCleanup: NaclCleanup;
  /** the wake-up after a stack update that reset the IP sets (when there are IP sets) */
  public readonly repairAfterUpdate?: RepairAfterUpdate;
  /** the alarms that are this core's: enforce publishes the lag and failure metrics; its DLQ; its functions' errors */
  public readonly monitoring: {
    readonly emitters: readonly MetricEmitter[];
    readonly deadLetterQueues: ReadonlyArray<{ readonly id: string; readonly queue: sqs.IQueue; readonly what: string }>;
  };

  constructor(scope: Construct, props: EnforcementCoreProps) {
    const stack = Stack.of(scope);
    this.enforceDeadLetterQueue = new sqs.Queue(scope, 'EnforceDeadLetterQueue', {
      fifo: true,
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    this.enforceQueue = new sqs.Queue(scope, 'EnforceQueue', {
      fifo: true,
      // Senders set their own MessageDeduplicationId where they can; content-based deduplication
      // is the fallback, and the only id a bus rule's target (an organization plane) can have:
      // its body differs every second.
      contentBasedDeduplication: true,
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      // AWS: at least six times the function timeout for an SQS event source.
      visibilityTimeout: Duration.seconds(ENFORCE_TIMEOUT.toSeconds() * 6),
      retentionPeriod: Duration.days(4),
      deadLetterQueue: { queue: this.enforceDeadLetterQueue, maxReceiveCount: 5 },
    });

    const common = { logRetention: props.logRetention, alarmAction: props.alarmAction };
    const enforce = new PortsnareFunction(scope, 'Enforce', {
      ...common,
      name: 'enforce',
      description: props.texts.enforce,
      environment: props.environment.enforce,
      timeout: ENFORCE_TIMEOUT,
      memorySize: ENFORCE_MEMORY_MB,
      ...(props.enforceRoleName ? { roleName: props.enforceRoleName } : {}),
    });
    const reconcile = new PortsnareFunction(scope, 'Reconcile', {
      ...common,
      name: 'reconcile',
      description: props.texts.reconcile,
      // It only sends {"kind":"reconcile"}; the diff runs in the enforce function.
      environment: functionEnvironment({ settings: props.settingsJson, enforceQueueUrl: this.enforceQueue.queueUrl }),
      onFailure: props.failureQueue,
    });
    const cleanup = new PortsnareFunction(scope, 'Cleanup', {
      ...common,
      name: 'cleanup',
      description: props.texts.cleanup,
      environment: props.environment.cleanup,
      timeout: Duration.minutes(5),
    });
    this.functions = { enforce, reconcile, cleanup };

    props.ledger.grantReadWriteData(enforce.function);
    props.ledger.grantReadWriteData(cleanup.function);
    this.enforceQueue.grantSendMessages(reconcile.function);
    // enforce wakes itself when it leaves WAF removals pending (lambda/enforce/handler.ts wakeForPending)
    this.enforceQueue.grantSendMessages(enforce.function);
    // Messages are wake-ups, not work items: the function diffs the whole desired state and
    // succeeds or fails as a whole, so no partial batch responses.
    enforce.function.addEventSource(new SqsEventSource(this.enforceQueue, { batchSize: 10 }));
    for (const statement of props.enforceStatements ?? []) enforce.role.addToPrincipalPolicy(statement);

    // Least privilege on the network ACLs: mutations only on the configured ACLs' ARNs.
    this.naclArns = props.naclIds.map((aclId) => stack.formatArn({ service: 'ec2', resource: 'network-acl', resourceName: aclId }));
    if (this.naclArns.length) {
      enforce.role.addToPrincipalPolicy(
        new iam.PolicyStatement({
          sid: 'PortsnareNaclEntries',
          actions: ['ec2:CreateNetworkAclEntry', 'ec2:ReplaceNetworkAclEntry', 'ec2:DeleteNetworkAclEntry'],
          resources: [...this.naclArns],
        }),
      );
      cleanup.role.addToPrincipalPolicy(new iam.PolicyStatement({ sid: 'PortsnareNaclCleanup', actions: ['ec2:DeleteNetworkAclEntry'], resources: [...this.naclArns] }));
      for (const fn of [enforce, cleanup]) {
        wildcardReadPolicy(
          fn,
          'NaclReadPolicy',
          new iam.PolicyStatement({ sid: 'PortsnareNaclRead', actions: ['ec2:DescribeNetworkAcls'], resources: ['*'] }),
          `ec2:DescribeNetworkAcls supports no resource-level permissions (Service Authorization Reference, Amazon EC2), so its resource must be "*"; it is read-only, and alone in this policy. Every mutating EC2 action is limited to ${props.texts.acls}.`,
        );
      }
    }
    if (props.ipSets.length) {
      enforce.role.addToPrincipalPolicy(
        new iam.PolicyStatement({ sid: 'PortsnareIpSets', actions: ['wafv2:GetIPSet', 'wafv2:UpdateIPSet'], resources: props.ipSets.map((s) => s.ipSet.attrArn) }),
      );
    }
    if (props.ledgerHasIndexes) {
      for (const fn of [enforce, cleanup]) {
        acknowledge(
          fn.role,
          arnWildcardFinding(props.ledger, '/index/*'),
          'Table.grant*Data adds "<table ARN>/index/*" so the function can query the table\'s own global secondary index "active"; the wildcard covers only this table\'s indexes.',
        );
      }
    }

    // --- reconcile every reconcileMinutes: how missed wake-ups, console edits and index lag are caught up
    this.reconcileSchedule = new scheduler.Schedule(scope, 'ReconcileSchedule', {
      description: props.texts.reconcileSchedule,
      schedule: scheduler.ScheduleExpression.rate(Duration.minutes(props.reconcileMinutes)),
      target: new schedulerTargets.LambdaInvoke(reconcile.function, { role: props.schedulerRole, deadLetterQueue: props.failureQueue, retryAttempts: 2, maxEventAge: Duration.minutes(10) }),
    });
    acknowledgeScheduledInvoke(props.schedulerRole, reconcile.function);

    this.wakeUps = props.wakeUps?.(this.enforceQueue) ?? [];

    // --- cleanup on delete, repair after update ----------------------------------------------------
    this.naclCleanup = new NaclCleanup(scope, 'NaclCleanup', { cleanup, aclIds: props.naclIds, ruleRange: props.ruleRange, logRetention: props.logRetention });
    // the cleanup reads the ledger on Delete: the table goes after it
    this.naclCleanup.resource.node.addDependency(props.ledger);
    // a stack update that touched an IP set wrote [] over it: refill at once (lib/RepairAfterUpdate.ts)
    if (props.ipSets.length) this.repairAfterUpdate = new RepairAfterUpdate(scope, 'RepairAfterUpdate', { enforceQueue: this.enforceQueue, messageGroupId: ENFORCE_GROUP_ID });
    const mapping = enforce.function.node.tryFindChild(`SqsEventSource:${Names.nodeUniqueId(this.enforceQueue.node)}`);
    this.runBeforeCleanup(...(mapping ? [mapping] : []), this.reconcileSchedule, ...this.wakeUps);

    this.monitoring = {
      emitters: ['enforce'],
      deadLetterQueues: [{ id: 'EnforceDlqAlarm', queue: this.enforceDeadLetterQueue, what: 'enforce messages failed five times and were set aside' }],
    };
  }

  /**
   * CloudFormation deletes dependants first: whatever can re-add a NACL entry (the enforce
   * trigger, schedules, wake-up rules) goes before the cleanup runs, so nothing re-adds one behind it.
   */
  runBeforeCleanup(...dependants: IConstruct[]): void {
    for (const dependant of dependants) dependant.node.addDependency(this.naclCleanup.resource);
  }
}
