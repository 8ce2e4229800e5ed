/**
 * Stateful resources keep the logical ids they had before EnumerationBlocker was split into
 * WafBlocklist, NaclCleanup and Monitoring: a new id would make CloudFormation replace them
 * (IP sets emptied and clashing by name, a web ACL association dropped, portsnare's NACL entries
 * deleted by the old cleanup resource, a ServiceToken change refused).
 */
import { App, CfnResource, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { Construct } from 'constructs';
import { beforeAll, describe, expect, it } from 'vitest';
import { parsePortsnareContext, PortsnareStack } from '../../lib';
import { logicalIdAt } from '../../lib/logicalIds';
import { projectApp } from './helpers';

process.env.CDK_VALIDATION = 'false';

describe('logicalIdAt', () => {
  it.each([
    [['Table'], 'Table'],
    [['Blocker', 'IpSetRegionalIpv40'], 'x'],
    [['Blocker', 'CleanupProvider', 'framework-onEvent', 'Resource'], 'x'],
    [['Blocker', 'NaclCleanup', 'Default'], 'x'],
    [['Blocker', 'Blocker', 'Item'], 'x'],
    [['A'.repeat(200), 'B'.repeat(100)], 'x'],
  ])('matches the id aws-cdk-lib allocates at %j', (path) => {
    const stack = new Stack(new App(), 'S');
    let scope: Construct = stack;
    for (const id of path.slice(0, -1)) scope = (scope.node.tryFindChild(id) as Construct | undefined) ?? new Construct(scope, id);
    const element = new CfnResource(scope, path[path.length - 1]!, { type: 'Test::Thing' });
    expect(logicalIdAt(scope, path[path.length - 1]!)).toBe(stack.resolve(element.logicalId));
    expect(logicalIdAt(stack, ...path)).toBe(stack.resolve(element.logicalId));
  });
});

describe('the stack after the split', () => {
  let resources: Record<string, { Type: string }>;

  beforeAll(() => {
    const parsed = parsePortsnareContext({
      region: 'us-east-1',
      wafScopes: ['REGIONAL', 'CLOUDFRONT'],
      wafSetsPerFamily: 2,
      webAclResourceArns: ['arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/shop/0123456789abcdef'],
      sensor: { type: 'none' },
    });
    if (!parsed.ok) throw new Error(parsed.error);
    const app = new App({ context: { ...projectApp().node.getAllContext(), 'aws:cdk:bundling-stacks': [] } });
    const stack = new PortsnareStack(app, 'Portsnare', { config: parsed.value, env: { region: 'us-east-1' } });
    resources = Template.fromStack(stack).toJSON().Resources as Record<string, { Type: string }>;
  }, 120_000);

  // The ids `cdk synth` wrote before the split (same paths: stack Portsnare, construct Blocker).
  it.each([
    ['BlockerTableA23BA474', 'AWS::DynamoDB::Table'],
    ['BlockerBus6BA25FED', 'AWS::Events::EventBus'],
    ['BlockerEnforceQueueA6F2B1C0', 'AWS::SQS::Queue'],
    ['BlockerEnforceDeadLetterQueue85FA919D', 'AWS::SQS::Queue'],
    ['BlockerFailureQueueC1DAD7EA', 'AWS::SQS::Queue'],
    ['BlockerIpSetRegionalIpv4000BB569A', 'AWS::WAFv2::IPSet'],
    ['BlockerIpSetRegionalIpv41E8966DDD', 'AWS::WAFv2::IPSet'],
    ['BlockerIpSetRegionalIpv60C1828E19', 'AWS::WAFv2::IPSet'],
    ['BlockerIpSetRegionalIpv6193439D41', 'AWS::WAFv2::IPSet'],
    ['BlockerIpSetCloudfrontIpv40D92E73A7', 'AWS::WAFv2::IPSet'],
    ['BlockerIpSetCloudfrontIpv41ED3AF47B', 'AWS::WAFv2::IPSet'],
    ['BlockerIpSetCloudfrontIpv60982AA1C0', 'AWS::WAFv2::IPSet'],
    ['BlockerIpSetCloudfrontIpv61625475F6', 'AWS::WAFv2::IPSet'],
    ['BlockerRuleGroupRegional17F27BDD', 'AWS::WAFv2::RuleGroup'],
    ['BlockerRuleGroupCloudfront06626C71', 'AWS::WAFv2::RuleGroup'],
    ['BlockerWebAcl11771CD1', 'AWS::WAFv2::WebACL'],
    ['BlockerWebAclAssociation02214B11B', 'AWS::WAFv2::WebACLAssociation'],
    ['BlockerNaclCleanup17B5588E', 'Custom::PortsnareNaclCleanup'],
    ['BlockerCleanupProviderframeworkonEventE72743C8', 'AWS::Lambda::Function'],
  ])('keeps %s (%s)', (logicalId, type) => {
    expect(resources[logicalId]?.Type).toBe(type);
  });
});
