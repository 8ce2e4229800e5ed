/**
 * An organization's enforcement plane (docs/organization.md), one per account × Region: the one
 * writer of its own network ACL entries and WAF IP sets. It decides nothing: its enforce function
 * (lambda/enforce, the single-account stack's) reads the whole desired state from the decision
 * table in the security account (TABLE_NAME = that table's ARN, Query on its `active` index only),
 * keeps its placement ledger in a small local table (LEDGER_TABLE_NAME) and reports each run under
 * its plane id (PLANE_ID, core/org.ts) in the decision plane's reports table
 * (REPORTS_TABLE_NAME = its ARN), which enforce never reads.
 *
 * Wake-ups: the decision bus forwards every `Desired State Changed` event to this plane's bus,
 * whose policy accepts only that event from the decision account's fan-out role; a rule puts it
 * on the plane's FIFO enforce queue as the same wake-up (lambda/shared/queue.ts). A plane that
 * was down (or missed events) catches up at its next run or at the 5-minute reconcile, from the
 * table: an event carries no block.
 */
import { Duration, Names, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as eventTargets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as schedulerTargets from 'aws-cdk-lib/aws-scheduler-targets';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { fixedOutput } from '../decideRoutes';
import { DECISION_SOURCE, DESIRED_STATE_CHANGED, FAN_OUT_WAKE_UP, planeId, planeReportKey } from '../../core/org';
import { EMPTY_LIST_OUTPUT, STACK_OUTPUTS } from '../../core/outputs';
import { functionEnvironment } from '../../core/environment';
import { ENFORCE_GROUP_ID } from '../../core/settings';
import { TABLE_PARTITION_KEY, TABLE_SORT_KEY, TABLE_TTL_ATTRIBUTE } from '../../core/table';
import { Monitoring } from '../Monitoring';
import { acknowledge, arnWildcardFinding, wildcardReadPolicy } from '../nag';
import { NaclCleanup } from '../NaclCleanup';
import { PortsnareFunction } from '../PortsnareFunction';
import { RepairAfterUpdate } from '../RepairAfterUpdate';
import { naclRuleRangeOf, pipelineSettingsFrom, validateEnumerationBlockerProps, type EnumerationBlockerProps } from '../settings';
import { WafBlocklist, wafName } from '../WafBlocklist';
import { activeIndexArn, roleArn, tableArn, type Env, type OrgNames } from './names';

/** What a plane takes from the single-account props. */
export type PlaneSettingsProps = Pick<
  EnumerationBlockerProps,
  'naclIds' | 'naclRuleRange' | 'naclQuota' | 'wafScopes' | 'wafSetsPerFamily' | 'policy' | 'vpcCidrs' | 'alarmTopic' | 'logRetention' | 'enforcementLagThreshold' | 'selftestCanaryAddress'
>;

export interface EnforcementPlaneProps extends PlaneSettingsProps {
  readonly organizationId: string;
  readonly names: OrgNames;
  /** the decision plane's account and Region */
  readonly decision: Env;
}

export class EnforcementPlane extends Construct {
  public readonly planeId: string;
  public readonly eventBus: events.EventBus;
  public readonly enforceQueue: sqs.Queue;
  public readonly enforceDeadLetterQueue: sqs.Queue;
  public readonly failureQueue: sqs.Queue;
  /** the NACL placement ledger: which entries are this plane's */
  public readonly ledger: dynamodb.Table;
  public readonly waf: WafBlocklist;
  public readonly functions: { readonly enforce: PortsnareFunction; readonly reconcile: PortsnareFunction; readonly cleanup: PortsnareFunction };
  public readonly wakeUpRules: readonly events.Rule[];
  public readonly naclCleanup: NaclCleanup;
  public readonly monitoring: Monitoring;
  public readonly settingsJson: string;

  constructor(scope: Construct, id: string, props: EnforcementPlaneProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const errors = validateEnumerationBlockerProps(props, stack.region);
    if (errors.length) throw new Error(`EnforcementPlane ${this.node.path}: invalid props:\n- ${errors.join('\n- ')}`);
    const { names, decision, organizationId } = props;
    this.planeId = planeId(stack.account, stack.region);
    const naclIds = [...(props.naclIds ?? [])];
    const logRetention = props.logRetention ?? logs.RetentionDays.ONE_MONTH;
    const alarmAction = props.alarmTopic ? new cwActions.SnsAction(props.alarmTopic) : undefined;

    this.waf = new WafBlocklist(this, 'Waf', { scopes: [...(props.wafScopes ?? ['REGIONAL'])], setsPerFamily: props.wafSetsPerFamily ?? 1, namePrefix: wafName(this, 100) });
    this.settingsJson = stack.toJsonString(pipelineSettingsFrom(props, this.waf.setRefs));

    // --- local state and queues ----------------------------------------------------------------------
    this.ledger = new dynamodb.Table(this, 'Ledger', {
      partitionKey: { name: TABLE_PARTITION_KEY, type: dynamodb.AttributeType.STRING },
      sortKey: { name: TABLE_SORT_KEY, type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      timeToLiveAttribute: TABLE_TTL_ATTRIBUTE,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const enforceTimeout = Duration.seconds(60);
    this.enforceDeadLetterQueue = new sqs.Queue(this, 'EnforceDeadLetterQueue', { fifo: true, encryption: sqs.QueueEncryption.SQS_MANAGED, enforceSSL: true, retentionPeriod: Duration.days(14) });
    this.enforceQueue = new sqs.Queue(this, 'EnforceQueue', {
      fifo: true,
      // the bus rule's target cannot set a deduplication id: the body (one per second) is the id
      contentBasedDeduplication: true,
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      visibilityTimeout: Duration.seconds(enforceTimeout.toSeconds() * 6),
      retentionPeriod: Duration.days(4),
      deadLetterQueue: { queue: this.enforceDeadLetterQueue, maxReceiveCount: 5 },
    });
    this.failureQueue = new sqs.Queue(this, 'FailureQueue', { encryption: sqs.QueueEncryption.SQS_MANAGED, enforceSSL: true, retentionPeriod: Duration.days(14) });
    acknowledge(this.failureQueue, 'AwsSolutions-SQS3', 'This queue is itself the dead-letter destination of failed asynchronous invocations, rule and schedule targets; its depth raises an alarm.');

    // --- functions -----------------------------------------------------------------------------------
    const common = { logRetention, alarmAction };
    const decisionTable = tableArn(decision, names.decisionTable, stack.partition);
    const reportsTable = tableArn(decision, names.reportsTable, stack.partition);
    const enforce = new PortsnareFunction(this, 'Enforce', {
      ...common,
      name: 'enforce',
      description: 'portsnare (organization enforcement plane): makes this account and Region\'s WAF IP sets and NACL entries equal to the decision table',
      environment: functionEnvironment({ settings: this.settingsJson, table: decisionTable, ledgerTable: this.ledger.tableName, planeId: this.planeId, reportsTable }),
      timeout: enforceTimeout,
      memorySize: 512,
      // named, so the decision table's resource-based policy can name it
      roleName: names.enforceRole(stack.region),
    });
    const reconcile = new PortsnareFunction(this, 'Reconcile', {
      ...common,
      name: 'reconcile',
      description: 'portsnare (organization enforcement plane): asks this plane\'s enforcer for a full diff every five minutes',
      environment: functionEnvironment({ settings: this.settingsJson, enforceQueueUrl: this.enforceQueue.queueUrl }),
      onFailure: this.failureQueue,
    });
    const cleanup = new PortsnareFunction(this, 'Cleanup', {
      ...common,
      name: 'cleanup',
      description: 'portsnare (organization enforcement plane): removes the NACL entries this plane made (its ledger), nothing else',
      environment: functionEnvironment({ settings: this.settingsJson, table: this.ledger.tableName, ledgerTable: this.ledger.tableName }),
      timeout: Duration.minutes(5),
    });
    this.functions = { enforce, reconcile, cleanup };
    this.ledger.grantReadWriteData(enforce.function);
    this.ledger.grantReadWriteData(cleanup.function);
    this.enforceQueue.grantSendMessages(reconcile.function);
    enforce.function.addEventSource(new SqsEventSource(this.enforceQueue, { batchSize: 10 }));

    // The decision plane's tables, cross-account: the identity side of their resource-based
    // policies (lib/org/DecisionPlane.ts); both sides must allow. Read the desired state, write
    // only this plane's report, in a table enforce never reads.
    enforce.role.addToPrincipalPolicy(new iam.PolicyStatement({ sid: 'PortsnareDecisionTableActive', actions: ['dynamodb:Query'], resources: [activeIndexArn(decision, names.decisionTable, stack.partition)] }));
    enforce.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'PortsnarePlaneReport',
        actions: ['dynamodb:UpdateItem'],
        resources: [reportsTable],
        conditions: { 'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': [planeReportKey(this.planeId).pk] } },
      }),
    );
    const naclArns = naclIds.map((aclId) => stack.formatArn({ service: 'ec2', resource: 'network-acl', resourceName: aclId }));
    if (naclArns.length) {
      enforce.role.addToPrincipalPolicy(new iam.PolicyStatement({ sid: 'PortsnareNaclEntries', actions: ['ec2:CreateNetworkAclEntry', 'ec2:ReplaceNetworkAclEntry', 'ec2:DeleteNetworkAclEntry'], resources: naclArns }));
      cleanup.role.addToPrincipalPolicy(new iam.PolicyStatement({ sid: 'PortsnareNaclCleanup', actions: ['ec2:DeleteNetworkAclEntry'], resources: naclArns }));
      for (const fn of [enforce, cleanup]) {
        wildcardReadPolicy(
          fn,
          'NaclReadPolicy',
          new iam.PolicyStatement({ sid: 'PortsnareNaclRead', actions: ['ec2:DescribeNetworkAcls'], resources: ['*'] }),
          'ec2:DescribeNetworkAcls supports no resource-level permissions (Service Authorization Reference, Amazon EC2), so its resource must be "*"; it is read-only, and alone in this policy. Every mutating EC2 action is limited to this plane\'s ACL ARNs.',
        );
      }
    }
    if (this.waf.ipSets.length) {
      enforce.role.addToPrincipalPolicy(new iam.PolicyStatement({ sid: 'PortsnareIpSets', actions: ['wafv2:GetIPSet', 'wafv2:UpdateIPSet'], resources: this.waf.ipSets.map((s) => s.ipSet.attrArn) }));
    }

    // --- the plane's bus: only the decision account's fan-out, only Desired State Changed -------------
    this.eventBus = new events.EventBus(this, 'Bus', { eventBusName: names.planeBus, description: 'portsnare enforcement plane: Desired State Changed from the decision plane' });
    this.eventBus.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'PortsnareFanOutFromTheDecisionPlane',
        principals: [new iam.AccountPrincipal(decision.account)],
        actions: ['events:PutEvents'],
        resources: [this.eventBus.eventBusArn],
        conditions: {
          StringEquals: { 'events:source': DECISION_SOURCE, 'events:detail-type': DESIRED_STATE_CHANGED, 'aws:PrincipalOrgID': organizationId },
          ArnEquals: { 'aws:PrincipalArn': roleArn(decision.account, names.fanOutRole, stack.partition) },
        },
      }),
    );
    // The wake-up on the FIFO queue: content-based deduplication (5 minutes) over a body that
    // differs every second. An `enforce` wake-up keeps its numeric notBefore (one per second, so
    // a later second is never dropped); a wake-up without one (`expire`) gets the event's time.
    // https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-transform-target-input.html
    // The decision plane's pipe puts the wake-up under detail.wakeUp (lib/org/DecisionPlane.ts).
    const pattern = (wakeUp: Record<string, unknown>): events.EventPattern => ({ source: [DECISION_SOURCE], detailType: [DESIRED_STATE_CHANGED], account: [decision.account], detail: { [FAN_OUT_WAKE_UP]: wakeUp } });
    const field = (name: string): string => events.EventField.fromPath(`$.detail.${FAN_OUT_WAKE_UP}.${name}`);
    const toQueue = (message: events.RuleTargetInput): eventTargets.SqsQueue => new eventTargets.SqsQueue(this.enforceQueue, { messageGroupId: ENFORCE_GROUP_ID, message, deadLetterQueue: this.failureQueue });
    this.wakeUpRules = [
      new events.Rule(this, 'WakeUpRule', {
        eventBus: this.eventBus,
        description: 'portsnare: Desired State Changed with notBefore → this plane\'s enforce queue',
        eventPattern: pattern({ notBefore: events.Match.exists() }),
        targets: [toQueue(events.RuleTargetInput.fromObject({ kind: field('kind'), notBefore: field('notBefore') }))],
      }),
      new events.Rule(this, 'WakeUpAtRule', {
        eventBus: this.eventBus,
        description: 'portsnare: Desired State Changed without notBefore (expire) → this plane\'s enforce queue',
        eventPattern: pattern({ notBefore: events.Match.doesNotExist() }),
        targets: [toQueue(events.RuleTargetInput.fromObject({ kind: field('kind'), at: events.EventField.time }))],
      }),
    ];

    // --- reconcile every 5 minutes: how a plane that was down catches up -------------------------------
    const scheduleRole = new iam.Role(this, 'SchedulerRole', {
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', { conditions: { StringEquals: { 'aws:SourceAccount': stack.account } } }),
      description: 'portsnare: EventBridge Scheduler invokes the reconcile function',
    });
    const reconcileSchedule = new scheduler.Schedule(this, 'ReconcileSchedule', {
      description: 'portsnare: full diff of the decision table and this plane',
      schedule: scheduler.ScheduleExpression.rate(Duration.minutes(5)),
      target: new schedulerTargets.LambdaInvoke(reconcile.function, { role: scheduleRole, deadLetterQueue: this.failureQueue, retryAttempts: 2, maxEventAge: Duration.minutes(10) }),
    });
    acknowledge(scheduleRole, arnWildcardFinding(reconcile.function, ':*'), 'LambdaInvoke grants lambda:InvokeFunction on the function ARN and "<function ARN>:*" (its versions and aliases); the wildcard never reaches another function.');

    // --- cleanup on delete, repair after update ------------------------------------------------------
    this.naclCleanup = new NaclCleanup(this, 'NaclCleanup', { cleanup, aclIds: naclIds, ruleRange: naclRuleRangeOf(props), logRetention });
    this.naclCleanup.resource.node.addDependency(this.ledger);
    if (this.waf.ipSets.length) new RepairAfterUpdate(this, 'RepairAfterUpdate', { enforceQueue: this.enforceQueue, messageGroupId: ENFORCE_GROUP_ID });
    const mapping = enforce.function.node.tryFindChild(`SqsEventSource:${Names.nodeUniqueId(this.enforceQueue.node)}`);
    for (const dependant of [mapping, reconcileSchedule, ...this.wakeUpRules]) dependant?.node.addDependency(this.naclCleanup.resource);

    this.monitoring = new Monitoring(this, 'Monitoring', {
      alarms: [enforce.errorsAlarm, reconcile.errorsAlarm, cleanup.errorsAlarm],
      // enforce runs here; decide (circuit breaker, own instance scanning) runs in the decision plane
      emitters: ['enforce'],
      deadLetterQueues: [
        { id: 'EnforceDlqAlarm', queue: this.enforceDeadLetterQueue, what: 'enforce messages failed five times and were set aside' },
        { id: 'FailureQueueAlarm', queue: this.failureQueue, what: 'wake-ups or invocations could not be delivered or kept failing' },
      ],
      enforcementLagThreshold: props.enforcementLagThreshold ?? Duration.minutes(5),
      alarmAction,
    });

    const output = (logicalId: string, value: string, description: string): void => fixedOutput(this, logicalId, value, description);
    const list = (values: string[]): string => (values.length ? values.join(',') : EMPTY_LIST_OUTPUT);
    output(STACK_OUTPUTS.ipSets, list(this.waf.ipSets.map((s) => s.ipSet.attrArn)), 'this plane\'s WAF IP sets (comma separated)');
    output(STACK_OUTPUTS.ruleGroups, list(Object.values(this.waf.ruleGroups).map((g) => g.attrArn)), 'this plane\'s WAF rule group per scope (comma separated): add it to your web ACL, or let Firewall Manager do it');
    output(STACK_OUTPUTS.settings, this.settingsJson, 'portsnare PORTSNARE_SETTINGS document this plane runs with (JSON)');
    output(STACK_OUTPUTS.ledgerTable, this.ledger.tableName, 'this plane\'s NACL placement ledger (which entries are its own)');
    output(STACK_OUTPUTS.alarmTopic, props.alarmTopic?.topicArn ?? EMPTY_LIST_OUTPUT, 'the SNS topic this plane\'s alarms notify ("-": none)');
  }
}
