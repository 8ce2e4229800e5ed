/**
 * `portsnare selftest --stack`: against a fake deployment on the wire. The stack's outputs come
 * from the CloudFormation Query fake (cloudformation-wire.ts); the bus is an EventBridge PutEvents
 * endpoint (test/sensor/fake-putevents.ts) whose "rules" hand each accepted event to the REAL
 * decide handler, and drain the FIFO queue through the REAL enforce handler, over the REAL
 * EC2Client and WAFV2Client to the EC2 and WAFv2 wire fakes, with the table on dynalite; the alarm
 * topic is the SNS Query fake (test/wire/sns-server.ts), the heartbeats the CloudWatch fake's
 * ListMetrics (test/wire/cloudwatch-server.ts). Output keys are spelled out, so a renamed key in
 * core/outputs.ts fails here. The canary, 192.0.2.254, is in TEST-NET-1 (RFC 5737).
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { CloudClients } from '../../bin/commands/stack/clients';
import { SNSClient } from '@aws-sdk/client-sns';
import { BurstGate } from '../../lambda/decide/burst';
import { createHandler as createDecide } from '../../lambda/decide/handler';
import { createHandler as createEnforce } from '../../lambda/enforce/handler';
import { NaclAdapter } from '../../aws/nacl-adapter';
import { EnforceQueue } from '../../lambda/shared/queue';
import { BlockRepository, PlacementLedger } from '../../aws/repository';
import { UpdatePacer, WafAdapter } from '../../aws/waf-adapter';
import { SimClock } from '../fakes/clock';
import { FakeEc2 } from '../fakes/ec2';
import { RecordingObservability } from '../fakes/observability';
import { deliverFifo, FakeSqs } from '../fakes/sqs';
import { ACL_A, ACL_B, SET_V4, SET_V4_2, SET_V6, testSettings } from '../fakes/world';
import { FakePutEvents, type ReceivedEntry } from '../sensor/fake-putevents';
import { CloudWatchWire } from '../wire/cloudwatch-server';
import { type LocalTable, startDynalite } from '../wire/dynalite';
import { Ec2Server } from '../wire/ec2-server';
import { SnsWire } from '../wire/sns-server';
import { WafServer } from '../wire/wafv2-server';
import { type CliResult, runCli } from './cli';
import { CloudFormationWire } from './cloudformation-wire';

const STACK = 'portsnare-selftest';
const REGION = 'eu-west-1';
const BUS = `${STACK}-bus`;
const CANARY = '192.0.2.254';
const TOPIC = 'arn:aws:sns:eu-west-1:111122223333:portsnare-Alarms-1A2B3C';
const CREDENTIALS = { accessKeyId: 'AKIDTEST', secretAccessKey: 'test-secret' };
const EC2_SENSOR = { sensorId: 'Portsnare/Sensor', ruleName: 'portsnare-SensorHeartbeatRule-1A2B', alarmName: 'portsnare-SensorHeartbeatAlarm-3C4D', busName: BUS };
const EDGE_SENSOR = { sensorId: 'edge-fargate', ruleName: 'portsnare-EdgeHeartbeatRule-5E6F', alarmName: 'portsnare-EdgeHeartbeatAlarm-7A8B', busName: BUS };

// the stack's guard: only the canary's host CIDR among the special-purpose ranges
const settings = testSettings({ guard: { allowlist: [], protectedCidrs: ['10.0.0.0/16'], blockableSpecialCidrs: [`${CANARY}/32`], blockSpecialRanges: false } });
const clock = new SimClock();
const obs = new RecordingObservability();
const sqs = new FakeSqs(clock);
const ec2 = new Ec2Server(new FakeEc2(settings.nacl.quotaPerDirection, () => 0.5));
const waf = new WafServer(clock, () => 0.5);
const bus = new FakePutEvents();
const cfn = new CloudFormationWire();
const cw = new CloudWatchWire();
const sns = new SnsWire();
let table: LocalTable;
let busEndpoint: string;
let decide: (event: unknown) => Promise<unknown>;
let enforce: (event: SQSEvent) => Promise<unknown>;
let pipeline: Promise<void> = Promise.resolve();
const pipelineErrors: unknown[] = [];
let seq = 0;

function arn(ref: typeof SET_V4): string {
  return `arn:aws:wafv2:${REGION}:111122223333:regional/ipset/${ref.name}/${ref.id}`;
}

/** The rules behind the bus: an operator request goes to decide, then the enforce queue drains. */
function deliver(entry: ReceivedEntry): void {
  if (entry.EventBusName !== BUS || entry.Source !== 'portsnare.cli') return;
  pipeline = pipeline
    .then(async () => {
      await decide({
        version: '0',
        id: `selftest-evt-${++seq}`,
        'detail-type': entry.DetailType,
        source: entry.Source,
        account: '111122223333',
        time: new Date(clock.now()).toISOString(),
        region: REGION,
        resources: [],
        detail: JSON.parse(entry.Detail) as unknown,
      });
      await deliverFifo(sqs, clock, enforce, { maxInvocations: 50 });
    })
    .catch((error: unknown) => void pipelineErrors.push(error));
}

function outputs(overrides: Record<string, string> = {}): Record<string, string> {
  return {
    PortsnareTableName: table.tableName,
    PortsnareEventBusName: BUS,
    PortsnareEventBusArn: `arn:aws:events:${REGION}:111122223333:event-bus/${BUS}`,
    PortsnareIpSetArns: [arn(SET_V4), arn(SET_V6)].join(','),
    PortsnareRuleGroupArn: `arn:aws:wafv2:${REGION}:111122223333:regional/rulegroup/portsnare/2222`,
    PortsnareSettings: JSON.stringify(settings),
    PortsnareSensors: JSON.stringify([EC2_SENSOR]),
    PortsnareAlarmTopicArn: TOPIC,
    PortsnareCanaryAddress: CANARY,
    ...overrides,
  };
}

function clients(region: string | undefined): CloudClients {
  return {
    cloudFormation: cfn.client(region ?? REGION),
    dynamo: DynamoDBDocumentClient.from(new DynamoDBClient({ region: REGION, endpoint: table.endpoint, credentials: CREDENTIALS, maxAttempts: 2 }), {
      marshallOptions: { removeUndefinedValues: true },
    }),
    events: new EventBridgeClient({ region: REGION, endpoint: busEndpoint, credentials: CREDENTIALS, maxAttempts: 1 }),
    waf: () => waf.client(1),
    ec2: ec2.client(1),
    cloudWatch: cw.client(REGION),
    sns: new SNSClient({ region: region ?? REGION, endpoint: sns.endpoint, credentials: CREDENTIALS, maxAttempts: 1 }),
  };
}

function selftest(args: readonly string[] = []): Promise<CliResult> {
  return runCli(['selftest', '--stack', STACK, '--region', REGION, '--timeout', '20', '--poll-ms', '50', ...args], { cloud: clients });
}

/** A heartbeat as EventBridge counts a rule on a custom bus: MatchedEvents with EventBusName and RuleName. */
function heartbeat(sensor: typeof EC2_SENSOR, agoMs: number): void {
  cw.publish('AWS/Events', 'MatchedEvents', { EventBusName: sensor.busName, RuleName: sensor.ruleName }, Date.now() - agoMs);
}

/** What the enforcers hold of the canary, read from the fakes' own state. */
function canaryIn(): string[] {
  const places: string[] = [];
  if (waf.waf.addresses(SET_V4).includes(`${CANARY}/32`)) places.push('waf:v4');
  for (const aclId of [ACL_A, ACL_B]) {
    if (ec2.ec2.entries(aclId).some((e) => !e.Egress && e.RuleAction === 'deny' && e.CidrBlock === `${CANARY}/32`)) places.push(`nacl:${aclId}`);
  }
  return places;
}

beforeAll(async () => {
  table = await startDynalite('portsnare-selftest');
  for (const aclId of settings.nacl.aclIds) ec2.ec2.addAcl(aclId, { ipv6: true });
  for (const ref of settings.waf.sets) waf.waf.addSet(ref);
  await Promise.all([ec2.start(), waf.start(), cfn.start(), cw.start(), sns.start()]);
  busEndpoint = await bus.start();
  bus.onAccepted = deliver;
  const repo = new BlockRepository(table.doc, table.tableName);
  // as enforce's defaultDeps wires it: this stack's placement ledger in its table
  const nacl = new NaclAdapter(ec2.client(2), clock, obs, () => 0.5, new PlacementLedger(table.doc, table.tableName), settings.nacl.ruleRange);
  const wafAdapter = new WafAdapter({ REGIONAL: waf.client(2) }, clock, obs, new UpdatePacer(), () => 0.5);
  decide = createDecide({ repo, queue: new EnforceQueue(sqs.client, sqs.queueUrl), burst: new BurstGate(table.doc, table.tableName, clock), settings, obs, clock });
  enforce = createEnforce({ repo, nacl, waf: wafAdapter, settings, obs, clock }) as (event: SQSEvent) => Promise<unknown>;
});

afterAll(async () => {
  await pipeline;
  await Promise.all([ec2.stop(), waf.stop(), cfn.stop(), cw.stop(), sns.stop(), bus.stop()]);
  await table?.stop();
});

beforeEach(async () => {
  await pipeline;
  cw.reset();
  sns.reset();
  sns.topics.set(TOPIC, { allowsCaller: true });
  cfn.stacks.set(STACK, { status: 'UPDATE_COMPLETE', outputs: outputs() });
  heartbeat(EC2_SENSOR, 4 * 60_000);
  bus.accepted.length = 0;
});

describe('selftest --stack against a healthy deployment', () => {
  it('blocks the canary through the bus, sees it in every IP set and ACL, lifts it, publishes to the alarm topic, finds the heartbeat: exit 0', async () => {
    const result = await selftest();

    expect(result.stderr).toBe('');
    expect(pipelineErrors).toEqual([]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^ok\s+stack\s+portsnare-selftest UPDATE_COMPLETE$/m);
    expect(result.stdout).toMatch(/^ok\s+canary blocked\s+192\.0\.2\.254: 3 points in \d+s \(waf:portsnare-v4-0 \d+s, nacl:acl-0a1b2c3d4e5f60001 \d+s, nacl:acl-0a1b2c3d4e5f60002 \d+s\); 1 IP set of the other family read and without it$/m);
    expect(result.stdout).toMatch(/^ok\s+canary lifted\s+192\.0\.2\.254: 3 points/m);
    expect(result.stdout).toMatch(/^ok\s+alarm topic\s+arn:aws:sns:eu-west-1:111122223333:portsnare-Alarms-1A2B3C accepted a test publish \(message [0-9a-f-]{36}\)$/m);
    expect(result.stdout).toMatch(/^ok\s+sensor Portsnare\/Sensor\s+heartbeat metric AWS\/Events MatchedEvents EventBusName=portsnare-selftest-bus RuleName=portsnare-SensorHeartbeatRule-1A2B has data in the last 3 h$/m);
    expect(result.stdout).toMatch(/\nselftest passed — stack portsnare-selftest \(eu-west-1\)\n$/);
    // the operator requests as the CLI's block and unblock send them, on the stack's bus
    expect(bus.accepted.map((e) => [e.EventBusName, e.Source, e.DetailType])).toEqual([
      [BUS, 'portsnare.cli', 'Block Requested'],
      [BUS, 'portsnare.cli', 'Unblock Requested'],
    ]);
    expect(JSON.parse(bus.accepted[0]!.Detail)).toMatchObject({ version: 1, target: CANARY, ttlSeconds: 600 });
    // lifted for real: no enforcer holds it any more
    await pipeline;
    expect(canaryIn()).toEqual([]);
    expect(sns.published).toHaveLength(1);
    expect(sns.published[0]).toMatchObject({ topicArn: TOPIC, subject: 'portsnare selftest' });
    const listed = JSON.parse(cw.requests.find((r) => r.op === 'ListMetrics')!.body) as Record<string, unknown>;
    expect(listed).toEqual({
      Namespace: 'AWS/Events',
      MetricName: 'MatchedEvents',
      Dimensions: [{ Name: 'EventBusName', Value: BUS }, { Name: 'RuleName', Value: EC2_SENSOR.ruleName }],
      RecentlyActive: 'PT3H',
    });
  });

  it('prints the checks as JSON', async () => {
    const result = await selftest(['--json']);

    expect(result.code).toBe(0);
    const document = JSON.parse(result.stdout) as { ok: boolean; canary: string; checks: Array<{ name: string; state: string }> };
    expect(document.ok).toBe(true);
    expect(document.canary).toBe(CANARY);
    expect(document.checks.map((c) => [c.name, c.state])).toEqual([
      ['stack', 'ok'],
      ['canary blocked', 'ok'],
      ['canary lifted', 'ok'],
      ['alarm topic', 'ok'],
      ['sensor Portsnare/Sensor', 'ok'],
    ]);
  });

  it('lifts a canary an interrupted selftest left in force before proving anything', async () => {
    deliver({ Source: 'portsnare.cli', DetailType: 'Block Requested', EventBusName: BUS, Detail: JSON.stringify({ version: 1, target: CANARY, ttlSeconds: 600, requestedBy: 'earlier selftest' }) });
    await pipeline;
    expect(canaryIn()).toEqual(['waf:v4', `nacl:${ACL_A}`, `nacl:${ACL_B}`]);

    const result = await selftest();

    expect(result.code).toBe(0);
    expect(bus.accepted.map((e) => e.DetailType)).toEqual(['Unblock Requested', 'Block Requested', 'Unblock Requested']);
    await pipeline;
    expect(canaryIn()).toEqual([]);
  });
});

describe('selftest --stack: each failure named, exit 6', () => {
  it('an IP set the stack lists does not exist', async () => {
    cfn.stacks.set(STACK, { status: 'UPDATE_COMPLETE', outputs: outputs({ PortsnareIpSetArns: [arn(SET_V4), arn(SET_V4_2), arn(SET_V6)].join(',') }) });

    const result = await selftest();

    expect(result.code).toBe(6);
    expect(result.stdout).toMatch(/^FAILED\s+canary blocked\s+192\.0\.2\.254: waf:portsnare-v4-1 cannot be read: WAFNonexistentItemException: /m);
    expect(result.stdout).toMatch(/\nselftest FAILED — stack portsnare-selftest \(eu-west-1\): canary blocked, canary lifted\n$/);
    // the other checks still ran
    expect(result.stdout).toMatch(/^ok\s+alarm topic\s/m);
    await pipeline;
    expect(canaryIn()).toEqual([]);
  });

  it('the alarm topic refuses publishes (AuthorizationError)', async () => {
    sns.topics.set(TOPIC, { allowsCaller: false });

    const result = await selftest();

    expect(result.code).toBe(6);
    expect(result.stdout).toMatch(
      /^FAILED\s+alarm topic\s+arn:aws:sns:eu-west-1:111122223333:portsnare-Alarms-1A2B3C refused the test publish: AuthorizationErrorException: User: arn:aws:iam::111122223333:user\/ops is not authorized to perform: SNS:Publish/m,
    );
    expect(result.stdout).toMatch(/selftest FAILED — stack portsnare-selftest \(eu-west-1\): alarm topic\n$/);
    expect(sns.published).toEqual([]);
  });

  it('a sensor never sent a heartbeat (and one counted under other dimensions is not it)', async () => {
    cfn.stacks.set(STACK, { status: 'UPDATE_COMPLETE', outputs: outputs({ PortsnareSensors: JSON.stringify([EC2_SENSOR, EDGE_SENSOR]) }) });
    cw.publish('AWS/Events', 'MatchedEvents', { RuleName: EDGE_SENSOR.ruleName }, Date.now() - 60_000);

    const result = await selftest();

    expect(result.code).toBe(6);
    expect(result.stdout).toMatch(/^ok\s+sensor Portsnare\/Sensor\s/m);
    expect(result.stdout).toMatch(
      /^FAILED\s+sensor edge-fargate\s+no heartbeat: CloudWatch lists no AWS\/Events MatchedEvents EventBusName=portsnare-selftest-bus RuleName=portsnare-EdgeHeartbeatRule-5E6F with data in the last 3 h/m,
    );
    expect(result.stdout).toMatch(/selftest FAILED — stack portsnare-selftest \(eu-west-1\): sensor edge-fargate\n$/);
  });

  it('a heartbeat older than 3 hours is not a live sensor', async () => {
    cw.reset();
    heartbeat(EC2_SENSOR, 4 * 3600_000);

    const result = await selftest();

    expect(result.code).toBe(6);
    expect(result.stdout).toMatch(/^FAILED\s+sensor Portsnare\/Sensor\s+no heartbeat/m);
  });

  it('the stack has no canary output (an older portsnare) or no canary configured', async () => {
    const older = Object.fromEntries(Object.entries(outputs()).filter(([key]) => key !== 'PortsnareCanaryAddress'));
    cfn.stacks.set(STACK, { status: 'UPDATE_COMPLETE', outputs: older });
    const withoutOutput = await selftest();
    cfn.stacks.set(STACK, { status: 'UPDATE_COMPLETE', outputs: outputs({ PortsnareCanaryAddress: '-' }) });
    const disabled = await selftest();

    expect(withoutOutput.code).toBe(6);
    expect(withoutOutput.stdout).toMatch(/^FAILED\s+canary\s+stack portsnare-selftest has no PortsnareCanaryAddress output \(deployed by an older portsnare\)/m);
    expect(disabled.code).toBe(6);
    expect(disabled.stdout).toMatch(/^FAILED\s+canary\s+the stack has no canary \(portsnare\.selftest\.canaryAddress is false\)/m);
    expect(bus.accepted).toEqual([]);
  });

  it('the stack\'s own guard refuses the canary: nothing is sent', async () => {
    const guarded = { ...settings, guard: { ...settings.guard, blockableSpecialCidrs: [] } };
    cfn.stacks.set(STACK, { status: 'UPDATE_COMPLETE', outputs: outputs({ PortsnareSettings: JSON.stringify(guarded) }) });

    const result = await selftest();

    expect(result.code).toBe(6);
    expect(result.stdout).toMatch(/^FAILED\s+canary\s+the stack's own guard refuses the canary 192\.0\.2\.254: special-purpose range/m);
    expect(bus.accepted).toEqual([]);
  });

  it('an unknown stack is exit 4, and --stack is required (exit 2)', async () => {
    expect((await runCli(['selftest', '--stack', 'nope', '--region', REGION], { cloud: clients })).code).toBe(4);
    const usage = await runCli(['selftest'], { cloud: clients });
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/selftest needs --stack NAME/);
  });
});
