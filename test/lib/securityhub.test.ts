/**
 * The Security Hub export in the templates (issue 21): off by default; with
 * `portsnare.securityHub.enabled` a findings function on a one-minute schedule, in the
 * single-account stack and in the organization's decision plane (never in a plane), whose role
 * may import findings only into this account's default product and write only the cursor's
 * partition of the table; cdk-nag finds nothing unacknowledged; a bad value names key and value.
 * The product ARN form and the action's resource type:
 * https://docs.aws.amazon.com/securityhub/latest/userguide/securityhub-custom-providers.html,
 * https://docs.aws.amazon.com/service-authorization/latest/reference/list_awssecurityhub.html
 */
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { parsePortsnareContext, PortsnareStack } from '../../lib';
import { addOrganizationStacks } from '../../lib/org';
import { flatten, nagFindings, projectApp, resourcesOf, type Statement } from './helpers';

process.env.CDK_VALIDATION = 'false';

function appOf(): App {
  return new App({ context: { ...projectApp().node.getAllContext(), 'aws:cdk:bundling-stacks': [] } });
}

function single(context: unknown): { app: App; template: Template } {
  const parsed = parsePortsnareContext(context);
  if (!parsed.ok) throw new Error(parsed.error);
  const app = appOf();
  const stack = new PortsnareStack(app, 'Portsnare', { config: parsed.value, env: { account: '123456789012', region: 'eu-west-1' } });
  return { app, template: Template.fromStack(stack) };
}

/** The findings function's logical id and its role's statements. */
function findingsOf(template: Template): { env: Record<string, unknown>; statements: Statement[] } | undefined {
  const fn = resourcesOf(template, 'AWS::Lambda::Function').find(([id]) => /FindingsFunction/.test(id));
  if (!fn) return undefined;
  const roleRef = flatten((fn[1].Properties as { Role: unknown }).Role).replace(/[«»]/g, '').split('.')[0]!;
  const statements: Statement[] = [];
  for (const [, policy] of resourcesOf(template, 'AWS::IAM::Policy')) {
    const props = policy.Properties as { Roles: Array<{ Ref: string }>; PolicyDocument: { Statement: Statement[] } };
    if (props.Roles.some((r) => r.Ref === roleRef)) statements.push(...props.PolicyDocument.Statement);
  }
  return { env: ((fn[1].Properties as { Environment: { Variables: Record<string, unknown> } }).Environment.Variables), statements };
}

function grants(statements: Statement[]): string[] {
  return statements.flatMap((s) => (Array.isArray(s.Action) ? s.Action : [s.Action]).map((a) => `${a} ${flatten(s.Resource)}${(s as { Condition?: unknown }).Condition ? ` if ${JSON.stringify((s as { Condition?: unknown }).Condition)}` : ''}`)).sort();
}

const SINGLE = { sensor: { type: 'none' }, naclIds: ['acl-0123456789abcdef0'] };

describe('Security Hub export in the stacks', () => {
  it('is off by default', () => {
    expect(findingsOf(single(SINGLE).template)).toBeUndefined();
  });

  it('builds the findings function on a one-minute schedule with least-privilege IAM', () => {
    const { template } = single({ ...SINGLE, securityHub: { enabled: true } });
    const findings = findingsOf(template)!;
    expect(findings).toBeDefined();
    expect(flatten(findings.env.FINDINGS_PRODUCT_ARN)).toBe('arn:aws:securityhub:eu-west-1:123456789012:product/123456789012/default');
    const table = flatten(findings.env.TABLE_NAME).replace(/[«»]/g, '');
    const own = grants(findings.statements).filter((g) => !g.startsWith('logs:'));
    expect(own).toEqual([
      `dynamodb:GetItem «${table}.Arn»`,
      `dynamodb:PutItem «${table}.Arn» if {"ForAllValues:StringEquals":{"dynamodb:LeadingKeys":["FINDINGS"]}}`,
      `dynamodb:Query «${table}.Arn»/index/active,«${table}.Arn»/index/changes`,
      'securityhub:BatchImportFindings arn:aws:securityhub:eu-west-1:123456789012:product/123456789012/default',
      // the on-failure destination of every asynchronously invoked function (lib/PortsnareFunction.ts)
      'sqs:GetQueueAttributes «BlockerFailureQueueC1DAD7EA.Arn»',
      'sqs:GetQueueUrl «BlockerFailureQueueC1DAD7EA.Arn»',
      'sqs:SendMessage «BlockerFailureQueueC1DAD7EA.Arn»',
    ]);
    expect(table).toBe('BlockerTableA23BA474');
    const schedules = resourcesOf(template, 'AWS::Scheduler::Schedule').filter(([id]) => /FindingsSchedule/.test(id));
    expect(schedules).toHaveLength(1);
    expect((schedules[0]![1].Properties as { ScheduleExpression: string }).ScheduleExpression).toBe('rate(1 minute)');
  });

  it('leaves no cdk-nag finding unacknowledged', () => {
    const { app } = single({ ...SINGLE, securityHub: { enabled: true } });
    expect(nagFindings(app)).toEqual([]);
  });

  it('runs in the organization\'s decision plane, not in its planes', () => {
    const parsed = parsePortsnareContext({
      vpcCidrs: ['10.0.0.0/8'],
      securityHub: { enabled: true },
      organization: {
        organizationId: 'o-a1b2c3d4e5',
        decision: { account: '111111111111', region: 'eu-west-1' },
        sensorPrincipals: ['arn:aws:iam::*:role/portsnare-sensor-*'],
        planes: [{ account: '222222222222', region: 'eu-west-1', naclIds: ['acl-0123456789abcdef0'] }],
      },
    });
    if (!parsed.ok) throw new Error(parsed.error);
    const stacks = addOrganizationStacks(appOf(), parsed.value);
    const decision = findingsOf(Template.fromStack(stacks.decision))!;
    expect(flatten(decision.env.FINDINGS_PRODUCT_ARN)).toBe('arn:aws:securityhub:eu-west-1:111111111111:product/111111111111/default');
    for (const plane of stacks.planes) expect(findingsOf(Template.fromStack(plane))).toBeUndefined();
  });

  it('refuses a value that is not a boolean, naming key and value', () => {
    const parsed = parsePortsnareContext({ securityHub: { enabled: 'yes' } });
    expect(parsed).toEqual({ ok: false, error: 'portsnare.securityHub.enabled: must be true or false, got "yes"' });
    const typo = parsePortsnareContext({ securityHub: { enable: true } });
    expect(typo.ok).toBe(false);
    expect(!typo.ok && typo.error).toMatch(/portsnare\.securityHub: .*"enable"/);
  });
});
