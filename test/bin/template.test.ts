/**
 * The contract between the CDK app and `--stack`: the outputs the command line reads, and the
 * settings output it reads the guard, the burst limit and the ACLs from, in a template the real
 * stack synthesizes (tokens included). CloudFormation resolves the tokens in an output's value;
 * `deployedValue` stands in for that with made-up physical values.
 */
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { parseIpSetArn } from '../../bin/commands/stack/placements';
import { STACK_OUTPUTS } from '../../core/outputs';
import { PipelineSettingsSchema } from '../../core/settings';
import { parsePortsnareContext, PortsnareStack } from '../../lib';

process.env.CDK_VALIDATION = 'false'; // CloudFormation's template validation is another helper's test

interface SynthTemplate {
  Outputs?: Record<string, { Value?: unknown }>;
}

function template(context: unknown): SynthTemplate {
  const parsed = parsePortsnareContext(context);
  if (!parsed.ok) throw new Error(parsed.error);
  const stack = new PortsnareStack(new App(), 'Portsnare', { config: parsed.value, env: { account: '123456789012', region: 'eu-west-1' } });
  return Template.fromStack(stack).toJSON() as SynthTemplate;
}

const VPC_CIDR = '10.99.0.0/16';
const DEFAULT_ACL = 'acl-0ffffffffffffff99';
const IP_SET_ID = '99999999-9999-4999-8999-999999999999';

/** What CloudFormation would put in place of one token, for the attributes a settings document holds. */
function physical(token: unknown): string {
  const getAtt = (token as { 'Fn::GetAtt'?: [string, string] })['Fn::GetAtt'];
  if (getAtt?.[1] === 'CidrBlock') return VPC_CIDR;
  if (getAtt?.[1] === 'DefaultNetworkAcl') return DEFAULT_ACL;
  if (getAtt?.[1] === 'Id') return IP_SET_ID;
  if (getAtt?.[1] === 'Name') return `${getAtt[0]}-name`;
  const ref = (token as { Ref?: string }).Ref;
  if (ref !== undefined) return `${ref}-physical-id`;
  throw new Error(`no stand-in for the token ${JSON.stringify(token)}`);
}

/** An output's value as a deployed stack shows it: a string, or Fn::Join with its tokens resolved. */
function deployedValue(value: unknown): string {
  if (typeof value === 'string') return value;
  const join = (value as { 'Fn::Join'?: [string, unknown[]] } | undefined)?.['Fn::Join'];
  if (!join) throw new Error(`output value is neither a string nor Fn::Join: ${JSON.stringify(value)}`);
  return join[1].map((part) => (typeof part === 'string' ? part : physical(part))).join(join[0]);
}

/** The stack's settings output as `--stack` receives it, parsed with the functions' schema. */
function deployedSettings(context: unknown): unknown {
  const output = template(context).Outputs?.[STACK_OUTPUTS.settings];
  expect(output, `template has no output ${STACK_OUTPUTS.settings}`).toBeDefined();
  return PipelineSettingsSchema.parse(JSON.parse(deployedValue(output?.Value)));
}

describe('the synthesized stack, as --stack reads it', () => {
  it('has every output the command line looks for', () => {
    const outputs = Object.keys(template({}).Outputs ?? {});

    expect(outputs).toEqual(expect.arrayContaining(['PortsnareTableName', 'PortsnareEventBusName', 'PortsnareIpSetArns', 'PortsnareSettings']));
  });

  it('with the README\'s context: the settings output holds the allowlist, the VPC CIDR, the burst limit and the ACL', () => {
    const settings = deployedSettings({
      naclIds: ['acl-0123456789abcdef0'],
      naclRuleRange: [1, 99],
      wafScopes: ['REGIONAL'],
      vpcCidrs: ['10.20.0.0/16'],
      policy: { baseTtl: '1h', allowlist: ['198.51.100.0/24'] },
      alarmEmail: 'secops@example.com',
    });

    expect(settings).toMatchObject({
      guard: { allowlist: ['198.51.100.0/24'], protectedCidrs: ['10.20.0.0/16'] },
      nacl: { aclIds: ['acl-0123456789abcdef0'], ruleRange: [1, 99] },
      policy: { baseTtlSeconds: 3600, burstLimitPerMinute: 100 },
    });
  });

  it('with no context (the demo VPC): CloudFormation fills in the VPC\'s CIDR and its default ACL', () => {
    const settings = deployedSettings({});

    expect(settings).toMatchObject({ guard: { protectedCidrs: [VPC_CIDR] }, nacl: { aclIds: [DEFAULT_ACL] } });
  });

  it('reads the IP set ARNs in the form CloudFormation gives them', () => {
    expect(parseIpSetArn('arn:aws:wafv2:eu-west-1:123456789012:regional/ipset/Portsnare-Blocker-294B2CEA-regional-ipv4-0/11111111-1111-4111-8111-111111111111')).toEqual({
      region: 'eu-west-1',
      scope: 'REGIONAL',
      name: 'Portsnare-Blocker-294B2CEA-regional-ipv4-0',
      id: '11111111-1111-4111-8111-111111111111',
    });
    expect(parseIpSetArn('arn:aws:wafv2:us-east-1:123456789012:global/ipset/cf-v6/2222')?.scope).toBe('CLOUDFRONT');
    expect(parseIpSetArn('-')).toBeUndefined();
  });
});
