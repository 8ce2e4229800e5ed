/**
 * Each alarm only where its metric can be emitted (issue 18): the decision stack runs decide and
 * expiry, never enforce, so it has no enforcement-lag or failure-class alarm; a plane runs enforce,
 * never decide, so it has no circuit-breaker or own-instance alarm; the single-account stack runs
 * both. Which function publishes which metric is read from lambda/ by hand: CircuitBreakerOpen
 * and OwnInstanceScanning in lambda/decide/decider.ts; EnforcementLagSeconds, EnforcementFailures,
 * WafSetMissing, WafCapacityFull, NaclQuotaFull, NaclShadowed, NaclForeignInRange in
 * lambda/enforce/handler.ts and lambda/shared/enforcer.ts. Also the outputs `portsnare selftest
 * --org` reads. Names are written out.
 */
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { EnumerationBlocker } from '../../lib';
import { parsePortsnareContext } from '../../lib/appConfig';
import { addOrganizationStacks } from '../../lib/org';
import { projectApp, resourcesOf } from './helpers';

const DECIDE_METRICS = ['CircuitBreakerOpen', 'OwnInstanceScanning'];
const ENFORCE_METRICS = ['EnforcementLagSeconds', 'EnforcementFailures', 'WafSetMissing', 'WafCapacityFull', 'NaclQuotaFull', 'NaclShadowed', 'NaclForeignInRange'];

function portsnareAlarmMetrics(template: Template): string[] {
  return resourcesOf(template, 'AWS::CloudWatch::Alarm')
    .map(([, alarm]) => alarm.Properties as { Namespace?: string; MetricName?: string })
    .filter((p) => p.Namespace === 'Portsnare')
    .map((p) => p.MetricName ?? '')
    .sort();
}

let decision: Template;
let plane: Template;
let single: Template;

beforeAll(() => {
  const parsed = parsePortsnareContext({
    vpcCidrs: ['10.0.0.0/8'],
    alarmEmail: 'secops@example.com',
    organization: {
      organizationId: 'o-a1b2c3d4e5',
      decision: { account: '111111111111', region: 'eu-west-1' },
      sensorPrincipals: ['arn:aws:iam::*:role/portsnare-sensor-*'],
      planes: [{ account: '222222222222', region: 'eu-west-1', naclIds: ['acl-0222222222bbbb'] }],
    },
  });
  if (!parsed.ok) throw new Error(parsed.error);
  const app = new App({ context: { ...projectApp().node.getAllContext(), 'aws:cdk:bundling-stacks': [] } });
  const stacks = addOrganizationStacks(app, parsed.value);
  decision = Template.fromStack(stacks.decision);
  plane = Template.fromStack(stacks.planes[0]!);
  const stack = new Stack(new App({ context: { 'aws:cdk:bundling-stacks': [] } }), 'Single', { env: { account: '111111111111', region: 'eu-west-1' } });
  new EnumerationBlocker(stack, 'Blocker', { naclIds: ['acl-0123456789abcdef0'] });
  single = Template.fromStack(stack);
}, 180_000);

describe('alarms where their metric is emitted', () => {
  it('the decision stack alarms on decide\'s metrics only', () => {
    expect(portsnareAlarmMetrics(decision)).toEqual([...DECIDE_METRICS].sort());
  });

  it('a plane alarms on enforce\'s metrics only', () => {
    expect(portsnareAlarmMetrics(plane)).toEqual([...ENFORCE_METRICS].sort());
  });

  it('the single-account stack alarms on both', () => {
    expect(portsnareAlarmMetrics(single)).toEqual([...DECIDE_METRICS, ...ENFORCE_METRICS].sort());
  });
});

describe('the outputs selftest --org reads', () => {
  it('the decision stack names each plane\'s stack, its canary and its alarm topic; the plane its ledger and topic', () => {
    const outputs = decision.toJSON().Outputs as Record<string, { Value: unknown }>;
    expect(JSON.parse(outputs.PortsnarePlaneStacks!.Value as string)).toEqual({ '222222222222/eu-west-1': 'Portsnare-plane-222222222222-eu-west-1' });
    expect(outputs.PortsnareCanaryAddress!.Value).toBe('192.0.2.254');
    expect(JSON.stringify(outputs.PortsnareAlarmTopicArn!.Value)).toMatch(/"Ref":"Alarms[0-9A-F]+"/);
    const planeOutputs = plane.toJSON().Outputs as Record<string, { Value: unknown }>;
    expect(JSON.stringify(planeOutputs.PortsnareLedgerTableName!.Value)).toMatch(/"Ref":"PlaneLedger[0-9A-F]+"/);
    expect(JSON.stringify(planeOutputs.PortsnareAlarmTopicArn!.Value)).toMatch(/"Ref":"Alarms[0-9A-F]+"/);
  });
});
