/**
 * The `portsnare` object of the CDK context (cdk.json, or `-c portsnare='{…}'`), validated with
 * errors that name the key at fault ("portsnare.sensor.tcpPorts.2: …"). Every key is optional:
 * with none at all the app is a complete demo (its own VPC, an EC2 sensor).
 */
import { Duration } from 'aws-cdk-lib';
import { z } from 'zod';
import { parseDuration } from '../core/commands';
import { DigestSettingsSchema } from '../core/digest';
import { formatZodError } from '../core/event';
import { BLOCK_REASONS } from '../core/policy';
import { canaryProblem, DEFAULT_CANARY_ADDRESS } from '../core/selftest';
import { NLB_LISTENER_QUOTA } from './DecoyListeners';
import { ECS_SERVICE_TARGET_GROUP_QUOTA } from './FargateSensor';
import { OrganizationSchema, SINGLE_ACCOUNT_KEYS } from './org/config';
import { NACL_MAX_RESIDENCE_SECONDS } from '../core/settings';
import { type BlockPolicyProps, MAX_RECONCILE_MINUTES } from './settings';

const port = z.number().int().min(1).max(65535);
const duration = z.union([z.number().int().min(1), z.string()]).transform((value, ctx) => {
  const seconds = typeof value === 'number' ? value : parseDuration(value);
  if (seconds === undefined) {
    ctx.addIssue({ code: 'custom', message: `${JSON.stringify(value)} is not a duration ("90s", "30m", "2h", "7d" or seconds)` });
    return z.NEVER;
  }
  return seconds;
});

export const ExistingVpcSchema = z.strictObject({
  vpcId: z.string().regex(/^vpc-[0-9a-f]{8,17}$/, 'must be a VPC id (vpc-…)'),
  vpcCidrBlock: z.string().min(9),
  availabilityZones: z.array(z.string().min(1)).min(1),
  /** public subnets, one per availability zone above, in the same order */
  publicSubnetIds: z.array(z.string().regex(/^subnet-[0-9a-f]{8,17}$/, 'must be a subnet id (subnet-…)')).min(1),
  /** the VPC's IPv6 CIDRs, if it has any: never blocked, never reported (like vpcCidrBlock) */
  ipv6CidrBlocks: z.array(z.string().regex(/^[0-9a-fA-F:]+\/\d{1,3}$/, 'must be an IPv6 CIDR')).default([]),
});

export const SensorContextSchema = z.strictObject({
  /** where the decoy runs; "none" deploys only the pipeline (bring your own sensors or host agents) */
  type: z.enum(['ec2', 'fargate', 'none']).default('ec2'),
  tcpPorts: z.array(port).optional(),
  udpPorts: z.array(port).optional(),
  /** EC2 only, e.g. "t4g.micro" */
  instanceType: z.string().regex(/^[a-z0-9-]+\.[a-z0-9]+$/, 'must be an instance type such as t4g.micro').optional(),
  /** EC2 only: pin the image (an AMI id of the stack's Region); default: the latest Amazon Linux 2023, kept in cdk.context.json */
  amiId: z.string().regex(/^ami-[0-9a-f]{8,17}$/, 'must be an AMI id (ami-…)').optional(),
  /** EC2 only: an Elastic IP, so the decoy keeps its public address when the instance is replaced */
  elasticIp: z.boolean().default(false),
  /** EC2 only: Session Manager access (a scoped inline policy); false leaves the instance unmanaged */
  sessionManager: z.boolean().default(true),
  /** Fargate only: the task's CPU and the image's platform (ARM64 on an x86 builder needs QEMU/binfmt) */
  platform: z.enum(['ARM64', 'X86_64']).default('ARM64'),
  /** VPC Flow Logs of the sensor → stealth detections */
  flowLogs: z.boolean().default(false),
  /** an existing VPC (no lookup at synth: give its attributes); default: a new VPC for the sensor */
  vpc: ExistingVpcSchema.optional(),
  /** decoy listeners on an existing Network Load Balancer (in `vpc`), forwarding to the sensor */
  nlb: z
    .strictObject({
      loadBalancerArn: z.string().startsWith('arn:', 'must be a load balancer ARN'),
      existingListeners: z.number().int().min(0).default(0),
      tcpPorts: z.array(port).min(1),
      udpPorts: z.array(port).default([]),
    })
    .optional(),
  /** more agent config keys (sensor/config.ts) */
  agentConfig: z.record(z.string(), z.unknown()).optional(),
});

export const PortsnareContextSchema = z
  .strictObject({
    stackName: z
      .string()
      .regex(/^[A-Za-z][A-Za-z0-9-]{0,127}$/, 'must start with a letter and hold only letters, digits and hyphens')
      .default('Portsnare'),
    account: z.string().regex(/^\d{12}$/, 'must be a 12-digit account id').optional(),
    region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'must be an AWS Region such as eu-west-1').optional(),
    naclIds: z.array(z.string()).optional(),
    naclRuleRange: z.tuple([z.number().int(), z.number().int()]).optional(),
    naclQuota: z.number().int().optional(),
    wafScopes: z.array(z.enum(['REGIONAL', 'CLOUDFRONT'])).optional(),
    wafSetsPerFamily: z.number().int().optional(),
    webAclResourceArns: z.array(z.string()).optional(),
    policy: z
      .strictObject({
        baseTtl: duration.optional(),
        escalationFactor: z.number().optional(),
        maxTtl: duration.optional(),
        offenceWindow: duration.optional(),
        allowlist: z.array(z.string()).optional(),
        blockUnverified: z.boolean().optional(),
        burstLimitPerMinute: z.number().int().optional(),
        widestIpv4Prefix: z.number().int().optional(),
        widestIpv6Prefix: z.number().int().optional(),
        maxManualTtl: duration.optional(),
        /** bounds checked by core/policy.ts through lib/settings.ts, naming the key and value */
        ipv6BlockPrefix: z.number().int().optional(),
        ttlJitterPercent: z.number().optional(),
      })
      .optional(),
    vpcCidrs: z.array(z.string()).optional(),
    guardDuty: z.boolean().optional(),
    /** an address that receives the alarms (an SNS topic with an email subscription is created) */
    alarmEmail: z.email().optional(),
    tableRemovalPolicy: z.enum(['destroy', 'retain']).optional(),
    /** IAM principal ARNs whose operator requests (source portsnare.cli) the bus accepts; default: the account's */
    operatorPrincipals: z.array(z.string()).optional(),
    sensor: SensorContextSchema.default(SensorContextSchema.parse({})),
    /** `portsnare selftest` (core/selftest.ts): the canary it blocks and lifts; false: no canary */
    selftest: z
      .strictObject({ canaryAddress: z.union([z.string(), z.literal(false)]).default(DEFAULT_CANARY_ADDRESS) })
      .default({ canaryAddress: DEFAULT_CANARY_ADDRESS }),
    /** AWS Security Hub findings of the blocks (lambda/findings, docs/deploy.md "Security Hub findings"); off by default */
    securityHub: z
      .strictObject({
        enabled: z.boolean({ error: (issue) => `must be true or false, got ${JSON.stringify(issue.input)}` }).default(false),
      })
      .optional(),
    /** enforcement, for the single-account stack and every plane alike */
    enforcement: z
      .strictObject({
        /** minutes between two full reconciles (lib/settings.ts reconcileMinutes); default 10 */
        reconcileMinutes: z.number().int().min(1).max(MAX_RECONCILE_MINUTES).optional(),
        /** seconds a NACL entry keeps its place while its record stays eligible (lib/settings.ts naclResidenceSeconds); default 300, 0: by recency alone */
        naclResidenceSeconds: z.number().int().min(0).max(NACL_MAX_RESIDENCE_SECONDS).optional(),
      })
      .optional(),
    /**
     * simulation (lib/settings.ts `simulation`): `true` (the whole deployment) or `{ "inputs": [...] }`
     * (only the blocks decided from those inputs); decided and recorded, not enforced. `false`: off.
     */
    simulation: z
      .union([z.boolean(), z.strictObject({ inputs: z.array(z.enum(BLOCK_REASONS)).min(1, 'must name at least one input; true simulates the whole deployment') })], {
        error: (issue) => `must be true, false or { "inputs": [...] } with inputs among ${BLOCK_REASONS.join(', ')}, got ${JSON.stringify(issue.input)}`,
      })
      .transform((value) => (value === false ? undefined : value))
      .optional(),
    /** the notification digest (core/digest.ts): every N minutes to SNS (email, AWS Chatbot) and/or a webhook; off when absent */
    digest: DigestSettingsSchema.optional(),
    /** one decision plane and enforcement planes in many accounts and Regions (lib/org/, docs/organization.md) */
    organization: OrganizationSchema.optional(),
  })
  .superRefine((config, ctx) => {
    if (config.sensor.nlb && !config.sensor.vpc) {
      ctx.addIssue({ code: 'custom', path: ['sensor', 'nlb'], message: 'needs sensor.vpc: the load balancer is in an existing VPC' });
    }
    if (config.sensor.nlb && config.sensor.type === 'none') {
      ctx.addIssue({ code: 'custom', path: ['sensor', 'nlb'], message: 'needs a sensor (sensor.type ec2 or fargate) to forward to' });
    }
    const nlb = config.sensor.nlb;
    if (nlb && config.sensor.type === 'fargate' && nlb.tcpPorts.length + nlb.udpPorts.length > ECS_SERVICE_TARGET_GROUP_QUOTA) {
      ctx.addIssue({
        code: 'custom',
        path: ['sensor', 'nlb', 'tcpPorts'],
        message: `a Fargate sensor takes at most ${ECS_SERVICE_TARGET_GROUP_QUOTA} load balancer ports (tcpPorts + udpPorts; an ECS service has at most ${ECS_SERVICE_TARGET_GROUP_QUOTA} target groups), got ${nlb.tcpPorts.length + nlb.udpPorts.length}: use sensor.type ec2 or fewer ports`,
      });
    }
    if (nlb && nlb.existingListeners + nlb.tcpPorts.length + nlb.udpPorts.length > NLB_LISTENER_QUOTA) {
      ctx.addIssue({
        code: 'custom',
        path: ['sensor', 'nlb', 'tcpPorts'],
        message: `${nlb.tcpPorts.length + nlb.udpPorts.length} decoy listeners and existingListeners ${nlb.existingListeners} exceed the ${NLB_LISTENER_QUOTA} listeners of a load balancer`,
      });
    }
    const canary = config.selftest.canaryAddress;
    const canaryFault = canary === false ? undefined : canaryProblem(canary, { protectedCidrs: config.vpcCidrs ?? [], allowlist: config.policy?.allowlist ?? [] });
    if (canaryFault) ctx.addIssue({ code: 'custom', path: ['selftest', 'canaryAddress'], message: canaryFault });
    if (config.sensor.vpc && config.sensor.vpc.publicSubnetIds.length !== config.sensor.vpc.availabilityZones.length) {
      ctx.addIssue({ code: 'custom', path: ['sensor', 'vpc', 'publicSubnetIds'], message: 'needs one subnet per availability zone, in the same order' });
    }
  });
export type PortsnareContext = z.output<typeof PortsnareContextSchema>;

/** Parses the context value (an object from cdk.json, or a JSON string from `-c`); errors name `portsnare.<key>`. */
export function parsePortsnareContext(value: unknown): { ok: true; value: PortsnareContext } | { ok: false; error: string } {
  let input = value ?? {};
  if (typeof input === 'string') {
    try {
      input = JSON.parse(input);
    } catch (error) {
      return { ok: false, error: `portsnare: the context value is not JSON: ${(error as Error).message}` };
    }
  }
  const parsed = PortsnareContextSchema.safeParse(input);
  const conflicts = organizationConflicts(input);
  if (parsed.success && conflicts.length === 0) return { ok: true, value: parsed.data };
  const issues = parsed.success ? [] : parsed.error.issues;
  const lines = [
    ...issues.map((issue) => `portsnare${issue.path.map((p) => `.${String(p)}`).join('')}: ${issue.message}${shownValue(input, issue.path)}`),
    ...conflicts,
  ];
  if (parsed.success) return { ok: false, error: lines.join('\n') };
  return { ok: false, error: lines.length ? lines.join('\n') : formatZodError(parsed.error) };
}

/**
 * With an `organization`, the keys that place one stack (account, Region, ACLs, scopes, a sensor)
 * belong to the planes: given at the top level they would be silently ignored, so they are errors.
 */
function organizationConflicts(input: unknown): string[] {
  if (typeof input !== 'object' || input === null || !('organization' in input)) return [];
  const given = input as Record<string, unknown>;
  const conflicts = SINGLE_ACCOUNT_KEYS.filter((key) => given[key] !== undefined).map(
    (key) =>
      `portsnare.${key}: ${JSON.stringify(given[key])} is a single-account key; with organization, set it per plane (organization.planes[].account/region/naclIds/wafScopes) or leave it out (sensors run anywhere and put on the decision bus)`,
  );
  // An organization has no VPC of the app to take its own ranges from: without them every
  // function would protect nothing of the organization's own networks.
  if (!Array.isArray(given.vpcCidrs) || given.vpcCidrs.length === 0) {
    conflicts.push(
      `portsnare.vpcCidrs: ${JSON.stringify(given.vpcCidrs)}: an organization needs its own networks' CIDRs (every VPC the sensors and planes protect, e.g. ["10.0.0.0/8"]), which are never blocked`,
    );
  }
  return conflicts;
}

/** " (got <value>)" for an issue under `organization` or `digest`, so an error names the value as well as the key. */
function shownValue(input: unknown, path: readonly PropertyKey[]): string {
  if (path[0] !== 'organization' && path[0] !== 'enforcement' && path[0] !== 'digest') return '';
  let value: unknown = input;
  for (const key of path) value = typeof value === 'object' && value !== null ? (value as Record<PropertyKey, unknown>)[key] : undefined;
  return value === undefined || typeof value === 'object' ? '' : ` (got ${JSON.stringify(value)})`;
}

/** The context's `policy` as the constructs' props (durations in seconds become Durations), for every stack alike. */
export function blockPolicyOf(config: PortsnareContext): BlockPolicyProps | undefined {
  const p = config.policy;
  const s = (v: number | undefined): Duration | undefined => (v === undefined ? undefined : Duration.seconds(v));
  return (
    p && {
      baseTtl: s(p.baseTtl),
      escalationFactor: p.escalationFactor,
      maxTtl: s(p.maxTtl),
      offenceWindow: s(p.offenceWindow),
      allowlist: p.allowlist,
      blockUnverified: p.blockUnverified,
      burstLimitPerMinute: p.burstLimitPerMinute,
      widestIpv4Prefix: p.widestIpv4Prefix,
      widestIpv6Prefix: p.widestIpv6Prefix,
      maxManualTtl: s(p.maxManualTtl),
      ipv6BlockPrefix: p.ipv6BlockPrefix,
      ttlJitterPercent: p.ttlJitterPercent,
    }
  );
}
