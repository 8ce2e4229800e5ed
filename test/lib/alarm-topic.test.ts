/**
 * The alarm topic accepts CloudWatch's notifications (issue 18): a topic policy replaces SNS's
 * default one, so CloudWatch must be allowed in it ("Allow CloudWatch alarms to publish to a
 * topic", https://docs.aws.amazon.com/sns/latest/dg/sns-access-policy-use-cases.html). Read from
 * the synthesized templates of the single-account stack and an organization's stacks; the
 * expected statement is written out here.
 */
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { parsePortsnareContext, PortsnareStack } from '../../lib';
import { addOrganizationStacks } from '../../lib/org';
import { flatten, projectApp, resourcesOf } from './helpers';

process.env.CDK_VALIDATION = 'false';

interface Statement {
  Effect: string;
  Principal?: { Service?: unknown; AWS?: unknown };
  Action: string | string[];
  Resource: unknown;
  Condition?: Record<string, Record<string, unknown>>;
}

function topicStatements(template: Template): Statement[] {
  const policies = resourcesOf(template, 'AWS::SNS::TopicPolicy');
  expect(policies).toHaveLength(1);
  return (policies[0]![1].Properties as { PolicyDocument: { Statement: Statement[] } }).PolicyDocument.Statement;
}

function expectCloudWatchMayPublish(template: Template, account: string, region: string): void {
  const statements = topicStatements(template);
  const allow = statements.filter((s) => s.Effect === 'Allow' && flatten(s.Principal?.Service) === 'cloudwatch.amazonaws.com');
  expect(allow).toHaveLength(1);
  expect(allow[0]!.Action).toBe('sns:Publish');
  expect(flatten(allow[0]!.Resource)).toMatch(/^«Alarms[0-9A-F]+»$/);
  expect(allow[0]!.Condition).toEqual({
    StringEquals: { 'aws:SourceAccount': account },
    ArnLike: { 'aws:SourceArn': `arn:aws:cloudwatch:${region}:${account}:alarm:*` },
  });
  // the TLS-only deny is kept
  expect(statements.some((s) => s.Effect === 'Deny' && JSON.stringify(s.Condition).includes('aws:SecureTransport'))).toBe(true);
}

const app = (): App => new App({ context: { ...projectApp().node.getAllContext(), 'aws:cdk:bundling-stacks': [] } });

describe('the alarm topic', () => {
  it('lets CloudWatch alarms of the account publish, in the single-account stack', () => {
    const parsed = parsePortsnareContext({ alarmEmail: 'ops@example.com', sensor: { type: 'none' }, vpcCidrs: ['10.20.0.0/16'] });
    if (!parsed.ok) throw new Error(parsed.error);
    const stack = new PortsnareStack(app(), 'Portsnare', { config: parsed.value, env: { account: '123456789012', region: 'eu-west-1' } });
    expectCloudWatchMayPublish(Template.fromStack(stack), '123456789012', 'eu-west-1');
  }, 120_000);

  it('lets CloudWatch alarms of each account publish, in the decision and every plane stack', () => {
    const parsed = parsePortsnareContext({
      alarmEmail: 'ops@example.com',
      vpcCidrs: ['10.0.0.0/8'],
      organization: { organizationId: 'o-a1b2c3d4e5', decision: { account: '111111111111', region: 'eu-west-1' }, sensorPrincipals: ['arn:aws:iam::*:role/portsnare-sensor-*'], planes: [{ account: '222222222222', region: 'us-east-1' }] },
    });
    if (!parsed.ok) throw new Error(parsed.error);
    const stacks = addOrganizationStacks(app(), parsed.value);
    expectCloudWatchMayPublish(Template.fromStack(stacks.decision), '111111111111', 'eu-west-1');
    expectCloudWatchMayPublish(Template.fromStack(stacks.planes[0]!), '222222222222', 'us-east-1');
  }, 120_000);
});
