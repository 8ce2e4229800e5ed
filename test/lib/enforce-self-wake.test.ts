/**
 * The enforce function wakes itself when it leaves WAF removals pending
 * (lambda/enforce/handler.ts wakeForPending): lib/EnforcementCore.ts lets it send to its own
 * queue, and to no other. EnforcementCore builds the same grant for the single-account stack and
 * every organization plane.
 */
import { Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { beforeAll, expect, it } from 'vitest';
import { EnumerationBlocker } from '../../lib';
import { allGrants, nagFindings, projectApp, resourcesOf } from './helpers';

process.env.CDK_VALIDATION = 'false';

let template: Template;
let app: ReturnType<typeof projectApp>;
beforeAll(() => {
  app = projectApp();
  const stack = new Stack(app, 'SelfWake', { env: { account: '123456789012', region: 'eu-west-1' } });
  new EnumerationBlocker(stack, 'Portsnare', { naclIds: ['acl-0123456789abcdef0'], wafScopes: ['REGIONAL'], vpcCidrs: ['10.0.0.0/16'] });
  template = Template.fromStack(stack);
}, 180_000);

it('the enforce role may send messages to its own enforce queue and to no other queue; cdk-nag has nothing unacknowledged', () => {
  const [queueId] = resourcesOf(template, 'AWS::SQS::Queue').find(([id]) => /^PortsnareEnforceQueue[0-9A-F]+$/.test(id))!;
  const sends = allGrants(template).filter((g) => g.action === 'sqs:SendMessage' && /^PortsnareEnforce(Function)?(ServiceRole|Role)/.test(g.policy));
  expect(sends.map((g) => g.resource)).toEqual([`«${queueId}.Arn»`]);
  expect(nagFindings(app)).toEqual([]);
});
