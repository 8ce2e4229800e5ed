/**
 * An organization's decision plane (docs/organization.md), in the delegated security account:
 * the event bus every sensor of the organization puts on, decide, the desired-state table,
 * expiry, and the wake-up FIFO queue decide and expiry send to (lambda/shared/queue.ts). It
 * enforces nothing: an EventBridge Pipe turns each wake-up into one `Desired State Changed`
 * event (core/org.ts) on the decision bus, and fan-out rules forward it to every plane's bus.
 *
 * Cross-account access, each side least privilege:
 * - the bus accepts sensor events (source `portsnare.sensor`, the sensor detail types) only from
 *   the roles `sensorPrincipals` names (aws:PrincipalArn patterns) within the organization
 *   (aws:PrincipalOrgID); operator requests only from this account, and from
 *   `operatorPrincipals` when given (the single-account stack's rule);
 * - the desired-state table's resource-based policy lets each plane's enforce role (by name, in
 *   its account) Query the `active` index, and nothing else: no plane can write anything enforce
 *   reads as desired state;
 * - the planes' reports live in a table of their own (`names.reportsTable`), which enforce never
 *   reads; its policy lets each plane's role UpdateItem only its own report item
 *   (dynamodb:LeadingKeys).
 */
import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as eventTargets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as pipes from 'aws-cdk-lib/aws-pipes';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { EVENT_SOURCE_SENSOR, SENSOR_DETAIL_TYPES } from '../../core/event';
import { DECISION_SOURCE, DESIRED_STATE_CHANGED, FAN_OUT_WAKE_UP, planeId, planeReportKey } from '../../core/org';
import { EMPTY_LIST_OUTPUT, STACK_OUTPUTS } from '../../core/outputs';
import { TABLE_PARTITION_KEY, TABLE_SORT_KEY } from '../../core/table';
import { DecisionCore } from '../DecisionCore';
import type { DesiredStateTable } from '../DesiredStateTable';
import { denyOperatorRequestsExceptFrom, fixedOutput, routeToDecide } from '../decideRoutes';
import { Monitoring } from '../Monitoring';
import type { PortsnareFunction } from '../PortsnareFunction';
import { pipelineSettingsFrom, reconcileMinutesOf, validateEnumerationBlockerProps, type EnumerationBlockerProps } from '../settings';
import { activeIndexArn, busArn, changesIndexArn, roleArn, tableArn, type Env, type OrgNames } from './names';

/**
 * The delivery delay of the decision plane's wake-up queue: one wake-up window (lambda/shared/queue.ts
 * WAKE_WINDOW_MS, 2 s). A window's wake-up is sent by its first decision (or expiry), at the
 * earliest when the window opens, so it becomes visible no sooner than the window closes; the pipe
 * and the deliveries to the planes take longer than the settle (SETTLE_MS, 1 s) that enforce waits
 * after the window, so a plane's enforce reads at once when the wake-up arrives. Without it every
 * plane's enforce would sleep up to 3 s per run for `notBefore`: 200 planes × ≈ 43,000 runs a day
 * of paid waiting (docs/scale.md). One delay here costs nothing but that second of latency,
 * which the waiting cost too.
 * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-delay-queues.html
 */
export const WAKE_UP_DELAY = Duration.seconds(2);

/** EventBridge: at most 5 targets per rule (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-quota.html) */
export const MAX_TARGETS_PER_RULE = 5;

/** What the decision plane takes from the single-account props: the policy, the guard, alarms, retention. */
export type DecisionSettingsProps = Pick<
  EnumerationBlockerProps,
  'policy' | 'vpcCidrs' | 'guardDuty' | 'alarmTopic' | 'tableRemovalPolicy' | 'logRetention' | 'enforcementLagThreshold' | 'operatorPrincipals' | 'selftestCanaryAddress' | 'securityHub'
>;

export interface DecisionPlaneProps extends DecisionSettingsProps {
  /** o-…: sensors of this organization may put sensor events on the bus */
  readonly organizationId: string;
  /**
   * The sensors' roles, as IAM ARN patterns (`arn:aws:iam::*:role/portsnare-sensor-*`): only
   * these principals of the organization may put sensor events on the decision bus.
   */
  readonly sensorPrincipals: readonly string[];
  readonly names: OrgNames;
  /** every enforcement plane (account and Region) */
  readonly planes: readonly Env[];
  /** the planes' reconcile period (lib/settings.ts reconcileMinutes), output for `status --org` */
  readonly reconcileMinutes?: number;
}

export class DecisionPlane extends Construct {
  public readonly eventBus: events.EventBus;
  public readonly table: DesiredStateTable;
  /** the table, decide, expiry and its schedule (lib/DecisionCore.ts) */
  public readonly decision: DecisionCore;
  /** the planes' reports (core/org.ts), apart from the desired state */
  public readonly reportsTable: dynamodb.Table;
  /** the wake-up FIFO queue decide and expiry send to; the pipe drains it onto the bus */
  public readonly wakeUpQueue: sqs.Queue;
  public readonly wakeUpDeadLetterQueue: sqs.Queue;
  public readonly failureQueue: sqs.Queue;
  public readonly functions: { readonly decide: PortsnareFunction; readonly expiry: PortsnareFunction };
  public readonly pipe: pipes.CfnPipe;
  public readonly fanOutRules: readonly events.Rule[];
  public readonly fanOutRole: iam.Role;
  public readonly monitoring: Monitoring;
  public readonly settingsJson: string;
  /** how the table's policy names the planes' roles: each by ARN (`plane`), or by name in each plane account (`account`, large organizations) */
  public readonly tablePolicyMode: 'plane' | 'account';
  /** the plane ids (core/org.ts planeId), in configuration order */
  public readonly planeIds: readonly string[];

  constructor(scope: Construct, id: string, props: DecisionPlaneProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const errors = validateEnumerationBlockerProps({ ...props, wafScopes: [] }, stack.region).filter((e) => !e.startsWith('naclIds and wafScopes are both empty'));
    if (errors.length) throw new Error(`DecisionPlane ${this.node.path}: invalid props:\n- ${errors.join('\n- ')}`);
    const { names, organizationId } = props;
    const here: Env = { account: stack.account, region: stack.region };
    this.planeIds = props.planes.map((p) => planeId(p.account, p.region));
    const logRetention = props.logRetention ?? logs.RetentionDays.ONE_MONTH;
    const alarmAction = props.alarmTopic ? new cwActions.SnsAction(props.alarmTopic) : undefined;

    // decide and expiry need the policy and the guard; the planes hold the ACLs and IP sets
    this.settingsJson = stack.toJsonString(pipelineSettingsFrom({ ...props, wafScopes: [] }, []));

    // --- the tables, shared with every plane through their resource-based policies ------------------
    const resources = {
      activeIndex: activeIndexArn(here, names.decisionTable, stack.partition),
      changesIndex: changesIndexArn(here, names.decisionTable, stack.partition),
      reports: tableArn(here, names.reportsTable, stack.partition),
    };
    const policies = (mode: 'plane' | 'account'): { desired: iam.PolicyDocument; reports: iam.PolicyDocument; bytes: number } => {
      const { desired, reports } = decisionTablePolicies(props.planes, names, stack.partition, resources, organizationId, mode);
      const bytes = Math.max(...[desired, reports].map((document) => JSON.stringify(stack.resolve(document.toJSON())).length));
      return { desired, reports, bytes };
    };
    const strict = policies('plane');
    const chosen = strict.bytes <= TABLE_POLICY_MAX_BYTES ? strict : policies('account');
    if (chosen.bytes > TABLE_POLICY_MAX_BYTES) {
      throw new Error(
        `portsnare.organization.planes: ${props.planes.length} planes make the plane-reports table's resource-based policy ${chosen.bytes} bytes, over DynamoDB's ${TABLE_POLICY_MAX_BYTES} even with one statement for all planes (every plane's report key is named in it): see docs/organization.md, "How many planes"`,
      );
    }
    this.tablePolicyMode = chosen === strict ? 'plane' : 'account';
    // The reports: rewritten by every plane run, nothing to keep across a destroy.
    this.reportsTable = new dynamodb.Table(this, 'PlaneReports', {
      tableName: names.reportsTable,
      partitionKey: { name: TABLE_PARTITION_KEY, type: dynamodb.AttributeType.STRING },
      sortKey: { name: TABLE_SORT_KEY, type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      encryption: dynamodb.TableEncryption.DEFAULT,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      resourcePolicy: chosen.reports,
      removalPolicy: RemovalPolicy.DESTROY,
    });

    // --- queues -------------------------------------------------------------------------------------
    this.wakeUpDeadLetterQueue = new sqs.Queue(this, 'WakeUpDeadLetterQueue', { fifo: true, encryption: sqs.QueueEncryption.SQS_MANAGED, enforceSSL: true, retentionPeriod: Duration.days(14) });
    // A wake-up becomes visible WAKE_UP_DELAY after it is sent (a queue's delivery delay: FIFO
    // queues take no per-message one), so it reaches the planes after its window is over and
    // their enforce functions start at once instead of each sleeping, paid, until `notBefore`.
    this.wakeUpQueue = new sqs.Queue(this, 'WakeUpQueue', {
      fifo: true,
      deliveryDelay: WAKE_UP_DELAY,
      contentBasedDeduplication: true,
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      visibilityTimeout: Duration.seconds(60),
      retentionPeriod: Duration.days(4),
      deadLetterQueue: { queue: this.wakeUpDeadLetterQueue, maxReceiveCount: 5 },
    });
    this.failureQueue = new sqs.Queue(this, 'FailureQueue', { encryption: sqs.QueueEncryption.SQS_MANAGED, enforceSSL: true, retentionPeriod: Duration.days(14) });
    // no AwsSolutions-SQS3 to acknowledge: it is the dead-letter queue of expiry's timer queue (lib/DecisionCore.ts)

    const scheduleRole = new iam.Role(this, 'SchedulerRole', {
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', { conditions: { StringEquals: { 'aws:SourceAccount': stack.account } } }),
      description: 'portsnare: EventBridge Scheduler invokes the expiry function',
    });

    // --- decision: the table, decide, expiry and its schedule (lib/DecisionCore.ts) ------------------
    const decision = new DecisionCore(this, {
      settingsJson: this.settingsJson,
      table: {
        tableName: names.decisionTable,
        removalPolicy: props.tableRemovalPolicy,
        // the AWS managed key cannot be shared across accounts (rbac-considerations.html): AWS owned key
        encryption: dynamodb.TableEncryption.DEFAULT,
        resourcePolicy: chosen.desired,
      },
      failureQueue: this.failureQueue,
      schedulerRole: scheduleRole,
      logRetention,
      alarmAction,
      securityHub: props.securityHub,
      texts: {
        decide: 'portsnare (organization decision plane): validates Scan Detected events and operator requests, writes the desired state',
        expiry: 'portsnare (organization decision plane): lifts expired blocks every minute',
        indexWildcard: 'Table.grant*Data adds "<table ARN>/index/*" so the function can query the table\'s own index "active"; the wildcard covers only this table\'s indexes.',
      },
    });
    this.decision = decision;
    this.table = decision.table;
    this.functions = decision.functions;
    const { decide, expiry } = decision.functions;
    // decide and expiry wake the planes through the fan-out queue, drained by the pipe below
    decision.sendWakeUpsTo(this.wakeUpQueue);

    // --- the bus: sensors of the organization, operators of this account -----------------------------
    this.eventBus = new events.EventBus(this, 'Bus', { description: 'portsnare decision bus: Scan Detected events of the organization\'s sensors, operator requests, fan-out' });
    // https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-conditions.html
    this.eventBus.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'PortsnareSensorsOfTheOrganization',
        principals: [new iam.AnyPrincipal()],
        actions: ['events:PutEvents'],
        resources: [this.eventBus.eventBusArn],
        conditions: {
          StringEquals: { 'aws:PrincipalOrgID': organizationId, 'events:source': EVENT_SOURCE_SENSOR, 'events:detail-type': [...SENSOR_DETAIL_TYPES] },
          ArnLike: { 'aws:PrincipalArn': [...props.sensorPrincipals] },
        },
      }),
    );
    if (props.operatorPrincipals) denyOperatorRequestsExceptFrom(this.eventBus, props.operatorPrincipals);
    routeToDecide(this, {
      bus: this.eventBus,
      decide: decide.function,
      failureQueue: this.failureQueue,
      guardDuty: Boolean(props.guardDuty),
      descriptions: {
        sensors: 'portsnare: Scan Detected events from the organization\'s sensors → decide',
        guardDuty: 'portsnare: GuardDuty Recon:EC2 findings (default bus of the decision account) → decide',
      },
    });

    // --- wake-ups → Desired State Changed on the decision bus (EventBridge Pipe) ----------------------
    const pipeRole = new iam.Role(this, 'PipeRole', {
      assumedBy: new iam.ServicePrincipal('pipes.amazonaws.com', { conditions: { StringEquals: { 'aws:SourceAccount': stack.account } } }),
      description: 'portsnare: the pipe reads wake-ups and puts Desired State Changed events on the decision bus',
    });
    this.wakeUpQueue.grantConsumeMessages(pipeRole);
    this.eventBus.grantPutEventsTo(pipeRole);
    this.pipe = new pipes.CfnPipe(this, 'FanOutPipe', {
      description: 'portsnare: every enforce wake-up becomes one Desired State Changed event for the planes',
      roleArn: pipeRole.roleArn,
      source: this.wakeUpQueue.queueArn,
      sourceParameters: { sqsQueueParameters: { batchSize: 1 } },
      target: this.eventBus.eventBusArn,
      targetParameters: {
        // The wake-up, wrapped in an object: the event's detail is {"wakeUp": {kind, notBefore?}}.
        // Only documented behaviour is relied on. The EventBridge Pipes input transformation page
        // (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-pipes-input-transformation.html)
        // shows an SQS body's JSON reached by path inside a JSON template ("Dynamic JSON":
        // `"key2": <$.body.key>`), and says: "EventBridge replaces input transformers at runtime to
        // ensure a valid JSON output. Because of this, put quotes around variables that refer to
        // JSON path parameters, but do not put quotes around variables that refer to JSON objects
        // or arrays." `<$.body>` alone as the whole template (what this pipe had) is the form
        // whose implicit body parsing strips the inner quotes of a JSON body; the page's remedy is
        // to wrap it in an object, as here. The planes' rules read `$.detail.wakeUp.*`.
        inputTemplate: `{"${FAN_OUT_WAKE_UP}": <$.body>}`,
        eventBridgeEventBusParameters: { source: DECISION_SOURCE, detailType: DESIRED_STATE_CHANGED },
      },
    });

    // --- fan-out: one rule per 5 planes, each target a plane's bus, delivered with a role -------------
    // A rule whose target is a bus in another account or Region delivers with a role of this
    // account (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-cross-region.html;
    // "We recommend always using IAM roles when the target of a rule is an event bus":
    // https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-bus-perms.html).
    const planeBuses = props.planes.map((plane) => busArn(plane, names.planeBus, stack.partition));
    this.fanOutRole = new iam.Role(this, 'FanOutRole', {
      roleName: names.fanOutRole,
      assumedBy: new iam.ServicePrincipal('events.amazonaws.com', { conditions: { StringEquals: { 'aws:SourceAccount': stack.account } } }),
      description: 'portsnare: the decision bus forwards Desired State Changed to every enforcement plane\'s bus',
    });
    // each EventBus target grants the role events:PutEvents on its bus, and nothing else
    const rules: events.Rule[] = [];
    for (let start = 0; start < planeBuses.length; start += MAX_TARGETS_PER_RULE) {
      const chunk = planeBuses.slice(start, start + MAX_TARGETS_PER_RULE);
      rules.push(
        new events.Rule(this, `FanOut${start / MAX_TARGETS_PER_RULE}`, {
          eventBus: this.eventBus,
          description: `portsnare: Desired State Changed → planes ${start + 1}–${start + chunk.length}`,
          eventPattern: { source: [DECISION_SOURCE], detailType: [DESIRED_STATE_CHANGED], account: [stack.account] },
          targets: chunk.map((arn) => new eventTargets.EventBus(events.EventBus.fromEventBusArn(this, `PlaneBus${rules.length}x${chunk.indexOf(arn)}`, arn), { role: this.fanOutRole, deadLetterQueue: this.failureQueue })),
        }),
      );
    }
    this.fanOutRules = rules;

    // --- alarms --------------------------------------------------------------------------------------
    this.monitoring = new Monitoring(this, 'Monitoring', {
      alarms: [decide.errorsAlarm, expiry.errorsAlarm, ...(decision.findings ? [decision.findings.function.errorsAlarm] : [])],
      // decide runs here; enforce (lag, failure classes) runs in the planes
      emitters: decision.monitoring.emitters,
      deadLetterQueues: [
        { id: 'WakeUpDlqAlarm', queue: this.wakeUpDeadLetterQueue, what: 'wake-ups the pipe could not put on the decision bus were set aside' },
        { id: 'FailureQueueAlarm', queue: this.failureQueue, what: 'events (fan-out to a plane included) or invocations could not be delivered' },
      ],
      enforcementLagThreshold: props.enforcementLagThreshold ?? Duration.minutes(5),
      alarmAction,
    });

    // --- outputs (fixed logical ids: the CLI reads them) -----------------------------------------------
    const output = (logicalId: string, value: string, description: string): void => fixedOutput(this, logicalId, value, description);
    output(STACK_OUTPUTS.table, this.table.tableName, 'portsnare desired-state table of the organization');
    output(STACK_OUTPUTS.reportsTable, this.reportsTable.tableName, 'portsnare enforcement planes\' reports (status --org reads them)');
    output(STACK_OUTPUTS.bus, this.eventBus.eventBusName, 'portsnare decision bus (sensors of the organization PutEvents here)');
    output(STACK_OUTPUTS.busArn, this.eventBus.eventBusArn, 'portsnare decision bus ARN');
    output(STACK_OUTPUTS.ipSets, EMPTY_LIST_OUTPUT, 'the decision plane has no IP sets: each plane stack lists its own');
    output(STACK_OUTPUTS.ruleGroups, EMPTY_LIST_OUTPUT, 'the decision plane has no rule group: each plane stack lists its own');
    output(STACK_OUTPUTS.settings, this.settingsJson, 'portsnare PORTSNARE_SETTINGS document decide and expiry run with (JSON)');
    output(STACK_OUTPUTS.planes, JSON.stringify(this.planeIds), 'the enforcement planes (account/region) as a JSON array');
    const planeStacks = Object.fromEntries(props.planes.map((p) => [planeId(p.account, p.region), names.planeStack(p.account, p.region)]));
    output(STACK_OUTPUTS.reconcileMinutes, String(reconcileMinutesOf(props)), 'minutes between two full reconciles of every plane: status --org counts a plane silent after two of them');
    output(STACK_OUTPUTS.planeStacks, JSON.stringify(planeStacks), 'each enforcement plane\'s stack (plane id → stack name, JSON): portsnare selftest --org reads them');
    output(STACK_OUTPUTS.alarmTopic, props.alarmTopic?.topicArn ?? EMPTY_LIST_OUTPUT, 'the SNS topic this stack\'s alarms notify ("-": none)');
    output(STACK_OUTPUTS.canary, props.selftestCanaryAddress ?? EMPTY_LIST_OUTPUT, 'the address portsnare selftest may block and lift ("-": none)');
  }

  /** The alarms of the decision plane (Monitoring's list). */
  get alarms(): cloudwatch.Alarm[] {
    return this.monitoring.alarms;
  }
}

/** DynamoDB: a resource-based policy is at most 20 KB, whitespace counted (rbac-considerations.html) */
export const TABLE_POLICY_MAX_BYTES = 20 * 1024;

/**
 * The resource-based policies of the decision plane's two tables, for the planes' enforce roles in
 * their own accounts and in the organization:
 * - the desired-state table: Query on the `active` index, nothing else (a plane writes no item
 *   there, so nothing a plane does can become desired state);
 * - the plane-reports table: UpdateItem of plane report items (dynamodb:LeadingKeys).
 * How the roles are named:
 * - `plane`: each role by its ARN, each held to its own report item by one statement per plane;
 * - `account` (an organization whose per-plane policy would pass DynamoDB's 20 KB): the roles
 *   named `<stackName>-enforce-*` of the plane accounts (the principals), held to the planes'
 *   report items, each to its own by its identity policy (across accounts both sides must allow).
 * Principals are the planes' accounts with an aws:PrincipalArn condition, so the policy is valid
 * before the planes' roles exist (the decision stack deploys first).
 * https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/rbac-cross-account-access.html
 * https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/specifying-conditions.html (dynamodb:LeadingKeys)
 */
export function decisionTablePolicies(
  planes: readonly Env[],
  names: OrgNames,
  partition: string,
  resources: { readonly activeIndex: string; readonly changesIndex: string; readonly reports: string },
  organizationId: string,
  mode: 'plane' | 'account',
): { desired: iam.PolicyDocument; reports: iam.PolicyDocument } {
  const inOrg = { StringEquals: { 'aws:PrincipalOrgID': organizationId } };
  const keyOf = (plane: Env): string => planeReportKey(planeId(plane.account, plane.region)).pk;
  const accounts = (some: readonly Env[]): string[] => [...new Set(some.map((p) => p.account))];
  const roles = (some: readonly Env[]): Record<string, Record<string, string | string[]>> => {
    // the principals are the plane accounts: one pattern covers the enforce roles of each of them
    if (mode === 'account') return { ArnLike: { 'aws:PrincipalArn': roleArn('*', names.enforceRole('*'), partition) } };
    const arns = some.map((p) => roleArn(p.account, names.enforceRole(p.region), partition));
    return { ArnEquals: { 'aws:PrincipalArn': arns.length === 1 ? arns[0]! : arns } };
  };
  const statement = (sid: string, some: readonly Env[], action: string, resource: string | readonly string[], keys: boolean): iam.PolicyStatement =>
    new iam.PolicyStatement({
      sid,
      principals: accounts(some).map((a) => new iam.AccountPrincipal(a)),
      actions: [action],
      resources: typeof resource === 'string' ? [resource] : [...resource],
      conditions: { ...inOrg, ...roles(some), ...(keys ? { 'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': some.map(keyOf) } } : {}) },
    });
  // Query on the two indexes enforce reads (the change log, and `active` while the change log's
  // backfill runs: BlockRepository.listEnforced), nothing else of the table
  const desired = new iam.PolicyDocument({ statements: [statement('PlanesQueryIndexes', planes, 'dynamodb:Query', [resources.activeIndex, resources.changesIndex], false)] });
  const reports = new iam.PolicyDocument({
    statements:
      mode === 'plane'
        ? planes.map((plane, i) => statement(`Plane${i}Report`, [plane], 'dynamodb:UpdateItem', resources.reports, true))
        : [statement('PlanesReport', planes, 'dynamodb:UpdateItem', resources.reports, true)],
  });
  return { desired, reports };
}
