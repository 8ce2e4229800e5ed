/**
 * Every agent config lib/ writes (lib/sensorConfig.ts, through the EC2 user data and the Fargate
 * container environment) must parse with the agent's own schema (sensor/config.ts): a key the
 * agent renamed or a value it no longer takes fails here, not on a sensor at boot.
 */
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as events from 'aws-cdk-lib/aws-events';
import { beforeAll, describe, expect, it } from 'vitest';
import { Ec2Sensor, FargateSensor, type Ec2SensorProps, type FargateSensorProps } from '../../lib';
import { parseAgentConfig, type AgentConfig } from '../../sensor/config';
import { flatten, projectApp, resourcesOf } from './helpers';

process.env.CDK_VALIDATION = 'false';

const VPC_CIDR = '10.66.0.0/16';
const BUS = 'portsnare-bus';
const REGION = 'eu-west-1';
const DEFAULT_TCP = [21, 23, 25, 110, 135, 139, 445, 1433, 3306, 3389, 5432, 5900, 6379, 9200, 11211, 27017];

type Variant =
  | { kind: 'ec2'; props: Omit<Ec2SensorProps, 'vpc' | 'eventBus'> }
  | { kind: 'fargate'; props: Omit<FargateSensorProps, 'vpc' | 'eventBus' | 'image'> };

/** Each way a sensor's config can come out, and what the agent must read from it. */
const VARIANTS: Record<string, { variant: Variant; expected: Partial<AgentConfig> }> = {
  Ec2Default: { variant: { kind: 'ec2', props: {} }, expected: { tcpPorts: DEFAULT_TCP, udpPorts: [], stealth: true, ignore: [VPC_CIDR] } },
  Ec2NoStealthUdp: {
    variant: { kind: 'ec2', props: { stealth: false, tcpPorts: [2323, 8080], udpPorts: [161, 53], ignore: ['198.51.100.0/24'] } },
    expected: { tcpPorts: [2323, 8080], udpPorts: [53, 161], stealth: false, ignore: ['198.51.100.0/24'] },
  },
  Ec2AgentConfig: {
    variant: { kind: 'ec2', props: { tcpPorts: [23], agentConfig: { dedupeSeconds: 30, logLevel: 'debug' } } },
    expected: { tcpPorts: [23], stealth: true, dedupeSeconds: 30, logLevel: 'debug' },
  },
  FargateDefault: { variant: { kind: 'fargate', props: {} }, expected: { tcpPorts: DEFAULT_TCP, udpPorts: [], stealth: false, ignore: [VPC_CIDR] } },
  FargateAgentConfig: {
    variant: { kind: 'fargate', props: { tcpPorts: [23, 445], udpPorts: [161], ignore: [], agentConfig: { dedupeSeconds: 10 } } },
    expected: { tcpPorts: [23, 445], udpPorts: [161], stealth: false, ignore: [], dedupeSeconds: 10 },
  },
};

let template: Template;

beforeAll(() => {
  // No bundling or image build: only the configs matter here.
  const app = new App({ context: { ...projectApp().node.getAllContext(), 'aws:cdk:bundling-stacks': [] } });
  const stack = new Stack(app, 'Sensors', { env: { account: '123456789012', region: REGION } });
  const vpc = new ec2.Vpc(stack, 'Vpc', { ipAddresses: ec2.IpAddresses.cidr(VPC_CIDR), maxAzs: 1, natGateways: 0, subnetConfiguration: [{ name: 'decoy', subnetType: ec2.SubnetType.PUBLIC }] });
  const eventBus = new events.EventBus(stack, 'Bus');
  for (const [id, { variant }] of Object.entries(VARIANTS)) {
    if (variant.kind === 'ec2') new Ec2Sensor(stack, id, { ...variant.props, vpc, eventBus });
    else new FargateSensor(stack, id, { ...variant.props, vpc, eventBus, image: ecs.ContainerImage.fromRegistry('public.ecr.aws/docker/library/busybox:latest') });
  }
  template = Template.fromStack(stack);
}, 180_000);

/** The deploy-time values of the tokens in a config: the VPC's CIDR and the bus name. */
function resolved(text: string): string {
  const out = text.replace(/«Vpc[^»]*\.CidrBlock»/g, VPC_CIDR).replace(/«Bus[0-9A-F]+»/g, BUS);
  expect(out).not.toMatch(/«/);
  return out;
}

/** The config an EC2 sensor's user data writes to /etc/portsnare/agent.json. */
function ec2Config(id: string): unknown {
  const [, instance] = resourcesOf(template, 'AWS::EC2::Instance').find(([logicalId]) => logicalId.startsWith(`${id}Instance`))!;
  const userData = resolved(flatten((instance.Properties as { UserData: { 'Fn::Base64': unknown } }).UserData['Fn::Base64']));
  const match = /<<'PORTSNARE_CONFIG'\n([\s\S]*?)\nPORTSNARE_CONFIG\n/.exec(userData);
  if (!match) throw new Error(`no agent config in the user data of ${id}`);
  return JSON.parse(match[1]!);
}

/** The config a Fargate sensor's container receives in PORTSNARE_AGENT_CONFIG. */
function fargateConfig(id: string): unknown {
  const [, task] = resourcesOf(template, 'AWS::ECS::TaskDefinition').find(([logicalId]) => logicalId.startsWith(`${id}Task`))!;
  const [container] = (task.Properties as { ContainerDefinitions: Array<{ Environment: Array<{ Name: string; Value: unknown }> }> }).ContainerDefinitions;
  const variable = container!.Environment.find((e) => e.Name === 'PORTSNARE_AGENT_CONFIG');
  if (!variable) throw new Error(`no PORTSNARE_AGENT_CONFIG in ${id}`);
  return JSON.parse(resolved(flatten(variable.Value)));
}

describe('agent configs lib/ generates', () => {
  it.each(Object.keys(VARIANTS))('%s parses with the agent schema (sensor/config.ts) and reports to the bus', (id) => {
    const { variant, expected } = VARIANTS[id]!;
    const raw = variant.kind === 'ec2' ? ec2Config(id) : fargateConfig(id);
    const parsed = parseAgentConfig(raw);
    if (!parsed.ok) throw new Error(`${id}: the agent rejects its config: ${parsed.error}`);
    expect(parsed.value).toMatchObject(expected);
    expect(parsed.value.sinks).toEqual([{ type: 'stdout' }, expect.objectContaining({ type: 'eventbridge', busName: BUS, region: REGION })]);
  });

  it('catches drift: a config the agent would reject fails to parse', () => {
    const raw = ec2Config('Ec2Default') as Record<string, unknown>;
    expect(parseAgentConfig({ ...raw, stealthMode: true }).ok).toBe(false);
  });
});
