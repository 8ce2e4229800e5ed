/**
 * The sensor heartbeat alarm watches the metric EventBridge actually publishes, and the
 * `PortsnareSensors` output names the same rule, alarm and bus, checked on the synthesized
 * template with its intrinsic functions evaluated as CloudFormation would after a deploy.
 *
 * What a deploy gives (the oracle, written from the AWS pages, importing nothing from lib/):
 * - a custom bus's Ref is its name;
 * - a rule's ARN is `arn:aws:events:region:account:rule/[event-bus-name]/rule-name`
 *   (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-manage-iam-access.html);
 * - a rule's Ref on a custom bus is "bus|rule" (what CloudFormation returns, reported in
 *   https://github.com/aws-cloudformation/cloudformation-coverage-roadmap/issues/1131), not the name;
 * - an alarm's Ref is its name;
 * - EventBridge counts a rule on a custom bus in AWS/Events MatchedEvents with the dimensions
 *   EventBusName and RuleName ("Metrics that specify both the EventBusName and RuleName dimensions
 *   refer to a custom event bus", https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-monitoring.html),
 *   and CloudWatch matches a metric only by its exact set of dimensions
 *   (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch_concepts.html#Dimension).
 */
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { parsePortsnareContext, PortsnareStack } from '../../lib';
import { projectApp } from './helpers';

process.env.CDK_VALIDATION = 'false';

type Json = Record<string, unknown>;
interface TemplateJson {
  Resources: Record<string, { Type: string; Properties?: Json }>;
  Outputs: Record<string, { Value: unknown }>;
}

const ACCOUNT = '111111111111';
const REGION = 'eu-west-1';

function synth(context: unknown): TemplateJson {
  const parsed = parsePortsnareContext(context);
  if (!parsed.ok) throw new Error(parsed.error);
  // no Lambda or agent bundling: the template is all this test reads
  const app = new App({ context: { ...projectApp().node.getAllContext(), 'aws:cdk:bundling-stacks': [] } });
  const stack = new PortsnareStack(app, 'Portsnare', { config: parsed.value, env: { account: ACCOUNT, region: REGION } });
  return Template.fromStack(stack).toJSON() as TemplateJson;
}

/** The physical values a deploy gives each resource (see the header). */
function deployed(template: TemplateJson): (value: unknown) => unknown {
  const ruleName = (id: string): string => `Portsnare-${id.slice(0, 20)}-1A2B3C4D5E6F`;
  const evaluate = (value: unknown): unknown => {
    if (typeof value !== 'object' || value === null) return value;
    if (Array.isArray(value)) return value.map(evaluate);
    const object = value as Json;
    if ('Ref' in object) {
      const id = String(object.Ref);
      if (id === 'AWS::Region') return REGION;
      if (id === 'AWS::AccountId') return ACCOUNT;
      if (id === 'AWS::Partition') return 'aws';
      const resource = template.Resources[id];
      if (!resource) throw new Error(`Ref to ${id}, not in the template`);
      if (resource.Type === 'AWS::Events::EventBus') return evaluate(resource.Properties?.Name);
      if (resource.Type === 'AWS::Events::Rule') {
        const bus = resource.Properties?.EventBusName;
        return bus === undefined ? ruleName(id) : `${String(evaluate(bus))}|${ruleName(id)}`;
      }
      if (resource.Type === 'AWS::CloudWatch::Alarm') return `Portsnare-${id.slice(0, 20)}-ALARM9Z8Y7X`;
      throw new Error(`no stand-in for Ref ${id} (${resource.Type})`);
    }
    if ('Fn::GetAtt' in object) {
      const [id, attribute] = object['Fn::GetAtt'] as [string, string];
      const resource = template.Resources[id];
      if (resource?.Type === 'AWS::Events::Rule' && attribute === 'Arn') {
        const bus = resource.Properties?.EventBusName;
        return `arn:aws:events:${REGION}:${ACCOUNT}:rule/${bus === undefined ? '' : `${String(evaluate(bus))}/`}${ruleName(id)}`;
      }
      throw new Error(`no stand-in for GetAtt ${id}.${attribute}`);
    }
    if ('Fn::Join' in object) {
      const [separator, parts] = object['Fn::Join'] as [string, unknown[]];
      return parts.map((part) => String(evaluate(part))).join(separator);
    }
    if ('Fn::Split' in object) {
      const [separator, text] = object['Fn::Split'] as [string, unknown];
      return String(evaluate(text)).split(separator);
    }
    if ('Fn::Select' in object) {
      const [index, list] = object['Fn::Select'] as [number, unknown];
      const items = evaluate(list) as unknown[];
      if (!Array.isArray(items) || index >= items.length) throw new Error(`Fn::Select ${index} of ${JSON.stringify(items)} fails the deploy`);
      return items[index];
    }
    return Object.fromEntries(Object.entries(object).map(([key, inner]) => [key, evaluate(inner)]));
  };
  return evaluate;
}

function heartbeatAlarms(template: TemplateJson): Array<[string, Json]> {
  return Object.entries(template.Resources)
    .filter(([, r]) => r.Type === 'AWS::CloudWatch::Alarm' && r.Properties?.MetricName === 'MatchedEvents')
    .map(([id, r]) => [id, r.Properties ?? {}]);
}

function dimensionsOf(alarm: Json, evaluate: (value: unknown) => unknown): Record<string, string> {
  const dimensions = evaluate(alarm.Dimensions) as Array<{ Name: string; Value: string }>;
  return Object.fromEntries(dimensions.map((d) => [d.Name, d.Value]));
}

describe('the sensor heartbeat alarm, on a deployed stack', () => {
  let template: TemplateJson;
  let evaluate: (value: unknown) => unknown;
  let bus: string;
  let rule: string;

  beforeAll(() => {
    template = synth({ sensor: { type: 'ec2' } });
    evaluate = deployed(template);
    const [busId] = Object.entries(template.Resources).find(([, r]) => r.Type === 'AWS::Events::EventBus')!;
    bus = String(evaluate({ Ref: busId }));
    const [ruleId] = Object.entries(template.Resources).find(([, r]) => r.Type === 'AWS::Events::Rule' && JSON.stringify(r.Properties).includes('Sensor Heartbeat'))!;
    rule = `Portsnare-${ruleId.slice(0, 20)}-1A2B3C4D5E6F`;
  }, 120_000);

  it('watches MatchedEvents of the heartbeat rule on the custom bus: EventBusName and RuleName, the rule\'s name (not its Ref)', () => {
    const alarms = heartbeatAlarms(template);
    expect(alarms).toHaveLength(1);
    const [, alarm] = alarms[0]!;
    expect(alarm).toMatchObject({ Namespace: 'AWS/Events', MetricName: 'MatchedEvents', Statistic: 'Sum', Period: 300, TreatMissingData: 'breaching' });
    // exactly the metric EventBridge publishes for this rule: a RuleName-only alarm (or one on
    // the "bus|rule" Ref) watches a metric that never gets a data point, and alarms forever
    expect(dimensionsOf(alarm, evaluate)).toEqual({ EventBusName: bus, RuleName: rule });
  });

  it('lists the sensor in PortsnareSensors with the same rule, alarm and bus, as JSON the command line parses', () => {
    const output = template.Outputs.PortsnareSensors;
    expect(output, 'template has no PortsnareSensors output').toBeDefined();
    const listed = JSON.parse(String(evaluate(output!.Value))) as unknown;
    const [alarmId, alarm] = heartbeatAlarms(template)[0]!;
    expect(listed).toEqual([{ sensorId: 'Portsnare/Sensor', ruleName: rule, alarmName: evaluate({ Ref: alarmId }), busName: bus }]);
    // what status --stack queries is what the alarm watches
    const [entry] = listed as Array<{ ruleName: string; busName: string }>;
    expect(dimensionsOf(alarm, evaluate)).toEqual({ EventBusName: entry!.busName, RuleName: entry!.ruleName });
  });
});

describe('PortsnareSensors without a cloud sensor', () => {
  it('is an empty list, so status --stack tells "no sensors" from "an older stack"', () => {
    const template = synth({ sensor: { type: 'none' } });

    expect(template.Outputs.PortsnareSensors?.Value).toBe('[]');
    expect(heartbeatAlarms(template)).toHaveLength(0);
  }, 120_000);
});
