import { readFileSync } from 'node:fs';
import { App, Stack } from 'aws-cdk-lib';
import * as cxapi from 'aws-cdk-lib/cx-api';
import { Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as events from 'aws-cdk-lib/aws-events';
import { beforeAll, describe, expect, it } from 'vitest';
import { FargateSensor, parsePortsnareContext, PortsnareStack } from '../../lib';
import { allGrants, flatten, nagFindings, resourcesOf, projectApp } from './helpers';

// CloudFormation's own template validation takes seconds per synthesis; app.test.ts runs it.
process.env.CDK_VALIDATION = 'false';

const VPC = {
  vpcId: 'vpc-0123456789abcdef0',
  vpcCidrBlock: '10.20.0.0/16',
  availabilityZones: ['eu-west-1a', 'eu-west-1b'],
  publicSubnetIds: ['subnet-0123456789abcdef0', 'subnet-0fedcba9876543210'],
};
const NLB_ARN = 'arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/net/shop/0123456789abcdef';

let app: App;
let template: Template;

beforeAll(() => {
  const parsed = parsePortsnareContext({
    naclIds: ['acl-0123456789abcdef0'],
    sensor: { type: 'fargate', tcpPorts: [23, 445, 8080], flowLogs: true, vpc: VPC, nlb: { loadBalancerArn: NLB_ARN, tcpPorts: [8080] } },
  });
  if (!parsed.ok) throw new Error(parsed.error);
  app = projectApp();
  const stack = new PortsnareStack(app, 'Portsnare', { config: parsed.value, env: { account: '123456789012', region: 'eu-west-1' } });
  template = Template.fromStack(stack);
}, 120_000);

function container(): Record<string, unknown> {
  const [, task] = resourcesOf(template, 'AWS::ECS::TaskDefinition')[0]!;
  return (task.Properties as { ContainerDefinitions: Array<Record<string, unknown>> }).ContainerDefinitions[0]!;
}

describe('FargateSensor', () => {
  it('builds the image from the repository Dockerfile at deploy, for ARM64 (synth needs no Docker)', () => {
    expect(flatten(container().Image)).toMatch(/\/cdk-[a-z0-9]+-container-assets-123456789012-eu-west-1:[0-9a-f]{64}$/);
    const assembly = app.synth();
    const manifest = assembly.artifacts.find((a): a is cxapi.AssetManifestArtifact => a instanceof cxapi.AssetManifestArtifact)!;
    const images = (JSON.parse(readFileSync(manifest.file, 'utf8')) as { dockerImages: Record<string, { source: Record<string, unknown> }> }).dockerImages;
    expect(Object.values(images).map((i) => i.source)).toEqual([{ directory: expect.stringMatching(/^asset\.[0-9a-f]{64}$/), dockerFile: 'Dockerfile', platform: 'linux/arm64' }]);
    const [, task] = resourcesOf(template, 'AWS::ECS::TaskDefinition')[0]!;
    expect(task.Properties).toMatchObject({ RequiresCompatibilities: ['FARGATE'], RuntimePlatform: { CpuArchitecture: 'ARM64', OperatingSystemFamily: 'LINUX' } });
  });

  it('runs the agent as a non-root user with every capability dropped and none added, under an init process', () => {
    const definition = container();
    expect(definition.User).toBe('1000:1000');
    expect(definition.LinuxParameters).toEqual({ Capabilities: { Drop: ['ALL'] }, InitProcessEnabled: true });
    expect(definition.Privileged).toBeUndefined();
    expect(definition.SystemControls).toEqual([{ Namespace: 'net.ipv4.ip_unprivileged_port_start', Value: '0' }]);
  });

  it('listens on the decoy ports and is told about them and the bus in its config', () => {
    const definition = container();
    expect(definition.PortMappings).toEqual([23, 445, 8080].map((p) => ({ ContainerPort: p, Protocol: 'tcp' })));
    const env = Object.fromEntries((definition.Environment as Array<{ Name: string; Value: unknown }>).map((e) => [e.Name, flatten(e.Value)]));
    expect(JSON.parse(env.PORTSNARE_AGENT_CONFIG!)).toMatchObject({ tcpPorts: [23, 445, 8080], stealth: false, ignore: ['10.20.0.0/16'], sinks: [{ type: 'stdout' }, { type: 'eventbridge', busName: expect.stringMatching(/^«BlockerBus/) }] });
    expect(flatten(definition.Command)).toContain('exec /usr/local/bin/portsnare agent --config /tmp/portsnare-agent.json');
    expect(definition.HealthCheck).toMatchObject({ Command: ['CMD', 'node', '-e', expect.stringContaining('http://127.0.0.1:9466/healthz')] });
  });

  it('gives the task role PutEvents on the portsnare bus and nothing else', () => {
    const [taskRoleId] = resourcesOf(template, 'AWS::IAM::Role').find(([id]) => id.startsWith('SensorTaskTaskRole'))!;
    const grants = allGrants(template).filter((g) => g.policy.startsWith(taskRoleId.replace(/[0-9A-F]{8}$/, '')));
    expect(grants.map((g) => `${g.action} ${g.resource}`)).toEqual([expect.stringMatching(/^events:PutEvents «BlockerBus[0-9A-F]+\.Arn»$/)]);
  });

  it('gives the task a public address in the public subnets and opens exactly the decoy ports', () => {
    const [, service] = resourcesOf(template, 'AWS::ECS::Service')[0]!;
    expect((service.Properties as { NetworkConfiguration: unknown }).NetworkConfiguration).toMatchObject({
      AwsvpcConfiguration: { AssignPublicIp: 'ENABLED', Subnets: VPC.publicSubnetIds },
    });
    const [, group] = resourcesOf(template, 'AWS::EC2::SecurityGroup').find(([id]) => id.startsWith('SensorSecurityGroup'))!;
    const rules = ((group.Properties as { SecurityGroupIngress: Array<Record<string, unknown>> }).SecurityGroupIngress).map((r) => `${String(r.FromPort)} ${String(r.CidrIp ?? r.CidrIpv6)}`);
    expect(rules.sort()).toEqual(['23 0.0.0.0/0', '23 ::/0', '445 0.0.0.0/0', '445 ::/0', '8080 0.0.0.0/0', '8080 ::/0']);
  });

  it('logs the sensor subnets\' rejected traffic for stealth detection (task interfaces come and go)', () => {
    const flowLogs = resourcesOf(template, 'AWS::EC2::FlowLog').map(([, f]) => f.Properties as Record<string, unknown>);
    expect(flowLogs.map((f) => `${String(f.ResourceType)} ${String(f.ResourceId)}`).sort()).toEqual(VPC.publicSubnetIds.map((s) => `Subnet ${s}`));
  });

  it('forwards the NLB decoy listener to the task by IP, keeping the client address', () => {
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', { LoadBalancerArn: NLB_ARN, Port: 8080, Protocol: 'TCP' });
    const [, group] = resourcesOf(template, 'AWS::ElasticLoadBalancingV2::TargetGroup')[0]!;
    expect(group.Properties).toMatchObject({ TargetType: 'ip', Port: 8080 });
    expect((group.Properties as { TargetGroupAttributes: unknown[] }).TargetGroupAttributes).toEqual(expect.arrayContaining([{ Key: 'preserve_client_ip.enabled', Value: 'true' }]));
  });

  it('passes cdk-nag AwsSolutions with every finding acknowledged', () => {
    expect(nagFindings(app)).toEqual([]);
  });
});

describe('FargateSensor props validation', () => {
  const build = (props: Partial<ConstructorParameters<typeof FargateSensor>[2]>) => () => {
    const stack = new Stack(new App(), 'S');
    const vpc = new ec2.Vpc(stack, 'Vpc', { natGateways: 0, subnetConfiguration: [{ name: 'p', subnetType: ec2.SubnetType.PUBLIC }] });
    const eventBus = new events.EventBus(stack, 'Bus');
    new FargateSensor(stack, 'Sensor', { vpc, eventBus, ...props });
  };

  it('refuses root', () => {
    expect(build({ user: 'root' })).toThrow(/user "root" is root/);
    expect(build({ user: '0:0' })).toThrow(/user "0:0" is root/);
  });

  it('refuses the agent\'s own health port as a decoy', () => {
    expect(build({ tcpPorts: [23, 9466] })).toThrow(/tcpPorts includes 9466, which the sensor itself uses/);
  });

  it('refuses a port outside 1–65535, naming the prop', () => {
    expect(build({ tcpPorts: [0] })).toThrow(/tcpPorts\[0\] 0 is not a port/);
  });

  it('refuses a platform other than ARM64 or X86_64', () => {
    expect(build({ platform: 'RISCV' as 'ARM64' })).toThrow(/platform "RISCV" must be ARM64 or X86_64/);
  });

  it('refuses a sixth load balancer target: an ECS service registers with at most 5 target groups', () => {
    const stack = new Stack(new App(), 'S');
    const vpc = new ec2.Vpc(stack, 'Vpc', { natGateways: 0, subnetConfiguration: [{ name: 'p', subnetType: ec2.SubnetType.PUBLIC }] });
    const sensor = new FargateSensor(stack, 'Sensor', { vpc, eventBus: new events.EventBus(stack, 'Bus'), tcpPorts: [21, 23, 25, 110, 135, 139] });
    for (const port of [21, 23, 25, 110, 135]) sensor.loadBalancerTarget(port, 'tcp');
    expect(() => sensor.loadBalancerTarget(139, 'tcp')).toThrow(/at most 5 target groups/);
  });
});
