/**
 * VPC Flow Logs on a sensor's subnet (an EC2 instance returns no interface id to CloudFormation,
 * and Fargate task interfaces come and go) into lambda/flowlogs, which turns rejected inbound probes into
 * `Scan Detected` events on the portsnare bus: the stealth detector where the kernel is out of
 * reach. One-minute aggregation; delivery to CloudWatch Logs adds minutes more, so this path
 * is slower than the sensor's own sockets.
 */
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as logsDestinations from 'aws-cdk-lib/aws-logs-destinations';
import { Construct } from 'constructs';
import type { EnumerationBlocker } from './EnumerationBlocker';
import { DETAIL_TYPE_SCAN_DETECTED } from '../core/event';
import { PortsnareFunction } from './PortsnareFunction';
import { grantSensorPutEvents } from './sensorConfig';

/**
 * The custom record format lambda/flowlogs/records.ts parses (kept equal by a test): version 5
 * fields with `tcp-flags` and `flow-direction`.
 */
export const SENSOR_FLOW_LOG_FORMAT =
  '${version} ${interface-id} ${srcaddr} ${dstaddr} ${srcport} ${dstport} ${protocol} ${packets} ${start} ${end} ${action} ${log-status} ${tcp-flags} ${flow-direction}';

export interface SensorFlowLogsProps {
  readonly blocker: EnumerationBlocker;
  /**
   * What to log: `ec2.FlowLogResourceType.fromSubnet(sensor.subnet)` (or `fromNetworkInterfaceId`
   * for an interface you manage).
   */
  readonly resources: readonly ec2.FlowLogResourceType[];
  /**
   * The sensors' private addresses: records to other destinations in the same subnet are
   * ignored. Give the EC2 sensor's `instance.instancePrivateIp`; leave empty for Fargate (task
   * addresses change), whose subnets should then hold only the sensor.
   * @default [] (every destination)
   */
  readonly destinations?: readonly string[];
  /**
   * An attacker is reported once it has this many distinct (protocol, port, kind) probes in one
   * delivery batch.
   * @default 1
   */
  readonly minProbes?: number;
  /**
   * Retention of the flow log records.
   * @default logs.RetentionDays.ONE_WEEK
   */
  readonly retention?: logs.RetentionDays;
}

export class SensorFlowLogs extends Construct {
  public readonly logGroup: logs.LogGroup;
  public readonly flowLogs: ec2.FlowLog[];
  public readonly function: PortsnareFunction;

  constructor(scope: Construct, id: string, props: SensorFlowLogsProps) {
    super(scope, id);
    const minProbes = props.minProbes ?? 1;
    if (!Number.isInteger(minProbes) || minProbes < 1 || minProbes > 32) {
      throw new Error(`SensorFlowLogs ${this.node.path}: minProbes ${minProbes} must be a whole number within 1–32`);
    }
    if (props.resources.length === 0) throw new Error(`SensorFlowLogs ${this.node.path}: resources is empty`);

    this.logGroup = new logs.LogGroup(this, 'Records', {
      retention: props.retention ?? logs.RetentionDays.ONE_WEEK,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.flowLogs = props.resources.map(
      (resourceType, i) =>
        new ec2.FlowLog(this, `FlowLog${i}`, {
          resourceType,
          destination: ec2.FlowLogDestination.toCloudWatchLogs(this.logGroup),
          // Only what the security group refused: the probes of closed ports. Accepted flows
          // reach the sensor's sockets, which report them with proof of a handshake.
          trafficType: ec2.FlowLogTrafficType.REJECT,
          maxAggregationInterval: ec2.FlowLogMaxAggregationInterval.ONE_MINUTE,
          logFormat: [ec2.LogFormat.custom(SENSOR_FLOW_LOG_FORMAT)],
        }),
    );

    this.function = new PortsnareFunction(this, 'Function', {
      name: 'flowlogs',
      description: 'portsnare: VPC Flow Logs records of the sensor → Scan Detected events',
      environment: {
        EVENT_BUS_NAME: props.blocker.eventBus.eventBusName,
        FLOWLOGS_MIN_PROBES: String(minProbes),
        FLOWLOGS_DESTINATIONS: (props.destinations ?? []).join(','),
      },
      timeout: Duration.seconds(60),
      onFailure: props.blocker.failureQueue,
      alarmAction: props.blocker.alarmAction,
    });
    // As a sensor, Scan Detected only: the function reads internet-controlled records.
    grantSensorPutEvents(props.blocker.eventBus, this.function.function, [DETAIL_TYPE_SCAN_DETECTED]);
    props.blocker.alarms.push(this.function.errorsAlarm);

    new logs.SubscriptionFilter(this, 'Subscription', {
      logGroup: this.logGroup,
      destination: new logsDestinations.LambdaDestination(this.function.function),
      // Inbound rejected records only (the space-delimited fields of the format above).
      filterPattern: logs.FilterPattern.spaceDelimited(
        'version',
        'eni',
        'src',
        'dst',
        'sport',
        'dport',
        'proto',
        'packets',
        'start',
        'end',
        'action',
        'status',
        'flags',
        'direction',
      )
        .whereString('action', '=', 'REJECT')
        .whereString('direction', '=', 'ingress'),
    });
  }
}
