/**
 * The cloud half of portsnare (DESIGN.md, "The flow"): an event bus sensors report to, the
 * decide → desired state → enforce pipeline, and the WAF IP sets and network ACL entries it
 * maintains. Usable from any CDK app; our bin/app.ts is one user of it.
 *
 * The construct wires; the functions (lambda/) decide. Everything a function needs to know —
 * policy, never-block guard, the ACLs and the rule range, the IP sets — travels in one JSON
 * document (PORTSNARE_SETTINGS, core/settings.ts), the same schema the local agent uses.
 */
import { CfnOutput, CustomResource, Duration, RemovalPolicy, Stack, Token, Names, Annotations } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as eventTargets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as schedulerTargets from 'aws-cdk-lib/aws-scheduler-targets';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as wafv2 from 'aws-cdk-lib/aws-wafv2';
import * as cr from 'aws-cdk-lib/custom-resources';
import { Construct } from 'constructs';
import { tryParseCidr } from '../core/address';
import { DETAIL_TYPE_SCAN_DETECTED, EVENT_SOURCE_CLI, EVENT_SOURCE_SENSOR } from '../core/event';
import {
  NACL_DEFAULT_QUOTA,
  NACL_MAX_QUOTA,
  NACL_RULE_MAX,
  NACL_RULE_MIN,
  PipelineSettingsSchema,
  SETTINGS_ENV,
  type PipelineSettingsInput,
  type WafSetRef,
} from '../core/settings';
import { acknowledge, arnWildcardFinding } from './nag';
import { PortsnareFunction } from './PortsnareFunction';

export type WafScope = 'REGIONAL' | 'CLOUDFRONT';
export type AddressFamily = 'ipv4' | 'ipv6';

/** Metric names the functions publish (namespace Portsnare, dimension service=portsnare). */
export const METRIC_NAMESPACE = 'Portsnare';
export const METRIC_DIMENSIONS = { service: 'portsnare' } as const;

/** The operator requests of core/commands.ts. */
export const DETAIL_TYPE_BLOCK_REQUESTED = 'Block Requested';
export const DETAIL_TYPE_UNBLOCK_REQUESTED = 'Unblock Requested';

/** GuardDuty finding types that name an address probing us. */
export const GUARDDUTY_RECON_TYPES = ['Recon:EC2/PortProbeUnprotectedPort', 'Recon:EC2/Portscan'] as const;

/** At most this many IP sets per scope and family: 100,000 addresses, and a fixed rule-group capacity. */
export const MAX_WAF_SETS_PER_FAMILY = 10;
/** Each IP set reference statement costs 1 WCU; a rule group's capacity cannot change after creation. */
export const RULE_GROUP_CAPACITY = 2 * MAX_WAF_SETS_PER_FAMILY;

/** The block policy (core/policy.ts). */
export interface BlockPolicyProps {
  /**
   * How long a first offence is blocked.
   * @default Duration.hours(1)
   */
  readonly baseTtl?: Duration;
  /**
   * Each repeat offence within the offence window multiplies the TTL by this (1–100).
   * @default 2
   */
  readonly escalationFactor?: number;
  /**
   * The TTL never exceeds this.
   * @default Duration.days(7)
   */
  readonly maxTtl?: Duration;
  /**
   * An offence more than this long after the previous one counts as a first offence again.
   * @default Duration.days(30)
   */
  readonly offenceWindow?: Duration;
  /**
   * Addresses and CIDRs (IPv4 and IPv6) that are never blocked, whoever asks: partners,
   * monitors, your office.
   * @default []
   */
  readonly allowlist?: readonly string[];
  /**
   * Block on probes that completed no TCP handshake (UDP, stealth scans, VPC Flow Logs). Their
   * source address can be forged, so anyone could make portsnare block a resolver or a partner.
   * @default false
   */
  readonly blockUnverified?: boolean;
  /**
   * More new blocks than this within one minute opens the circuit breaker: portsnare stops
   * adding blocks and raises the CircuitBreakerOpen alarm.
   * @default 100
   */
  readonly burstLimitPerMinute?: number;
}

export interface EnumerationBlockerProps {
  /**
   * The network ACLs portsnare writes deny entries into (`acl-…` ids, or tokens of ACLs in the
   * same app). This is the way to name ACLs: resolving them from subnet ids would need an AWS
   * lookup at synth or a custom resource at deploy, and the IAM policy must name the ACLs.
   * Find a subnet's ACL with `aws ec2 describe-network-acls --filters Name=association.subnet-id,Values=subnet-…`.
   * @default [] (WAF only)
   */
  readonly naclIds?: readonly string[];
  /**
   * The rule numbers [first, last] portsnare owns in every ACL. Entries outside this range are
   * never touched; the range must lie below your own allow rules (ACL rules are evaluated in
   * ascending order, so a deny must come first to win).
   * @default [1, 99]
   */
  readonly naclRuleRange?: readonly [number, number];
  /**
   * Rules per direction per ACL your account allows (VPC quota "Rules per network ACL",
   * 20 by default, 40 at most; the default deny counts). IPv4 and IPv6 are counted apart.
   * @default 20
   */
  readonly naclQuota?: number;
  /**
   * Which WAF scopes get IP sets and a rule group. CLOUDFRONT resources exist only in
   * us-east-1: a CLOUDFRONT scope is accepted only in a stack whose env region is us-east-1.
   * @default ['REGIONAL']
   */
  readonly wafScopes?: readonly WafScope[];
  /**
   * IP sets per scope and address family (10,000 addresses each), 1–10.
   * @default 1
   */
  readonly wafSetsPerFamily?: number;
  /**
   * Resources (Application Load Balancer, API Gateway stage, AppSync, Cognito user pool … ARNs)
   * to protect with a new REGIONAL web ACL holding only the portsnare rule group (default
   * action allow). A resource can have one web ACL only: a resource that already has one would
   * lose it, so for those add the rule group to the existing web ACL instead (see
   * `webAclRule()` and docs/deploy.md).
   * @default [] (no web ACL is created; the rule group ARN is an output)
   */
  readonly webAclResourceArns?: readonly string[];
  /** @default - the defaults of BlockPolicyProps */
  readonly policy?: BlockPolicyProps;
  /**
   * Your own networks (VPC CIDRs, on-premises ranges). Never blocked.
   * @default []
   */
  readonly vpcCidrs?: readonly string[];
  /**
   * Also act on GuardDuty `Recon:EC2/PortProbeUnprotectedPort` and `Recon:EC2/Portscan`
   * findings (GuardDuty must be enabled in the account; its findings arrive on the default bus).
   * @default false
   */
  readonly guardDuty?: boolean;
  /**
   * Where alarms notify.
   * @default - alarms without actions
   */
  readonly alarmTopic?: sns.ITopic;
  /**
   * What happens to the desired-state table (blocks and their history) when the stack is
   * deleted. With DESTROY, point-in-time recovery still leaves a system backup for 35 days.
   * @default RemovalPolicy.DESTROY
   */
  readonly tableRemovalPolicy?: RemovalPolicy;
  /**
   * Retention of every function's log group.
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * The EnforcementLagSeconds alarm fires when a block took longer than this from detection to
   * enforcement.
   * @default Duration.minutes(5)
   */
  readonly enforcementLagThreshold?: Duration;
}

export interface PortsnareIpSet {
  readonly scope: WafScope;
  readonly family: AddressFamily;
  readonly name: string;
  readonly ipSet: wafv2.CfnIPSet;
}

/** The same check the settings schema does, but naming the construct's props. */
export function validateEnumerationBlockerProps(props: EnumerationBlockerProps, region: string): string[] {
  const errors: string[] = [];
  const isInt = (n: number): boolean => Number.isInteger(n);

  const naclIds = props.naclIds ?? [];
  naclIds.forEach((id, i) => {
    if (!Token.isUnresolved(id) && !/^acl-[0-9a-f]{8,17}$/.test(id)) {
      errors.push(`naclIds[${i}] ${JSON.stringify(id)} is not a network ACL id (acl-0123456789abcdef0)`);
    }
  });
  const duplicates = naclIds.filter((id, i) => !Token.isUnresolved(id) && naclIds.indexOf(id) !== i);
  if (duplicates.length) errors.push(`naclIds lists ${[...new Set(duplicates)].join(', ')} more than once`);

  if (props.naclRuleRange !== undefined) {
    const [first, last] = props.naclRuleRange;
    const inRange = (n: number): boolean => isInt(n) && n >= NACL_RULE_MIN && n <= NACL_RULE_MAX;
    if (!inRange(first) || !inRange(last)) {
      errors.push(`naclRuleRange [${first}, ${last}] must be whole rule numbers within ${NACL_RULE_MIN}–${NACL_RULE_MAX}`);
    } else if (first > last) {
      errors.push(`naclRuleRange [${first}, ${last}]: the first rule number is greater than the last`);
    }
  }
  if (props.naclQuota !== undefined && (!isInt(props.naclQuota) || props.naclQuota < 2 || props.naclQuota > NACL_MAX_QUOTA)) {
    errors.push(`naclQuota ${props.naclQuota} must be a whole number within 2–${NACL_MAX_QUOTA} (the VPC quota; the default deny counts)`);
  }

  const scopes = props.wafScopes ?? ['REGIONAL'];
  scopes.forEach((scope, i) => {
    if (scope !== 'REGIONAL' && scope !== 'CLOUDFRONT') errors.push(`wafScopes[${i}] ${JSON.stringify(scope)} must be REGIONAL or CLOUDFRONT`);
  });
  if (new Set(scopes).size !== scopes.length) errors.push(`wafScopes lists a scope more than once: ${scopes.join(', ')}`);
  if (scopes.includes('CLOUDFRONT')) {
    if (Token.isUnresolved(region)) {
      errors.push(
        "wafScopes includes CLOUDFRONT but the stack is environment-agnostic: CloudFront IP sets exist only in us-east-1, so give the stack env: { region: 'us-east-1' }",
      );
    } else if (region !== 'us-east-1') {
      errors.push(
        `wafScopes includes CLOUDFRONT but the stack's region is ${region}: CloudFront IP sets exist only in us-east-1 — deploy this stack (or a second one for CloudFront) with env: { region: 'us-east-1' }`,
      );
    }
  }
  const setsPerFamily = props.wafSetsPerFamily;
  if (setsPerFamily !== undefined && (!isInt(setsPerFamily) || setsPerFamily < 1 || setsPerFamily > MAX_WAF_SETS_PER_FAMILY)) {
    errors.push(`wafSetsPerFamily ${setsPerFamily} must be a whole number within 1–${MAX_WAF_SETS_PER_FAMILY}`);
  }
  if ((props.webAclResourceArns ?? []).length > 0 && !scopes.includes('REGIONAL')) {
    errors.push('webAclResourceArns needs the REGIONAL scope in wafScopes');
  }
  (props.webAclResourceArns ?? []).forEach((arn, i) => {
    if (!Token.isUnresolved(arn) && !arn.startsWith('arn:')) errors.push(`webAclResourceArns[${i}] ${JSON.stringify(arn)} is not an ARN`);
  });
  if (naclIds.length === 0 && scopes.length === 0) {
    errors.push('naclIds and wafScopes are both empty: portsnare would have nowhere to block');
  }

  const policy = props.policy ?? {};
  const seconds = (d: Duration | undefined): number | undefined => (d === undefined ? undefined : d.toSeconds());
  const baseTtl = seconds(policy.baseTtl) ?? 3600;
  const maxTtl = seconds(policy.maxTtl) ?? 7 * 86400;
  if (baseTtl < 60) errors.push(`policy.baseTtl ${baseTtl}s must be at least 60 seconds`);
  if (maxTtl < baseTtl) errors.push(`policy.maxTtl ${maxTtl}s is shorter than policy.baseTtl ${baseTtl}s`);
  if (maxTtl > 365 * 86400) errors.push(`policy.maxTtl ${maxTtl}s exceeds 365 days`);
  const window = seconds(policy.offenceWindow);
  if (window !== undefined && (window < 60 || window > 10 * 365 * 86400)) errors.push(`policy.offenceWindow ${window}s must be within 60 seconds and 10 years`);
  if (policy.escalationFactor !== undefined && !(policy.escalationFactor >= 1 && policy.escalationFactor <= 100)) {
    errors.push(`policy.escalationFactor ${policy.escalationFactor} must be within 1–100`);
  }
  if (policy.burstLimitPerMinute !== undefined && (!isInt(policy.burstLimitPerMinute) || policy.burstLimitPerMinute < 1 || policy.burstLimitPerMinute > 100_000)) {
    errors.push(`policy.burstLimitPerMinute ${policy.burstLimitPerMinute} must be a whole number within 1–100000`);
  }
  (policy.allowlist ?? []).forEach((cidr, i) => {
    if (tryParseCidr(cidr, true) === undefined) errors.push(`policy.allowlist[${i}] ${JSON.stringify(cidr)} is not an IPv4/IPv6 address or CIDR`);
  });
  (props.vpcCidrs ?? []).forEach((cidr, i) => {
    if (!Token.isUnresolved(cidr) && tryParseCidr(cidr, true) === undefined) errors.push(`vpcCidrs[${i}] ${JSON.stringify(cidr)} is not an IPv4/IPv6 CIDR`);
  });
  return errors;
}

export class EnumerationBlocker extends Construct {
  public readonly eventBus: events.EventBus;
  public readonly table: dynamodb.Table;
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
  public readonly ipSets: readonly PortsnareIpSet[];
  public readonly ruleGroups: Partial<Record<WafScope, wafv2.CfnRuleGroup>>;
  /** The REGIONAL web ACL created for `webAclResourceArns`, when any. */
  public readonly webAcl?: wafv2.CfnWebACL;
  /** The PipelineSettingsSchema input every function receives (may hold tokens). */
  public readonly settings: PipelineSettingsInput;
  /** PORTSNARE_SETTINGS as a string that resolves at deploy time. */
  public readonly settingsJson: string;
  public readonly alarms: cloudwatch.Alarm[] = [];
  public readonly dashboard: cloudwatch.Dashboard;
  public readonly naclArns: readonly string[];

  /** The SNS action every portsnare alarm notifies, when alarmTopic is set. */
  public readonly alarmAction?: cloudwatch.IAlarmAction;

  constructor(scope: Construct, id: string, props: EnumerationBlockerProps = {}) {
    super(scope, id);
    const stack = Stack.of(this);
    const errors = validateEnumerationBlockerProps(props, stack.region);
    if (errors.length) throw new Error(`EnumerationBlocker ${this.node.path}: invalid props:\n- ${errors.join('\n- ')}`);

    const naclIds = [...(props.naclIds ?? [])];
    const ruleRange: [number, number] = [props.naclRuleRange?.[0] ?? 1, props.naclRuleRange?.[1] ?? 99];
    const naclQuota = props.naclQuota ?? NACL_DEFAULT_QUOTA;
    const wafScopes = [...(props.wafScopes ?? ['REGIONAL'])];
    const setsPerFamily = props.wafSetsPerFamily ?? 1;
    const policy = props.policy ?? {};
    const logRetention = props.logRetention ?? logs.RetentionDays.ONE_MONTH;
    const lagThreshold = props.enforcementLagThreshold ?? Duration.minutes(5);
    this.alarmAction = props.alarmTopic ? new cwActions.SnsAction(props.alarmTopic) : undefined;
    if (ruleRange[1] - ruleRange[0] + 1 < 2 * (naclQuota - 1)) {
      Annotations.of(this).addInfo(
        `naclRuleRange [${ruleRange.join(', ')}] holds fewer numbers than IPv4 + IPv6 deny entries could use under naclQuota ${naclQuota}; the range, not the quota, will limit NACL blocks`,
      );
    }

    // --- WAF: IP sets per scope × family × shard, one rule group per scope --------------------
    const ipSets: PortsnareIpSet[] = [];
    const ruleGroups: Partial<Record<WafScope, wafv2.CfnRuleGroup>> = {};
    for (const wafScope of wafScopes) {
      const rules: wafv2.CfnRuleGroup.RuleProperty[] = [];
      for (const family of ['ipv4', 'ipv6'] as const) {
        for (let shard = 0; shard < setsPerFamily; shard++) {
          const setId = `IpSet${pascal(wafScope)}${pascal(family)}${shard}`;
          const name = `${wafName(this, 100)}-${wafScope.toLowerCase()}-${family}-${shard}`;
          const ipSet = new wafv2.CfnIPSet(this, setId, {
            name,
            scope: wafScope,
            ipAddressVersion: family === 'ipv4' ? 'IPV4' : 'IPV6',
            addresses: [],
            description: `portsnare blocked ${family} addresses, ${wafScope} shard ${shard}, managed by the enforce function`,
          });
          // The enforce function owns the address list. CloudFormation rewrites it only when this
          // resource's properties change; the next reconcile (≤ 5 min) restores it then.
          ipSets.push({ scope: wafScope, family, name, ipSet });
          rules.push({
            name: `portsnare-${family}-${shard}`,
            priority: rules.length,
            action: { block: {} },
            statement: { ipSetReferenceStatement: { arn: ipSet.attrArn } },
            visibilityConfig: {
              sampledRequestsEnabled: true,
              cloudWatchMetricsEnabled: true,
              metricName: `portsnare-${family}-${shard}`,
            },
          });
        }
      }
      ruleGroups[wafScope] = new wafv2.CfnRuleGroup(this, `RuleGroup${pascal(wafScope)}`, {
        name: `${wafName(this, 100)}-${wafScope.toLowerCase()}`,
        scope: wafScope,
        capacity: RULE_GROUP_CAPACITY,
        description: 'portsnare: blocks addresses caught scanning decoy ports',
        rules,
        visibilityConfig: { sampledRequestsEnabled: true, cloudWatchMetricsEnabled: true, metricName: 'portsnare' },
      });
    }
    this.ipSets = ipSets;
    this.ruleGroups = ruleGroups;

    // --- settings: one document, the schema of core/settings.ts ---------------------------------
    const wafSets: WafSetRef[] = ipSets.map((s) => ({ scope: s.scope, family: s.family, name: s.name, id: s.ipSet.attrId }));
    this.settings = {
      policy: {
        baseTtlSeconds: policy.baseTtl?.toSeconds() ?? 3600,
        escalationFactor: policy.escalationFactor ?? 2,
        maxTtlSeconds: policy.maxTtl?.toSeconds() ?? 7 * 86400,
        offenceWindowSeconds: policy.offenceWindow?.toSeconds() ?? 30 * 86400,
        blockUnverified: policy.blockUnverified ?? false,
        burstLimitPerMinute: policy.burstLimitPerMinute ?? 100,
      },
      guard: {
        allowlist: [...(policy.allowlist ?? [])],
        protectedCidrs: [...(props.vpcCidrs ?? [])],
      },
      nacl: { aclIds: naclIds, ruleRange, quotaPerDirection: naclQuota },
      waf: { sets: wafSets },
    };
    // Tokens (ACL ids, IP set ids) cannot be checked here; everything else must satisfy the
    // schema the functions parse at cold start, or the stack would deploy functions that fail.
    const checkable = {
      ...this.settings,
      nacl: { ...this.settings.nacl, aclIds: naclIds.filter((a) => !Token.isUnresolved(a)) },
      waf: { sets: [] },
      guard: { ...this.settings.guard, protectedCidrs: (props.vpcCidrs ?? []).filter((c) => !Token.isUnresolved(c)) },
    };
    const parsed = PipelineSettingsSchema.safeParse(checkable);
    if (!parsed.success) {
      throw new Error(`EnumerationBlocker ${this.node.path}: settings rejected by PipelineSettingsSchema: ${parsed.error.message}`);
    }
    this.settingsJson = stack.toJsonString(this.settings);

    // --- state and queues -------------------------------------------------------------------------
    const removalPolicy = props.tableRemovalPolicy ?? RemovalPolicy.DESTROY;
    this.table = new dynamodb.Table(this, 'Table', {
      partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'sk', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      timeToLiveAttribute: 'ttl',
      removalPolicy,
    });
    this.table.addGlobalSecondaryIndex({
      indexName: 'active',
      partitionKey: { name: 'activeKey', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'expiresAt', type: dynamodb.AttributeType.NUMBER },
      projectionType: dynamodb.ProjectionType.ALL,
    });

    const enforceTimeout = Duration.seconds(60);
    this.enforceDeadLetterQueue = new sqs.Queue(this, 'EnforceDeadLetterQueue', {
      fifo: true,
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    this.enforceQueue = new sqs.Queue(this, 'EnforceQueue', {
      fifo: true,
      // Senders should set their own MessageDeduplicationId; content-based deduplication is the
      // fallback so a sender that does not still succeeds.
      contentBasedDeduplication: true,
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      // AWS: at least six times the function timeout for an SQS event source.
      visibilityTimeout: Duration.seconds(enforceTimeout.toSeconds() * 6),
      retentionPeriod: Duration.days(4),
      deadLetterQueue: { queue: this.enforceDeadLetterQueue, maxReceiveCount: 5 },
    });
    this.failureQueue = new sqs.Queue(this, 'FailureQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    acknowledge(
      this.failureQueue,
      'AwsSolutions-SQS3',
      'This queue is itself the dead-letter destination: failed asynchronous Lambda invocations, EventBridge rule and Scheduler targets that could not be delivered. A DLQ of a DLQ adds nothing; its depth raises an alarm.',
    );

    // --- functions ---------------------------------------------------------------------------------
    const common = { logRetention, alarmAction: this.alarmAction };
    const env = { [SETTINGS_ENV]: this.settingsJson, TABLE_NAME: this.table.tableName };
    const envWithQueue = { ...env, ENFORCE_QUEUE_URL: this.enforceQueue.queueUrl };
    const decide = new PortsnareFunction(this, 'Decide', {
      ...common,
      name: 'decide',
      description: 'portsnare: validates Scan Detected events and operator requests, writes the desired state',
      environment: envWithQueue,
      onFailure: this.failureQueue,
    });
    const enforce = new PortsnareFunction(this, 'Enforce', {
      ...common,
      name: 'enforce',
      description: 'portsnare: makes WAF IP sets and NACL entries equal to the desired state (the one writer)',
      environment: env,
      timeout: enforceTimeout,
      memorySize: 512,
    });
    const expiry = new PortsnareFunction(this, 'Expiry', {
      ...common,
      name: 'expiry',
      description: 'portsnare: lifts expired blocks every minute',
      environment: envWithQueue,
      onFailure: this.failureQueue,
    });
    const reconcile = new PortsnareFunction(this, 'Reconcile', {
      ...common,
      name: 'reconcile',
      description: 'portsnare: asks the enforcer for a full diff every five minutes',
      // It only sends {"kind":"reconcile"}; the diff runs in the enforce function.
      environment: { [SETTINGS_ENV]: this.settingsJson, ENFORCE_QUEUE_URL: this.enforceQueue.queueUrl },
      onFailure: this.failureQueue,
    });
    const cleanup = new PortsnareFunction(this, 'Cleanup', {
      ...common,
      name: 'cleanup',
      description: 'portsnare: on stack deletion removes the NACL entries portsnare made, nothing else',
      environment: { [SETTINGS_ENV]: this.settingsJson },
      timeout: Duration.minutes(5),
    });
    this.functions = { decide, enforce, expiry, reconcile, cleanup };

    this.table.grantReadWriteData(decide.function);
    this.table.grantReadWriteData(enforce.function);
    this.table.grantReadWriteData(expiry.function);
    for (const sender of [decide, expiry, reconcile]) this.enforceQueue.grantSendMessages(sender.function);

    // Messages are wake-ups, not work items: the function diffs the whole desired state and
    // succeeds or fails as a whole, so no partial batch responses.
    const enforceSource = new SqsEventSource(this.enforceQueue, { batchSize: 10 });
    enforce.function.addEventSource(enforceSource);

    // Least privilege on the network ACLs: mutations only on the configured ACLs' ARNs.
    this.naclArns = naclIds.map((aclId) => stack.formatArn({ service: 'ec2', resource: 'network-acl', resourceName: aclId }));
    if (this.naclArns.length) {
      enforce.role.addToPrincipalPolicy(
        new iam.PolicyStatement({
          sid: 'PortsnareNaclEntries',
          actions: ['ec2:CreateNetworkAclEntry', 'ec2:ReplaceNetworkAclEntry', 'ec2:DeleteNetworkAclEntry'],
          resources: [...this.naclArns],
        }),
      );
      cleanup.role.addToPrincipalPolicy(
        new iam.PolicyStatement({ sid: 'PortsnareNaclCleanup', actions: ['ec2:DeleteNetworkAclEntry'], resources: [...this.naclArns] }),
      );
      for (const fn of [enforce, cleanup]) {
        fn.role.addToPrincipalPolicy(
          new iam.PolicyStatement({ sid: 'PortsnareNaclRead', actions: ['ec2:DescribeNetworkAcls'], resources: ['*'] }),
        );
        acknowledge(
          fn.role,
          'AwsSolutions-IAM5[Resource::*]',
          'ec2:DescribeNetworkAcls supports no resource-level permissions (Service Authorization Reference, Amazon EC2), so its resource must be "*"; it is read-only. Every mutating EC2 action is limited to the configured ACL ARNs.',
        );
      }
    }
    if (ipSets.length) {
      enforce.role.addToPrincipalPolicy(
        new iam.PolicyStatement({
          sid: 'PortsnareIpSets',
          actions: ['wafv2:GetIPSet', 'wafv2:UpdateIPSet'],
          resources: ipSets.map((s) => s.ipSet.attrArn),
        }),
      );
    }
    for (const fn of [decide, enforce, expiry]) {
      acknowledge(
        fn.role,
        arnWildcardFinding(this.table, '/index/*'),
        'Table.grant*Data adds "<table ARN>/index/*" so the function can query the table\'s own global secondary index "active"; the wildcard covers only this table\'s indexes.',
      );
    }

    // --- the bus and its rules -----------------------------------------------------------------------
    this.eventBus = new events.EventBus(this, 'Bus', { description: 'portsnare: Scan Detected events and operator requests' });
    const decideTarget = new eventTargets.LambdaFunction(decide.function, {
      deadLetterQueue: this.failureQueue,
      retryAttempts: 8,
      maxEventAge: Duration.hours(2),
    });
    new events.Rule(this, 'SensorRule', {
      eventBus: this.eventBus,
      description: 'portsnare: Scan Detected events from sensors → decide',
      eventPattern: { source: [EVENT_SOURCE_SENSOR], detailType: [DETAIL_TYPE_SCAN_DETECTED] },
      targets: [decideTarget],
    });
    new events.Rule(this, 'CliRule', {
      eventBus: this.eventBus,
      description: 'portsnare: operator requests from the portsnare command line → decide',
      eventPattern: {
        source: [EVENT_SOURCE_CLI],
        detailType: [DETAIL_TYPE_SCAN_DETECTED, DETAIL_TYPE_BLOCK_REQUESTED, DETAIL_TYPE_UNBLOCK_REQUESTED],
      },
      targets: [decideTarget],
    });
    if (props.guardDuty) {
      new events.Rule(this, 'GuardDutyRule', {
        description: 'portsnare: GuardDuty Recon:EC2 findings (default bus) → decide',
        eventPattern: {
          source: ['aws.guardduty'],
          detailType: ['GuardDuty Finding'],
          detail: { type: events.Match.anyOf(...GUARDDUTY_RECON_TYPES.map((t) => events.Match.prefix(t))) },
        },
        targets: [decideTarget],
      });
    }

    // --- schedules -----------------------------------------------------------------------------------
    const scheduleRole = new iam.Role(this, 'SchedulerRole', {
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': stack.account } },
      }),
      description: 'portsnare: EventBridge Scheduler invokes the expiry and reconcile functions',
    });
    const every = (id: string, description: string, rate: Duration, fn: PortsnareFunction, maxEventAge: Duration): scheduler.Schedule =>
      new scheduler.Schedule(this, id, {
        description,
        schedule: scheduler.ScheduleExpression.rate(rate),
        target: new schedulerTargets.LambdaInvoke(fn.function, { role: scheduleRole, deadLetterQueue: this.failureQueue, retryAttempts: 2, maxEventAge }),
      });
    const expirySchedule = every('ExpirySchedule', 'portsnare: lift expired blocks', Duration.minutes(1), expiry, Duration.minutes(5));
    const reconcileSchedule = every('ReconcileSchedule', 'portsnare: full diff of desired and actual state', Duration.minutes(5), reconcile, Duration.minutes(10));
    for (const fn of [expiry, reconcile]) {
      acknowledge(
        scheduleRole,
        arnWildcardFinding(fn.function, ':*'),
        'LambdaInvoke grants lambda:InvokeFunction on the function ARN and "<function ARN>:*" (its versions and aliases); the wildcard never reaches another function.',
      );
    }

    // --- cleanup on delete ---------------------------------------------------------------------------
    const providerLogs = new logs.LogGroup(this, 'CleanupProviderLogs', { retention: logRetention, removalPolicy: RemovalPolicy.DESTROY });
    const provider = new cr.Provider(this, 'CleanupProvider', { onEventHandler: cleanup.function, logGroup: providerLogs });
    const cleanupResource = new CustomResource(this, 'NaclCleanup', {
      serviceToken: provider.serviceToken,
      resourceType: 'Custom::PortsnareNaclCleanup',
      properties: { AclIds: naclIds, RuleRange: ruleRange },
    });
    // CloudFormation deletes dependants first: the enforce trigger and the schedules go before
    // the cleanup runs, so nothing re-adds an entry behind it.
    const mapping = enforce.function.node.tryFindChild(`SqsEventSource:${Names.nodeUniqueId(this.enforceQueue.node)}`);
    if (mapping) mapping.node.addDependency(cleanupResource);
    expirySchedule.node.addDependency(cleanupResource);
    reconcileSchedule.node.addDependency(cleanupResource);
    acknowledge(provider, 'AwsSolutions-L1', 'The Provider framework function and its runtime are created and kept current by aws-cdk-lib, not by portsnare.');
    acknowledge(
      provider,
      'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
      'The Provider framework function (aws-cdk-lib) uses AWSLambdaBasicExecutionRole: it only writes its own logs.',
    );
    acknowledge(
      provider,
      arnWildcardFinding(cleanup.function, ':*'),
      'The Provider framework may invoke the cleanup function and its versions ("<function ARN>:*"), nothing else.',
    );

    // --- web ACL for resources without one ---------------------------------------------------------
    const resourceArns = props.webAclResourceArns ?? [];
    if (resourceArns.length) {
      this.webAcl = new wafv2.CfnWebACL(this, 'WebAcl', {
        scope: 'REGIONAL',
        defaultAction: { allow: {} },
        description: 'portsnare: blocks addresses caught scanning decoy ports',
        rules: [this.webAclRule('REGIONAL', 0)],
        visibilityConfig: { sampledRequestsEnabled: true, cloudWatchMetricsEnabled: true, metricName: 'portsnare-web-acl' },
      });
      resourceArns.forEach((resourceArn, i) => {
        new wafv2.CfnWebACLAssociation(this, `WebAclAssociation${i}`, { resourceArn, webAclArn: this.webAcl!.attrArn });
      });
    }

    // --- alarms and dashboard ------------------------------------------------------------------------
    this.alarms.push(decide.errorsAlarm, enforce.errorsAlarm, expiry.errorsAlarm, reconcile.errorsAlarm, cleanup.errorsAlarm);
    this.queueDepthAlarm('EnforceDlqAlarm', this.enforceDeadLetterQueue, 'enforce messages failed five times and were set aside');
    this.queueDepthAlarm('FailureQueueAlarm', this.failureQueue, 'events or invocations could not be delivered or kept failing');
    this.metricAlarm('CircuitBreakerOpenAlarm', 'CircuitBreakerOpen', 'Sum', 1, Duration.minutes(1), 'the burst circuit breaker opened: new blocks are paused');
    this.metricAlarm(
      'EnforcementLagAlarm',
      'EnforcementLagSeconds',
      'Maximum',
      lagThreshold.toSeconds(),
      Duration.minutes(5),
      `a block took more than ${lagThreshold.toSeconds()} s from detection to enforcement`,
      cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
    );
    this.metricAlarm('NaclQuotaFullAlarm', 'NaclQuotaFull', 'Sum', 1, Duration.minutes(5), 'a network ACL is full: further blocks go to WAF only');

    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', { defaultInterval: Duration.hours(24) });
    const graph = (title: string, names: string[]): cloudwatch.GraphWidget =>
      new cloudwatch.GraphWidget({ title, width: 12, left: names.map((n) => portsnareMetric(n, 'Sum', Duration.minutes(5))) });
    this.dashboard.addWidgets(graph('Detections', ['Detections']), graph('Blocks and unblocks', ['Blocks', 'Unblocks', 'Evictions']));
    this.dashboard.addWidgets(
      graph('Lock retries and throttles', ['LockRetries', 'Throttles']),
      new cloudwatch.AlarmStatusWidget({ title: 'Alarms', width: 12, alarms: this.alarms }),
    );

    // --- outputs (fixed logical ids: the CLI reads them) -------------------------------------------
    const output = (logicalId: string, value: string, description: string): void => {
      new CfnOutput(this, logicalId, { value, description }).overrideLogicalId(logicalId);
    };
    output('PortsnareTableName', this.table.tableName, 'portsnare desired-state table');
    output('PortsnareEventBusName', this.eventBus.eventBusName, 'portsnare event bus (sensors PutEvents here)');
    output('PortsnareEventBusArn', this.eventBus.eventBusArn, 'portsnare event bus ARN');
    output(
      'PortsnareIpSetArns',
      ipSets.length ? ipSets.map((s) => s.ipSet.attrArn).join(',') : '-',
      'portsnare WAF IP sets (comma separated), each scope × family × shard',
    );
    output(
      'PortsnareRuleGroupArn',
      wafScopes.length ? wafScopes.map((s) => ruleGroups[s]!.attrArn).join(',') : '-',
      'portsnare WAF rule group (one per scope, comma separated): add it to your web ACL',
    );
  }

  /**
   * A web ACL rule that evaluates the portsnare rule group of `scope`, for a CfnWebACL you own
   * in the same app: `rules: [blocker.webAclRule('REGIONAL', 0), ...yourRules]`.
   */
  webAclRule(scope: WafScope, priority: number): wafv2.CfnWebACL.RuleProperty {
    const group = this.ruleGroups[scope];
    if (!group) throw new Error(`webAclRule: scope ${scope} is not in this EnumerationBlocker's wafScopes`);
    return {
      name: 'portsnare',
      priority,
      overrideAction: { none: {} },
      statement: { ruleGroupReferenceStatement: { arn: group.attrArn } },
      visibilityConfig: { sampledRequestsEnabled: true, cloudWatchMetricsEnabled: true, metricName: 'portsnare' },
    };
  }

  /** Lets a sensor (instance role, task role, function) put events on the portsnare bus, nothing else. */
  grantPutEvents(grantee: iam.IGrantable): iam.Grant {
    return this.eventBus.grantPutEventsTo(grantee);
  }

  /** A metric the functions publish (namespace Portsnare, dimension service=portsnare). */
  metric(name: string, statistic = 'Sum', period = Duration.minutes(5)): cloudwatch.Metric {
    return portsnareMetric(name, statistic, period);
  }

  private queueDepthAlarm(id: string, queue: sqs.Queue, what: string): void {
    const alarm = new cloudwatch.Alarm(this, id, {
      alarmDescription: `portsnare: ${what}`,
      metric: queue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(5), statistic: 'Maximum' }),
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    if (this.alarmAction) alarm.addAlarmAction(this.alarmAction);
    this.alarms.push(alarm);
  }

  private metricAlarm(
    id: string,
    metricName: string,
    statistic: string,
    threshold: number,
    period: Duration,
    what: string,
    comparisonOperator = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
  ): void {
    const alarm = new cloudwatch.Alarm(this, id, {
      alarmDescription: `portsnare: ${what}`,
      metric: portsnareMetric(metricName, statistic, period),
      threshold,
      evaluationPeriods: 1,
      comparisonOperator,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    if (this.alarmAction) alarm.addAlarmAction(this.alarmAction);
    this.alarms.push(alarm);
  }
}

function portsnareMetric(metricName: string, statistic: string, period: Duration): cloudwatch.Metric {
  return new cloudwatch.Metric({ namespace: METRIC_NAMESPACE, metricName, dimensionsMap: { ...METRIC_DIMENSIONS }, statistic, period });
}

function pascal(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1).toLowerCase();
}

/** A WAF-safe name ([A-Za-z0-9_-]) unique to this construct within the account and region. */
function wafName(scope: Construct, maxLength: number): string {
  return Names.uniqueResourceName(scope, { maxLength, separator: '-' }).replace(/[^A-Za-z0-9_-]/g, '');
}
