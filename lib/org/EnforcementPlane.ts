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
 * was down (or missed events) catches up at its next run or at the reconcile (every `reconcileMinutes`), from the
 * table: an event carries no block.
 */
import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as eventTargets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { fixedOutput } from '../decideRoutes';
import { DECISION_SOURCE, DESIRED_STATE_CHANGED, FAN_OUT_WAKE_UP, planeId, planeReportKey } from '../../core/org';
import { EMPTY_LIST_OUTPUT, STACK_OUTPUTS } from '../../core/outputs';
import { functionEnvironment } from '../../core/environment';
import { ENFORCE_GROUP_ID } from '../../core/settings';
import { TABLE_PARTITION_KEY, TABLE_SORT_KEY, TABLE_TTL_ATTRIBUTE } from '../../core/table';
import { EnforcementCore } from '../EnforcementCore';
import { Monitoring } from '../Monitoring';
import { acknowledge } from '../nag';
import { NaclCleanup } from '../NaclCleanup';
import { PortsnareFunction } from '../PortsnareFunction';
import { naclRuleRangeOf, pipelineSettingsFrom, reconcileMinutesOf, validateEnumerationBlockerProps, type EnumerationBlockerProps } from '../settings';
import { WafBlocklist, wafName } from '../WafBlocklist';
import { activeIndexArn, changesIndexArn, roleArn, tableArn, type Env, type OrgNames } from './names';

/** What a plane takes from the single-account props. */
export type PlaneSettingsProps = Pick<
  EnumerationBlockerProps,
  | 'naclIds'
  | 'naclRuleRange'
  | 'naclQuota'
  | 'wafScopes'
  | 'wafSetsPerFamily'
  | 'policy'
  | 'vpcCidrs'
  | 'alarmTopic'
  | 'logRetention'
  | 'enforcementLagThreshold'
  | 'selftestCanaryAddress'
  | 'reconcileMinutes'
  | 'naclResidenceSeconds'
  | 'simulation'
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
  /** the enforce queue, enforce, reconcile, cleanup and what they need (lib/EnforcementCore.ts) */
  public readonly enforcement: EnforcementCore;
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

    this.waf = new WafBlocklist(this, 'Waf', { scopes: [...(props.wafScopes ?? ['REGIONAL'])], setsPerFamily: props.wafSetsPerFamily ?? 1, namePrefix: wafName(this, 100), count: props.simulation === true });
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
    this.failureQueue = new sqs.Queue(this, 'FailureQueue', { encryption: sqs.QueueEncryption.SQS_MANAGED, enforceSSL: true, retentionPeriod: Duration.days(14) });
    acknowledge(this.failureQueue, 'AwsSolutions-SQS3', 'This queue is itself the dead-letter destination of failed asynchronous invocations, rule and schedule targets; its depth raises an alarm.');
    const scheduleRole = new iam.Role(this, 'SchedulerRole', {
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', { conditions: { StringEquals: { 'aws:SourceAccount': stack.account } } }),
      description: 'portsnare: EventBridge Scheduler invokes the reconcile function',
    });

    // --- enforcement: queue, enforce, reconcile, cleanup, their IAM and schedule (lib/EnforcementCore.ts)
    const decisionTable = tableArn(decision, names.decisionTable, stack.partition);
    const reportsTable = tableArn(decision, names.reportsTable, stack.partition);
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
    const toQueue = (queue: sqs.IQueue, message: events.RuleTargetInput): eventTargets.SqsQueue => new eventTargets.SqsQueue(queue, { messageGroupId: ENFORCE_GROUP_ID, message, deadLetterQueue: this.failureQueue });
    const wakeUpRules = (queue: sqs.IQueue): events.Rule[] => [
      new events.Rule(this, 'WakeUpRule', {
        eventBus: this.eventBus,
        description: 'portsnare: Desired State Changed with notBefore → this plane\'s enforce queue',
        eventPattern: pattern({ notBefore: events.Match.exists() }),
        targets: [toQueue(queue, events.RuleTargetInput.fromObject({ kind: field('kind'), notBefore: field('notBefore') }))],
      }),
      new events.Rule(this, 'WakeUpAtRule', {
        eventBus: this.eventBus,
        description: 'portsnare: Desired State Changed without notBefore (expire) → this plane\'s enforce queue',
        eventPattern: pattern({ notBefore: events.Match.doesNotExist() }),
        targets: [toQueue(queue, events.RuleTargetInput.fromObject({ kind: field('kind'), at: events.EventField.time }))],
      }),
    ];

    // The decision plane's tables, cross-account: the identity side of their resource-based
    // policies (lib/org/DecisionPlane.ts); both sides must allow. Read the desired state, write
    // only this plane's report, in a table enforce never reads.
    const decisionTableStatements = [
      new iam.PolicyStatement({
        sid: 'PortsnareDecisionTableIndexes',
        actions: ['dynamodb:Query'],
        resources: [activeIndexArn(decision, names.decisionTable, stack.partition), changesIndexArn(decision, names.decisionTable, stack.partition)],
      }),
      new iam.PolicyStatement({
        sid: 'PortsnarePlaneReport',
        actions: ['dynamodb:UpdateItem'],
        resources: [reportsTable],
        conditions: { 'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': [planeReportKey(this.planeId).pk] } },
      }),
    ];

    let rules: events.Rule[] = [];
    const enforcement = new EnforcementCore(this, {
      settingsJson: this.settingsJson,
      environment: {
        enforce: functionEnvironment({ settings: this.settingsJson, table: decisionTable, ledgerTable: this.ledger.tableName, planeId: this.planeId, reportsTable }),
        cleanup: functionEnvironment({ settings: this.settingsJson, table: this.ledger.tableName, ledgerTable: this.ledger.tableName }),
      },
      ledger: this.ledger,
      ledgerHasIndexes: false,
      naclIds,
      ruleRange: naclRuleRangeOf(props),
      ipSets: this.waf.ipSets,
      failureQueue: this.failureQueue,
      schedulerRole: scheduleRole,
      logRetention,
      alarmAction,
      // named, so the decision table's resource-based policy can name it
      enforceRoleName: names.enforceRole(stack.region),
      enforceStatements: decisionTableStatements,
      wakeUps: (queue) => (rules = wakeUpRules(queue)),
      reconcileMinutes: reconcileMinutesOf(props),
      texts: {
        enforce: 'portsnare (organization enforcement plane): makes this account and Region\'s WAF IP sets and NACL entries equal to the decision table',
        reconcile: `portsnare (organization enforcement plane): asks this plane's enforcer for a full diff every ${reconcileMinutesOf(props)} minutes`,
        cleanup: 'portsnare (organization enforcement plane): removes the NACL entries this plane made (its ledger), nothing else',
        reconcileSchedule: 'portsnare: full diff of the decision table and this plane',
        acls: 'this plane\'s ACL ARNs',
      },
    });
    this.enforcement = enforcement;
    this.enforceQueue = enforcement.enforceQueue;
    this.enforceDeadLetterQueue = enforcement.enforceDeadLetterQueue;
    this.naclCleanup = enforcement.naclCleanup;
    this.functions = enforcement.functions;
    this.wakeUpRules = rules;
    const { enforce, reconcile, cleanup } = enforcement.functions;


    this.monitoring = new Monitoring(this, 'Monitoring', {
      alarms: [enforce.errorsAlarm, reconcile.errorsAlarm, cleanup.errorsAlarm],
      // enforce runs here; decide (circuit breaker, own instance scanning) runs in the decision plane
      emitters: enforcement.monitoring.emitters,
      deadLetterQueues: [
        ...enforcement.monitoring.deadLetterQueues,
        { id: 'FailureQueueAlarm', queue: this.failureQueue, what: 'wake-ups or invocations could not be delivered or kept failing' },
      ],
      enforcementLagThreshold: props.enforcementLagThreshold ?? Duration.minutes(5),
      alarmAction,
      wafRules: this.waf.ipSets,
      ...(props.simulation === true ? { wafMetric: 'CountedRequests' as const } : {}),
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
