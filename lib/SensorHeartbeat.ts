/**
 * A dead sensor must not look like a quiet internet: every cloud sensor puts a `Sensor Heartbeat`
 * event on the portsnare bus every SENSOR_HEARTBEAT_INTERVAL_SECONDS (core/event.ts). Per sensor,
 * a rule matches its heartbeats (no target: the rule exists to be counted) and an alarm watches
 * the rule's AWS/Events MatchedEvents metric; no heartbeat for three intervals — missing data
 * counts as breaching — raises it.
 * https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-monitoring.html (MatchedEvents)
 */
import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as events from 'aws-cdk-lib/aws-events';
import { Construct } from 'constructs';
import { DETAIL_TYPE_SENSOR_HEARTBEAT, EVENT_SOURCE_SENSOR, SENSOR_HEARTBEAT_INTERVAL_SECONDS } from '../core/event';

/** Heartbeat intervals without one before the alarm fires. */
export const HEARTBEAT_MISSED_INTERVALS = 3;

export interface SensorHeartbeatProps {
  readonly eventBus: events.IEventBus;
  /** the sensorId the agent reports with (its config key `sensorId`) */
  readonly sensorId: string;
  /** @default - an alarm without actions */
  readonly alarmAction?: cloudwatch.IAlarmAction;
}

export class SensorHeartbeat extends Construct {
  public readonly rule: events.Rule;
  public readonly alarm: cloudwatch.Alarm;

  constructor(scope: Construct, id: string, props: SensorHeartbeatProps) {
    super(scope, id);
    this.rule = new events.Rule(this, 'Rule', {
      eventBus: props.eventBus,
      description: `portsnare: heartbeats of sensor ${props.sensorId} (counted, not delivered)`,
      eventPattern: {
        source: [EVENT_SOURCE_SENSOR],
        detailType: [DETAIL_TYPE_SENSOR_HEARTBEAT],
        detail: { sensorId: [props.sensorId] },
      },
    });
    const period = Duration.seconds(SENSOR_HEARTBEAT_INTERVAL_SECONDS);
    this.alarm = new cloudwatch.Alarm(this, 'Alarm', {
      alarmDescription: `portsnare: sensor ${props.sensorId} sent no heartbeat for ${HEARTBEAT_MISSED_INTERVALS * SENSOR_HEARTBEAT_INTERVAL_SECONDS} s: it is down, cannot reach the bus, or lost its permission`,
      metric: new cloudwatch.Metric({
        namespace: 'AWS/Events',
        metricName: 'MatchedEvents',
        dimensionsMap: { RuleName: this.rule.ruleName },
        statistic: 'Sum',
        period,
      }),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
      evaluationPeriods: HEARTBEAT_MISSED_INTERVALS,
      datapointsToAlarm: HEARTBEAT_MISSED_INTERVALS,
      treatMissingData: cloudwatch.TreatMissingData.BREACHING,
    });
    if (props.alarmAction) this.alarm.addAlarmAction(props.alarmAction);
  }
}
