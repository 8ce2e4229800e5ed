/**
 * A dedicated decoy on EC2 (docs/deploy.md, "Sensors"): Amazon Linux 2023 on Graviton, nothing real
 * on it, its own public address, a security group open on exactly the decoy ports, the agent
 * with kernel (stealth) detection, reporting to the portsnare bus.
 *
 * Install method: the repository itself is an S3 asset (zipped at synth, offline), downloaded by
 * the user data, which installs Node.js 22 from the distribution, runs `npm ci --omit=dev` and
 * starts packaging/portsnare-agent.service. No SSH: the instance is managed through SSM.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import { Construct } from 'constructs';
import { acknowledge } from './nag';
import { PROJECT_ROOT } from './PortsnareFunction';
import { agentConfig, openDecoyPorts, resolveDecoyPorts, type DecoyPorts, type SensorProps } from './sensorConfig';

/** What the repository asset leaves out: dependencies are installed on the host, tests and build output are not needed. */
export const PACKAGE_EXCLUDES = [
  'node_modules',
  '.git',
  'cdk.out',
  'cdk.out.*',
  'dist',
  'coverage',
  'test',
  'bench',
  '.portsnare',
  '*.log',
  '.ci',
  // the saved-SYN helper built for this machine; npm ci on the instance builds its own
  'build',
];

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
   * @default t4g.micro (Graviton; npm ci needs more than the 0.5 GiB of a nano)
   */
  readonly instanceType?: ec2.InstanceType;
  /**
   * Kernel detection of SYN, FIN, NULL, XMAS, ACK, Maimon, Window and UDP probes on every port.
   * @default true
   */
  readonly stealth?: boolean;
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

  constructor(scope: Construct, id: string, props: Ec2SensorProps) {
    super(scope, id);
    this.ports = resolveDecoyPorts(props, `Ec2Sensor ${this.node.path}`);
    const stack = Stack.of(this);
    const subnet = props.vpc.selectSubnets(props.vpcSubnets ?? { subnetType: ec2.SubnetType.PUBLIC }).subnets[0];
    if (!subnet) throw new Error(`Ec2Sensor ${this.node.path}: vpcSubnets selects no subnet in the VPC`);
    this.subnet = subnet;

    this.securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc: props.vpc,
      description: 'portsnare decoy sensor: exactly the decoy ports, no SSH',
      allowAllOutbound: true,
    });
    openDecoyPorts(this.securityGroup, this.ports);

    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
      description: 'portsnare EC2 sensor: put events on the portsnare bus, SSM management',
      managedPolicies: [iam.ManagedPolicy.fromAwsManagedPolicyName('AmazonSSMManagedInstanceCore')],
    });
    props.eventBus.grantPutEventsTo(this.role);
    acknowledge(
      this.role,
      'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore]',
      'AmazonSSMManagedInstanceCore is the AWS-maintained minimum for Session Manager and patching, which replace SSH; AWS keeps it current as SSM changes.',
    );

    const asset = new s3assets.Asset(this, 'Package', { path: PROJECT_ROOT, exclude: PACKAGE_EXCLUDES });
    // Only the one object, not the asset bucket (grantRead would allow s3:GetObject* on every asset).
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: ['s3:GetObject'], resources: [asset.bucket.arnForObjects(asset.s3ObjectKey)] }),
    );

    const stealth = props.stealth ?? true;
    this.config = agentConfig({
      ports: this.ports,
      busName: props.eventBus.eventBusName,
      region: stack.region,
      stealth,
      ignore: props.ignore ?? [props.vpc.vpcCidrBlock],
      extra: props.agentConfig,
    });
    const configPath = agentConfigPath();
    const userData = ec2.UserData.forLinux();
    userData.addCommands(
      'set -euo pipefail',
      // nftables and tcpdump: the agent's kernel (stealth) detection reads an NFLOG group.
      `dnf install -y nodejs22 nodejs22-npm unzip${stealth ? ' nftables tcpdump' : ''}`,
      // AL2023 installs versioned binaries (node-22, npm-22); the unit runs /usr/bin/node.
      'if ! /usr/bin/node --version 2>/dev/null | grep -q "^v22"; then ln -sf "$(command -v node-22)" /usr/bin/node; ln -sf "$(command -v npm-22)" /usr/bin/npm; fi',
    );
    const zip = userData.addS3DownloadCommand({ bucket: asset.bucket, bucketKey: asset.s3ObjectKey, localFile: '/tmp/portsnare.zip' });
    userData.addCommands(
      'rm -rf /opt/portsnare && mkdir -p /opt/portsnare',
      `unzip -q ${zip} -d /opt/portsnare`,
      'cd /opt/portsnare && npm ci --omit=dev --no-audit --no-fund',
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
    );

    this.instance = new ec2.Instance(this, 'Instance', {
      vpc: props.vpc,
      vpcSubnets: { subnets: [subnet] },
      // A public address of its own: the decoy must be reachable, and user data needs the
      // internet (dnf, npm) from the first second of boot.
      associatePublicIpAddress: true,
      instanceType: props.instanceType ?? ec2.InstanceType.of(ec2.InstanceClass.T4G, ec2.InstanceSize.MICRO),
      // The SSM public parameter, resolved by CloudFormation at deploy: no lookup at synth.
      machineImage: ec2.MachineImage.latestAmazonLinux2023({ cpuType: ec2.AmazonLinuxCpuType.ARM_64 }),
      securityGroup: this.securityGroup,
      role: this.role,
      userData,
      // IMDSv2 only, on the instance itself (no launch template with an account-wide fixed name).
      httpTokens: ec2.HttpTokens.REQUIRED,
      httpEndpoint: true,
      httpPutResponseHopLimit: 1,
      ssmSessionPermissions: false,
      blockDevices: [{ deviceName: '/dev/xvda', volume: ec2.BlockDeviceVolume.ebs(8, { encrypted: true, volumeType: ec2.EbsDeviceVolumeType.GP3 }) }],
      // New code or config → a new instance (user data runs on first boot only).
      userDataCausesReplacement: true,
    });
    this.instance.node.addDependency(asset);

    acknowledge(
      this.instance,
      'AwsSolutions-EC28',
      'The decoy carries no workload: basic (5-minute) monitoring is enough; its detections are measured by the pipeline\'s own metrics.',
    );
    acknowledge(
      this.instance,
      'AwsSolutions-EC29',
      'The decoy is disposable and must go with `cdk destroy`; termination protection would leave it behind.',
    );
  }
}
