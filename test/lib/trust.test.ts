/**
 * Trust boundaries and a deploy that works the first time, proved on synthesized templates:
 * what a compromised sensor's credentials may put on the bus (its IAM statements evaluated here
 * with their conditions), who may send operator requests, the decoy's Session Manager policy,
 * the agent bundle (nothing from npm, a hash that ignores unrelated files), the deploy signal,
 * the heartbeat alarm per sensor, the pinned image and the synth-time limits.
 * Expected values are literals: the oracle imports nothing from lib/ or core/ but what it drives.
 */
import { appendFileSync, cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as events from 'aws-cdk-lib/aws-events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ec2Sensor, parsePortsnareContext, PortsnareStack, PROJECT_ROOT, vpcCidrsOf } from '../../lib';
import { flatten, projectApp, resourcesOf } from './helpers';

process.env.CDK_VALIDATION = 'false';

type Json = Record<string, unknown>;
interface PolicyStatement {
  Effect: 'Allow' | 'Deny';
  Action: string | string[];
  Resource: unknown;
  Condition?: Record<string, Record<string, string | string[]>>;
}

const EXISTING_VPC = {
  vpcId: 'vpc-0123456789abcdef0',
  vpcCidrBlock: '10.20.0.0/16',
  availabilityZones: ['eu-west-1a'],
  publicSubnetIds: ['subnet-0123456789abcdef0'],
  ipv6CidrBlocks: ['2001:db8:1234::/56'],
};
const OPERATOR = 'arn:aws:iam::123456789012:role/SecOps*';

function synth(context: unknown, env?: { account: string; region: string }): { app: App; template: Template; stack: PortsnareStack } {
  const parsed = parsePortsnareContext(context);
  if (!parsed.ok) throw new Error(parsed.error);
  const app = projectApp();
  const stack = new PortsnareStack(app, 'Portsnare', { config: parsed.value, env });
  return { app, stack, template: Template.fromStack(stack) };
}

function statementsOf(template: Template, rolePrefix: string): PolicyStatement[] {
  const statements: PolicyStatement[] = [];
  for (const [, policy] of resourcesOf(template, 'AWS::IAM::Policy')) {
    const props = policy.Properties as { Roles: Array<{ Ref: string }>; PolicyDocument: { Statement: PolicyStatement[] } };
    if (props.Roles.some((r) => r.Ref.startsWith(rolePrefix))) statements.push(...props.PolicyDocument.Statement);
  }
  expect(statements.length, `inline policies of ${rolePrefix}`).toBeGreaterThan(0);
  return statements;
}

const list = (value: string | string[]): string[] => (Array.isArray(value) ? value : [value]);
const glob = (pattern: string, value: string): boolean =>
  new RegExp(`^${pattern.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`).test(value);

/** IAM's StringEquals / ArnLike / ArnNotLike over a single-valued request context; any other operator fails the test. */
function conditionsHold(condition: PolicyStatement['Condition'], context: Record<string, string>): boolean {
  return Object.entries(condition ?? {}).every(([operator, keys]) =>
    Object.entries(keys).every(([key, wanted]) => {
      const actual = context[key];
      if (actual === undefined) return operator.endsWith('NotLike') || operator.startsWith('StringNot');
      if (operator === 'StringEquals') return list(wanted).includes(actual);
      if (operator === 'ArnLike') return list(wanted).some((p) => glob(p, actual));
      if (operator === 'ArnNotLike') return !list(wanted).some((p) => glob(p, actual));
      throw new Error(`condition operator ${operator} is not evaluated by this test`);
    }),
  );
}

/** Whether identity statements allow PutEvents of (source, detail-type) on the bus `busArn` (flattened). */
function allowsPutEvents(statements: PolicyStatement[], busArn: string, source: string, detailType: string): boolean {
  const context = { 'events:source': source, 'events:detail-type': detailType };
  const applies = (s: PolicyStatement): boolean =>
    list(s.Action).some((a) => glob(a, 'events:PutEvents')) &&
    list(s.Resource as string | string[]).map(flatten).some((r) => glob(r, busArn)) &&
    conditionsHold(s.Condition, context);
  return statements.some((s) => s.Effect === 'Allow' && applies(s)) && !statements.some((s) => s.Effect === 'Deny' && applies(s));
}

function busArnOf(template: Template): string {
  const [bus] = resourcesOf(template, 'AWS::Events::EventBus');
  return `«${bus![0]}.Arn»`;
}

let demo: Template;
let fargate: Template;
beforeAll(() => {
  // the Security Hub export on, so its role is checked against docs/deploy.md too
  demo = synth({ sensor: { type: 'ec2', flowLogs: true }, securityHub: { enabled: true } }).template;
  fargate = synth({ sensor: { type: 'fargate', vpc: EXISTING_VPC, platform: 'X86_64' } }).template;
}, 300_000);

describe('the EC2 demo with flow logs', () => {
  let template: Template;
  let json: { Resources: Record<string, Json> };

  beforeAll(() => {
    template = demo;
    json = template.toJSON() as typeof json;
  });

  it.each([['SensorRole'], ['SensorFlowLogsFunctionRole']])('%s may put sensor events and cannot put an operator request', (role) => {
    const statements = statementsOf(template, role);
    const bus = busArnOf(template);
    expect(allowsPutEvents(statements, bus, 'portsnare.sensor', 'Scan Detected')).toBe(true);
    expect(allowsPutEvents(statements, bus, 'portsnare.cli', 'Block Requested')).toBe(false);
    expect(allowsPutEvents(statements, bus, 'portsnare.cli', 'Unblock Requested')).toBe(false);
    expect(allowsPutEvents(statements, bus, 'portsnare.cli', 'Scan Detected')).toBe(false);
    expect(allowsPutEvents(statements, bus, 'portsnare.sensor', 'Block Requested')).toBe(false);
    expect(allowsPutEvents(statements, bus, 'aws.guardduty', 'GuardDuty Finding')).toBe(false);
  });

  it('lets the EC2 sensor send heartbeats, and the flowlogs function only Scan Detected', () => {
    const bus = busArnOf(template);
    expect(allowsPutEvents(statementsOf(template, 'SensorRole'), bus, 'portsnare.sensor', 'Sensor Heartbeat')).toBe(true);
    expect(allowsPutEvents(statementsOf(template, 'SensorFlowLogsFunctionRole'), bus, 'portsnare.sensor', 'Sensor Heartbeat')).toBe(false);
  });

  it('gives the decoy exactly the Session Manager channel, no managed policy and no parameter access', () => {
    const actions = statementsOf(template, 'SensorRole').flatMap((s) => list(s.Action)).filter((a) => /^(ssm|ssmmessages|ec2messages):/.test(a));
    expect(actions.sort()).toEqual([
      'ssm:UpdateInstanceInformation',
      'ssmmessages:CreateControlChannel',
      'ssmmessages:CreateDataChannel',
      'ssmmessages:OpenControlChannel',
      'ssmmessages:OpenDataChannel',
    ]);
    const [, role] = resourcesOf(template, 'AWS::IAM::Role').find(([id]) => id.startsWith('SensorRole'))!;
    expect((role.Properties as Json).ManagedPolicyArns).toBeUndefined();
  });

  it('waits for the agent\'s /healthz and signals CloudFormation, which waits for that signal', () => {
    const [instanceId, instance] = resourcesOf(template, 'AWS::EC2::Instance')[0]!;
    expect(instance.CreationPolicy).toEqual({ ResourceSignal: { Count: 1, Timeout: 'PT15M' } });
    const userData = flatten((instance.Properties as { UserData: { 'Fn::Base64': unknown } }).UserData['Fn::Base64']);
    expect(userData).toContain('curl -fsS --max-time 2 http://127.0.0.1:9466/healthz');
    expect(userData).toContain(`/opt/aws/bin/cfn-signal --stack Portsnare --resource ${instanceId} --region «AWS::Region» -e $exitCode`);
    expect(userData).not.toMatch(/\bnpm\b|\bnpx\b|registry\.npmjs/);
    // the signal reports the script's exit status: an agent that is not up fails the deploy
    expect(userData).toMatch(/trap exitTrap EXIT/);
  });

  it('watches each sensor\'s heartbeats: a rule per sensor and an alarm on its MatchedEvents, missing data breaching', () => {
    const rules = resourcesOf(template, 'AWS::Events::Rule').filter(([, r]) => JSON.stringify(r.Properties).includes('Sensor Heartbeat'));
    expect(rules).toHaveLength(1);
    const [ruleId, rule] = rules[0]!;
    expect((rule.Properties as Json).EventPattern).toEqual({ source: ['portsnare.sensor'], 'detail-type': ['Sensor Heartbeat'], detail: { sensorId: ['Portsnare/Sensor'] } });
    const alarms = resourcesOf(template, 'AWS::CloudWatch::Alarm').filter(([, a]) => (a.Properties as Json).MetricName === 'MatchedEvents');
    expect(alarms).toHaveLength(1);
    expect(alarms[0]![1].Properties).toMatchObject({
      Namespace: 'AWS/Events',
      // a custom bus: both dimensions, the rule's name from its ARN (test/lib/heartbeat.test.ts evaluates them)
      Dimensions: [
        { Name: 'EventBusName', Value: { Ref: expect.stringMatching(/^BlockerBus/) } },
        { Name: 'RuleName', Value: { 'Fn::Select': [2, { 'Fn::Split': ['/', { 'Fn::GetAtt': [ruleId, 'Arn'] }] }] } },
      ],
      TreatMissingData: 'breaching',
      ComparisonOperator: 'LessThanThreshold',
      Threshold: 1,
    });
    const userData = flatten((resourcesOf(template, 'AWS::EC2::Instance')[0]![1].Properties as { UserData: { 'Fn::Base64': unknown } }).UserData['Fn::Base64']);
    expect(userData).toContain('"sensorId":"Portsnare/Sensor"');
  });

  it('alarms when GuardDuty sees one of your own instances scanning', () => {
    const alarm = resourcesOf(template, 'AWS::CloudWatch::Alarm').find(([, a]) => (a.Properties as Json).MetricName === 'OwnInstanceScanning');
    expect(alarm?.[1].Properties).toMatchObject({ Namespace: 'Portsnare', Threshold: 1 });
  });

  it('leaves nothing with unbounded retention: every log group has a retention and is deleted with the stack', () => {
    const groups = resourcesOf(template, 'AWS::Logs::LogGroup');
    expect(groups.length).toBeGreaterThan(0);
    for (const [id, group] of groups) {
      expect((group.Properties as Json).RetentionInDays, id).toBeGreaterThan(0);
      expect(group.DeletionPolicy, id).toBe('Delete');
    }
    // every function logs into one of those groups, never into an implicit /aws/lambda/… group
    const named = groups.map(([, g]) => JSON.stringify((g.Properties as Json).LogGroupName ?? null));
    for (const [id, fn] of Object.entries(json.Resources).filter(([, r]) => r.Type === 'AWS::Lambda::Function')) {
      const own = ((fn.Properties as Json).LoggingConfig as Json | undefined)?.LogGroup;
      if (own === undefined) expect(named, id).toContain(JSON.stringify({ 'Fn::Join': ['', ['/aws/lambda/', { Ref: id }]] }));
    }
  });
});

describe('operator requests', () => {
  it('with operatorPrincipals: the bus policy denies portsnare.cli events to every other principal', () => {
    const { template } = synth({ operatorPrincipals: [OPERATOR], sensor: { type: 'none' } });
    const policies = resourcesOf(template, 'AWS::Events::EventBusPolicy');
    expect(policies).toHaveLength(1);
    const statement = (policies[0]![1].Properties as { Statement: PolicyStatement }).Statement;
    const denied = (principal: string, source: string): boolean =>
      statement.Effect === 'Deny' && list(statement.Action).includes('events:PutEvents') && conditionsHold(statement.Condition, { 'events:source': source, 'aws:PrincipalArn': principal });
    expect(denied('arn:aws:iam::123456789012:role/Portsnare-SensorRoleD442CA45-ABC', 'portsnare.cli')).toBe(true);
    expect(denied('arn:aws:iam::123456789012:user/mallory', 'portsnare.cli')).toBe(true);
    expect(denied('arn:aws:iam::123456789012:role/SecOpsAdmin', 'portsnare.cli')).toBe(false);
    expect(denied('arn:aws:iam::123456789012:role/Portsnare-SensorRoleD442CA45-ABC', 'portsnare.sensor')).toBe(false);
  }, 120_000);

  it('refuses an operatorPrincipals entry that is not an IAM principal ARN, naming the prop', () => {
    expect(() => synth({ operatorPrincipals: ['secops'], sensor: { type: 'none' } })).toThrow(/operatorPrincipals\[0\] "secops" is not an IAM principal ARN/);
  });
});

describe('a Fargate sensor in an existing dual-stack VPC', () => {
  let template: Template;
  beforeAll(() => {
    template = fargate;
  });

  it('holds its task role to sensor events', () => {
    const statements = statementsOf(template, 'SensorTaskTaskRole');
    const bus = busArnOf(template);
    expect(allowsPutEvents(statements, bus, 'portsnare.sensor', 'Sensor Heartbeat')).toBe(true);
    expect(allowsPutEvents(statements, bus, 'portsnare.cli', 'Block Requested')).toBe(false);
  });

  it('never blocks nor reports the VPC\'s IPv6 range', () => {
    const settings = JSON.stringify(template.toJSON().Outputs);
    expect(settings).toContain('\\"protectedCidrs\\":[\\"10.20.0.0/16\\",\\"2001:db8:1234::/56\\"]');
    const [, task] = resourcesOf(template, 'AWS::ECS::TaskDefinition')[0]!;
    expect(JSON.stringify(task.Properties)).toContain('\\"ignore\\":[\\"10.20.0.0/16\\",\\"2001:db8:1234::/56\\"]');
  });

  it('runs on the platform asked for', () => {
    const [, task] = resourcesOf(template, 'AWS::ECS::TaskDefinition')[0]!;
    expect((task.Properties as Json).RuntimePlatform).toEqual({ CpuArchitecture: 'X86_64', OperatingSystemFamily: 'LINUX' });
  });
});

describe('limits checked at synth, naming the key', () => {
  const NLB = 'arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/net/shop/0123456789abcdef';
  it('a Fargate sensor behind more than 5 load balancer ports (an ECS service has at most 5 target groups)', () => {
    const parsed = parsePortsnareContext({
      sensor: { type: 'fargate', vpc: EXISTING_VPC, tcpPorts: [21, 23, 25, 110, 135, 139], nlb: { loadBalancerArn: NLB, tcpPorts: [21, 23, 25, 110, 135, 139] } },
    });
    expect(parsed.ok).toBe(false);
    expect(!parsed.ok && parsed.error).toMatch(/^portsnare\.sensor\.nlb\.tcpPorts: a Fargate sensor takes at most 5 load balancer ports/m);
  });

  it('more listeners than a load balancer holds', () => {
    const ports = Array.from({ length: 45 }, (_, i) => 1000 + i);
    const parsed = parsePortsnareContext({ sensor: { type: 'ec2', vpc: EXISTING_VPC, tcpPorts: ports, nlb: { loadBalancerArn: NLB, tcpPorts: ports, existingListeners: 6 } } });
    expect(!parsed.ok && parsed.error).toMatch(/portsnare\.sensor\.nlb\.tcpPorts: 45 decoy listeners and existingListeners 6 exceed the 50 listeners/);
  });
});

describe('sensor.type none', () => {
  it('creates no VPC, internet gateway, flow log or sensor; the pipeline protects what it is told', () => {
    const { template } = synth({ sensor: { type: 'none' }, vpcCidrs: ['10.20.0.0/16'] });
    for (const type of ['AWS::EC2::VPC', 'AWS::EC2::InternetGateway', 'AWS::EC2::FlowLog', 'AWS::EC2::Instance', 'AWS::ECS::Service']) template.resourceCountIs(type, 0);
  }, 120_000);
});

describe('the EC2 decoy across changes', () => {
  let root: string;
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  function decoy(projectRoot: string, props: Partial<ConstructorParameters<typeof Ec2Sensor>[2]> = {}, env = { account: '123456789012', region: 'eu-west-1' }) {
    const app = new App({ context: { 'ssm:account=123456789012:parameterName=/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-arm64:region=eu-west-1': 'ami-0aaaaaaaaaaaaaaaa' } });
    const stack = new Stack(app, 'Decoy', { env });
    const vpc = ec2.Vpc.fromVpcAttributes(stack, 'Vpc', { vpcId: 'vpc-0123456789abcdef0', vpcCidrBlock: '10.20.0.0/16', availabilityZones: ['eu-west-1a'], publicSubnetIds: ['subnet-0123456789abcdef0'] });
    const sensor = new Ec2Sensor(stack, 'Sensor', { vpc, eventBus: new events.EventBus(stack, 'Bus'), projectRoot, ...props });
    const template = Template.fromStack(stack);
    const [instanceId, instance] = resourcesOf(template, 'AWS::EC2::Instance')[0]!;
    return { app, template, instanceId, instance, sensor };
  }

  beforeAll(() => {
    root = mkdtempSync(path.join(tmpdir(), 'portsnare-checkout-'));
    for (const dir of ['bin', 'core', 'aws', 'sensor', 'lambda', 'lib', 'packaging', 'scripts']) cpSync(path.join(PROJECT_ROOT, dir), path.join(root, dir), { recursive: true });
    for (const file of ['package.json', 'tsconfig.json']) cpSync(path.join(PROJECT_ROOT, file), path.join(root, file));
    symlinkSync(path.join(PROJECT_ROOT, 'node_modules'), path.join(root, 'node_modules'));
  });

  it('keeps the instance (and its address) when an unrelated file changes, and replaces it when the agent changes', () => {
    const before = decoy(root).instanceId;
    writeFileSync(path.join(root, 'README.md'), `# changed ${Date.now()}\n`);
    appendFileSync(path.join(root, 'lib', 'index.ts'), '\n// an unrelated change\n');
    expect(decoy(root).instanceId).toBe(before);
    appendFileSync(path.join(root, 'sensor', 'config.ts'), '\n(globalThis as Record<string, unknown>).portsnareTestMarker = 1;\n');
    expect(decoy(root).instanceId).not.toBe(before);
  }, 120_000);

  it('ships only the agent bundle and its systemd files', () => {
    const { app } = decoy(root);
    const out = app.synth();
    const assets = JSON.parse(readFileSync(path.join(out.directory, 'Decoy.assets.json'), 'utf8')) as { files: Record<string, { source: { path: string } }> };
    const bundle = Object.values(assets.files).map((f) => f.source.path).find((p) => p.startsWith('asset.'))!;
    const walk = (dir: string): string[] => readdirSync(dir).flatMap((n) => (statSync(path.join(dir, n)).isDirectory() ? walk(path.join(dir, n)).map((f) => `${n}/${f}`) : [n]));
    expect(walk(path.join(out.directory, bundle)).sort()).toEqual([
      'bin/portsnare-eventbridge.js',
      'bin/portsnare-eventbridge.js.map',
      'bin/portsnare-operator.js',
      'bin/portsnare-operator.js.map',
      'bin/portsnare.js',
      'bin/portsnare.js.map',
      'packaging/portsnare-agent-net-admin.conf',
      'packaging/portsnare-agent.service',
    ]);
  }, 120_000);

  it('pins the image: looked up once into the context with an env, or the AMI given; an Elastic IP on request', () => {
    const looked = decoy(root);
    expect(JSON.stringify(looked.instance.Properties)).toContain('ami-0aaaaaaaaaaaaaaaa');
    expect(Object.keys(looked.template.toJSON().Parameters ?? {}).filter((p) => p.includes('SsmParameterValue'))).toEqual([]);

    const given = decoy(root, {
      elasticIp: true,
      machineImage: { getImage: () => ({ imageId: 'ami-0bbbbbbbbbbbbbbbb', osType: ec2.OperatingSystemType.LINUX, userData: ec2.UserData.forLinux() }) },
    });
    expect((given.instance.Properties as Json).ImageId).toBe('ami-0bbbbbbbbbbbbbbbb');
    given.template.resourceCountIs('AWS::EC2::EIP', 1);
    given.template.hasResourceProperties('AWS::EC2::EIPAssociation', { InstanceId: { Ref: given.instanceId } });
  }, 120_000);

  it('with sessionManager false the decoy has no management channel', () => {
    const { template } = decoy(root, { sessionManager: false });
    expect(JSON.stringify(template.toJSON())).not.toMatch(/ssmmessages:|ssm:UpdateInstanceInformation/);
  }, 120_000);
});

describe('own ranges', () => {
  it('a dual-stack VPC of the app brings its IPv6 CIDR', () => {
    const stack = new Stack(new App());
    const vpc = new ec2.Vpc(stack, 'Vpc', { ipProtocol: ec2.IpProtocol.DUAL_STACK, natGateways: 0, subnetConfiguration: [{ name: 'p', subnetType: ec2.SubnetType.PUBLIC }] });
    const cidrs = stack.resolve(vpcCidrsOf(vpc)) as unknown[];
    expect(cidrs).toHaveLength(2);
    expect(JSON.stringify(cidrs[1])).toContain('Ipv6CidrBlocks');
    const v4only = new ec2.Vpc(stack, 'V4', { natGateways: 0, subnetConfiguration: [{ name: 'p', subnetType: ec2.SubnetType.PUBLIC }] });
    expect(vpcCidrsOf(v4only)).toHaveLength(1);
  });
});

/** Every action (and `policy/<name>` managed policy) each role of `template` may use, by logical id. */
function grantsByRole(template: Template): Map<string, Set<string>> {
  const roles = new Map<string, Set<string>>();
  const json = template.toJSON() as { Resources: Record<string, { Type: string; Properties: Json }> };
  for (const [id, r] of Object.entries(json.Resources).filter(([, r]) => r.Type === 'AWS::IAM::Role')) {
    const grants = new Set<string>();
    for (const arn of (r.Properties.ManagedPolicyArns as unknown[] | undefined) ?? []) grants.add(`policy/${flatten(arn).split(':policy/')[1]!}`);
    for (const policy of (r.Properties.Policies as Array<{ PolicyDocument: { Statement: PolicyStatement[] } }> | undefined) ?? []) {
      for (const st of policy.PolicyDocument.Statement) if (st.Effect === 'Allow') list(st.Action).forEach((a) => grants.add(a));
    }
    roles.set(id, grants);
  }
  for (const [, policy] of Object.entries(json.Resources).filter(([, r]) => r.Type === 'AWS::IAM::Policy')) {
    const props = policy.Properties as { Roles: Array<{ Ref?: string }>; PolicyDocument: { Statement: PolicyStatement[] } };
    for (const role of props.Roles) {
      for (const st of props.PolicyDocument.Statement) if (st.Effect === 'Allow') list(st.Action).forEach((a) => roles.get(role.Ref ?? '')?.add(a));
    }
  }
  return roles;
}

describe('docs/deploy.md, "What a security reviewer will ask"', () => {
  it('lists exactly the roles and actions of the synthesized templates', () => {
    const doc = readFileSync(path.join(PROJECT_ROOT, 'docs', 'deploy.md'), 'utf8');
    const section = doc.split('## What a security reviewer will ask')[1]!.split('\n## ')[0]!;
    const documented = new Map<string, string[]>();
    for (const line of section.split('\n').filter((l) => l.startsWith('| `'))) {
      const [roleCell, actionCell] = line.slice(2).split(' | ');
      const rolePath = /`([^`]+)`/.exec(roleCell!)![1]!;
      documented.set(rolePath.replace(/[^A-Za-z0-9]/g, ''), [...actionCell!.matchAll(/`([^`]+)`/g)].map((m) => m[1]!).sort());
    }
    expect(documented.size).toBeGreaterThan(10);
    const granted = new Map<string, Set<string>>();
    for (const template of [demo, fargate]) {
      for (const [logicalId, grants] of grantsByRole(template)) {
        const key = [...documented.keys()].find((k) => logicalId.startsWith(k) && /^[0-9A-F]{8}$/.test(logicalId.slice(k.length)));
        expect(key, `role ${logicalId} is not in docs/deploy.md`).toBeDefined();
        granted.set(key!, new Set([...(granted.get(key!) ?? []), ...grants]));
      }
    }
    // the union over both stacks (the enforce role has NACL actions only where there are ACLs)
    for (const [key, grants] of granted) expect(documented.get(key), `docs/deploy.md row of ${key}`).toEqual([...grants].sort());
    const seen = new Set(granted.keys());
    expect([...documented.keys()].filter((k) => !seen.has(k)), 'rows of roles the templates do not have').toEqual([]);
  });
});
