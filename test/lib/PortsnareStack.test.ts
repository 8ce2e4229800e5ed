import { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { FLOW_LOG_FORMAT } from '../../lambda/flowlogs/records';
import { blockPolicyOf, DEFAULT_DECOY_TCP_PORTS, parsePortsnareContext, PortsnareStack, SENSOR_FLOW_LOG_FORMAT, type PortsnareContext } from '../../lib';
import { actionsOf, allGrants, flatten, nagFindings, resourceList, resourcesOf, statementsOfRole, projectApp } from './helpers';

// CloudFormation's own template validation (on by default in aws-cdk-lib) takes seconds per
// synthesis; test/lib/app.test.ts runs it once on the real app through `cdk synth`.
process.env.CDK_VALIDATION = 'false';

const EXISTING_VPC = {
  vpcId: 'vpc-0123456789abcdef0',
  vpcCidrBlock: '10.20.0.0/16',
  availabilityZones: ['eu-west-1a', 'eu-west-1b'],
  publicSubnetIds: ['subnet-0123456789abcdef0', 'subnet-0fedcba9876543210'],
};
const NLB_ARN = 'arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/net/shop/0123456789abcdef';

function config(value: unknown): PortsnareContext {
  const parsed = parsePortsnareContext(value);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.value;
}

function synth(value: unknown, env?: { account: string; region: string }): { app: App; stack: PortsnareStack; template: Template } {
  const app = projectApp();
  const stack = new PortsnareStack(app, 'Portsnare', { config: config(value), env });
  return { app, stack, template: Template.fromStack(stack) };
}

/** [protocol, from, to, cidr] of every ingress rule of the security groups whose id starts with `prefix`. */
function ingressOf(template: Template, prefix: string): string[] {
  const [, group] = resourcesOf(template, 'AWS::EC2::SecurityGroup').find(([id]) => id.startsWith(prefix))!;
  const rules = (group.Properties as { SecurityGroupIngress?: Array<Record<string, unknown>> }).SecurityGroupIngress ?? [];
  return rules.map((r) => `${String(r.IpProtocol)} ${String(r.FromPort)}-${String(r.ToPort)} ${String(r.CidrIp ?? r.CidrIpv6)}`).sort();
}

function expectedIngress(tcp: readonly number[], udp: readonly number[] = []): string[] {
  return [...tcp.map((p) => ['tcp', p] as const), ...udp.map((p) => ['udp', p] as const)]
    .flatMap(([proto, p]) => [`${proto} ${p}-${p} 0.0.0.0/0`, `${proto} ${p}-${p} ::/0`])
    .sort();
}

describe('the demo (no context)', () => {
  let app: App;
  let template: Template;

  beforeAll(() => {
    ({ app, template } = synth({}));
  }, 120_000);

  it('synthesizes without an AWS account: no lookups, the AMI from the public SSM parameter', () => {
    const manifest = app.synth().manifest;
    expect(manifest.missing ?? []).toEqual([]);
    const parameters = template.toJSON().Parameters as Record<string, { Type: string; Default: string }>;
    expect(Object.values(parameters).map((p) => p.Default)).toContain('/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-arm64');
  });

  it('builds its own VPC and protects its default network ACL', () => {
    template.resourceCountIs('AWS::EC2::VPC', 1);
    const nacl = statementsOfRole(template, 'BlockerEnforceRole').find((s) => actionsOf(s).includes('ec2:CreateNetworkAclEntry'))!;
    expect(resourceList(nacl)).toEqual([expect.stringMatching(/network-acl\/«Vpc[0-9A-F]+\.DefaultNetworkAcl»$/)]);
  });

  it('opens exactly the decoy ports on the sensor, IPv4 and IPv6, and no SSH', () => {
    const rules = ingressOf(template, 'SensorSecurityGroup');
    expect(rules).toEqual(expectedIngress(DEFAULT_DECOY_TCP_PORTS));
    expect(rules.some((r) => r.startsWith('tcp 22-'))).toBe(false);
  });

  it('runs Amazon Linux 2023 on Graviton with IMDSv2 required and an encrypted volume', () => {
    template.hasResourceProperties('AWS::EC2::Instance', {
      InstanceType: 't4g.micro',
      MetadataOptions: { HttpTokens: 'required', HttpEndpoint: 'enabled', HttpPutResponseHopLimit: 1 },
      BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: Match.objectLike({ Encrypted: true }) }],
      NetworkInterfaces: [Match.objectLike({ DeviceIndex: '0', AssociatePublicIpAddress: true })],
      KeyName: Match.absent(),
    });
  });

  it('installs Node.js from the distribution and the agent bundle asset, nothing from npm, and starts the systemd unit', () => {
    const [, instance] = resourcesOf(template, 'AWS::EC2::Instance')[0]!;
    const userData = flatten((instance.Properties as { UserData: { 'Fn::Base64': unknown } }).UserData['Fn::Base64']);
    expect(userData).toContain('dnf install -y nodejs22');
    expect(userData).toMatch(/aws s3 cp 's3:\/\/cdk-[a-z0-9]+-assets-\$\{AWS::AccountId\}-\$\{AWS::Region\}\/[0-9a-f]{64}\.zip'/);
    expect(userData).not.toMatch(/\bnpm\b|\bnpx\b/);
    expect(userData).toContain('unzip -q /tmp/portsnare-agent.zip -d /opt/portsnare');
    expect(userData).toContain('systemctl enable --now portsnare-agent.service');
    // the config goes where packaging/portsnare-agent.service reads it; stealth needs the net-admin drop-in
    expect(userData).toContain("cat > /etc/portsnare/agent.yaml <<'PORTSNARE_CONFIG'");
    expect(userData).toContain('/etc/systemd/system/portsnare-agent.service.d/net-admin.conf');
    expect(userData).toContain('nftables tcpdump');
    const configText = /<<'PORTSNARE_CONFIG'\n(.*)\nPORTSNARE_CONFIG/s.exec(userData)![1]!;
    const agentConfig = JSON.parse(configText) as Record<string, unknown>;
    expect(agentConfig).toMatchObject({
      tcpPorts: [...DEFAULT_DECOY_TCP_PORTS],
      stealth: true,
      sinks: [{ type: 'stdout' }, { type: 'eventbridge', busName: expect.stringMatching(/^«BlockerBus/), region: '«AWS::Region»' }],
    });
  });

  it('gives the instance role only PutEvents on the portsnare bus, its own bundle object and the Session Manager channel', () => {
    const grants = allGrants(template).filter((g) => g.policy.startsWith('SensorRole'));
    expect(grants.map((g) => `${g.action} ${g.resource}`).sort()).toEqual([
      expect.stringMatching(/^events:PutEvents «BlockerBus[0-9A-F]+\.Arn»$/),
      expect.stringMatching(/^s3:GetObject arn:«AWS::Partition»:s3:::cdk-[a-z0-9]+-assets-\$\{AWS::AccountId\}-\$\{AWS::Region\}\/[0-9a-f]{64}\.zip$/),
      'ssm:UpdateInstanceInformation *',
      'ssmmessages:CreateControlChannel *',
      'ssmmessages:CreateDataChannel *',
      'ssmmessages:OpenControlChannel *',
      'ssmmessages:OpenDataChannel *',
    ]);
    const [, role] = resourcesOf(template, 'AWS::IAM::Role').find(([id]) => id.startsWith('SensorRole'))!;
    expect((role.Properties as { ManagedPolicyArns?: unknown }).ManagedPolicyArns).toBeUndefined();
  });

  it('passes cdk-nag AwsSolutions with every finding acknowledged', () => {
    expect(nagFindings(app)).toEqual([]);
  });
});

describe('an EC2 sensor in an existing VPC, with flow logs and decoy listeners on an NLB', () => {
  let app: App;
  let template: Template;

  beforeAll(() => {
    ({ app, template } = synth(
      {
        naclIds: ['acl-0123456789abcdef0'],
        sensor: { type: 'ec2', tcpPorts: [23, 445, 3389], flowLogs: true, vpc: EXISTING_VPC, nlb: { loadBalancerArn: NLB_ARN, tcpPorts: [23, 3389], existingListeners: 2 } },
      },
      { account: '123456789012', region: 'eu-west-1' },
    ));
  }, 120_000);

  it('logs the sensor subnet\'s rejected traffic in the format the flowlogs function parses, aggregated per minute', () => {
    expect(SENSOR_FLOW_LOG_FORMAT).toBe(FLOW_LOG_FORMAT);
    template.hasResourceProperties('AWS::EC2::FlowLog', {
      ResourceType: 'Subnet',
      ResourceId: EXISTING_VPC.publicSubnetIds[0],
      TrafficType: 'REJECT',
      MaxAggregationInterval: 60,
      LogFormat: FLOW_LOG_FORMAT,
      LogDestinationType: 'cloud-watch-logs',
    });
  });

  it('subscribes the flowlogs function to inbound rejected records and lets it put events on the bus only', () => {
    template.hasResourceProperties('AWS::Logs::SubscriptionFilter', {
      FilterPattern: Match.stringLikeRegexp('action = "REJECT".*direction = "ingress"'),
      DestinationArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^SensorFlowLogsFunction'), 'Arn'] },
    });
    const [, fn] = resourcesOf(template, 'AWS::Lambda::Function').find(([id]) => id.startsWith('SensorFlowLogsFunction'))!;
    const variables = (fn.Properties as { Environment: { Variables: Record<string, unknown> } }).Environment.Variables;
    expect(flatten(variables.EVENT_BUS_NAME)).toMatch(/^«BlockerBus/);
    // only probes of the sensor count, not of its neighbours in the subnet
    expect(flatten(variables.FLOWLOGS_DESTINATIONS)).toMatch(/^«SensorInstance[0-9A-Za-z]+\.PrivateIp»$/);
    const grants = allGrants(template).filter((g) => g.policy.startsWith('SensorFlowLogsFunctionRole') && !g.action.startsWith('logs:'));
    expect(grants.map((g) => g.action).sort()).toEqual(['events:PutEvents', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl', 'sqs:SendMessage']);
  });

  it('adds one listener per decoy port to the existing load balancer, forwarding to the instance with client addresses preserved', () => {
    const listeners = resourcesOf(template, 'AWS::ElasticLoadBalancingV2::Listener').map(([, l]) => l.Properties as Record<string, unknown>);
    expect(listeners.map((l) => `${String(l.Protocol)} ${String(l.Port)}`).sort()).toEqual(['TCP 23', 'TCP 3389']);
    for (const listener of listeners) expect(listener.LoadBalancerArn).toBe(NLB_ARN);
    const groups = resourcesOf(template, 'AWS::ElasticLoadBalancingV2::TargetGroup').map(([, g]) => g.Properties as Record<string, unknown>);
    for (const group of groups) {
      expect(group.TargetType).toBe('instance');
      expect(group.TargetGroupAttributes).toEqual(expect.arrayContaining([{ Key: 'preserve_client_ip.enabled', Value: 'true' }]));
    }
  });

  it('opens exactly the configured decoy ports', () => {
    expect(ingressOf(template, 'SensorSecurityGroup')).toEqual(expectedIngress([23, 445, 3389]));
  });

  it('passes cdk-nag AwsSolutions with every finding acknowledged', () => {
    expect(nagFindings(app)).toEqual([]);
  });
});

describe('context validation', () => {
  it.each<[string, unknown, RegExp]>([
    ['an unknown key', { naclId: ['acl-0123456789abcdef0'] }, /portsnare: Unrecognized key: "naclId"/],
    ['a bad sensor port', { sensor: { tcpPorts: [23, 70000] } }, /portsnare\.sensor\.tcpPorts\.1: Too big/],
    ['a bad duration', { policy: { baseTtl: 'soon' } }, /portsnare\.policy\.baseTtl: "soon" is not a duration/],
    ['an unknown sensor type', { sensor: { type: 'lambda' } }, /portsnare\.sensor\.type: Invalid option/],
    ['an NLB without an existing VPC', { sensor: { nlb: { loadBalancerArn: NLB_ARN, tcpPorts: [23] } } }, /portsnare\.sensor\.nlb: needs sensor\.vpc/],
    ['a bad email', { alarmEmail: 'nobody' }, /portsnare\.alarmEmail: Invalid email/],
    ['JSON that does not parse', '{"naclIds": [', /portsnare: the context value is not JSON/],
    ['a reconcile interval over an hour', { enforcement: { reconcileMinutes: 61 } }, /portsnare\.enforcement\.reconcileMinutes: Too big: expected number to be <=60 \(got 61\)/],
    ['a reconcile interval of 0', { enforcement: { reconcileMinutes: 0 } }, /portsnare\.enforcement\.reconcileMinutes: Too small: expected number to be >=1 \(got 0\)/],
    ['a fractional reconcile interval', { enforcement: { reconcileMinutes: 2.5 } }, /portsnare\.enforcement\.reconcileMinutes: Invalid input: expected int, received number \(got 2\.5\)/],
    ['a reconcile interval as text', { enforcement: { reconcileMinutes: '10' } }, /portsnare\.enforcement\.reconcileMinutes: .*expected number.* \(got "10"\)/],
    ['an unknown enforcement key', { enforcement: { reconcileMinute: 5 } }, /portsnare\.enforcement: Unrecognized key: "reconcileMinute"/],
    ['a negative NACL residence time', { enforcement: { naclResidenceSeconds: -5 } }, /portsnare\.enforcement\.naclResidenceSeconds: Too small: expected number to be >=0 \(got -5\)/],
    ['a NACL residence time over a day', { enforcement: { naclResidenceSeconds: 86_401 } }, /portsnare\.enforcement\.naclResidenceSeconds: Too big: expected number to be <=86400 \(got 86401\)/],
    ['a fractional NACL residence time', { enforcement: { naclResidenceSeconds: 1.5 } }, /portsnare\.enforcement\.naclResidenceSeconds: Invalid input: expected int, received number \(got 1\.5\)/],
  ])('rejects %s, naming the key', (_what, value, message) => {
    const parsed = parsePortsnareContext(value);
    expect(parsed.ok).toBe(false);
    expect(!parsed.ok && parsed.error).toMatch(message);
  });

  it('hands portsnare.enforcement.naclResidenceSeconds to every function\'s settings (nacl.residenceSeconds)', () => {
    const { template } = synth({ sensor: { type: 'none' }, naclIds: ['acl-0123456789abcdef0'], enforcement: { naclResidenceSeconds: 0 } });
    const settings = Object.values(template.findResources('AWS::Lambda::Function'))
      .map((fn) => (fn as { Properties: { Environment?: { Variables?: Record<string, unknown> } } }).Properties.Environment?.Variables?.PORTSNARE_SETTINGS)
      .filter((value) => value !== undefined)
      .map((value) => JSON.parse(flatten(value)) as { nacl: Record<string, unknown> });
    expect(settings.length).toBeGreaterThanOrEqual(4);
    for (const s of settings) expect(s.nacl.residenceSeconds).toBe(0);
  });

  it('reads durations in the command line\'s spelling', () => {
    expect(config({ policy: { baseTtl: '2h', maxTtl: 86400 } }).policy).toEqual({ baseTtl: 7200, maxTtl: 86400 });
  });

  it('reads policy.ipv6BlockPrefix and policy.ttlJitterPercent as the same-named props of every stack', () => {
    const policy = blockPolicyOf(config({ policy: { ipv6BlockPrefix: 56, ttlJitterPercent: 20 } }));
    expect(policy).toMatchObject({ ipv6BlockPrefix: 56, ttlJitterPercent: 20 });
    const { template } = synth({ sensor: { type: 'none' }, naclIds: [], policy: { ipv6BlockPrefix: 56, ttlJitterPercent: 20 } });
    const settings = Object.values(template.findResources('AWS::Lambda::Function'))
      .map((fn) => (fn as { Properties: { Environment?: { Variables?: Record<string, unknown> } } }).Properties.Environment?.Variables?.PORTSNARE_SETTINGS)
      .filter((value) => value !== undefined)
      .map((value) => JSON.parse(flatten(value)) as { policy: Record<string, unknown> });
    expect(settings.length).toBeGreaterThanOrEqual(4);
    for (const doc of settings) expect(doc.policy).toMatchObject({ ipv6BlockPrefix: 56, ttlJitterPercent: 20 });
  });

  it('rejects an IPv6 block prefix or a TTL jitter out of bounds, naming the key and the value', () => {
    expect(() => new PortsnareStack(new App(), 'P', { config: config({ sensor: { type: 'none' }, naclIds: [], policy: { ipv6BlockPrefix: 32, ttlJitterPercent: 101 } }) })).toThrow(
      /policy\.ipv6BlockPrefix 32: must be at least 48\n- policy\.ttlJitterPercent 101: must be at most 100/,
    );
  });

  it('schedules the reconcile every portsnare.enforcement.reconcileMinutes (default 10)', () => {
    const rateOf = (template: Template): unknown[] =>
      resourcesOf(template, 'AWS::Scheduler::Schedule')
        .filter(([id]) => id.includes('Reconcile'))
        .map(([, s]) => (s.Properties as { ScheduleExpression: unknown }).ScheduleExpression);
    expect(rateOf(synth({ sensor: { type: 'none' }, naclIds: [], enforcement: { reconcileMinutes: 3 } }).template)).toEqual(['rate(3 minutes)']);
    expect(rateOf(synth({ sensor: { type: 'none' }, naclIds: [], enforcement: { reconcileMinutes: 1 } }).template)).toEqual(['rate(1 minute)']);
    expect(rateOf(synth({ sensor: { type: 'none' }, naclIds: [] }).template)).toEqual(['rate(10 minutes)']);
  });

  it('reads a JSON string, as `-c portsnare=…` passes it', () => {
    expect(config('{"naclIds":["acl-0123456789abcdef0"]}').naclIds).toEqual(['acl-0123456789abcdef0']);
  });

  it('rejects decoy listeners on ports the sensor does not listen on', () => {
    expect(() =>
      new PortsnareStack(new App(), 'P', {
        config: config({ sensor: { tcpPorts: [23], vpc: EXISTING_VPC, nlb: { loadBalancerArn: NLB_ARN, tcpPorts: [23, 8081] } } }),
      }),
    ).toThrow(/portsnare\.sensor\.nlb: ports tcp 8081 are not decoy ports of the sensor/);
  });
});
