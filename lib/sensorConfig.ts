/**
 * What the EC2 and Fargate sensors share: their decoy ports, the agent config they run with
 * (the keys of sensor/config.ts, written here as plain data so lib/ needs nothing from sensor/
 * at run time) and the security group rules that open exactly those ports.
 */
import { Fn } from 'aws-cdk-lib';
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import type { IConstruct } from 'constructs';
import { EVENT_SOURCE_SENSOR, SENSOR_DETAIL_TYPES } from '../core/event';
import { acknowledge } from './nag';

/**
 * Ports a dedicated decoy answers on by default: services scanners look for first (FTP, telnet,
 * SMTP, POP3, RPC, NetBIOS, SMB, MSSQL, MySQL, RDP, PostgreSQL, VNC, Redis, Elasticsearch,
 * memcached, MongoDB). SSH (22) is left out so nobody mistakes the sensor for an SSH host; add it
 * if you want SSH scanners blocked too.
 */
export const DEFAULT_DECOY_TCP_PORTS: readonly number[] = [21, 23, 25, 110, 135, 139, 445, 1433, 3306, 3389, 5432, 5900, 6379, 9200, 11211, 27017];
/** UDP probes prove no source address (blocked only with blockUnverified), so none by default. */
export const DEFAULT_DECOY_UDP_PORTS: readonly number[] = [];

/** The agent's loopback health/control port (sensor/config.ts DEFAULT_HEALTH_PORT); never a decoy. */
export const AGENT_HEALTH_PORT = 9466;

/** Inbound rules per security group and family (VPC quota, default 60). */
export const SECURITY_GROUP_RULE_QUOTA = 60;

export interface DecoyPortsProps {
  /**
   * TCP ports the sensor listens on and its security group opens to the world.
   * @default DEFAULT_DECOY_TCP_PORTS
   */
  readonly tcpPorts?: readonly number[];
  /**
   * UDP ports, likewise.
   * @default []
   */
  readonly udpPorts?: readonly number[];
}

/** What every sensor hosting takes: where it runs, where it reports, what it ignores. */
export interface SensorProps extends DecoyPortsProps {
  readonly vpc: ec2.IVpc;
  /** the portsnare bus (EnumerationBlocker.eventBus) */
  readonly eventBus: events.IEventBus;
  /**
   * Where the sensor lives: public subnets, so scanners on the internet reach it. Prefer subnets
   * of its own, so flow logs on them see only the sensor.
   * @default { subnetType: ec2.SubnetType.PUBLIC }
   */
  readonly vpcSubnets?: ec2.SubnetSelection;
  /**
   * Sources the agent never reports.
   * @default [the VPC's IPv4 CIDR] (load balancer health checks, the VPC's own hosts)
   */
  readonly ignore?: readonly string[];
  /**
   * More agent config keys (sensor/config.ts: banner, trigger, dedupeSeconds …).
   * @default {}
   */
  readonly agentConfig?: Record<string, unknown>;
  /**
   * Where the sensor's heartbeat alarm notifies (EnumerationBlocker.alarmAction).
   * @default - an alarm without actions
   */
  readonly alarmAction?: cloudwatch.IAlarmAction;
}

/**
 * Lets `grantee` put events on the portsnare bus only as a sensor: source `portsnare.sensor` and
 * the detail types given (default: `Scan Detected` and `Sensor Heartbeat`). A compromised sensor
 * cannot send an operator request (`portsnare.cli`) or any other event.
 * https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-conditions.html
 */
export function grantSensorPutEvents(
  eventBus: events.IEventBus,
  grantee: iam.IGrantable,
  detailTypes: readonly string[] = SENSOR_DETAIL_TYPES,
): iam.Grant {
  return iam.Grant.addToPrincipal({
    grantee,
    actions: ['events:PutEvents'],
    resourceArns: [eventBus.eventBusArn],
    conditions: {
      StringEquals: { 'events:source': EVENT_SOURCE_SENSOR, 'events:detail-type': [...detailTypes] },
    },
  });
}

/** The sensorId a cloud sensor reports with: `agentConfig.sensorId` when given, else its construct path. */
export function sensorIdOf(sensor: IConstruct, extra: Record<string, unknown> | undefined): string {
  const given = extra?.sensorId;
  return typeof given === 'string' && given.length > 0 ? given : sensor.node.path;
}

/** A VPC's own ranges: its IPv4 CIDR and, for a dual-stack `ec2.Vpc` of this app, its Amazon-provided IPv6 CIDR. */
export function vpcCidrsOf(vpc: ec2.IVpc): string[] {
  const dualStack = vpc instanceof ec2.Vpc && vpc.node.findAll().some((c) => c instanceof ec2.CfnVPCCidrBlock && c.amazonProvidedIpv6CidrBlock);
  return dualStack ? [vpc.vpcCidrBlock, Fn.select(0, (vpc as ec2.Vpc).vpcIpv6CidrBlocks)] : [vpc.vpcCidrBlock];
}

export interface DecoyPorts {
  readonly tcp: readonly number[];
  readonly udp: readonly number[];
}

/** Validates and sorts the ports; errors name the prop. */
export function resolveDecoyPorts(props: DecoyPortsProps, owner: string, reserved: readonly number[] = []): DecoyPorts {
  const errors: string[] = [];
  const check = (name: 'tcpPorts' | 'udpPorts', ports: readonly number[]): number[] => {
    ports.forEach((port, i) => {
      if (!Number.isInteger(port) || port < 1 || port > 65535) errors.push(`${name}[${i}] ${port} is not a port (1–65535)`);
    });
    const sorted = [...new Set(ports)].sort((a, b) => a - b);
    if (sorted.length !== ports.length) errors.push(`${name} lists a port more than once`);
    return sorted;
  };
  const tcp = check('tcpPorts', props.tcpPorts ?? DEFAULT_DECOY_TCP_PORTS);
  const udp = check('udpPorts', props.udpPorts ?? DEFAULT_DECOY_UDP_PORTS);
  if (tcp.length + udp.length === 0) errors.push('tcpPorts and udpPorts are both empty: the sensor would detect nothing');
  for (const port of reserved) if (tcp.includes(port)) errors.push(`tcpPorts includes ${port}, which the sensor itself uses`);
  const rules = portRanges(tcp).length + portRanges(udp).length;
  if (rules > SECURITY_GROUP_RULE_QUOTA) {
    errors.push(`tcpPorts and udpPorts need ${rules} security group rules per family (contiguous ports share one); the default quota is ${SECURITY_GROUP_RULE_QUOTA}`);
  }
  if (errors.length) throw new Error(`${owner}: invalid props:\n- ${errors.join('\n- ')}`);
  return { tcp, udp };
}

/** Sorted ports → contiguous [from, to] ranges, so 512-515 is one rule. */
export function portRanges(ports: readonly number[]): Array<[number, number]> {
  const ranges: Array<[number, number]> = [];
  for (const port of [...ports].sort((a, b) => a - b)) {
    const last = ranges[ranges.length - 1];
    if (last && port === last[1] + 1) last[1] = port;
    else if (!last || port > last[1]) ranges.push([port, port]);
  }
  return ranges;
}

/** Opens exactly the decoy ports, IPv4 and IPv6, to everyone: a decoy must be reachable to be touched. */
export function openDecoyPorts(securityGroup: ec2.SecurityGroup, ports: DecoyPorts): void {
  const add = (protocol: 'tcp' | 'udp', [from, to]: [number, number]): void => {
    const port =
      protocol === 'tcp'
        ? from === to
          ? ec2.Port.tcp(from)
          : ec2.Port.tcpRange(from, to)
        : from === to
          ? ec2.Port.udp(from)
          : ec2.Port.udpRange(from, to);
    securityGroup.addIngressRule(ec2.Peer.anyIpv4(), port, `portsnare decoy ${protocol} ${from === to ? from : `${from}-${to}`}`);
    securityGroup.addIngressRule(ec2.Peer.anyIpv6(), port, `portsnare decoy ${protocol} ${from === to ? from : `${from}-${to}`} IPv6`);
  };
  for (const range of portRanges(ports.tcp)) add('tcp', range);
  for (const range of portRanges(ports.udp)) add('udp', range);
  const reason =
    'A decoy sensor must be reachable from the whole internet on its decoy ports to catch scanners; no service runs behind them (that a database port is open to the world is the bait) and no other port, no SSH, is open.';
  acknowledge(securityGroup, 'AwsSolutions-EC23', reason);
  acknowledge(securityGroup, 'CloudFormation-Validate::W2508', reason);
}

export interface AgentConfigOptions {
  readonly ports: DecoyPorts;
  /** the portsnare event bus name (a token is fine) */
  readonly busName: string;
  /** the bus's Region (a token is fine) */
  readonly region: string;
  /** kernel detection of stealth probes (needs CAP_NET_ADMIN: EC2 yes, Fargate no) */
  readonly stealth: boolean;
  /** sources never reported: the VPC's own range, so load balancer health checks are not scans */
  readonly ignore: readonly string[];
  /** the sensor's name in its events and heartbeats */
  readonly sensorId: string;
  /** more agent config keys (banner, trigger, dedupeSeconds …), merged over the generated ones */
  readonly extra?: Record<string, unknown>;
}

/** The agent config (sensor/config.ts keys) a cloud sensor runs with: report to the bus, no local enforcement. */
export function agentConfig(options: AgentConfigOptions): Record<string, unknown> {
  return {
    sensorId: options.sensorId,
    tcpPorts: [...options.ports.tcp],
    udpPorts: [...options.ports.udp],
    stealth: options.stealth,
    ignore: [...options.ignore],
    sinks: [{ type: 'stdout' }, { type: 'eventbridge', busName: options.busName, region: options.region }],
    ...options.extra,
  };
}
