/**
 * Simulation in the stack (issue 21 item 1): the context key `portsnare.simulation` (`true` or
 * `{ "inputs": [...] }`) reaches every function in PORTSNARE_SETTINGS, and with `true` every rule
 * of the WAF rule groups counts instead of blocking: the RuleAction Count.
 * https://docs.aws.amazon.com/waf/latest/APIReference/API_RuleAction.html
 * https://docs.aws.amazon.com/waf/latest/developerguide/web-acl-rule-actions.html
 */
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { ACKNOWLEDGE_FINDINGS_CONTEXT, parsePortsnareContext, PortsnareStack, validateEnumerationBlockerProps } from '../../lib';
import { addOrganizationStacks } from '../../lib/org';
import { flatten, projectApp, resourcesOf } from './helpers';

process.env.CDK_VALIDATION = 'false';

function single(context: unknown): Template {
  const parsed = parsePortsnareContext(context);
  if (!parsed.ok) throw new Error(parsed.error);
  // no bundling: the template is all this test reads
  const app = new App({ context: { ...projectApp().node.getAllContext(), 'aws:cdk:bundling-stacks': [], [ACKNOWLEDGE_FINDINGS_CONTEXT]: true } });
  const stack = new PortsnareStack(app, 'Portsnare', { config: parsed.value, env: { account: '111122223333', region: 'eu-west-1' } });
  return Template.fromStack(stack);
}

function ruleActions(template: Template): unknown[] {
  return resourcesOf(template, 'AWS::WAFv2::RuleGroup').flatMap(([, g]) => (g.Properties as { Rules: Array<{ Action: unknown }> }).Rules.map((r) => r.Action));
}

describe('portsnare.simulation', () => {
  it('true: every WAF rule counts, and the functions get simulation {all: true}', () => {
    const template = single({ simulation: true });
    const actions = ruleActions(template);
    expect(actions.length).toBeGreaterThan(0);
    for (const action of actions) expect(action).toEqual({ Count: {} });
    expect(flatten(template.toJSON())).toContain('"simulation\\":{\\"all\\":true,\\"inputs\\":[]}');
    // the dashboard graphs what the counting rules counted (AWS/WAFV2 CountedRequests)
    const dashboard = flatten(resourcesOf(template, 'AWS::CloudWatch::Dashboard').map(([, d]) => d.Properties));
    expect(dashboard).toContain('CountedRequests');
    expect(dashboard).not.toContain('BlockedRequests');
  });

  it('{ inputs }: the rules block, and the functions get the inputs', () => {
    const template = single({ simulation: { inputs: ['sensor', 'guardduty'] } });
    for (const action of ruleActions(template)) expect(action).toEqual({ Block: {} });
    expect(flatten(template.toJSON())).toContain('"simulation\\":{\\"all\\":false,\\"inputs\\":[\\"sensor\\",\\"guardduty\\"]}');
  });

  it('absent or false: the rules block, nothing is simulated', () => {
    for (const context of [{}, { simulation: false }]) {
      const template = single(context);
      for (const action of ruleActions(template)) expect(action).toEqual({ Block: {} });
      expect(flatten(template.toJSON())).toContain('"simulation\\":{\\"all\\":false,\\"inputs\\":[]}');
      const dashboard = flatten(resourcesOf(template, 'AWS::CloudWatch::Dashboard').map(([, d]) => d.Properties));
      expect(dashboard).toContain('BlockedRequests');
      expect(dashboard).not.toContain('CountedRequests');
    }
  });

  it('a wrong value is an error naming the key and the value', () => {
    const error = (value: unknown): string => {
      const parsed = parsePortsnareContext({ simulation: value });
      return parsed.ok ? 'accepted' : parsed.error;
    };
    expect(error('yes')).toBe('portsnare.simulation: must be true, false or { "inputs": [...] } with inputs among sensor, manual, guardduty, flowlogs, got "yes"');
    expect(error({ inputs: ['sensors'] })).toBe(
      'portsnare.simulation: must be true, false or { "inputs": [...] } with inputs among sensor, manual, guardduty, flowlogs, got {"inputs":["sensors"]}',
    );
    expect(error({ input: ['sensor'] })).toContain('got {"input":["sensor"]}');
    expect(error({ inputs: [] })).toBe('portsnare.simulation.inputs: must name at least one input; true simulates the whole deployment');
  });

  it('the construct props are checked too (a TypeScript app can pass anything at run time)', () => {
    expect(validateEnumerationBlockerProps({ simulation: { inputs: ['sensors' as never] } }, 'eu-west-1')).toEqual([expect.stringContaining('simulation.inputs')]);
    expect(validateEnumerationBlockerProps({ simulation: { inputs: ['sensors' as never] } }, 'eu-west-1')[0]).toContain('sensors');
    expect(validateEnumerationBlockerProps({ simulation: true }, 'eu-west-1')).toEqual([]);
  });
});

describe('portsnare.simulation in an organization', () => {
  it('true: every plane\'s rule groups count and its functions get simulation {all: true}; the decision stack is unchanged', () => {
    const parsed = parsePortsnareContext({
      vpcCidrs: ['10.0.0.0/8'],
      simulation: true,
      organization: {
        organizationId: 'o-abcdefghij',
        decision: { account: '111111111111', region: 'eu-west-1' },
        sensorPrincipals: ['arn:aws:iam::*:role/portsnare-sensor-*'],
        planes: [{ account: '222222222222', region: 'eu-west-1', naclIds: ['acl-0222222222bbbb'] }],
      },
    });
    if (!parsed.ok) throw new Error(parsed.error);
    const app = new App({ context: { ...projectApp().node.getAllContext(), 'aws:cdk:bundling-stacks': [] } });
    const stacks = addOrganizationStacks(app, parsed.value);
    const plane = Template.fromStack(stacks.planes[0]!);
    const actions = ruleActions(plane);
    expect(actions.length).toBeGreaterThan(0);
    for (const action of actions) expect(action).toEqual({ Count: {} });
    expect(flatten(plane.toJSON())).toContain('"simulation\\":{\\"all\\":true,\\"inputs\\":[]}');
  });
});
