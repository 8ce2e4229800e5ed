/**
 * The contract between the CDK app and `--stack`: the outputs the command line reads, and the
 * PORTSNARE_SETTINGS it reads the guard, the burst limit and the ACLs from, in a template the
 * real stack synthesizes (tokens included).
 */
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { OUTPUT_BUS, OUTPUT_IP_SETS, OUTPUT_TABLE, parseIpSetArn, settingsFromTemplate } from '../../bin/commands/cloud';
import { parsePortsnareContext, PortsnareStack } from '../../lib';

process.env.CDK_VALIDATION = 'false'; // CloudFormation's template validation is another helper's test

function template(context: unknown): Record<string, unknown> {
  const parsed = parsePortsnareContext(context);
  if (!parsed.ok) throw new Error(parsed.error);
  const stack = new PortsnareStack(new App(), 'Portsnare', { config: parsed.value, env: { account: '123456789012', region: 'eu-west-1' } });
  return Template.fromStack(stack).toJSON() as Record<string, unknown>;
}

describe('the synthesized stack, as --stack reads it', () => {
  it('has the outputs the command line looks for', () => {
    const outputs = Object.keys((template({}) as { Outputs?: Record<string, unknown> }).Outputs ?? {});

    expect(outputs).toEqual(expect.arrayContaining([OUTPUT_TABLE, OUTPUT_BUS, OUTPUT_IP_SETS]));
  });

  it('with the README\'s context: the allowlist, the VPC CIDR, the burst limit and the ACL are literal', () => {
    const body = template({
      naclIds: ['acl-0123456789abcdef0'],
      naclRuleRange: [1, 99],
      wafScopes: ['REGIONAL'],
      vpcCidrs: ['10.20.0.0/16'],
      policy: { baseTtl: '1h', allowlist: ['198.51.100.0/24'] },
      alarmEmail: 'secops@example.com',
    });

    const settings = settingsFromTemplate(JSON.stringify(body));

    expect(settings).toMatchObject({
      guard: { allowlist: ['198.51.100.0/24'], protectedCidrs: ['10.20.0.0/16'] },
      protectedTokens: [],
      nacl: { aclIds: ['acl-0123456789abcdef0'], ruleRange: [1, 99] },
      burstLimitPerMinute: 100,
    });
  });

  it('with no context (the demo VPC): the VPC CIDR and its default ACL are tokens to resolve', () => {
    const settings = settingsFromTemplate(JSON.stringify(template({})));

    expect(settings?.protectedTokens).toEqual([{ 'Fn::GetAtt': [expect.stringMatching(/^Vpc/), 'CidrBlock'] }]);
    expect(settings?.nacl?.aclIds).toEqual([{ 'Fn::GetAtt': [expect.stringMatching(/^Vpc/), 'DefaultNetworkAcl'] }]);
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
