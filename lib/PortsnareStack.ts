/**
 * The stack bin/app.ts deploys: the EnumerationBlocker plus a sensor, configured by the
 * `portsnare` context (lib/appConfig.ts). With no context it is a complete demo: a VPC of its
 * own (public subnets only, no NAT), an EC2 decoy, the pipeline protecting the VPC's default
 * network ACL and a REGIONAL WAF rule group. No lookups: it synthesizes without an AWS account.
 */
import { CfnResource, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as elbv2Targets from 'aws-cdk-lib/aws-elasticloadbalancingv2-targets';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import type { Construct } from 'constructs';
import { alarmTopic } from './alarmTopic';
import { blockPolicyOf, type PortsnareContext } from './appConfig';
import { DecoyListeners } from './DecoyListeners';
import { Ec2Sensor } from './Ec2Sensor';
import { EnumerationBlocker } from './EnumerationBlocker';
import { FargateSensor } from './FargateSensor';
import { acknowledge } from './nag';
import { DEFAULT_DECOY_TCP_PORTS, DEFAULT_DECOY_UDP_PORTS, vpcCidrsOf } from './sensorConfig';
import { SensorFlowLogs } from './SensorFlowLogs';

export interface PortsnareStackProps extends StackProps {
  /** the validated `portsnare` context */
  readonly config: PortsnareContext;
}

export class PortsnareStack extends Stack {
  public readonly blocker: EnumerationBlocker;
  /** the sensor's VPC; none with `sensor.type: none` and no `sensor.vpc` */
  public readonly vpc?: ec2.IVpc;
  public readonly sensor?: Ec2Sensor | FargateSensor;
  public readonly flowLogs?: SensorFlowLogs;
  public readonly decoyListeners?: DecoyListeners;
  public readonly alarmTopic?: sns.Topic;

  constructor(scope: Construct, id: string, props: PortsnareStackProps) {
    super(scope, id, props);
    const config = props.config;
    const sensorConfig = config.sensor;
    // Checked before anything is created: the listeners forward to the sensor's own decoy ports.
    if (sensorConfig.nlb) {
      const tcp = sensorConfig.tcpPorts ?? DEFAULT_DECOY_TCP_PORTS;
      const udp = sensorConfig.udpPorts ?? DEFAULT_DECOY_UDP_PORTS;
      const missing = [
        ...sensorConfig.nlb.tcpPorts.filter((p) => !tcp.includes(p)).map((p) => `tcp ${p}`),
        ...sensorConfig.nlb.udpPorts.filter((p) => !udp.includes(p)).map((p) => `udp ${p}`),
      ];
      if (missing.length) {
        throw new Error(`portsnare.sensor.nlb: ports ${missing.join(', ')} are not decoy ports of the sensor (portsnare.sensor.tcpPorts / udpPorts)`);
      }
    }

    let demoAcl: string | undefined;
    let ownCidrs: string[] = [];
    if (sensorConfig.vpc) {
      this.vpc = ec2.Vpc.fromVpcAttributes(this, 'Vpc', {
        vpcId: sensorConfig.vpc.vpcId,
        vpcCidrBlock: sensorConfig.vpc.vpcCidrBlock,
        availabilityZones: sensorConfig.vpc.availabilityZones,
        publicSubnetIds: sensorConfig.vpc.publicSubnetIds,
      });
      acknowledge(this.vpc, 'Annotation::@aws-cdk/aws-ec2:noSubnetRouteTableId', 'portsnare reads no route table of the existing VPC: it places a sensor in a public subnet and logs its flows.');
      ownCidrs = [sensorConfig.vpc.vpcCidrBlock, ...sensorConfig.vpc.ipv6CidrBlocks];
    } else if (sensorConfig.type !== 'none') {
      const vpc = new ec2.Vpc(this, 'Vpc', {
        ipAddresses: ec2.IpAddresses.cidr('10.66.0.0/24'),
        maxAzs: 1,
        natGateways: 0,
        subnetConfiguration: [{ name: 'decoy', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 26 }],
      });
      // A record of what the VPC refused (AwsSolutions-VPC7), kept a week.
      vpc.addFlowLog('Rejected', {
        trafficType: ec2.FlowLogTrafficType.REJECT,
        destination: ec2.FlowLogDestination.toCloudWatchLogs(
          new logs.LogGroup(this, 'VpcFlowLogs', { retention: logs.RetentionDays.ONE_WEEK, removalPolicy: RemovalPolicy.DESTROY }),
        ),
      });
      keepProviderLogsBounded(this, vpc);
      demoAcl = vpc.vpcDefaultNetworkAcl;
      this.vpc = vpc;
      ownCidrs = vpcCidrsOf(vpc);
    }

    if (config.alarmEmail) {
      // lib/alarmTopic.ts: not encrypted (CloudWatch alarms cannot publish to a topic encrypted
      // with the AWS managed SNS key; a notification carries no secret), TLS only, CloudWatch
      // allowed to publish. cdk-nag 3's AwsSolutions pack has no SNS encryption rule.
      this.alarmTopic = alarmTopic(this, config.alarmEmail);
    }

    const naclIds = config.naclIds ?? (demoAcl ? [demoAcl] : []);
    this.blocker = new EnumerationBlocker(this, 'Blocker', {
      naclIds,
      naclRuleRange: config.naclRuleRange,
      naclQuota: config.naclQuota,
      wafScopes: config.wafScopes,
      wafSetsPerFamily: config.wafSetsPerFamily,
      webAclResourceArns: config.webAclResourceArns,
      policy: blockPolicyOf(config),
      // The VPC's own ranges, IPv6 included, are never blocked.
      vpcCidrs: config.vpcCidrs ?? ownCidrs,
      guardDuty: config.guardDuty,
      alarmTopic: this.alarmTopic,
      ...(config.selftest.canaryAddress === false ? {} : { selftestCanaryAddress: config.selftest.canaryAddress }),
      tableRemovalPolicy: config.tableRemovalPolicy === 'retain' ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
      operatorPrincipals: config.operatorPrincipals,
      securityHub: config.securityHub,
      reconcileMinutes: config.enforcement?.reconcileMinutes,
      naclResidenceSeconds: config.enforcement?.naclResidenceSeconds,
      ...(config.simulation !== undefined ? { simulation: config.simulation } : {}),
      ...(config.digest ? { digest: config.digest } : {}),
    });

    const vpc = this.vpc;
    const sensorProps = vpc && {
      vpc,
      eventBus: this.blocker.eventBus,
      tcpPorts: sensorConfig.tcpPorts,
      udpPorts: sensorConfig.udpPorts,
      agentConfig: sensorConfig.agentConfig,
      ignore: ownCidrs,
      alarmAction: this.blocker.alarmAction,
    };
    if (sensorConfig.type === 'ec2' && sensorProps) {
      const amiId = sensorConfig.amiId;
      const sensor = new Ec2Sensor(this, 'Sensor', {
        ...sensorProps,
        instanceType: sensorConfig.instanceType ? new ec2.InstanceType(sensorConfig.instanceType) : undefined,
        machineImage: amiId ? { getImage: () => ({ imageId: amiId, osType: ec2.OperatingSystemType.LINUX, userData: ec2.UserData.forLinux() }) } : undefined,
        elasticIp: sensorConfig.elasticIp,
        sessionManager: sensorConfig.sessionManager,
      });
      this.sensor = sensor;
      this.blocker.alarms.push(sensor.heartbeat.alarm);
      if (sensorConfig.flowLogs) {
        this.flowLogs = new SensorFlowLogs(this, 'SensorFlowLogs', {
          blocker: this.blocker,
          resources: [ec2.FlowLogResourceType.fromSubnet(sensor.subnet)],
          destinations: [sensor.instance.instancePrivateIp],
        });
      }
    } else if (sensorConfig.type === 'fargate' && sensorProps) {
      const sensor = new FargateSensor(this, 'Sensor', { ...sensorProps, platform: sensorConfig.platform });
      this.sensor = sensor;
      this.blocker.alarms.push(sensor.heartbeat.alarm);
      if (sensorConfig.flowLogs) {
        this.flowLogs = new SensorFlowLogs(this, 'SensorFlowLogs', {
          blocker: this.blocker,
          resources: sensor.subnets.map((subnet) => ec2.FlowLogResourceType.fromSubnet(subnet)),
        });
      }
    }

    const nlb = sensorConfig.nlb;
    const sensor = this.sensor;
    if (nlb && sensor && vpc) {
      const loadBalancer = elbv2.NetworkLoadBalancer.fromNetworkLoadBalancerAttributes(this, 'LoadBalancer', {
        loadBalancerArn: nlb.loadBalancerArn,
        vpc,
      });
      this.decoyListeners = new DecoyListeners(this, 'DecoyListeners', {
        loadBalancer,
        vpc,
        tcpPorts: nlb.tcpPorts,
        udpPorts: nlb.udpPorts,
        existingListeners: nlb.existingListeners,
        target: (port, protocol) =>
          sensor instanceof Ec2Sensor ? new elbv2Targets.InstanceTarget(sensor.instance, port) : sensor.loadBalancerTarget(port, protocol),
      });
    }
  }
}

/**
 * The VPC's default-security-group custom resource (aws-cdk-lib) logs through a function with no
 * log group of its own, so Lambda would create /aws/lambda/<name> with no retention and leave it
 * after `cdk destroy`. Creating that group first, with a retention and DESTROY, bounds it.
 */
function keepProviderLogsBounded(stack: Stack, vpc: ec2.Vpc): void {
  const handler = stack.node.tryFindChild('Custom::VpcRestrictDefaultSGCustomResourceProvider')?.node.tryFindChild('Handler');
  const resource = vpc.node.tryFindChild('RestrictDefaultSecurityGroupCustomResource');
  if (!(handler instanceof CfnResource) || !resource) return;
  const group = new logs.LogGroup(stack, 'RestrictDefaultSgLogs', {
    logGroupName: `/aws/lambda/${handler.ref}`,
    retention: logs.RetentionDays.ONE_WEEK,
    removalPolicy: RemovalPolicy.DESTROY,
  });
  resource.node.addDependency(group);
}
