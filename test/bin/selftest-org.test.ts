/**
 * `portsnare selftest --org --stack DECISION_STACK`: the decision stack lists its planes' stacks
 * (PortsnarePlaneStacks); each plane stack is read in its own Region and its IP sets and ACLs are
 * watched. The fake organization runs on the wire: the decision bus hands operator requests to
 * the REAL decide (the desired state on dynalite), and the fan-out is the wake-up delivered to
 * each plane's REAL enforce, which reads the decision table and keeps its placement ledger in its
 * own table, writing through the REAL EC2 and WAFv2 clients to the wire fakes. Output keys are
 * spelled out. The canary, 192.0.2.254, is in TEST-NET-1 (RFC 5737).
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { CloudClients } from '../../bin/commands/stack/clients';
import { SNSClient } from '@aws-sdk/client-sns';
import type { WafSetRef } from '../../core/settings';
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
import { ACL_A, ACL_B, SET_V4, SET_V4_2, testSettings } from '../fakes/world';
import { FakePutEvents, type ReceivedEntry } from '../sensor/fake-putevents';
import { CloudWatchWire } from '../wire/cloudwatch-server';
import { type LocalTable, startDynalite } from '../wire/dynalite';
import { Ec2Server } from '../wire/ec2-server';
import { SnsWire } from '../wire/sns-server';
import { WafServer } from '../wire/wafv2-server';
import { type CliResult, runCli } from './cli';
import { CloudFormationWire } from './cloudformation-wire';

const DECISION = 'portsnare-decision';
const BUS = 'portsnare-decision-bus';
const CANARY = '192.0.2.254';
const CREDENTIALS = { accessKeyId: 'AKIDTEST', secretAccessKey: 'test-secret' };
const DECISION_TOPIC = 'arn:aws:sns:eu-west-1:111122223333:portsnare-decision-Alarms-1A2B';
const PLANE_A_TOPIC = 'arn:aws:sns:eu-west-1:444455556666:portsnare-plane-Alarms-3C4D';
const guard = { allowlist: [], protectedCidrs: ['10.0.0.0/8'], blockableSpecialCidrs: [`${CANARY}/32`], blockSpecialRanges: false };
const SET_B: WafSetRef = { ...SET_V4_2, scope: 'REGIONAL' };
const PLANES = [
  { id: '444455556666/eu-west-1', stack: 'portsnare-plane-444455556666-eu-west-1', region: 'eu-west-1', acl: ACL_A, set: SET_V4, ledger: 'ledger-a', topic: PLANE_A_TOPIC },
  { id: '777788889999/us-east-1', stack: 'portsnare-plane-777788889999-us-east-1', region: 'us-east-1', acl: ACL_B, set: SET_B, ledger: 'ledger-b', topic: '-' },
] as const;
const planeSettings = PLANES.map((plane) => testSettings({ guard, nacl: { aclIds: [plane.acl], ruleRange: [10, 60], quotaPerDirection: 20 }, waf: { sets: [plane.set] } }));
const decisionSettings = testSettings({ guard, nacl: { aclIds: [], ruleRange: [10, 60], quotaPerDirection: 20 }, waf: { sets: [] } });

const clock = new SimClock();
const obs = new RecordingObservability();
const sqs = new FakeSqs(clock);
const ec2 = new Ec2Server(new FakeEc2(20, () => 0.5));
const waf = new WafServer(clock, () => 0.5);
const bus = new FakePutEvents();
const cfn = new CloudFormationWire();
const cw = new CloudWatchWire();
const sns = new SnsWire();
let table: LocalTable;
let busEndpoint: string;
let decide: (event: unknown) => Promise<unknown>;
let enforcers: Array<(event: SQSEvent) => Promise<unknown>> = [];
let pipeline: Promise<void> = Promise.resolve();
const pipelineErrors: unknown[] = [];
let seq = 0;
/** planes that receive the fan-out (a plane left out never enforces) */
let fanOutTo = new Set<number>([0, 1]);

function arn(ref: WafSetRef, account: string, region: string): string {
  return `arn:aws:wafv2:${region}:${account}:regional/ipset/${ref.name}/${ref.id}`;
}

function deliver(entry: ReceivedEntry): void {
  if (entry.EventBusName !== BUS || entry.Source !== 'portsnare.cli') return;
  pipeline = pipeline
    .then(async () => {
      await decide({ version: '0', id: `org-evt-${++seq}`, 'detail-type': entry.DetailType, source: entry.Source, account: '111122223333', time: new Date(clock.now()).toISOString(), region: 'eu-west-1', resources: [], detail: JSON.parse(entry.Detail) as unknown });
      // the fan-out: each plane's enforce runs on the wake-up and reads the decision table
      await deliverFifo(sqs, clock, async (event) => {
        for (const [index, enforce] of enforcers.entries()) if (fanOutTo.has(index)) await enforce(event);
      }, { maxInvocations: 50 });
    })
    .catch((error: unknown) => void pipelineErrors.push(error));
}

function clients(region: string | undefined): CloudClients {
  return {
    cloudFormation: cfn.client(region ?? 'eu-west-1'),
    dynamo: DynamoDBDocumentClient.from(new DynamoDBClient({ region: region ?? 'eu-west-1', endpoint: table.endpoint, credentials: CREDENTIALS, maxAttempts: 2 }), { marshallOptions: { removeUndefinedValues: true } }),
    events: new EventBridgeClient({ region: region ?? 'eu-west-1', endpoint: busEndpoint, credentials: CREDENTIALS, maxAttempts: 1 }),
    waf: () => waf.client(1),
    ec2: ec2.client(1),
    cloudWatch: cw.client(region ?? 'eu-west-1'),
    sns: new SNSClient({ region: region ?? 'eu-west-1', endpoint: sns.endpoint, credentials: CREDENTIALS, maxAttempts: 1 }),
  };
}

function selftest(): Promise<CliResult> {
  return runCli(['selftest', '--org', '--stack', DECISION, '--region', 'eu-west-1', '--timeout', '5', '--poll-ms', '50'], { cloud: clients });
}

beforeAll(async () => {
  table = await startDynalite('portsnare-decision');
  for (const plane of PLANES) {
    await table.addTable(plane.ledger);
    ec2.ec2.addAcl(plane.acl, { ipv6: true });
    waf.waf.addSet(plane.set);
  }
  await Promise.all([ec2.start(), waf.start(), cfn.start(), cw.start(), sns.start()]);
  busEndpoint = await bus.start();
  bus.onAccepted = deliver;
  const repo = new BlockRepository(table.doc, table.tableName);
  decide = createDecide({ repo, queue: new EnforceQueue(sqs.client, sqs.queueUrl), burst: new BurstGate(table.doc, table.tableName, clock), settings: decisionSettings, obs, clock });
  enforcers = PLANES.map((plane, index) => {
    const settings = planeSettings[index]!;
    const nacl = new NaclAdapter(ec2.client(2), clock, obs, () => 0.5, new PlacementLedger(table.doc, plane.ledger), settings.nacl.ruleRange);
    const wafAdapter = new WafAdapter({ REGIONAL: waf.client(2) }, clock, obs, new UpdatePacer(), () => 0.5);
    return createEnforce({ repo, nacl, waf: wafAdapter, settings, obs, clock }) as (event: SQSEvent) => Promise<unknown>;
  });
});

afterAll(async () => {
  await pipeline;
  await Promise.all([ec2.stop(), waf.stop(), cfn.stop(), cw.stop(), sns.stop(), bus.stop()]);
  await table?.stop();
});

beforeEach(async () => {
  await pipeline;
  fanOutTo = new Set([0, 1]);
  sns.reset();
  sns.topics.set(DECISION_TOPIC, { allowsCaller: true });
  sns.topics.set(PLANE_A_TOPIC, { allowsCaller: true });
  cfn.stacks.clear();
  cfn.stacks.set(DECISION, {
    status: 'UPDATE_COMPLETE',
    outputs: {
      PortsnareTableName: table.tableName,
      PortsnareEventBusName: BUS,
      PortsnareEventBusArn: `arn:aws:events:eu-west-1:111122223333:event-bus/${BUS}`,
      PortsnareIpSetArns: '-',
      PortsnareRuleGroupArn: '-',
      PortsnareSettings: JSON.stringify(decisionSettings),
      PortsnarePlanes: JSON.stringify(PLANES.map((p) => p.id)),
      PortsnarePlaneStacks: JSON.stringify(Object.fromEntries(PLANES.map((p) => [p.id, p.stack]))),
      PortsnareAlarmTopicArn: DECISION_TOPIC,
      PortsnareCanaryAddress: CANARY,
    },
  });
  PLANES.forEach((plane, index) => {
    const account = plane.id.split('/')[0]!;
    cfn.stacks.set(plane.stack, {
      status: 'CREATE_COMPLETE',
      outputs: {
        PortsnareIpSetArns: arn(plane.set, account, plane.region),
        PortsnareRuleGroupArn: `arn:aws:wafv2:${plane.region}:${account}:regional/rulegroup/portsnare/2222`,
        PortsnareSettings: JSON.stringify(planeSettings[index]),
        PortsnareLedgerTableName: plane.ledger,
        PortsnareAlarmTopicArn: plane.topic,
      },
    });
  });
});

describe('selftest --org', () => {
  it('sees the canary come and go in every plane\'s IP set and ACL, publishes to each alarm topic: exit 0', async () => {
    const result = await selftest();

    expect(pipelineErrors).toEqual([]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^ok\s+plane 444455556666\/eu-west-1 stack portsnare-plane-444455556666-eu-west-1 in eu-west-1$/m);
    expect(result.stdout).toMatch(/^ok\s+plane 777788889999\/us-east-1 stack portsnare-plane-777788889999-us-east-1 in us-east-1$/m);
    expect(result.stdout).toMatch(
      /^ok\s+canary blocked\s+192\.0\.2\.254: 4 points in \d+s \(444455556666\/eu-west-1 waf:portsnare-v4-0 \d+s, 444455556666\/eu-west-1 nacl:acl-0a1b2c3d4e5f60001 \d+s, 777788889999\/us-east-1 waf:portsnare-v4-1 \d+s, 777788889999\/us-east-1 nacl:acl-0a1b2c3d4e5f60002 \d+s\)$/m,
    );
    expect(result.stdout).toMatch(/^ok\s+canary lifted\s+192\.0\.2\.254: 4 points/m);
    expect(result.stdout).toMatch(/^ok\s+alarm topic portsnare-decision arn:aws:sns:eu-west-1:111122223333:portsnare-decision-Alarms-1A2B accepted/m);
    expect(result.stdout).toMatch(/^ok\s+alarm topic 444455556666\/eu-west-1 arn:aws:sns:eu-west-1:444455556666:portsnare-plane-Alarms-3C4D accepted/m);
    expect(result.stdout).toMatch(/^skipped\s+alarm topic 777788889999\/us-east-1 the stack has no alarm topic/m);
    expect(result.stdout).toMatch(/selftest passed — decision stack portsnare-decision \(eu-west-1\)\n$/);
    expect(sns.published.map((m) => m.topicArn)).toEqual([DECISION_TOPIC, PLANE_A_TOPIC]);
  });

  it('names the plane that never enforces, and a plane stack it cannot read', async () => {
    fanOutTo = new Set([0]);
    cfn.stacks.delete(PLANES[1].stack);
    cfn.stacks.set(PLANES[1].stack.replace('777788889999', '777788889990'), { outputs: {} });
    const unreadable = await selftest();
    expect(unreadable.code).toBe(6);
    expect(unreadable.stdout).toMatch(/^FAILED\s+plane 777788889999\/us-east-1 unknown stack "portsnare-plane-777788889999-us-east-1" in us-east-1/m);

    await pipeline;
    cfn.stacks.set(PLANES[1].stack, { status: 'CREATE_COMPLETE', outputs: { PortsnareIpSetArns: arn(SET_B, '777788889999', 'us-east-1'), PortsnareRuleGroupArn: '-', PortsnareSettings: JSON.stringify(planeSettings[1]), PortsnareLedgerTableName: 'ledger-b', PortsnareAlarmTopicArn: '-' } });
    const silent = await selftest();
    expect(silent.code).toBe(6);
    expect(silent.stdout).toMatch(/^FAILED\s+canary blocked\s+192\.0\.2\.254: not in 777788889999\/us-east-1 waf:portsnare-v4-1, 777788889999\/us-east-1 nacl:acl-0a1b2c3d4e5f60002 after 5s$/m);
  });
});
