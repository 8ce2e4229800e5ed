import { App, Duration, Stack, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as wafv2 from 'aws-cdk-lib/aws-wafv2';
import { beforeAll, describe, expect, it } from 'vitest';
import { PipelineSettingsSchema } from '../../core/settings';
import { EnumerationBlocker, validateEnumerationBlockerProps, type EnumerationBlockerProps } from '../../lib';
import { actionsOf, allGrants, flatten, nagFindings, resourceList, resourcesOf, statementsOfRole, projectApp } from './helpers';

// CloudFormation's own template validation (on by default in aws-cdk-lib) takes seconds per
// synthesis; test/lib/app.test.ts runs it once on the real app through `cdk synth`.
process.env.CDK_VALIDATION = 'false';

const ALB_ARN = 'arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/shop/0123456789abcdef';
const ACLS = ['acl-0123456789abcdef0', 'acl-0fedcba9876543210'];
const aclArn = (id: string) => `arn:aws:ec2:us-east-1:123456789012:network-acl/${id}`;

// One synthesis for the whole file: bundling six functions is the slow part.
let app: App;
let template: Template;
let blocker: EnumerationBlocker;

beforeAll(() => {
  app = projectApp();
  const stack = new Stack(app, 'Blocker', { env: { account: '123456789012', region: 'us-east-1' } });
  const topic = new sns.Topic(stack, 'Topic', { enforceSSL: true });
  Validations.of(topic).acknowledge({ id: 'AwsSolutions-SNS2', reason: 'test topic' });
  blocker = new EnumerationBlocker(stack, 'Portsnare', {
    naclIds: ACLS,
    naclRuleRange: [10, 60],
    naclQuota: 40,
    wafScopes: ['REGIONAL', 'CLOUDFRONT'],
    wafSetsPerFamily: 2,
    guardDuty: true,
    alarmTopic: topic,
    vpcCidrs: ['10.0.0.0/16'],
    webAclResourceArns: [ALB_ARN],
    policy: { baseTtl: Duration.minutes(30), escalationFactor: 3, maxTtl: Duration.days(2), allowlist: ['203.0.113.0/24'], burstLimitPerMinute: 50 },
  });
  // A web ACL the user owns in the same app, using the helper.
  new wafv2.CfnWebACL(stack, 'UserWebAcl', {
    scope: 'REGIONAL',
    defaultAction: { allow: {} },
    rules: [blocker.webAclRule('REGIONAL', 0)],
    visibilityConfig: { sampledRequestsEnabled: true, cloudWatchMetricsEnabled: true, metricName: 'user' },
  });
  template = Template.fromStack(stack);
}, 120_000);

function functionId(name: string): string {
  const [id] = resourcesOf(template, 'AWS::Lambda::Function').find(([id]) => id.startsWith(`Portsnare${name}Function`)) ?? [];
  if (!id) throw new Error(`no ${name} function`);
  return id;
}

function environmentOf(name: string): Record<string, unknown> {
  const fn = template.findResources('AWS::Lambda::Function')[functionId(name)] as { Properties: { Environment: { Variables: Record<string, unknown> } } };
  return fn.Properties.Environment.Variables;
}

describe('least privilege', () => {
  it('lets enforce create, replace and delete ACL entries only on the configured ACLs', () => {
    const statements = statementsOfRole(template, 'PortsnareEnforceRole').filter((s) => actionsOf(s).some((a) => a.endsWith('NetworkAclEntry')));
    expect(statements).toHaveLength(1);
    expect(actionsOf(statements[0]!).sort()).toEqual(['ec2:CreateNetworkAclEntry', 'ec2:DeleteNetworkAclEntry', 'ec2:ReplaceNetworkAclEntry']);
    expect(resourceList(statements[0]!).sort()).toEqual(ACLS.map(aclArn).sort());
  });

  it('lets cleanup only delete entries of the configured ACLs', () => {
    const mutating = statementsOfRole(template, 'PortsnareCleanupRole').filter((s) => actionsOf(s).some((a) => a.startsWith('ec2:') && !a.startsWith('ec2:Describe')));
    expect(mutating.flatMap(actionsOf)).toEqual(['ec2:DeleteNetworkAclEntry']);
    expect(mutating.flatMap(resourceList).sort()).toEqual(ACLS.map(aclArn).sort());
  });

  it('limits GetIPSet and UpdateIPSet to portsnare\'s own IP sets', () => {
    const waf = allGrants(template).filter((g) => g.action.startsWith('wafv2:'));
    const ipSetIds = resourcesOf(template, 'AWS::WAFv2::IPSet').map(([id]) => `«${id}.Arn»`);
    expect(ipSetIds).toHaveLength(8);
    expect(new Set(waf.map((g) => g.action))).toEqual(new Set(['wafv2:GetIPSet', 'wafv2:UpdateIPSet']));
    expect(new Set(waf.map((g) => g.resource))).toEqual(new Set(ipSetIds));
    expect(waf.every((g) => g.policy.startsWith('PortsnareEnforceRole'))).toBe(true);
  });

  it('grants no action on "*" except the read-only ec2:DescribeNetworkAcls', () => {
    const star = allGrants(template).filter((g) => g.resource === '*');
    expect(star.length).toBeGreaterThan(0);
    expect(new Set(star.map((g) => g.action))).toEqual(new Set(['ec2:DescribeNetworkAcls']));
  });

  it('gives the table to decide, enforce, expiry and cleanup (the placement ledger) only (reconcile only wakes the enforcer)', () => {
    const tableUsers = new Set(allGrants(template).filter((g) => g.action.startsWith('dynamodb:')).map((g) => g.policy.replace(/Role.*/, '')));
    expect(tableUsers).toEqual(new Set(['PortsnareDecide', 'PortsnareEnforce', 'PortsnareExpiry', 'PortsnareCleanup']));
    expect(environmentOf('Reconcile').TABLE_NAME).toBeUndefined();
  });

  it('attaches no AWS managed policy to the functions (each role writes only its own log group)', () => {
    for (const name of ['Decide', 'Enforce', 'Expiry', 'Reconcile', 'Cleanup']) {
      const [, role] = resourcesOf(template, 'AWS::IAM::Role').find(([id]) => id.startsWith(`Portsnare${name}Role`))!;
      expect((role.Properties as { ManagedPolicyArns?: unknown }).ManagedPolicyArns).toBeUndefined();
      const logs = statementsOfRole(template, `Portsnare${name}Role`).filter((s) => actionsOf(s).some((a) => a.startsWith('logs:')));
      expect(logs.flatMap(resourceList)).toEqual([expect.stringMatching(new RegExp(`^«Portsnare${name}Logs[0-9A-F]+\\.Arn»$`))]);
    }
  });

  it('passes cdk-nag AwsSolutions with every finding acknowledged', () => {
    expect(nagFindings(app)).toEqual([]);
  });
});

describe('settings', () => {
  it('hands every function the same PORTSNARE_SETTINGS, valid for the schema the handlers parse', () => {
    const texts = ['Decide', 'Enforce', 'Expiry', 'Reconcile', 'Cleanup'].map((n) => flatten(environmentOf(n).PORTSNARE_SETTINGS));
    expect(new Set(texts).size).toBe(1);
    const raw = JSON.parse(texts[0]!) as { waf: { sets: Array<{ id: string }> } };
    for (const set of raw.waf.sets) expect(set.id).toMatch(/^«Portsnare.*IpSet.*\.Id»$/);
    // An IP set id is a 36-character UUID once deployed.
    const settings = PipelineSettingsSchema.parse(JSON.parse(texts[0]!.replace(/«[^»]+\.Id»/g, 'a1b2c3d4-0000-4000-8000-000000000000')));
    expect(settings.nacl).toEqual({ aclIds: ACLS, ruleRange: [10, 60], quotaPerDirection: 40, residenceSeconds: 300 });
    expect(settings.policy).toEqual({
      baseTtlSeconds: 1800,
      escalationFactor: 3,
      maxTtlSeconds: 2 * 86400,
      offenceWindowSeconds: 30 * 86400,
      blockUnverified: false,
      burstLimitPerMinute: 50,
      widestIpv4Prefix: 16,
      widestIpv6Prefix: 48,
      maxManualTtlSeconds: 30 * 86400,
    });
    expect(settings.guard.allowlist).toEqual(['203.0.113.0/24']);
    expect(settings.guard.protectedCidrs).toEqual(['10.0.0.0/16']);
    expect(settings.waf.sets).toHaveLength(8);
    expect(settings.waf.sets.filter((s) => s.scope === 'CLOUDFRONT' && s.family === 'ipv6')).toHaveLength(2);
  });

  it('gives decide, expiry and reconcile the enforce queue, and every function the shared Powertools names', () => {
    for (const name of ['Decide', 'Expiry', 'Reconcile']) {
      expect(flatten(environmentOf(name).ENFORCE_QUEUE_URL)).toMatch(/^«PortsnareEnforceQueue/);
    }
    for (const name of ['Decide', 'Enforce', 'Expiry']) {
      expect(flatten(environmentOf(name).TABLE_NAME)).toMatch(/^«PortsnareTable/);
    }
    for (const name of ['Decide', 'Enforce', 'Expiry', 'Reconcile', 'Cleanup']) {
      expect(environmentOf(name)).toMatchObject({ POWERTOOLS_SERVICE_NAME: 'portsnare', POWERTOOLS_METRICS_NAMESPACE: 'Portsnare' });
    }
  });
});

describe('functions', () => {
  it('run on Node.js 22, ARM64, with their own log group, source maps on', () => {
    const functions = resourcesOf(template, 'AWS::Lambda::Function').filter(([id]) => id.startsWith('Portsnare') && !id.includes('Provider'));
    expect(functions).toHaveLength(5);
    for (const [, fn] of functions) {
      expect(fn.Properties).toMatchObject({
        Runtime: 'nodejs22.x',
        Architectures: ['arm64'],
        LoggingConfig: { LogGroup: { Ref: expect.stringMatching(/Logs/) } },
        Environment: { Variables: { NODE_OPTIONS: '--enable-source-maps' } },
      });
    }
    for (const [, group] of resourcesOf(template, 'AWS::Logs::LogGroup')) {
      expect((group.Properties as { RetentionInDays?: number }).RetentionInDays).toBeGreaterThan(0);
    }
  });

  it('send failed asynchronous invocations of decide, expiry and reconcile to the failure queue', () => {
    const configs = resourcesOf(template, 'AWS::Lambda::EventInvokeConfig').map(([, c]) => c.Properties as Record<string, unknown>);
    expect(configs.map((c) => flatten(c.FunctionName)).sort()).toEqual(['«PortsnareDecideFunction', '«PortsnareExpiryFunction', '«PortsnareReconcileFunction'].map((p) => expect.stringMatching(new RegExp(`^${p}`))));
    for (const config of configs) expect(flatten((config.DestinationConfig as { OnFailure: { Destination: unknown } }).OnFailure.Destination)).toMatch(/^«PortsnareFailureQueue/);
  });

  it('raise an error alarm per function, to the SNS topic', () => {
    const errorAlarms = resourcesOf(template, 'AWS::CloudWatch::Alarm').filter(([, a]) => (a.Properties as { MetricName?: string }).MetricName === 'Errors');
    expect(errorAlarms).toHaveLength(5);
    for (const [, alarm] of errorAlarms) expect(flatten((alarm.Properties as { AlarmActions: unknown }).AlarmActions)).toMatch(/^«Topic/);
  });
});

describe('queue, table, schedules', () => {
  it('feeds enforce from a FIFO queue with a FIFO dead-letter queue, batches of at most 10', () => {
    const queues = resourcesOf(template, 'AWS::SQS::Queue').map(([id, q]) => [id, q.Properties as Record<string, unknown>] as const);
    const enforceQueue = queues.find(([id]) => id.startsWith('PortsnareEnforceQueue'))![1];
    expect(enforceQueue).toMatchObject({ FifoQueue: true, SqsManagedSseEnabled: true, RedrivePolicy: { maxReceiveCount: 5 } });
    expect(flatten((enforceQueue.RedrivePolicy as { deadLetterTargetArn: unknown }).deadLetterTargetArn)).toMatch(/^«PortsnareEnforceDeadLetterQueue/);
    expect(queues.find(([id]) => id.startsWith('PortsnareEnforceDeadLetterQueue'))![1]).toMatchObject({ FifoQueue: true });
    const mappings = resourcesOf(template, 'AWS::Lambda::EventSourceMapping').filter(([, m]) => flatten((m.Properties as { EventSourceArn: unknown }).EventSourceArn).startsWith('«PortsnareEnforceQueue'));
    expect(mappings).toHaveLength(1);
    const mapping = mappings[0]![1];
    expect((mapping.Properties as { BatchSize: number }).BatchSize).toBeLessThanOrEqual(10);
    expect(flatten((mapping.Properties as { FunctionName: unknown }).FunctionName)).toMatch(/^«PortsnareEnforceFunction/);
    expect(mapping.DependsOn).toEqual(expect.arrayContaining([expect.stringMatching(/^PortsnareNaclCleanup/)]));
  });

  it('gives expiry a standard timer queue (per-message delays), encrypted, SSL only, redriven to the failure queue, consumed by expiry alone in small batches', () => {
    const queues = resourcesOf(template, 'AWS::SQS::Queue').map(([id, q]) => [id, q.Properties as Record<string, unknown>] as const);
    const [timerId, timer] = queues.find(([id]) => id.startsWith('PortsnareExpiryTimerQueue'))!;
    expect(timer.FifoQueue).toBeUndefined(); // FIFO queues take no per-message DelaySeconds
    expect(timer).toMatchObject({ SqsManagedSseEnabled: true, VisibilityTimeout: 180, RedrivePolicy: { maxReceiveCount: 3 } });
    expect(flatten((timer.RedrivePolicy as { deadLetterTargetArn: unknown }).deadLetterTargetArn)).toMatch(/^«PortsnareFailureQueue/);
    const policy = resourcesOf(template, 'AWS::SQS::QueuePolicy').find(([, p]) => flatten((p.Properties as { Queues: unknown }).Queues).startsWith(`«${timerId}`));
    expect(JSON.stringify(policy![1].Properties)).toContain('"aws:SecureTransport":"false"');
    const mappings = resourcesOf(template, 'AWS::Lambda::EventSourceMapping').filter(([, m]) => flatten((m.Properties as { EventSourceArn: unknown }).EventSourceArn).startsWith(`«${timerId}`));
    expect(mappings).toHaveLength(1);
    expect(flatten((mappings[0]![1].Properties as { FunctionName: unknown }).FunctionName)).toMatch(/^«PortsnareExpiryFunction/);
    expect((mappings[0]![1].Properties as { BatchSize: number }).BatchSize).toBeLessThanOrEqual(5);
    expect(flatten(environmentOf('Expiry').EXPIRY_TIMER_QUEUE_URL)).toMatch(/^«PortsnareExpiryTimerQueue/);
    for (const name of ['Decide', 'Enforce', 'Reconcile', 'Cleanup']) expect(environmentOf(name).EXPIRY_TIMER_QUEUE_URL).toBeUndefined();
    // least privilege: only expiry's role has any right on the timer queue, and only to send and consume
    const onTimer = allGrants(template).filter((g) => g.resource.startsWith(`«${timerId}`));
    expect(new Set(onTimer.map((g) => g.policy.replace(/Role.*/, '')))).toEqual(new Set(['PortsnareExpiry']));
    expect([...new Set(onTimer.map((g) => g.action))].sort()).toEqual(['sqs:ChangeMessageVisibility', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl', 'sqs:ReceiveMessage', 'sqs:SendMessage']);
  });

  it('keeps desired state in a table with pk/sk, the sparse GSIs "active" and "changes" (INCLUDE of what enforce reads), TTL "ttl", PITR and encryption', () => {
    template.hasResource('AWS::DynamoDB::Table', {
      DeletionPolicy: 'Delete',
      Properties: Match.objectLike({
        KeySchema: [
          { AttributeName: 'pk', KeyType: 'HASH' },
          { AttributeName: 'sk', KeyType: 'RANGE' },
        ],
        GlobalSecondaryIndexes: [
          Match.objectLike({
            IndexName: 'active',
            KeySchema: [
              { AttributeName: 'activeKey', KeyType: 'HASH' },
              { AttributeName: 'expiresAt', KeyType: 'RANGE' },
            ],
            Projection: { ProjectionType: 'ALL' },
          }),
          {
            IndexName: 'changes',
            KeySchema: [
              { AttributeName: 'chgKey', KeyType: 'HASH' },
              { AttributeName: 'chgAt', KeyType: 'RANGE' },
            ],
            Projection: { ProjectionType: 'INCLUDE', NonKeyAttributes: ['target', 'lastSeen', 'blockedAt', 'expiresAt', 'active', 'reason'] },
          },
        ],
        AttributeDefinitions: Match.arrayWith([
          { AttributeName: 'activeKey', AttributeType: 'S' },
          { AttributeName: 'expiresAt', AttributeType: 'N' },
          { AttributeName: 'chgKey', AttributeType: 'S' },
          { AttributeName: 'chgAt', AttributeType: 'S' },
        ]),
        TimeToLiveSpecification: { AttributeName: 'ttl', Enabled: true },
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        SSESpecification: { SSEEnabled: true },
      }),
    });
  });

  it('runs expiry every minute and reconcile every ten minutes (reconcileMinutes default) through EventBridge Scheduler', () => {
    const schedules = resourcesOf(template, 'AWS::Scheduler::Schedule').map(([, s]) => s.Properties as Record<string, unknown>);
    const byTarget = Object.fromEntries(schedules.map((s) => [flatten((s.Target as { Arn: unknown }).Arn).replace(/Function.*/, ''), s]));
    expect(byTarget['«PortsnareExpiry']).toMatchObject({ ScheduleExpression: 'rate(1 minute)', State: 'ENABLED' });
    expect(byTarget['«PortsnareReconcile']).toMatchObject({ ScheduleExpression: 'rate(10 minutes)' });
    for (const schedule of schedules) {
      const target = schedule.Target as { RoleArn: unknown; DeadLetterConfig: { Arn: unknown } };
      expect(flatten(target.RoleArn)).toMatch(/^«PortsnareSchedulerRole/);
      expect(flatten(target.DeadLetterConfig.Arn)).toMatch(/^«PortsnareFailureQueue/);
    }
  });
});

describe('events', () => {
  it('routes sensor and operator events from the custom bus, and GuardDuty Recon findings from the default bus, to decide', () => {
    const rules = resourcesOf(template, 'AWS::Events::Rule')
      .map(([, r]) => r.Properties as { EventBusName?: unknown; EventPattern: Record<string, unknown>; Targets: Array<{ Arn: unknown; DeadLetterConfig: { Arn: unknown } }> })
      .filter((r) => (r.EventPattern.source as string[])[0] !== 'aws.cloudformation');
    expect(rules).toHaveLength(3);
    const bySource = Object.fromEntries(rules.map((r) => [(r.EventPattern.source as string[])[0], r]));
    expect(bySource['portsnare.sensor']!.EventPattern).toEqual({ source: ['portsnare.sensor'], 'detail-type': ['Scan Detected'] });
    expect(bySource['portsnare.cli']!.EventPattern).toEqual({ source: ['portsnare.cli'], 'detail-type': ['Scan Detected', 'Block Requested', 'Unblock Requested'] });
    expect(bySource['aws.guardduty']!.EventPattern).toEqual({
      source: ['aws.guardduty'],
      'detail-type': ['GuardDuty Finding'],
      detail: { type: [{ prefix: 'Recon:EC2/PortProbeUnprotectedPort' }, { prefix: 'Recon:EC2/Portscan' }] },
    });
    expect(flatten(bySource['portsnare.sensor']!.EventBusName)).toMatch(/^«PortsnareBus/);
    expect(bySource['aws.guardduty']!.EventBusName).toBeUndefined();
    for (const rule of rules) {
      expect(flatten(rule.Targets[0]!.Arn)).toMatch(/^«PortsnareDecideFunction/);
      expect(flatten(rule.Targets[0]!.DeadLetterConfig.Arn)).toMatch(/^«PortsnareFailureQueue/);
    }
  });
});

describe('WAF', () => {
  it('refills the IP sets at once when a stack update resets them: this stack\'s IP sets reaching UPDATE_COMPLETE put a reconcile on the enforce queue', () => {
    const rule = resourcesOf(template, 'AWS::Events::Rule')
      .map(([, r]) => r.Properties as { EventBusName?: unknown; EventPattern: { source: string[]; detail?: Record<string, unknown> }; Targets: Array<{ Arn: unknown; Input?: string; InputTransformer?: { InputPathsMap: Record<string, string>; InputTemplate: string }; SqsParameters?: { MessageGroupId: string } }> })
      .find((r) => r.EventPattern.source[0] === 'aws.cloudformation');
    expect(rule?.EventBusName).toBeUndefined();
    expect(rule?.EventPattern).toMatchObject({ 'detail-type': ['CloudFormation Resource Status Change'], detail: { 'resource-type': ['AWS::WAFv2::IPSet'], 'status-details': { status: ['UPDATE_COMPLETE'] } } });
    expect(flatten(rule!.EventPattern.detail!['stack-id'])).toContain('AWS::StackId');
    expect(flatten(rule!.Targets[0]!.Arn)).toMatch(/^«PortsnareEnforceQueue/);
    expect(rule!.Targets[0]!.InputTransformer).toMatchObject({ InputPathsMap: { id: '$.id' } });
    // a distinct body per stack update: content-based deduplication never swallows the second
    expect(JSON.parse(rule!.Targets[0]!.InputTransformer!.InputTemplate.replace('<id>', '"e-1"'))).toEqual({ kind: 'reconcile', event: 'e-1' });
    expect(rule!.Targets[0]!.SqsParameters).toEqual({ MessageGroupId: 'enforce' });
  });

  it('creates IPv4 and IPv6 sets per scope and shard, empty, and a block rule group per scope referencing them', () => {
    const sets = resourcesOf(template, 'AWS::WAFv2::IPSet').map(([id, s]) => [id, s.Properties as Record<string, unknown>] as const);
    expect(sets.map(([, s]) => `${String(s.Scope)}/${String(s.IPAddressVersion)}`).sort()).toEqual(
      ['CLOUDFRONT/IPV4', 'CLOUDFRONT/IPV4', 'CLOUDFRONT/IPV6', 'CLOUDFRONT/IPV6', 'REGIONAL/IPV4', 'REGIONAL/IPV4', 'REGIONAL/IPV6', 'REGIONAL/IPV6'],
    );
    for (const [, set] of sets) expect(set.Addresses).toEqual([]);
    const groups = resourcesOf(template, 'AWS::WAFv2::RuleGroup').map(([, g]) => g.Properties as { Scope: string; Capacity: number; Rules: Array<{ Action: unknown; Statement: { IPSetReferenceStatement: { Arn: unknown } } }> });
    expect(groups.map((g) => g.Scope).sort()).toEqual(['CLOUDFRONT', 'REGIONAL']);
    for (const group of groups) {
      expect(group.Rules).toHaveLength(4);
      expect(group.Capacity).toBeGreaterThanOrEqual(group.Rules.length);
      for (const rule of group.Rules) {
        expect(rule.Action).toEqual({ Block: {} });
        const arn = flatten(rule.Statement.IPSetReferenceStatement.Arn);
        const [, set] = sets.find(([id]) => arn === `«${id}.Arn»`)!;
        expect(set.Scope).toBe(group.Scope);
      }
    }
  });

  it('protects resources without a web ACL with a new REGIONAL web ACL holding only the rule group', () => {
    const [webAclId, webAcl] = resourcesOf(template, 'AWS::WAFv2::WebACL').find(([id]) => id.startsWith('PortsnareWebAcl'))!;
    expect(webAcl.Properties).toMatchObject({ Scope: 'REGIONAL', DefaultAction: { Allow: {} } });
    expect((webAcl.Properties as { Rules: unknown[] }).Rules).toHaveLength(1);
    template.hasResourceProperties('AWS::WAFv2::WebACLAssociation', { ResourceArn: ALB_ARN, WebACLArn: { 'Fn::GetAtt': [webAclId, 'Arn'] } });
  });

  it('gives a web ACL in the same app a rule that evaluates the rule group', () => {
    template.hasResourceProperties('AWS::WAFv2::WebACL', {
      Rules: [Match.objectLike({ Name: 'portsnare', OverrideAction: { None: {} }, Statement: { RuleGroupReferenceStatement: { Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^PortsnareRuleGroupRegional'), 'Arn'] } } } })],
    });
  });
});

describe('alarms and dashboard', () => {
  it.each([
    ['CircuitBreakerOpen', 'Sum'],
    ['EnforcementLagSeconds', 'Maximum'],
    ['NaclQuotaFull', 'Sum'],
    // issue 17: every failure class pages someone
    ['EnforcementFailures', 'Sum'],
    ['WafSetMissing', 'Sum'],
    ['WafCapacityFull', 'Sum'],
    ['NaclShadowed', 'Sum'],
    ['NaclForeignInRange', 'Sum'],
  ])('alarms on %s (namespace Portsnare, service=portsnare) to the topic', (metricName, statistic) => {
    const [, alarm] = resourcesOf(template, 'AWS::CloudWatch::Alarm').find(([, a]) => (a.Properties as { MetricName?: string }).MetricName === metricName)!;
    expect(alarm.Properties).toMatchObject({ Namespace: 'Portsnare', Statistic: statistic, Dimensions: [{ Name: 'service', Value: 'portsnare' }] });
    expect(flatten((alarm.Properties as { AlarmActions: unknown }).AlarmActions)).toMatch(/^«Topic/);
  });

  it('offers the published metrics by name only (a typo fails tsc)', () => {
    expect(blocker.metric('Blocks').toMetricConfig().metricStat).toMatchObject({ namespace: 'Portsnare', metricName: 'Blocks', dimensions: [{ name: 'service', value: 'portsnare' }] });
    // @ts-expect-error 'Blockz' is not a MetricName of core/metrics.ts
    expect(blocker.metric('Blockz').metricName).toBe('Blockz');
  });

  it('alarms when a dead-letter queue holds a message', () => {
    const depth = resourcesOf(template, 'AWS::CloudWatch::Alarm').filter(([, a]) => (a.Properties as { MetricName?: string }).MetricName === 'ApproximateNumberOfMessagesVisible');
    expect(depth.map(([, a]) => flatten((a.Properties as { Dimensions: Array<{ Value: unknown }> }).Dimensions[0]!.Value)).sort()).toEqual([
      expect.stringMatching(/^«PortsnareEnforceDeadLetterQueue/),
      expect.stringMatching(/^«PortsnareFailureQueue/),
    ]);
  });

  it('graphs detections, blocks, unblocks, evictions, lock retries and throttles', () => {
    const [, dashboard] = resourcesOf(template, 'AWS::CloudWatch::Dashboard')[0]!;
    const body = flatten((dashboard.Properties as { DashboardBody: unknown }).DashboardBody);
    for (const name of ['Detections', 'Blocks', 'Unblocks', 'Evictions', 'LockRetries', 'Throttles']) {
      expect(body).toContain(`"Portsnare","${name}","service","portsnare"`);
    }
  });

  // AWS WAF publishes a rule group rule's metrics under Rule (its metric name), RuleGroup (the
  // group's metric name) and, except for CloudFront, Region; CloudFront's live in us-east-1
  // (https://docs.aws.amazon.com/waf/latest/developerguide/waf-metrics.html)
  it('graphs the requests each IP set rule of the rule groups blocked, per scope, under the metric names the rules publish', () => {
    // the rule groups as deployed: each takes its own name as metric name, so two stacks never share one
    const groups = Object.fromEntries(
      resourcesOf(template, 'AWS::WAFv2::RuleGroup').map(([, group]) => {
        const properties = group.Properties as { Name: string; Scope: string; VisibilityConfig: { MetricName: string }; Rules: Array<{ VisibilityConfig: { MetricName: string } }> };
        expect(properties.VisibilityConfig.MetricName).toBe(properties.Name);
        expect(properties.Rules.map((rule) => rule.VisibilityConfig.MetricName)).toEqual(['portsnare-ipv4-0', 'portsnare-ipv4-1', 'portsnare-ipv6-0', 'portsnare-ipv6-1']);
        return [properties.Scope, properties.Name];
      }),
    ) as Record<'REGIONAL' | 'CLOUDFRONT', string>;
    expect(groups.REGIONAL).toMatch(/^[A-Za-z0-9_-]+-regional$/);
    expect(groups.CLOUDFRONT).toBe(groups.REGIONAL.replace(/-regional$/, '-cloudfront'));

    const [, dashboard] = resourcesOf(template, 'AWS::CloudWatch::Dashboard')[0]!;
    const body = JSON.parse(flatten((dashboard.Properties as { DashboardBody: unknown }).DashboardBody)) as { widgets: Array<{ properties: { title?: string; metrics?: unknown[][] } }> };
    const wafWidgets = body.widgets.filter((w) => (w.properties.metrics ?? []).some((m) => m[0] === 'AWS/WAFV2'));
    expect(wafWidgets.map((w) => w.properties.title)).toEqual([
      'WAF requests blocked per portsnare rule (REGIONAL; per IP set, WAF does not count per address)',
      'WAF requests blocked per portsnare rule (CLOUDFRONT; per IP set, WAF does not count per address)',
    ]);
    const [regional, cloudFront] = wafWidgets.map((w) => w.properties.metrics!);
    expect(regional).toEqual(
      ['portsnare-ipv4-0', 'portsnare-ipv4-1', 'portsnare-ipv6-0', 'portsnare-ipv6-1'].map((rule) => [
        'AWS/WAFV2',
        'BlockedRequests',
        'Region',
        'us-east-1',
        'Rule',
        rule,
        'RuleGroup',
        groups.REGIONAL,
        { label: rule, stat: 'Sum' },
      ]),
    );
    // CloudFront: no Region dimension, read from us-east-1
    expect(cloudFront).toEqual(
      ['portsnare-ipv4-0', 'portsnare-ipv4-1', 'portsnare-ipv6-0', 'portsnare-ipv6-1'].map((rule) => [
        'AWS/WAFV2',
        'BlockedRequests',
        'Rule',
        rule,
        'RuleGroup',
        groups.CLOUDFRONT,
        { label: rule, region: 'us-east-1', stat: 'Sum' },
      ]),
    );
  });
});

describe('outputs and removal', () => {
  it('exports the outputs the command line reads, under fixed logical ids', () => {
    const outputs = template.toJSON().Outputs as Record<string, { Value: unknown }>;
    expect(Object.keys(outputs).sort()).toEqual([
      'PortsnareAlarmTopicArn',
      'PortsnareCanaryAddress',
      'PortsnareEventBusArn',
      'PortsnareEventBusName',
      'PortsnareIpSetArns',
      'PortsnareRuleGroupArn',
      'PortsnareSensors',
      'PortsnareSettings',
      'PortsnareTableName',
    ]);
    expect(flatten(outputs.PortsnareIpSetArns!.Value).split(',')).toHaveLength(8);
    expect(flatten(outputs.PortsnareRuleGroupArn!.Value).split(',')).toHaveLength(2);
  });

  it('exports the PORTSNARE_SETTINGS document the functions receive as PortsnareSettings', () => {
    const outputs = template.toJSON().Outputs as Record<string, { Value: unknown }>;
    const text = flatten(outputs.PortsnareSettings!.Value);
    expect(text).toBe(flatten(environmentOf('Enforce').PORTSNARE_SETTINGS));
    expect(JSON.parse(text)).toMatchObject({ nacl: { aclIds: ACLS, ruleRange: [10, 60], quotaPerDirection: 40 }, policy: { baseTtlSeconds: 1800 } });
  });

  it('removes portsnare\'s NACL entries on delete through a custom resource given the ACLs and the range', () => {
    template.hasResourceProperties('Custom::PortsnareNaclCleanup', { AclIds: ACLS, RuleRange: [10, 60] });
    const schedules = resourcesOf(template, 'AWS::Scheduler::Schedule');
    for (const [, schedule] of schedules) expect(schedule.DependsOn).toEqual(expect.arrayContaining([expect.stringMatching(/^PortsnareNaclCleanup/)]));
  });
});

describe('props validation', () => {
  const build = (props: EnumerationBlockerProps, region: string | null = 'eu-west-1') => () => {
    const stack = new Stack(new App(), 'S', region ? { env: { account: '123456789012', region } } : {});
    new EnumerationBlocker(stack, 'B', props);
  };

  it.each<[string, EnumerationBlockerProps, RegExp]>([
    ['a rule range outside 1–32766', { naclRuleRange: [0, 40] }, /naclRuleRange \[0, 40\]: element 0 must be at least 1$/m],
    ['a rule range past the maximum', { naclRuleRange: [1, 32767] }, /naclRuleRange \[1, 32767\]: element 1 must be at most 32766/],
    ['a rule range that runs backwards', { naclRuleRange: [90, 10] }, /naclRuleRange \[90, 10\]: first rule number must not exceed the last/],
    ['a quota above 40', { naclQuota: 41 }, /naclQuota 41: must be at most 40/],
    ['a quota that leaves no rule', { naclIds: [ACLS[0]!], naclQuota: 1 }, /naclQuota 1 leaves portsnare no rule: the default deny takes the one rule a direction allows/],
    ['an ACL id that is not one', { naclIds: ['sg-0123456789abcdef0'] }, /naclIds\[0\] "sg-0123456789abcdef0": must be a network ACL id/],
    ['a duplicate ACL id', { naclIds: [ACLS[0]!, ACLS[0]!] }, /naclIds lists acl-0123456789abcdef0 more than once/],
    ['too many IP sets', { wafSetsPerFamily: 11 }, /wafSetsPerFamily 11 must be a whole number within 1–10/],
    ['nowhere to block', { naclIds: [], wafScopes: [] }, /naclIds and wafScopes are both empty/],
    ['a bad allowlist entry', { policy: { allowlist: ['example.com'] } }, /policy\.allowlist\[0\] "example\.com": must be an IPv4\/IPv6 address or CIDR/],
    ['a TTL cap below the base TTL', { policy: { baseTtl: Duration.hours(2), maxTtl: Duration.hours(1) } }, /policy\.maxTtl 3600s is shorter than policy\.baseTtl 7200s/],
    ['an escalation factor below 1', { policy: { escalationFactor: 0.5 } }, /policy\.escalationFactor 0\.5: must be at least 1$/m],
    ['a zero burst limit', { policy: { burstLimitPerMinute: 0 } }, /policy\.burstLimitPerMinute 0: must be at least 1/],
    ['a web ACL without the REGIONAL scope', { wafScopes: [], naclIds: [ACLS[0]!], webAclResourceArns: ['arn:aws:elasticloadbalancing:eu-west-1:1:loadbalancer/app/x/y'] }, /webAclResourceArns needs the REGIONAL scope/],
  ])('rejects %s, naming the prop', (_what, props, message) => {
    expect(build(props)).toThrow(message);
  });

  it('rejects CLOUDFRONT in a stack outside us-east-1, telling where to deploy', () => {
    expect(build({ wafScopes: ['CLOUDFRONT'] }, 'eu-west-1')).toThrow(/wafScopes includes CLOUDFRONT but the stack's region is eu-west-1: .*env: \{ region: 'us-east-1' \}/);
  });

  it('rejects CLOUDFRONT in an environment-agnostic stack, telling to set the region', () => {
    expect(build({ wafScopes: ['CLOUDFRONT'] }, null)).toThrow(/environment-agnostic.*env: \{ region: 'us-east-1' \}/);
  });

  it('reports every fault at once, before creating any resource', () => {
    const stack = new Stack(new App(), 'S');
    expect(() => new EnumerationBlocker(stack, 'B', { naclRuleRange: [5, 1], naclQuota: 99 })).toThrow(/naclRuleRange[\s\S]*naclQuota/);
    expect(stack.node.findAll().filter((c) => c.node.path.includes('/B/'))).toEqual([]);
  });

  it('accepts ACL ids that are tokens of ACLs in the same app', () => {
    const stack = new Stack(new App(), 'S');
    const acl = new ec2.CfnNetworkAcl(stack, 'Acl', { vpcId: 'vpc-0123456789abcdef0' });
    expect(validateEnumerationBlockerProps({ naclIds: [acl.ref] }, stack.region)).toEqual([]);
  });
});
