/**
 * `status --stack`: each sensor's last heartbeat and alarm state, read by the REAL CloudWatchClient
 * over HTTP from the CloudWatch wire fake (test/wire/cloudwatch-server.ts), which answers only
 * the metric with the exact dimensions it was published with, as CloudWatch does. The stack and
 * its table come from the fake account (fake-stack.ts). Heartbeats are published the way
 * EventBridge counts a rule on a custom bus: AWS/Events MatchedEvents with EventBusName and
 * RuleName (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-monitoring.html).
 * Expected times are worked out by hand: NOW is on a 5-minute boundary, so a heartbeat 4 minutes
 * ago falls in the period that started 5 minutes ago.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { cloudClients } from '../../bin/commands/stack/clients';
import { CloudWatchWire } from '../wire/cloudwatch-server';
import { type CliResult, runCli } from './cli';
import { FakeAccount } from './fake-stack';

const NOW = Date.parse('2026-11-21T12:00:00Z');
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const STACK = 'portsnare-prod';
const BUS = `${STACK}-bus`;

const EC2 = { sensorId: 'Portsnare/Sensor', ruleName: 'portsnare-prod-SensorHeartbeatRule6D99-1A2B3C4D', alarmName: 'portsnare-prod-SensorHeartbeatAlarm1F7B-5E6F7A8B', busName: BUS };
const EDGE = { sensorId: 'edge-fargate', ruleName: 'portsnare-prod-EdgeHeartbeatRuleAB12-9C8D7E6F', alarmName: 'portsnare-prod-EdgeHeartbeatAlarmCD34-0F1E2D3C', busName: BUS };

let aws: FakeAccount;
let cw: CloudWatchWire;

beforeAll(async () => {
  cw = new CloudWatchWire();
  cw.now = () => NOW;
  await cw.start();
});

afterAll(() => cw.stop());

beforeEach(() => {
  aws = new FakeAccount();
  aws.addPortsnareStack(STACK);
  cw.reset();
});

afterEach(() => aws.restore());

/** Lists sensors in the stack's output (the key spelled out: a renamed key in core must fail here). */
function listSensors(value: unknown): void {
  const stack = aws.stacks.get(STACK)!;
  aws.stacks.set(STACK, { ...stack, outputs: { ...stack.outputs, PortsnareSensors: typeof value === 'string' ? value : JSON.stringify(value) } });
}

/** A heartbeat as EventBridge counts it: one MatchedEvents of the sensor's rule on its custom bus. */
function heartbeat(sensor: typeof EC2, at: number, value = 1): void {
  cw.publish('AWS/Events', 'MatchedEvents', { EventBusName: sensor.busName, RuleName: sensor.ruleName }, at, value);
}

function alarm(sensor: typeof EC2, state: 'OK' | 'ALARM' | 'INSUFFICIENT_DATA'): void {
  cw.alarms.set(sensor.alarmName, { state, dimensions: { EventBusName: sensor.busName, RuleName: sensor.ruleName } });
}

/** Heartbeats every 5 minutes from `from` to `to` (epoch ms), as a sensor sends them. */
function heartbeats(sensor: typeof EC2, from: number, to: number): void {
  for (let at = from; at <= to; at += 5 * MINUTE) heartbeat(sensor, at);
}

function cli(args: readonly string[]): Promise<CliResult> {
  return runCli(['status', ...args, '--stack', STACK, '--region', 'eu-west-1'], {
    now: () => NOW,
    cloud: (region) => ({ ...cloudClients(region), cloudWatch: cw.client(region) }),
  });
}

describe('status --stack: sensor heartbeats', () => {
  it('shows each sensor\'s last heartbeat (ISO and age) and alarm state; exits 0 when all are alive', async () => {
    listSensors([EC2, EDGE]);
    heartbeats(EC2, NOW - 3 * HOUR - 4 * MINUTE, NOW - 4 * MINUTE);
    heartbeats(EDGE, NOW - 2 * HOUR - 2 * MINUTE, NOW - 12 * MINUTE);
    alarm(EC2, 'OK');
    alarm(EDGE, 'OK');

    const result = await cli([]);

    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/\nsensors\s+2, all sending heartbeats\n/);
    expect(result.stdout).toMatch(/\nsensor Portsnare\/Sensor\s+last heartbeat 2026-11-21T11:55:00Z \(5m ago\), alarm OK\n/);
    expect(result.stdout).toMatch(/\nsensor edge-fargate\s+last heartbeat 2026-11-21T11:45:00Z \(15m ago\), alarm OK\n/);
  });

  it('asks CloudWatch for MatchedEvents with EventBusName and RuleName, Sum per 300 s, over the last 24 h', async () => {
    listSensors([EC2, EDGE]);
    heartbeat(EC2, NOW - 4 * MINUTE);
    alarm(EC2, 'OK');

    await cli([]);

    expect(cw.count('GetMetricData')).toBe(1);
    expect(cw.queries).toEqual([EC2, EDGE].map((sensor, index) => ({
      id: `s${index}`,
      namespace: 'AWS/Events',
      metricName: 'MatchedEvents',
      dimensions: { EventBusName: BUS, RuleName: sensor.ruleName },
      period: 300,
      stat: 'Sum',
      startTime: (NOW - 24 * HOUR) / 1000,
      endTime: NOW / 1000,
      // signed for the stack's Region: CloudWatch metrics are regional
      region: 'eu-west-1',
    })));
    expect(JSON.parse(cw.requests.find((r) => r.op === 'DescribeAlarms')!.body)).toEqual({ AlarmNames: [EC2.alarmName, EDGE.alarmName], AlarmTypes: ['MetricAlarm'] });
  });

  it('exits 6 when a sensor is in ALARM or sent no heartbeat in 24 h, and says which', async () => {
    listSensors([EC2, EDGE]);
    heartbeats(EC2, NOW - 2 * HOUR, NOW - 4 * MINUTE);
    heartbeats(EDGE, NOW - 30 * HOUR, NOW - 25 * HOUR); // older than the 24 h looked at
    alarm(EC2, 'OK');
    alarm(EDGE, 'ALARM');

    const result = await cli([]);

    expect(result.code).toBe(6);
    expect(result.stdout).toMatch(/\nsensors\s+2 \(1 not healthy\)\n/);
    expect(result.stdout).toMatch(/\nsensor edge-fargate\s+last heartbeat none in 24 h, alarm ALARM — not healthy\n/);
    expect(result.stdout).toMatch(/\nsensor Portsnare\/Sensor\s+last heartbeat 2026-11-21T11:55:00Z \(5m ago\), alarm OK\n/);
  });

  it('counts no heartbeat when the data is under other dimensions (RuleName only: the default bus\'s metric), even with the alarm OK', async () => {
    listSensors([EC2]);
    cw.publish('AWS/Events', 'MatchedEvents', { RuleName: EC2.ruleName }, NOW - 4 * MINUTE);
    alarm(EC2, 'OK');

    const result = await cli([]);

    expect(result.code).toBe(6);
    expect(result.stdout).toMatch(/sensor Portsnare\/Sensor\s+last heartbeat none in 24 h, alarm OK — not healthy/);
  });

  it('takes the newest period with a non-zero sum, and a sensor on the default bus by RuleName alone', async () => {
    const onDefault = { ...EDGE, sensorId: 'lab', busName: 'default' };
    listSensors([EC2, onDefault]);
    heartbeat(EC2, NOW - 31 * MINUTE);
    heartbeat(EC2, NOW - 2 * MINUTE, 0);
    cw.publish('AWS/Events', 'MatchedEvents', { RuleName: onDefault.ruleName }, NOW - 7 * MINUTE);
    alarm(EC2, 'OK');
    alarm(onDefault, 'INSUFFICIENT_DATA');

    const result = await cli([]);

    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/sensor Portsnare\/Sensor\s+last heartbeat 2026-11-21T11:25:00Z \(35m ago\), alarm OK\n/);
    expect(result.stdout).toMatch(/sensor lab\s+last heartbeat 2026-11-21T11:50:00Z \(10m ago\), alarm INSUFFICIENT_DATA\n/);
    expect(cw.queries[1]?.dimensions).toEqual({ RuleName: onDefault.ruleName });
  });

  it('follows NextToken when the data points come in pages', async () => {
    cw.defaultMaxDatapoints = 7;
    listSensors([EC2, EDGE]);
    heartbeats(EDGE, NOW - 20 * HOUR, NOW - 19 * HOUR); // 13 points, the newest 19 h ago
    heartbeats(EC2, NOW - 5 * HOUR, NOW - 9 * MINUTE); // the newest in the period from 11:50
    alarm(EC2, 'OK');
    alarm(EDGE, 'OK');

    const result = await cli([]);

    expect(cw.count('GetMetricData')).toBeGreaterThan(2);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/sensor Portsnare\/Sensor\s+last heartbeat 2026-11-21T11:50:00Z \(10m ago\)/);
    expect(result.stdout).toMatch(/sensor edge-fargate\s+last heartbeat 2026-11-20T17:00:00Z \(19h ago\)/);
  });

  it('prints the sensors in JSON', async () => {
    listSensors([EC2, EDGE]);
    heartbeat(EC2, NOW - 4 * MINUTE);
    alarm(EC2, 'OK');

    const result = await cli(['--json']);

    expect(result.code).toBe(6);
    const document = JSON.parse(result.stdout) as Record<string, unknown>;
    expect(document.healthy).toBe(false);
    expect(document.sensors).toEqual([
      { sensorId: 'Portsnare/Sensor', lastHeartbeatAt: '2026-11-21T11:55:00.000Z', lastHeartbeatAgeSeconds: 300, alarmName: EC2.alarmName, alarmState: 'OK', healthy: true },
      { sensorId: 'edge-fargate', lastHeartbeatAt: null, lastHeartbeatAgeSeconds: null, alarmName: EDGE.alarmName, alarmState: 'not found', healthy: false },
    ]);
  });

  it('says a stack without the output is older, asks CloudWatch nothing, and stays healthy', async () => {
    const result = await cli(['--json']);
    const text = await cli([]);

    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ healthy: true, sensors: null, sensorsNote: 'the stack has no PortsnareSensors output (deployed by an older portsnare)' });
    expect(text.stdout).toMatch(/\nsensors\s+not listed: the stack has no PortsnareSensors output \(deployed by an older portsnare; redeploy to see each sensor's last heartbeat\)\n/);
    expect(cw.requests).toHaveLength(0);
  });

  it('says when the stack has no cloud sensor', async () => {
    listSensors('[]');

    const result = await cli([]);

    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/\nsensors\s+none: the stack has no cloud sensor\n/);
    expect(cw.requests).toHaveLength(0);
  });
});

describe('status --stack: CloudWatch errors', () => {
  beforeEach(() => {
    listSensors([EC2]);
    heartbeat(EC2, NOW - 4 * MINUTE);
    alarm(EC2, 'OK');
  });

  it.each([
    ['with the Query-era code header', 'AccessDenied', 'AccessDenied'],
    ['as the JSON error type only', null, 'AccessDeniedException'],
  ])('exits 1 and names the AWS error when GetMetricData is denied (%s)', async (_how, queryCode, name) => {
    cw.failNext('GetMetricData', 'AccessDeniedException', 'User: arn:aws:iam::111111111111:user/ops is not authorized to perform: cloudwatch:GetMetricData', queryCode);

    const result = await cli([]);

    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe(
      `portsnare: AWS denied read the sensors' heartbeats (cloudwatch:GetMetricData on AWS/Events MatchedEvents) (${name}): User: arn:aws:iam::111111111111:user/ops is not authorized to perform: cloudwatch:GetMetricData\n`,
    );
  });

  it('exits 1 and names the throttling error when DescribeAlarms is throttled', async () => {
    cw.failNext('DescribeAlarms', 'ThrottlingException', 'Rate exceeded', 'Throttling');

    const result = await cli([]);

    expect(result.code).toBe(1);
    expect(result.stderr).toBe("portsnare: AWS throttled read the sensors' heartbeat alarms (cloudwatch:DescribeAlarms) (Throttling) after the SDK's retries: Rate exceeded; try again in a minute\n");
  });

  it('exits 1 when CloudWatch answers a query with StatusCode Forbidden, rather than report no heartbeat', async () => {
    cw.statusOverride.set('s0', 'Forbidden');

    const result = await cli([]);

    expect(result.code).toBe(1);
    expect(result.stderr).toBe('portsnare: cannot read the heartbeats of sensor Portsnare/Sensor: CloudWatch GetMetricData answered StatusCode Forbidden\n');
  });

  it('exits 1 and names the output when PortsnareSensors is not what portsnare writes', async () => {
    listSensors([{ sensorId: 'x', ruleName: 'r' }]);

    const result = await cli([]);

    expect(result.code).toBe(1);
    expect(result.stderr).toBe('portsnare: stack portsnare-prod output PortsnareSensors: entry 0 has no alarmName ({"sensorId":"x","ruleName":"r"})\n');
  });
});
