/**
 * A dedicated decoy on Fargate (docs/deploy.md, "Sensors"): the image built from the repository's
 * Dockerfile, a public address, a security group open on exactly the decoy ports, a task role
 * that may only put events on the portsnare bus, a non-root user and no added capabilities.
 *
 * Fargate grants no NET_RAW/NET_ADMIN, so this sensor sees completed TCP handshakes and UDP
 * datagrams only; add SensorFlowLogs on its (dedicated) subnets for stealth scans.
 *
 * `ContainerImage.fromAsset` only fingerprints and stages the build context at synth; Docker
 * runs at `cdk deploy` (asset publishing), never at `cdk synth`.
 */
import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Platform } from 'aws-cdk-lib/aws-ecr-assets';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { PACKAGE_EXCLUDES } from './Ec2Sensor';
import { acknowledge } from './nag';
import { PROJECT_ROOT } from './PortsnareFunction';
import { SensorHeartbeat } from './SensorHeartbeat';
import {
  AGENT_HEALTH_PORT,
  agentConfig,
  grantSensorPutEvents,
  openDecoyPorts,
  resolveDecoyPorts,
  sensorIdOf,
  type DecoyPorts,
  type SensorProps,
} from './sensorConfig';

/** Where the container writes its config before starting the agent (writable by the non-root user). */
export const CONTAINER_CONFIG_PATH = '/tmp/portsnare-agent.json';

export interface FargateSensorProps extends SensorProps {
  /**
   * The image.
   * @default ecs.ContainerImage.fromAsset(<repository root>) — the repository's Dockerfile, built for ARM64 at deploy
   */
  readonly image?: ecs.ContainerImage;
  /**
   * The (non-root) user the agent runs as, "uid" or "uid:gid". Root ("0", "root") is refused.
   * @default '1000:1000' (the image's `node` user, which owns /var/lib/portsnare)
   */
  readonly user?: string;
  /** @default 256 */
  readonly cpu?: number;
  /** @default 512 */
  readonly memoryLimitMiB?: number;
  /** @default logs.RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
  /**
   * The CPU the task runs on, and the image is built for. ARM64 (Graviton) is cheaper; building
   * it on an x86 machine needs QEMU user emulation registered with binfmt_misc (Docker Desktop
   * has it; on Linux `docker run --privileged --rm tonistiigi/binfmt --install arm64`).
   * @default 'ARM64'
   */
  readonly platform?: SensorPlatform;
}

export type SensorPlatform = 'ARM64' | 'X86_64';

/** Target groups one ECS service may register with (Amazon ECS service quota): https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-quotas.html */
export const ECS_SERVICE_TARGET_GROUP_QUOTA = 5;

export class FargateSensor extends Construct {
  public readonly cluster: ecs.Cluster;
  public readonly taskDefinition: ecs.FargateTaskDefinition;
  public readonly container: ecs.ContainerDefinition;
  public readonly service: ecs.FargateService;
  public readonly securityGroup: ec2.SecurityGroup;
  public readonly logGroup: logs.LogGroup;
  public readonly ports: DecoyPorts;
  public readonly subnets: ec2.ISubnet[];
  public readonly config: Record<string, unknown>;
  /** the name the agent reports with; its heartbeats are watched under it */
  public readonly sensorId: string;
  public readonly heartbeat: SensorHeartbeat;
  private targetGroups = 0;

  constructor(scope: Construct, id: string, props: FargateSensorProps) {
    super(scope, id);
    const owner = `FargateSensor ${this.node.path}`;
    this.ports = resolveDecoyPorts(props, owner, [AGENT_HEALTH_PORT]);
    const user = props.user ?? '1000:1000';
    if (/^(0|root)(:|$)/.test(user)) throw new Error(`${owner}: invalid props:\n- user ${JSON.stringify(user)} is root; the sensor runs as a non-root user`);
    const platform = props.platform ?? 'ARM64';
    if (platform !== 'ARM64' && platform !== 'X86_64') throw new Error(`${owner}: invalid props:\n- platform ${JSON.stringify(platform)} must be ARM64 or X86_64`);
    const stack = Stack.of(this);
    const selection = props.vpcSubnets ?? { subnetType: ec2.SubnetType.PUBLIC };
    this.subnets = props.vpc.selectSubnets(selection).subnets;
    if (this.subnets.length === 0) throw new Error(`${owner}: vpcSubnets selects no subnet in the VPC`);

    this.cluster = new ecs.Cluster(this, 'Cluster', { vpc: props.vpc, enableFargateCapacityProviders: true });
    acknowledge(
      this.cluster,
      'AwsSolutions-ECS4',
      'One decoy task carries no workload worth Container Insights; its detections are measured by the pipeline\'s own metrics and its logs go to CloudWatch Logs.',
    );

    this.taskDefinition = new ecs.FargateTaskDefinition(this, 'Task', {
      cpu: props.cpu ?? 256,
      memoryLimitMiB: props.memoryLimitMiB ?? 512,
      runtimePlatform: {
        cpuArchitecture: platform === 'ARM64' ? ecs.CpuArchitecture.ARM64 : ecs.CpuArchitecture.X86_64,
        operatingSystemFamily: ecs.OperatingSystemFamily.LINUX,
      },
    });
    // The task role may put sensor events on the portsnare bus and nothing else.
    grantSensorPutEvents(props.eventBus, this.taskDefinition.taskRole);
    this.sensorId = sensorIdOf(this, props.agentConfig);

    this.config = agentConfig({
      ports: this.ports,
      busName: props.eventBus.eventBusName,
      region: stack.region,
      stealth: false,
      sensorId: this.sensorId,
      ignore: props.ignore ?? [props.vpc.vpcCidrBlock],
      extra: props.agentConfig,
    });

    this.logGroup = new logs.LogGroup(this, 'Logs', {
      retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const lowPorts = [...this.ports.tcp, ...this.ports.udp].some((port) => port < 1024);
    this.container = this.taskDefinition.addContainer('Agent', {
      image:
        props.image ??
        // The repository's .dockerignore applies as well (CDK reads it).
        ecs.ContainerImage.fromAsset(PROJECT_ROOT, { file: 'Dockerfile', exclude: PACKAGE_EXCLUDES, platform: platform === 'ARM64' ? Platform.LINUX_ARM64 : Platform.LINUX_AMD64 }),
      user,
      essential: true,
      // ECS's init process (tini) as PID 1: signals reach the agent, zombies are reaped.
      linuxParameters: new ecs.LinuxParameters(this, 'Linux', { initProcessEnabled: true }),
      // A non-root process may bind the low decoy ports through this network-namespaced sysctl;
      // no capability is added. Fargate accepts net.* system controls since August 2023
      // (aws/containers-roadmap#460; net.core.* are not namespaced and fail, net.ipv4.* work).
      systemControls: lowPorts ? [{ namespace: 'net.ipv4.ip_unprivileged_port_start', value: '0' }] : undefined,
      environment: {
        PORTSNARE_AGENT_CONFIG: stack.toJsonString(this.config),
        AWS_REGION: stack.region,
      },
      entryPoint: ['/bin/sh', '-c'],
      // The image's /usr/local/bin/portsnare (bundled CLI, source maps on), with the config
      // from the environment; ECS's init process replaces the image's tini as PID 1.
      command: [`printf '%s' "$PORTSNARE_AGENT_CONFIG" > ${CONTAINER_CONFIG_PATH} && exec /usr/local/bin/portsnare agent --config ${CONTAINER_CONFIG_PATH}`],
      healthCheck: {
        command: ['CMD', 'node', '-e', `fetch('http://127.0.0.1:${AGENT_HEALTH_PORT}/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))`],
        interval: Duration.seconds(30),
        timeout: Duration.seconds(5),
        startPeriod: Duration.seconds(20),
        retries: 3,
      },
      logging: ecs.LogDrivers.awsLogs({ streamPrefix: 'sensor', logGroup: this.logGroup }),
      portMappings: [
        ...this.ports.tcp.map((port) => ({ containerPort: port, protocol: ecs.Protocol.TCP })),
        ...this.ports.udp.map((port) => ({ containerPort: port, protocol: ecs.Protocol.UDP })),
      ],
    });
    // Drop every capability Docker grants by default; the agent needs none.
    this.container.linuxParameters?.dropCapabilities(ecs.Capability.ALL);
    acknowledge(
      this.taskDefinition,
      'AwsSolutions-ECS2',
      'The environment holds the agent config (decoy ports, the bus name, the Region): no secret, and the task role, not a key, authorizes PutEvents.',
    );
    acknowledge(
      this.taskDefinition.obtainExecutionRole(),
      'AwsSolutions-IAM5[Resource::*]',
      'The execution role created by aws-cdk-lib needs ecr:GetAuthorizationToken, which supports no resource-level permissions; image pulls are limited to the asset repository.',
    );

    this.securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc: props.vpc,
      description: 'portsnare decoy sensor on Fargate: exactly the decoy ports',
      allowAllOutbound: true,
    });
    openDecoyPorts(this.securityGroup, this.ports);

    this.service = new ecs.FargateService(this, 'Service', {
      cluster: this.cluster,
      taskDefinition: this.taskDefinition,
      desiredCount: 1,
      assignPublicIp: true,
      vpcSubnets: selection,
      securityGroups: [this.securityGroup],
      circuitBreaker: { enable: true, rollback: true },
      minHealthyPercent: 0,
      maxHealthyPercent: 100,
    });
    this.heartbeat = new SensorHeartbeat(this, 'Heartbeat', { eventBus: props.eventBus, sensorId: this.sensorId, alarmAction: props.alarmAction });
  }

  /** The sensor as a Network Load Balancer target for one decoy port (IP target, awsvpc). */
  loadBalancerTarget(port: number, protocol: 'tcp' | 'udp'): elbv2.INetworkLoadBalancerTarget {
    this.targetGroups += 1;
    if (this.targetGroups > ECS_SERVICE_TARGET_GROUP_QUOTA) {
      throw new Error(
        `FargateSensor ${this.node.path}: an ECS service registers with at most ${ECS_SERVICE_TARGET_GROUP_QUOTA} target groups, and each decoy listener port needs one: give the load balancer (sensor.nlb.tcpPorts / udpPorts, DecoyListeners tcpPorts / udpPorts) at most ${ECS_SERVICE_TARGET_GROUP_QUOTA} ports, or use an EC2 sensor`,
      );
    }
    return this.service.loadBalancerTarget({
      containerName: this.container.containerName,
      containerPort: port,
      protocol: protocol === 'tcp' ? ecs.Protocol.TCP : ecs.Protocol.UDP,
    });
  }
}
