/**
 * The cloud half of portsnare (ARCHITECTURE.md): an event bus sensors report to, the decide →
 * desired state → enforce pipeline (queues, table, functions, schedules), and the parts it
 * maintains — WafBlocklist (IP sets, rule groups), the network ACL entries and their
 * NaclCleanup — watched by Monitoring. Usable from any CDK app; bin/app.ts is one user of it.
 *
 * The construct wires; the functions (lambda/) decide. Everything a function needs to know —
 * policy, never-block guard, the ACLs and the rule range, the IP sets — travels in one JSON
 * document (PORTSNARE_SETTINGS, core/settings.ts) built by pipelineSettingsFrom (lib/settings.ts).
 */
import { Annotations, type CfnElement, type CustomResource, Duration, Stack } from 'aws-cdk-lib';
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import type * as wafv2 from 'aws-cdk-lib/aws-wafv2';
import { Construct } from 'constructs';
import { denyOperatorRequestsExceptFrom, fixedOutput, routeToDecide } from './decideRoutes';
import type { MetricName } from '../core/metrics';
import { EMPTY_LIST_OUTPUT, STACK_OUTPUTS } from '../core/outputs';
import { functionEnvironment } from '../core/environment';
import type { PipelineSettingsInput } from '../core/settings';
import { DigestSettingsSchema } from '../core/digest';
import { DecisionCore } from './DecisionCore';
import type { Digest } from './Digest';
import type { DesiredStateTable } from './DesiredStateTable';
import { EnforcementCore } from './EnforcementCore';
import { SensorHeartbeat } from './SensorHeartbeat';
import { keepLogicalId } from './logicalIds';
import { Monitoring, portsnareMetric } from './Monitoring';
import { NaclCleanup } from './NaclCleanup';
import { PortsnareFunction } from './PortsnareFunction';
import { grantSensorPutEvents } from './sensorConfig';
import { naclRuleRangeOf, pipelineSettingsFrom, reconcileMinutesOf, validateEnumerationBlockerProps, wafScopesOf, type EnumerationBlockerProps, type WafScope } from './settings';
import { WafBlocklist, wafName, type PortsnareIpSet } from './WafBlocklist';

export { GUARDDUTY_RECON_TYPES } from './decideRoutes';

export class EnumerationBlocker extends Construct {
  public readonly eventBus: events.EventBus;
  public readonly table: DesiredStateTable;
  /** FIFO queue feeding the enforce function, one message group: one enforcer at a time. */
  public readonly enforceQueue: sqs.Queue;
  public readonly enforceDeadLetterQueue: sqs.Queue;
  /** Failed asynchronous invocations (decide, expiry, reconcile) and undeliverable rule/schedule targets. */
  public readonly failureQueue: sqs.Queue;
  public readonly functions: {
    readonly decide: PortsnareFunction;
    readonly enforce: PortsnareFunction;
    readonly expiry: PortsnareFunction;
    readonly reconcile: PortsnareFunction;
    readonly cleanup: PortsnareFunction;
  };
  public readonly waf: WafBlocklist;
  public readonly ipSets: readonly PortsnareIpSet[];
  public readonly ruleGroups: Partial<Record<WafScope, wafv2.CfnRuleGroup>>;
  /** The REGIONAL web ACL created for `webAclResourceArns`, when any. */
  public readonly webAcl?: wafv2.CfnWebACL;
  public readonly naclCleanup: NaclCleanup;
  /** the table, decide, expiry and its schedule (lib/DecisionCore.ts) */
  public readonly decision: DecisionCore;
  /** the enforce queue, enforce, reconcile, cleanup and what they need (lib/EnforcementCore.ts) */
  public readonly enforcement: EnforcementCore;
  public readonly monitoring: Monitoring;
  /** The PipelineSettingsSchema input every function receives (may hold tokens). */
  public readonly settings: PipelineSettingsInput;
  /** PORTSNARE_SETTINGS as a string that resolves at deploy time; also the PortsnareSettings output. */
  public readonly settingsJson: string;
  /** Every portsnare alarm (Monitoring's list: alarms pushed later show on the dashboard too). */
  public readonly alarms: cloudwatch.Alarm[];
  public readonly dashboard: cloudwatch.Dashboard;
  public readonly naclArns: readonly string[];
  /** The notification digest, when `digest` is set (lib/Digest.ts). */
  public readonly digest?: Digest;
  /** The SNS action every portsnare alarm notifies, when alarmTopic is set. */
  public readonly alarmAction?: cloudwatch.IAlarmAction;

  constructor(scope: Construct, id: string, props: EnumerationBlockerProps = {}) {
    super(scope, id);
    const stack = Stack.of(this);
    const errors = validateEnumerationBlockerProps(props, stack.region);
    if (errors.length) throw new Error(`EnumerationBlocker ${this.node.path}: invalid props:\n- ${errors.join('\n- ')}`);

    const naclIds = [...(props.naclIds ?? [])];
    const ruleRange = naclRuleRangeOf(props);
    const logRetention = props.logRetention ?? logs.RetentionDays.ONE_MONTH;
    this.alarmAction = props.alarmTopic ? new cwActions.SnsAction(props.alarmTopic) : undefined;

    this.waf = new WafBlocklist(this, 'Waf', {
      scopes: wafScopesOf(props),
      setsPerFamily: props.wafSetsPerFamily ?? 1,
      webAclResourceArns: props.webAclResourceArns,
      namePrefix: wafName(this, 100),
      count: props.simulation === true,
    });
    const waf = this.waf;
    this.ipSets = waf.ipSets;
    this.ruleGroups = waf.ruleGroups;
    this.webAcl = waf.webAcl;

    this.settings = pipelineSettingsFrom(props, waf.setRefs);
    const quota = this.settings.nacl?.quotaPerDirection ?? 0;
    if (ruleRange[1] - ruleRange[0] + 1 < 2 * (quota - 1)) {
      Annotations.of(this).addInfo(
        `naclRuleRange [${ruleRange.join(', ')}] holds fewer numbers than IPv4 + IPv6 deny entries could use under naclQuota ${quota}; the range, not the quota, will limit NACL blocks`,
      );
    }
    this.settingsJson = stack.toJsonString(this.settings);

    // --- state and queues -------------------------------------------------------------------------

    this.failureQueue = new sqs.Queue(this, 'FailureQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    // no AwsSolutions-SQS3 to acknowledge: it is the dead-letter queue of expiry's timer queue (lib/DecisionCore.ts)
    const scheduleRole = new iam.Role(this, 'SchedulerRole', {
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': stack.account } },
      }),
      description: 'portsnare: EventBridge Scheduler invokes the expiry and reconcile functions',
    });

    // --- decision: the table, decide, expiry and its schedule (lib/DecisionCore.ts) ------------------
    const common = { logRetention, alarmAction: this.alarmAction };
    const decision = new DecisionCore(this, {
      ...common,
      settingsJson: this.settingsJson,
      table: { removalPolicy: props.tableRemovalPolicy },
      failureQueue: this.failureQueue,
      schedulerRole: scheduleRole,
      securityHub: props.securityHub,
      texts: {
        decide: 'portsnare: validates Scan Detected events and operator requests, writes the desired state',
        expiry: 'portsnare: lifts expired blocks every minute',
        indexWildcard:
          'Table.grant*Data adds "<table ARN>/index/*" so the function can query the table\'s own global secondary index "active"; the wildcard covers only this table\'s indexes.',
      },
    });
    this.decision = decision;
    this.table = decision.table;

    // --- enforcement: queue, enforce, reconcile, cleanup, their IAM and schedule (lib/EnforcementCore.ts)
    const env = functionEnvironment({ settings: this.settingsJson, table: this.table.tableName });
    const enforcement = new EnforcementCore(this, {
      ...common,
      settingsJson: this.settingsJson,
      // the placement ledger (which NACL entries are this stack's) lives in the desired-state table
      environment: { enforce: env, cleanup: env },
      ledger: this.table,
      ledgerHasIndexes: true,
      naclIds,
      ruleRange,
      ipSets: waf.ipSets,
      failureQueue: this.failureQueue,
      schedulerRole: scheduleRole,
      reconcileMinutes: reconcileMinutesOf(props),
      texts: {
        enforce: 'portsnare: makes WAF IP sets and NACL entries equal to the desired state (the one writer)',
        reconcile: `portsnare: asks the enforcer for a full diff every ${reconcileMinutesOf(props)} minutes`,
        cleanup: 'portsnare: removes the NACL entries this stack made (its placement ledger), nothing else',
        reconcileSchedule: 'portsnare: full diff of desired and actual state',
        acls: 'the configured ACL ARNs',
      },
    });
    this.enforcement = enforcement;
    this.enforceQueue = enforcement.enforceQueue;
    this.enforceDeadLetterQueue = enforcement.enforceDeadLetterQueue;
    this.naclArns = enforcement.naclArns;
    this.naclCleanup = enforcement.naclCleanup;
    const { enforce, reconcile, cleanup } = enforcement.functions;

    const { decide, expiry } = decision.functions;
    decision.sendWakeUpsTo(this.enforceQueue);
    enforcement.runBeforeCleanup(decision.expirySchedule);
    this.functions = { decide, enforce, expiry, reconcile, cleanup };

    // --- the bus and its rules -----------------------------------------------------------------------
    this.eventBus = new events.EventBus(this, 'Bus', { description: 'portsnare: Scan Detected events and operator requests' });
    if (props.operatorPrincipals) denyOperatorRequestsExceptFrom(this.eventBus, props.operatorPrincipals);
    routeToDecide(this, {
      bus: this.eventBus,
      decide: decide.function,
      failureQueue: this.failureQueue,
      guardDuty: Boolean(props.guardDuty),
      descriptions: { sensors: 'portsnare: Scan Detected events from sensors → decide', guardDuty: 'portsnare: GuardDuty Recon:EC2 findings (default bus) → decide' },
    });

    // --- alarms and dashboard ------------------------------------------------------------------------
    this.monitoring = new Monitoring(this, 'Monitoring', {
      alarms: [decide.errorsAlarm, enforce.errorsAlarm, expiry.errorsAlarm, reconcile.errorsAlarm, cleanup.errorsAlarm, ...(decision.findings ? [decision.findings.function.errorsAlarm] : [])],
      emitters: [...decision.monitoring.emitters, ...enforcement.monitoring.emitters],
      deadLetterQueues: [
        ...enforcement.monitoring.deadLetterQueues,
        { id: 'FailureQueueAlarm', queue: this.failureQueue, what: 'events or invocations could not be delivered or kept failing' },
      ],
      enforcementLagThreshold: props.enforcementLagThreshold ?? Duration.minutes(5),
      alarmAction: this.alarmAction,
      wafRules: waf.ipSets,
      ...(props.simulation === true ? { wafMetric: 'CountedRequests' as const } : {}),
    });
    this.alarms = this.monitoring.alarms;
    this.dashboard = this.monitoring.dashboard;

    // --- the optional notification digest (lib/Digest.ts) ------------------------------------------
    if (props.digest !== undefined) {
      this.digest = decision.addDigest(DigestSettingsSchema.parse(props.digest), { label: stack.stackName, deadLetterQueues: [this.failureQueue, this.enforceDeadLetterQueue] });
      this.alarms.push(this.digest.undeliveredAlarm, this.digest.function.errorsAlarm);
    }

    this.keepStatefulLogicalIds();

    // --- outputs (fixed logical ids: the CLI reads them) -------------------------------------------
    const output = (logicalId: string, value: string, description: string): void => fixedOutput(this, logicalId, value, description);
    const list = (values: string[]): string => (values.length ? values.join(',') : EMPTY_LIST_OUTPUT);
    output(STACK_OUTPUTS.table, this.table.tableName, 'portsnare desired-state table');
    output(STACK_OUTPUTS.bus, this.eventBus.eventBusName, 'portsnare event bus (sensors PutEvents here)');
    output(STACK_OUTPUTS.busArn, this.eventBus.eventBusArn, 'portsnare event bus ARN');
    output(STACK_OUTPUTS.ipSets, list(waf.ipSets.map((s) => s.ipSet.attrArn)), 'portsnare WAF IP sets (comma separated), each scope × family × shard');
    output(
      STACK_OUTPUTS.ruleGroups,
      list(Object.values(waf.ruleGroups).map((g) => g.attrArn)),
      'portsnare WAF rule group (one per scope, comma separated): add it to your web ACL',
    );
    output(STACK_OUTPUTS.settings, this.settingsJson, 'portsnare PORTSNARE_SETTINGS document the functions run with (JSON)');
    output(STACK_OUTPUTS.sensors, SensorHeartbeat.listingOf(this), 'portsnare cloud sensors of this stack: id, heartbeat rule and alarm, bus (JSON)');
    output(STACK_OUTPUTS.alarmTopic, props.alarmTopic?.topicArn ?? EMPTY_LIST_OUTPUT, 'the SNS topic portsnare\'s alarms notify ("-": none)');
    output(STACK_OUTPUTS.canary, props.selftestCanaryAddress ?? EMPTY_LIST_OUTPUT, 'the address portsnare selftest may block and lift ("-": none)');
  }

  /**
   * The WAF resources and the cleanup custom resource moved into child constructs; they keep the
   * logical ids they had as direct children, so an update does not replace them (a new IP set or
   * rule group would clash by name, a new web ACL association would drop the old one, a new
   * cleanup resource would delete portsnare's NACL entries, a new ServiceToken is refused).
   */
  private keepStatefulLogicalIds(): void {
    const pinned: CfnElement[] = [
      ...this.waf.ipSets.map((s) => s.ipSet),
      ...Object.values(this.waf.ruleGroups),
      ...(this.waf.webAcl ? [this.waf.webAcl] : []),
      ...this.waf.webAclAssociations,
    ];
    for (const element of pinned) keepLogicalId(element, this, element.node.id);
    keepLogicalId(defaultChildOf(this.naclCleanup.resource), this, 'NaclCleanup');
    keepLogicalId(defaultChildOf(this.naclCleanup.frameworkFunction), this, 'CleanupProvider', 'framework-onEvent', 'Resource');
  }

  /**
   * A web ACL rule that evaluates the portsnare rule group of `scope`, for a CfnWebACL you own
   * in the same app: `rules: [blocker.webAclRule('REGIONAL', 0), ...yourRules]`.
   */
  webAclRule(scope: WafScope, priority: number): wafv2.CfnWebACL.RuleProperty {
    return this.waf.webAclRule(scope, priority);
  }

  /**
   * Lets a sensor (instance role, task role, function) put sensor events (source
   * `portsnare.sensor`: Scan Detected, Sensor Heartbeat) on the portsnare bus, nothing else.
   */
  grantPutEvents(grantee: iam.IGrantable): iam.Grant {
    return grantSensorPutEvents(this.eventBus, grantee);
  }

  /** A metric the functions publish (namespace Portsnare, dimension service=portsnare). */
  metric(name: MetricName, statistic = 'Sum', period = Duration.minutes(5)): cloudwatch.Metric {
    return portsnareMetric(name, statistic, period);
  }
}

function defaultChildOf(construct: Construct | CustomResource): CfnElement {
  const child = construct.node.defaultChild;
  if (!child) throw new Error(`${construct.node.path} has no default child`);
  return child as CfnElement;
}
