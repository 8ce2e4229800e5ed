/**
 * `status --stack`: each cloud sensor's last heartbeat and its heartbeat alarm. The stack's
 * `PortsnareSensors` output (core/outputs.ts SensorListing) names each sensor's heartbeat rule,
 * alarm and bus; the heartbeats are the rule's AWS/Events MatchedEvents, which for a rule on a
 * custom bus carries the dimensions EventBusName and RuleName (RuleName alone on the default bus):
 * https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-monitoring.html
 *
 * - GetMetricData, Sum per 300 s over the last 24 h, newest first (ScanBy TimestampDescending);
 *   the last heartbeat is the newest period with a non-zero sum. At most 500 queries per call,
 *   more data points than MaxDatapoints come in pages (NextToken); a result whose StatusCode is
 *   InternalError or Forbidden is an error, never "no heartbeat":
 *   https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_GetMetricData.html,
 *   https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_MetricDataResult.html
 * - DescribeAlarms by AlarmNames (at most 100 per call), metric alarms only, paged by NextToken:
 *   https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_DescribeAlarms.html
 *
 * A sensor is not healthy when its alarm is in ALARM or no heartbeat was counted in 24 h.
 */
import type { Stack } from '@aws-sdk/client-cloudformation';
import { type CloudWatchClient, DescribeAlarmsCommand, GetMetricDataCommand, type MetricDataQuery } from '@aws-sdk/client-cloudwatch';
import { SENSOR_HEARTBEAT_INTERVAL_SECONDS } from '../../../core/event';
import { SENSOR_HEARTBEAT_METRIC, type SensorListing, STACK_OUTPUTS } from '../../../core/outputs';
import { CliError, EXIT } from '../errors';
import { humanDuration, isoSeconds } from '../output';
import { messageOf, send } from './aws-errors';
import { stackOutput } from './settings';

/** How far back a heartbeat is looked for. */
export const HEARTBEAT_LOOKBACK_SECONDS = 24 * 3600;
const QUERIES_PER_CALL = 500;
const ALARM_NAMES_PER_CALL = 100;
const DEFAULT_BUS = 'default';

export type AlarmState = 'OK' | 'ALARM' | 'INSUFFICIENT_DATA' | 'not found';

export interface SensorView {
  readonly sensorId: string;
  /** start of the newest 5-minute period with a heartbeat (epoch ms); undefined: none in 24 h */
  readonly lastHeartbeatAt?: number;
  readonly alarmName: string;
  readonly alarmState: AlarmState;
  readonly healthy: boolean;
}

/**
 * The stack's sensors from its `PortsnareSensors` output; undefined when the stack has no such
 * output (deployed by an older portsnare). An output that does not parse names the output.
 */
export function sensorsOfStack(stack: Stack, stackName: string): SensorListing[] | undefined {
  const key = STACK_OUTPUTS.sensors;
  const text = stackOutput(stack, key);
  if (text === undefined) return undefined;
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    throw new CliError(`stack ${stackName} output ${key} is not JSON: ${JSON.stringify(text.slice(0, 80))} (${messageOf(error)})`, EXIT.failure);
  }
  const fields = ['sensorId', 'ruleName', 'alarmName', 'busName'] as const;
  if (!Array.isArray(document)) throw new CliError(`stack ${stackName} output ${key} is not a JSON array: ${JSON.stringify(text.slice(0, 80))}`, EXIT.failure);
  return document.map((entry: unknown, index) => {
    const record = (typeof entry === 'object' && entry !== null ? entry : {}) as Record<string, unknown>;
    const missing = fields.find((field) => typeof record[field] !== 'string' || record[field] === '');
    if (missing) throw new CliError(`stack ${stackName} output ${key}: entry ${index} has no ${missing} (${JSON.stringify(entry)})`, EXIT.failure);
    return { sensorId: String(record.sensorId), ruleName: String(record.ruleName), alarmName: String(record.alarmName), busName: String(record.busName) };
  });
}

/** The heartbeat query of one sensor: its rule's MatchedEvents, the dimensions EventBridge publishes. */
export function heartbeatQuery(id: string, sensor: SensorListing): MetricDataQuery {
  const dimensions = sensor.busName === DEFAULT_BUS ? [] : [{ Name: 'EventBusName', Value: sensor.busName }];
  return {
    Id: id,
    MetricStat: {
      Metric: { Namespace: SENSOR_HEARTBEAT_METRIC.namespace, MetricName: SENSOR_HEARTBEAT_METRIC.metricName, Dimensions: [...dimensions, { Name: 'RuleName', Value: sensor.ruleName }] },
      Period: SENSOR_HEARTBEAT_INTERVAL_SECONDS,
      Stat: 'Sum',
    },
    ReturnData: true,
  };
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Newest period start (epoch ms) with a non-zero sum, per sensor index. */
async function lastHeartbeats(client: CloudWatchClient, sensors: readonly SensorListing[], now: number): Promise<Map<number, number>> {
  const periodMs = SENSOR_HEARTBEAT_INTERVAL_SECONDS * 1000;
  // aligned to the period, the current (partial) period included
  const end = Math.ceil(now / periodMs) * periodMs;
  const start = end - HEARTBEAT_LOOKBACK_SECONDS * 1000;
  const newest = new Map<number, number>();
  const indexed = sensors.map((sensor, index) => ({ sensor, index }));
  for (const batch of chunks(indexed, QUERIES_PER_CALL)) {
    const queries = batch.map(({ sensor, index }) => heartbeatQuery(`s${index}`, sensor));
    let nextToken: string | undefined;
    do {
      const token = nextToken;
      const answer = await send(`read the sensors' heartbeats (cloudwatch:GetMetricData on ${SENSOR_HEARTBEAT_METRIC.namespace} ${SENSOR_HEARTBEAT_METRIC.metricName})`, () =>
        client.send(
          new GetMetricDataCommand({
            MetricDataQueries: queries,
            StartTime: new Date(start),
            EndTime: new Date(end),
            ScanBy: 'TimestampDescending',
            ...(token ? { NextToken: token } : {}),
          }),
        ),
      );
      for (const result of answer.MetricDataResults ?? []) {
        const index = Number((result.Id ?? '').slice(1));
        if (result.StatusCode === 'InternalError' || result.StatusCode === 'Forbidden') {
          const sensor = sensors[index]?.sensorId ?? result.Id;
          throw new CliError(`cannot read the heartbeats of sensor ${sensor}: CloudWatch GetMetricData answered StatusCode ${result.StatusCode}`, EXIT.failure);
        }
        const timestamps = result.Timestamps ?? [];
        const values = result.Values ?? [];
        timestamps.forEach((timestamp, i) => {
          if ((values[i] ?? 0) <= 0) return;
          const at = timestamp.getTime();
          if (at > (newest.get(index) ?? -Infinity)) newest.set(index, at);
        });
      }
      nextToken = answer.NextToken;
    } while (nextToken);
  }
  return newest;
}

async function alarmStates(client: CloudWatchClient, names: readonly string[]): Promise<Map<string, AlarmState>> {
  const states = new Map<string, AlarmState>();
  for (const batch of chunks([...new Set(names)], ALARM_NAMES_PER_CALL)) {
    let nextToken: string | undefined;
    do {
      const token = nextToken;
      const answer = await send('read the sensors\' heartbeat alarms (cloudwatch:DescribeAlarms)', () =>
        client.send(new DescribeAlarmsCommand({ AlarmNames: batch, AlarmTypes: ['MetricAlarm'], ...(token ? { NextToken: token } : {}) })),
      );
      for (const alarm of answer.MetricAlarms ?? []) {
        if (alarm.AlarmName && alarm.StateValue) states.set(alarm.AlarmName, alarm.StateValue);
      }
      nextToken = answer.NextToken;
    } while (nextToken);
  }
  return states;
}

export async function readSensors(client: CloudWatchClient, sensors: readonly SensorListing[], now: number): Promise<SensorView[]> {
  if (sensors.length === 0) return [];
  const heartbeats = await lastHeartbeats(client, sensors, now);
  const states = await alarmStates(client, sensors.map((sensor) => sensor.alarmName));
  return sensors.map((sensor, index) => {
    const lastHeartbeatAt = heartbeats.get(index);
    const alarmState = states.get(sensor.alarmName) ?? 'not found';
    return {
      sensorId: sensor.sensorId,
      ...(lastHeartbeatAt !== undefined ? { lastHeartbeatAt } : {}),
      alarmName: sensor.alarmName,
      alarmState,
      healthy: alarmState !== 'ALARM' && lastHeartbeatAt !== undefined,
    };
  });
}

/** "2026-11-29T20:05:00Z (4m ago)" or "none in 24 h". */
export function lastHeartbeatText(view: SensorView, now: number): string {
  if (view.lastHeartbeatAt === undefined) return `none in ${HEARTBEAT_LOOKBACK_SECONDS / 3600} h`;
  return `${isoSeconds(view.lastHeartbeatAt)} (${humanDuration((now - view.lastHeartbeatAt) / 1000)} ago)`;
}

/** The status lines: a count, then one line per sensor. */
export function sensorLines(views: readonly SensorView[] | undefined, now: number): Array<[string, string]> {
  if (views === undefined) {
    return [['sensors', `not listed: the stack has no ${STACK_OUTPUTS.sensors} output (deployed by an older portsnare; redeploy to see each sensor's last heartbeat)`]];
  }
  if (views.length === 0) return [['sensors', 'none: the stack has no cloud sensor']];
  const unhealthy = views.filter((view) => !view.healthy).length;
  return [
    ['sensors', `${views.length}${unhealthy ? ` (${unhealthy} not healthy)` : ', all sending heartbeats'}`],
    ...views.map((view): [string, string] => [
      `sensor ${view.sensorId}`,
      `last heartbeat ${lastHeartbeatText(view, now)}, alarm ${view.alarmState}${view.healthy ? '' : ' — not healthy'}`,
    ]),
  ];
}

export function sensorsJson(views: readonly SensorView[] | undefined, now: number): Array<Record<string, unknown>> | null {
  if (views === undefined) return null;
  return views.map((view) => ({
    sensorId: view.sensorId,
    lastHeartbeatAt: view.lastHeartbeatAt === undefined ? null : new Date(view.lastHeartbeatAt).toISOString(),
    lastHeartbeatAgeSeconds: view.lastHeartbeatAt === undefined ? null : Math.round((now - view.lastHeartbeatAt) / 1000),
    alarmName: view.alarmName,
    alarmState: view.alarmState,
    healthy: view.healthy,
  }));
}
