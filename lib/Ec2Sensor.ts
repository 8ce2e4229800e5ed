/**
 * A dedicated decoy on EC2 (docs/deploy.md, "Sensors"): Amazon Linux 2023 on Graviton, nothing real
 * on it, its own public address, a security group open on exactly the decoy ports, the agent
 * with kernel (stealth) detection, reporting to the portsnare bus.
 *
 * Install method: the agent bundle (lib/agentBundle.ts: one esbuild file, the systemd unit) is a
 * small S3 asset built at synth; user data installs Node.js 22 from the distribution (nothing
 * from the npm registry), starts packaging/portsnare-agent.service, waits for the agent's
 * /healthz and signals CloudFormation (a CreationPolicy): a sensor that does not come up fails
 * the deploy. No SSH: Session Manager with a scoped inline policy, or nothing (`sessionManager`).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Annotations, CfnOutput, Stack, Token } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { AGENT_NODE_MAJOR, agentBundleAsset } from './agentBundle';
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

/** What the Docker build context leaves out (the Dockerfile copies only what it bundles). */
export const PACKAGE_EXCLUDES = ['node_modules', '.git', 'cdk.out', 'cdk.out.*', 'dist', 'coverage', 'test', 'bench', '.portsnare', '*.log', '.ci', 'build'];

/**
 * What Session Manager needs on the instance, and nothing more (no ssm:GetParameter*, no
 * Run Command): https://docs.aws.amazon.com/systems-manager/latest/userguide/getting-started-create-iam-instance-profile.html
 */
export const SESSION_MANAGER_ACTIONS = [
  'ssm:UpdateInstanceInformation',
  'ssmmessages:CreateControlChannel',
  'ssmmessages:CreateDataChannel',
  'ssmmessages:OpenControlChannel',
  'ssmmessages:OpenDataChannel',
] as const;

/** How long CloudFormation waits for the instance's signal (dnf, download, agent start). */
export const SENSOR_SIGNAL_TIMEOUT = 'PT15M';
/** Seconds the user data waits for the agent's /healthz before it reports failure. */
export const AGENT_HEALTH_WAIT_SECONDS = 120;

export const AGENT_SERVICE = 'portsnare-agent.service';
export const AGENT_SERVICE_FILE = path.join(PROJECT_ROOT, 'packaging', AGENT_SERVICE);
/** The unit's drop-in that grants CAP_NET_ADMIN/CAP_NET_RAW for kernel detection. */
export const NET_ADMIN_DROP_IN = 'portsnare-agent-net-admin.conf';
const DEFAULT_AGENT_CONFIG_PATH = '/etc/portsnare/agent.json';

/** The config path the systemd unit passes to `portsnare agent --config`, so user data writes it there. */
export function agentConfigPath(serviceFile = AGENT_SERVICE_FILE): string {
  try {
    const unit = fs.readFileSync(serviceFile, 'utf8');
    const match = /^ExecStart=.*--config[= ](\S+)/m.exec(unit);
    return match?.[1] ?? DEFAULT_AGENT_CONFIG_PATH;
  } catch {
    return DEFAULT_AGENT_CONFIG_PATH;
  }
}

export interface Ec2SensorProps extends SensorProps {
  /**
   * @default t4g.micro (Graviton)
   */
  readonly instanceType?: ec2.InstanceType;
  /**
   * Kernel detection of SYN, FIN, NULL, XMAS, ACK, Maimon, Window and UDP probes on every port.
   * (The saved-SYN helper is not built on EC2: with stealth on, the kernel sees every handshake.)
   * @default true
   */
  readonly stealth?: boolean;
  /**
   * The image. Pin it so a newly published Amazon Linux image does not replace the decoy (and
   * its public address): `ec2.MachineImage.genericLinux({ 'eu-west-1': 'ami-…' })` or the app's
   * `sensor.amiId`.
   * @default - the latest Amazon Linux 2023 for the CPU of `instanceType`, looked up once and kept
   *   in cdk.context.json when the stack has an account and Region (`cdk context --reset` to move
   *   on); an environment-agnostic stack resolves the SSM parameter at every deploy (a warning says so)
   */
  readonly machineImage?: ec2.IMachineImage;
  /**
   * Give the decoy an Elastic IP, so its public address survives a replacement of the instance.
   * @default false
   */
  readonly elasticIp?: boolean;
  /**
   * Session Manager access (`aws ssm start-session`), through an inline policy of exactly the
   * actions it needs (SESSION_MANAGER_ACTIONS). `false`: the instance has no management channel.
   * @default true
   */
  readonly sessionManager?: boolean;
  /**
   * The checkout the agent is bundled from.
   * @default this repository
   */
  readonly projectRoot?: string;
}

export class Ec2Sensor extends Construct {
  public readonly instance: ec2.Instance;
  public readonly securityGroup: ec2.SecurityGroup;
  public readonly role: iam.Role;
  /** the subnet the sensor runs in (VPC Flow Logs attach here: AWS::EC2::Instance returns no interface id) */
  public readonly subnet: ec2.ISubnet;
  public readonly ports: DecoyPorts;
  /** the agent config written to the instance (tokens resolve at deploy) */
  public readonly config: Record<string, unknown>;
  /** the name the agent reports with; its heartbeats are watched under it */
  public readonly sensorId: string;
  public readonly heartbeat: SensorHeartbeat;
  /** the Elastic IP, with `elasticIp: true` */
  public readonly elasticIp?: ec2.CfnEIP;

  constructor(scope: Construct, id: string, props: Ec2SensorProps) {
    super(scope, id);
    this.ports = resolveDecoyPorts(props, `Ec2Sensor ${this.node.path}`, [AGENT_HEALTH_PORT]);
    const stack = Stack.of(this);
    const subnet = props.vpc.selectSubnets(props.vpcSubnets ?? { subnetType: ec2.SubnetType.PUBLIC }).subnets[0];
    if (!subnet) throw new Error(`Ec2Sensor ${this.node.path}: vpcSubnets selects no subnet in the VPC`);
    this.subnet = subnet;
    const instanceType = props.instanceType ?? ec2.InstanceType.of(ec2.InstanceClass.T4G, ec2.InstanceSize.MICRO);

    this.securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc: props.vpc,
      description: 'portsnare decoy sensor: exactly the decoy ports, no SSH',
      allowAllOutbound: true,
    });
    openDecoyPorts(this.securityGroup, this.ports);

    const sessionManager = props.sessionManager ?? true;
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
      description: `portsnare EC2 sensor: put sensor events on the portsnare bus, read its agent bundle${sessionManager ? ', Session Manager' : ''}`,
    });
    grantSensorPutEvents(props.eventBus, this.role);
    if (sessionManager) {
      this.role.addToPrincipalPolicy(new iam.PolicyStatement({ sid: 'PortsnareSessionManager', actions: [...SESSION_MANAGER_ACTIONS], resources: ['*'] }));
      acknowledge(
        this.role,
        'AwsSolutions-IAM5[Resource::*]',
        'Session Manager on the instance: ssmmessages:* channel actions support no resource-level permissions, and the instance cannot name its own id in its role (a cycle). These five actions are the documented minimum; no parameter, document or command access.',
      );
    }

    const asset = agentBundleAsset(this, 'Agent', { projectRoot: props.projectRoot });
    // Only the one object, not the asset bucket (grantRead would allow s3:GetObject* on every asset).
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({ sid: 'PortsnareAgentBundle', actions: ['s3:GetObject'], resources: [asset.bucket.arnForObjects(asset.s3ObjectKey)] }),
    );

    const stealth = props.stealth ?? true;
    this.sensorId = sensorIdOf(this, props.agentConfig);
    this.config = agentConfig({
      ports: this.ports,
      busName: props.eventBus.eventBusName,
      region: stack.region,
      stealth,
      sensorId: this.sensorId,
      ignore: props.ignore ?? [props.vpc.vpcCidrBlock],
      extra: props.agentConfig,
    });
    const configPath = agentConfigPath();
    const userData = ec2.UserData.forLinux();
    userData.addCommands(
      'set -euo pipefail',
      // nftables and tcpdump: kernel (stealth) detection reads an NFLOG group. aws-cfn-bootstrap: cfn-signal.
      `dnf install -y nodejs${AGENT_NODE_MAJOR} unzip aws-cfn-bootstrap${stealth ? ' nftables tcpdump' : ''}`,
      // AL2023 installs a versioned binary (node-22); the unit runs /usr/bin/node.
      `if ! /usr/bin/node --version 2>/dev/null | grep -q "^v${AGENT_NODE_MAJOR}"; then ln -sf "$(command -v node-${AGENT_NODE_MAJOR})" /usr/bin/node; fi`,
    );
    const zip = userData.addS3DownloadCommand({ bucket: asset.bucket, bucketKey: asset.s3ObjectKey, localFile: '/tmp/portsnare-agent.zip' });
    userData.addCommands(
      'rm -rf /opt/portsnare && mkdir -p /opt/portsnare',
      `unzip -q ${zip} -d /opt/portsnare`,
      'id portsnare >/dev/null 2>&1 || useradd --system --home-dir /var/lib/portsnare --shell /usr/sbin/nologin portsnare',
      `install -d -m 0755 ${path.posix.dirname(configPath)}`,
      `cat > ${configPath} <<'PORTSNARE_CONFIG'`,
      stack.toJsonString(this.config),
      'PORTSNARE_CONFIG',
      `chmod 0644 ${configPath}`,
      `install -m 0644 /opt/portsnare/packaging/${AGENT_SERVICE} /etc/systemd/system/${AGENT_SERVICE}`,
      ...(stealth
        ? [`install -D -m 0644 /opt/portsnare/packaging/${NET_ADMIN_DROP_IN} /etc/systemd/system/${AGENT_SERVICE}.d/net-admin.conf`]
        : []),
      'systemctl daemon-reload',
      `systemctl enable --now ${AGENT_SERVICE}`,
      // Signal success only once the agent answers on its loopback health port (or, with the
      // health API off, once systemd still has it running after the wait); otherwise the exit
      // status (set -e) fails the signal and CloudFormation rolls the sensor back.
      ...healthCheckCommands(props.agentConfig),
    );

    this.instance = new ec2.Instance(this, 'Instance', {
      vpc: props.vpc,
      vpcSubnets: { subnets: [subnet] },
      // A public address of its own: the decoy must be reachable, and user data needs the
      // internet (dnf, S3) from the first second of boot.
      associatePublicIpAddress: true,
      instanceType,
      machineImage: props.machineImage ?? defaultImage(this, instanceType),
      securityGroup: this.securityGroup,
      role: this.role,
      userData,
      // IMDSv2 only, on the instance itself (no launch template with an account-wide fixed name).
      httpTokens: ec2.HttpTokens.REQUIRED,
      httpEndpoint: true,
      httpPutResponseHopLimit: 1,
      ssmSessionPermissions: false,
      blockDevices: [{ deviceName: '/dev/xvda', volume: ec2.BlockDeviceVolume.ebs(8, { encrypted: true, volumeType: ec2.EbsDeviceVolumeType.GP3 }) }],
      // New agent bundle or config → a new instance (user data runs on first boot only). The
      // bundle's hash is its output's: unrelated changes to the repository replace nothing.
      userDataCausesReplacement: true,
    });
    userData.addSignalOnExitCommand(this.instance);
    this.instance.instance.cfnOptions.creationPolicy = { resourceSignal: { count: 1, timeout: SENSOR_SIGNAL_TIMEOUT } };

    if (props.elasticIp) {
      this.elasticIp = new ec2.CfnEIP(this, 'ElasticIp', { domain: 'vpc', tags: [{ key: 'Name', value: `portsnare decoy ${this.node.path}` }] });
      new ec2.CfnEIPAssociation(this, 'ElasticIpAssociation', { allocationId: this.elasticIp.attrAllocationId, instanceId: this.instance.instanceId });
      new CfnOutput(this, 'PublicAddress', { value: this.elasticIp.ref, description: `portsnare decoy ${this.node.path}: its Elastic IP` });
    }

    this.heartbeat = new SensorHeartbeat(this, 'Heartbeat', { eventBus: props.eventBus, sensorId: this.sensorId, alarmAction: props.alarmAction });

    acknowledge(
      this.instance,
      'AwsSolutions-EC28',
      'The decoy carries no workload: basic (5-minute) monitoring is enough; its detections are measured by the pipeline\'s own metrics and its liveness by its heartbeat alarm.',
    );
    acknowledge(
      this.instance,
      'AwsSolutions-EC29',
      'The decoy is disposable and must go with `cdk destroy`; termination protection would leave it behind.',
    );
  }
}

/** User data lines that fail unless the agent came up: its /healthz, or systemd's view when the health API is off. */
function healthCheckCommands(extra: Record<string, unknown> | undefined): string[] {
  const health = (extra?.health ?? {}) as { enabled?: unknown; port?: unknown };
  const active = `systemctl is-active --quiet ${AGENT_SERVICE}`;
  if (health.enabled === false) return [`sleep 10`, active];
  const port = typeof health.port === 'number' && health.port > 0 ? health.port : AGENT_HEALTH_PORT;
  const probe = `curl -fsS --max-time 2 http://127.0.0.1:${port}/healthz >/dev/null`;
  return [`for _ in $(seq 1 ${AGENT_HEALTH_WAIT_SECONDS / 2}); do ${probe} && break; sleep 2; done`, active, probe];
}

/**
 * The latest Amazon Linux 2023 for the instance type's CPU: looked up once and kept in
 * cdk.context.json when the stack has an account and Region, else resolved at deploy (warned).
 */
function defaultImage(scope: Construct, instanceType: ec2.InstanceType): ec2.IMachineImage {
  const stack = Stack.of(scope);
  const cpuType = instanceType.architecture === ec2.InstanceArchitecture.ARM_64 ? ec2.AmazonLinuxCpuType.ARM_64 : ec2.AmazonLinuxCpuType.X86_64;
  if (!Token.isUnresolved(stack.account) && !Token.isUnresolved(stack.region)) {
    return ec2.MachineImage.latestAmazonLinux2023({ cpuType, cachedInContext: true });
  }
  Annotations.of(scope).addInfo(
    'The stack has no account and Region, so the Amazon Linux image is resolved at every deploy: a new image replaces the decoy (and its public address). Give the stack an env (the image is then kept in cdk.context.json), or a machineImage / sensor.amiId.',
  );
  return ec2.MachineImage.latestAmazonLinux2023({ cpuType });
}
