/**
 * A dead sensor must not look like a quiet internet: every cloud sensor puts a `Sensor Heartbeat`
 * event on the portsnare bus every SENSOR_HEARTBEAT_INTERVAL_SECONDS (core/event.ts). Per sensor,
 * a rule matches its heartbeats (no target: the rule exists to be counted) and an alarm watches
 * the rule's AWS/Events MatchedEvents metric; no heartbeat for three intervals — missing data
 * counts as breaching — raises it.
 *
 * Which metric: "Metrics that specify only the RuleName dimension refer to the default event bus.
 * Metrics that specify both the EventBusName and RuleName dimensions refer to a custom event bus."
 * (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-monitoring.html). portsnare's bus
 * is a custom one, so the alarm names both; with RuleName alone it would watch a metric that is
 * never published and, missing data breaching, alarm forever.
 *
 * The rule's name: CloudFormation's Ref of a rule on a custom bus is "bus|rule", not the name the
 * metric carries, so the name is taken from the rule's ARN, whose documented form is
 * `arn:aws:events:region:account:rule/[event-bus-name]/rule-name`
 * (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-manage-iam-access.html); a custom
 * bus name cannot contain "/" (https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_CreateEventBus.html),
 * so on a custom bus the name is the third "/"-separated part, on the default bus the second.
 */
import { Duration, Fn, Lazy, Stack, Token } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as events from 'aws-cdk-lib/aws-events';
import { Construct, type IConstruct } from 'constructs';
import { DETAIL_TYPE_SENSOR_HEARTBEAT, EVENT_SOURCE_SENSOR, SENSOR_HEARTBEAT_INTERVAL_SECONDS } from '../core/event';
import { SENSOR_HEARTBEAT_METRIC, type SensorListing } from '../core/outputs';

/** Heartbeat intervals without one before the alarm fires. */
export const HEARTBEAT_MISSED_INTERVALS = 3;

const DEFAULT_BUS = 'default';

export interface SensorHeartbeatProps {
  readonly eventBus: events.IEventBus;
  /** the sensorId the agent reports with (its config key `sensorId`) */
  readonly sensorId: string;
  /** @default - an alarm without actions */
  readonly alarmAction?: cloudwatch.IAlarmAction;
}

export class SensorHeartbeat extends Construct {
  /**
   * Every heartbeat in `scope`'s stack as the `PortsnareSensors` output lists it (a JSON array
   * of core/outputs.ts SensorListing), resolved when the template is written, so sensors added
   * after the pipeline are listed too.
   */
  static listingOf(scope: IConstruct): string {
    const stack = Stack.of(scope);
    return Lazy.string({
      produce: () => {
        const listings = stack.node
          .findAll()
          .filter((c): c is SensorHeartbeat => c instanceof SensorHeartbeat && Stack.of(c) === stack)
          .map((heartbeat) => heartbeat.listing);
        return listings.length ? stack.toJsonString(listings) : '[]';
      },
    });
  }

  public readonly rule: events.Rule;
  public readonly alarm: cloudwatch.Alarm;
  /** the rule's name as EventBridge's metrics carry it (a token until deploy) */
  public readonly ruleName: string;
  public readonly listing: SensorListing;

  constructor(scope: Construct, id: string, props: SensorHeartbeatProps) {
    super(scope, id);
    const busName = props.eventBus.eventBusName;
    const onDefaultBus = !Token.isUnresolved(busName) && busName === DEFAULT_BUS;
    if (!Token.isUnresolved(busName) && busName.includes('/')) {
      throw new Error(`SensorHeartbeat ${this.node.path}: eventBus ${JSON.stringify(busName)} is a partner event bus; sensors put heartbeats on a custom bus`);
    }
    this.rule = new events.Rule(this, 'Rule', {
      eventBus: props.eventBus,
      description: `portsnare: heartbeats of sensor ${props.sensorId} (counted, not delivered)`,
      eventPattern: {
        source: [EVENT_SOURCE_SENSOR],
        detailType: [DETAIL_TYPE_SENSOR_HEARTBEAT],
        detail: { sensorId: [props.sensorId] },
      },
    });
    this.ruleName = Fn.select(onDefaultBus ? 1 : 2, Fn.split('/', this.rule.ruleArn));
    const period = Duration.seconds(SENSOR_HEARTBEAT_INTERVAL_SECONDS);
    this.alarm = new cloudwatch.Alarm(this, 'Alarm', {
      alarmDescription: `portsnare: sensor ${props.sensorId} sent no heartbeat for ${HEARTBEAT_MISSED_INTERVALS * SENSOR_HEARTBEAT_INTERVAL_SECONDS} s: it is down, cannot reach the bus, or lost its permission`,
      metric: new cloudwatch.Metric({
        namespace: SENSOR_HEARTBEAT_METRIC.namespace,
        metricName: SENSOR_HEARTBEAT_METRIC.metricName,
        dimensionsMap: onDefaultBus ? { RuleName: this.ruleName } : { EventBusName: busName, RuleName: this.ruleName },
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
    this.listing = { sensorId: props.sensorId, ruleName: this.ruleName, alarmName: this.alarm.alarmName, busName };
  }
}
