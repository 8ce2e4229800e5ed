/**
 * The optional digest (lib/Digest.ts): nothing of it without `portsnare.digest`; with it, the
 * function, its schedule (the tick's time as input), its least-privilege IAM, its alarm and topic,
 * in the single-account stack and in the organization's decision stack; cdk-nag clean; bad keys
 * refused naming the key and the value.
 */
import { App, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { ACKNOWLEDGE_FINDINGS_CONTEXT, parsePortsnareContext, PortsnareStack } from '../../lib';
import { addOrganizationStacks } from '../../lib/org';
import { allGrants, flatten, nagFindings, projectApp, resourcesOf } from './helpers';

process.env.CDK_VALIDATION = 'false';

function app(acknowledge = true): App {
  // no bundling: the template is all this test reads 
  return new App({ context: { ...projectApp().node.getAllContext(), 'aws:cdk:bundling-stacks': [], [ACKNOWLEDGE_FINDINGS_CONTEXT]: acknowledge } });
}

function single(context: unknown, acknowledge = true): { app: App; template: Template } {
  const parsed = parsePortsnareContext(context);
  if (!parsed.ok) throw new Error(parsed.error);
  const a = app(acknowledge);
  const stack = new PortsnareStack(a, 'Portsnare', { config: parsed.value, env: { account: '111122223333', region: 'eu-west-1' } });
  return { app: a, template: Template.fromStack(stack) };
}

const digestIds = (template: Template): string[] => Object.keys(template.toJSON().Resources as object).filter((id) => id.includes('Digest'));

describe('without portsnare.digest', () => {
  it('there is no digest function, schedule, topic, alarm or grant', () => {
    const { template } = single({ sensor: { type: 'none' }, naclIds: ['acl-0123456789abcdef0'] });
    expect(digestIds(template)).toEqual([]);
    expect(resourcesOf(template, 'AWS::Scheduler::Schedule').map(([, s]) => (s.Properties as { Description: string }).Description).sort()).toEqual([
      'portsnare: full diff of desired and actual state',
      'portsnare: lift expired blocks',
    ]);
    expect(allGrants(template).filter((g) => g.action.startsWith('sns:') || g.action === 'cloudwatch:GetMetricData')).toEqual([]);
  });
});

describe('with portsnare.digest (email through the stack\'s own topic, and a webhook)', () => {
  const context = { sensor: { type: 'none' }, naclIds: ['acl-0123456789abcdef0'], digest: { everyMinutes: 30, email: 'ops@example.com', webhookUrl: 'https://hooks.example.com/portsnare', quietHours: '22:00-07:00', timeZone: 'Europe/Berlin', minNewBlocks: 5 } };
  const { app: a, template } = single(context);

  it('builds the function with its settings, a 30-minute schedule that passes the tick\'s time, a topic with the email, the alarm', () => {
    const [, fn] = resourcesOf(template, 'AWS::Lambda::Function').find(([id]) => id.startsWith('BlockerDigestFunction'))!;
    const env = (fn.Properties as { Environment: { Variables: Record<string, unknown> } }).Environment.Variables;
    expect(flatten(env.TABLE_NAME)).toMatch(/^«BlockerTable[0-9A-F]+»$/);
    const settings = flatten(env.DIGEST_SETTINGS);
    expect(settings).toContain('"everyMinutes":30');
    expect(settings).toContain('"webhookUrl":"https://hooks.example.com/portsnare"');
    expect(settings).toContain('"quietHours":"22:00-07:00","timeZone":"Europe/Berlin"');
    expect(settings).toContain('"minNewBlocks":5');
    expect(settings).toMatch(/"topicArn":"«BlockerDigestTopic[0-9A-F]+»"/);
    expect((fn.Properties as { Timeout: number }).Timeout).toBe(120);

    const [, schedule] = resourcesOf(template, 'AWS::Scheduler::Schedule').find(([id]) => id.startsWith('BlockerDigestSchedule'))!;
    const props = schedule.Properties as { ScheduleExpression: string; Target: { Input: string; RetryPolicy: unknown } };
    expect(props.ScheduleExpression).toBe('rate(30 minutes)');
    expect(JSON.parse(props.Target.Input)).toEqual({ scheduledTime: '<aws.scheduler.scheduled-time>' });

    template.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'ops@example.com', TopicArn: { Ref: Match.stringLikeRegexp('^BlockerDigestTopic') } });
    const alarms = resourcesOf(template, 'AWS::CloudWatch::Alarm').filter(([, al]) => (al.Properties as { MetricName?: string }).MetricName === 'DigestUndelivered');
    expect(alarms).toHaveLength(1);
  });

  it('grants only Query on the table and its changes index (Scan for a window past a day), Get/UpdateItem on the DIGEST item, Publish on its topic, GetMetricData', () => {
    const grants = allGrants(template).filter((g) => g.policy.startsWith('BlockerDigestFunction'));
    expect(grants.map((g) => `${g.action} ${g.resource}`).sort()).toEqual([
      'cloudwatch:GetMetricData *',
      expect.stringMatching(/^dynamodb:GetItem «BlockerTable[0-9A-F]+\.Arn»$/),
      expect.stringMatching(/^dynamodb:Query «BlockerTable[0-9A-F]+\.Arn»$/),
      expect.stringMatching(/^dynamodb:Query «BlockerTable[0-9A-F]+\.Arn»\/index\/changes$/),
      expect.stringMatching(/^dynamodb:Scan «BlockerTable[0-9A-F]+\.Arn»$/),
      expect.stringMatching(/^dynamodb:Scan «BlockerTable[0-9A-F]+\.Arn»\/index\/changes$/),
      expect.stringMatching(/^dynamodb:UpdateItem «BlockerTable[0-9A-F]+\.Arn»$/),
      expect.stringMatching(/^logs:CreateLogStream «BlockerDigestFunctionLogs/),
      expect.stringMatching(/^logs:PutLogEvents «BlockerDigestFunctionLogs/),
      expect.stringMatching(/^sns:Publish «BlockerDigestTopic[0-9A-F]+»$/),
      // the on-failure destination of its asynchronous invocations (lib/PortsnareFunction.ts), as every scheduled function
      expect.stringMatching(/^sqs:GetQueueAttributes «BlockerFailureQueue[0-9A-F]+\.Arn»$/),
      expect.stringMatching(/^sqs:GetQueueUrl «BlockerFailureQueue[0-9A-F]+\.Arn»$/),
      expect.stringMatching(/^sqs:SendMessage «BlockerFailureQueue[0-9A-F]+\.Arn»$/),
    ]);
    const policies = resourcesOf(template, 'AWS::IAM::Policy').filter(([id]) => id.startsWith('BlockerDigestFunction'));
    const claim = policies.flatMap(([, p]) => (p.Properties as { PolicyDocument: { Statement: Array<{ Sid?: string; Condition?: unknown }> } }).PolicyDocument.Statement).find((s) => s.Sid === 'PortsnareDigestClaim');
    expect(claim?.Condition).toEqual({ 'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': ['DIGEST'] } });
  });

  it('passes cdk-nag AwsSolutions with every finding acknowledged, and each acknowledgement it adds is needed', () => {
    expect(nagFindings(a)).toEqual([]);
    const bare = nagFindings(single(context, false).app);
    // the runtime pin (lib/PortsnareFunction.ts, every function) and the two the digest adds
    expect(bare.filter((f) => f.includes('Digest')).sort()).toEqual([
      expect.stringMatching(/^AwsSolutions-IAM5\[Resource::\*\] at Portsnare\/Blocker\/Digest\/Function\/MetricsReadPolicy\/Resource$/),
      expect.stringMatching(/^AwsSolutions-IAM5\[Resource::<BlockerDigestFunction[0-9A-F]+\.Arn>:\*\] at Portsnare\/Blocker\/SchedulerRole\/DefaultPolicy\/Resource$/),
      'AwsSolutions-L1 at Portsnare/Blocker/Digest/Function/Function/Resource',
    ]);
  });
});

describe('an existing topic (topicArn), Chatbot form', () => {
  it('publishes to that ARN; no topic is created', () => {
    const topicArn = 'arn:aws:sns:eu-west-1:111122223333:ops-chat';
    const { template } = single({ sensor: { type: 'none' }, naclIds: ['acl-0123456789abcdef0'], digest: { topicArn, chatbot: true } });
    expect(resourcesOf(template, 'AWS::SNS::Topic')).toEqual([]);
    expect(allGrants(template).filter((g) => g.action === 'sns:Publish').map((g) => g.resource)).toEqual([topicArn]);
  });
});

describe('the organization\'s decision stack', () => {
  it('runs the digest next to the decision table; the planes get none; cdk-nag clean', () => {
    const parsed = parsePortsnareContext({
      vpcCidrs: ['10.0.0.0/8'],
      digest: { webhookUrl: 'https://hooks.example.com/p' },
      organization: {
        organizationId: 'o-a1b2c3d4e5',
        decision: { account: '111111111111', region: 'eu-west-1' },
        sensorPrincipals: ['arn:aws:iam::*:role/portsnare-sensor-*'],
        planes: [{ account: '222222222222', region: 'eu-west-1', naclIds: ['acl-0123456789abcdef0'] }],
      },
    });
    if (!parsed.ok) throw new Error(parsed.error);
    const a = app();
    addOrganizationStacks(a, parsed.value);
    const all = a.node.children.filter((c): c is Stack => c instanceof Stack);
    const withDigest = all.filter((s) => digestIds(Template.fromStack(s)).length > 0).map((s) => s.stackName);
    expect(withDigest).toHaveLength(1);
    const decision = all.find((s) => s.stackName === withDigest[0])!;
    const template = Template.fromStack(decision);
    // only a webhook: no topic, no Publish
    expect(resourcesOf(template, 'AWS::SNS::Topic')).toEqual([]);
    const [, fn] = resourcesOf(template, 'AWS::Lambda::Function').find(([id]) => id.startsWith('DecisionDigestFunction'))!;
    expect(flatten((fn.Properties as { Environment: { Variables: Record<string, unknown> } }).Environment.Variables.DIGEST_SETTINGS)).toMatch(/"deadLetterQueues":\["«DecisionFailureQueue[0-9A-F]+\.QueueName»","«DecisionWakeUpDeadLetterQueue[0-9A-F]+\.QueueName»"\]/);
    expect(nagFindings(a)).toEqual([]);
  });
});

describe('bad keys', () => {
  it('are refused, naming the key and the value', () => {
    const error = (digest: unknown): string => {
      const parsed = parsePortsnareContext({ digest });
      return parsed.ok ? '' : parsed.error;
    };
    expect(error({ everyMinutes: 2 })).toBe('portsnare.digest.everyMinutes: Too small: expected number to be >=5 (got 2)');
    expect(error({ webhookUrl: 'http://hooks.example.com/x' })).toBe('portsnare.digest.webhookUrl: must be https (got http) (got "http://hooks.example.com/x")');
    expect(error({ timeZone: 'Europe/Atlantis' })).toBe('portsnare.digest.timeZone: is not an IANA time zone (e.g. "Europe/Berlin", "America/New_York", "UTC") (got "Europe/Atlantis")');
    expect(error({ quietHours: '25:00-07:00' })).toMatch(/^portsnare\.digest\.quietHours: must be "HH:MM-HH:MM" .* \(got "25:00-07:00"\)$/);
  });
});
