/**
 * The EnumerationBlocker's props, and the one pure function that turns them into the
 * PORTSNARE_SETTINGS document every function receives (core/settings.ts, the schema the local
 * agent uses too). Props are checked by running that schema and naming the prop at fault:
 * numeric bounds and formats live in core/, never here. What this file checks itself is only
 * what the document cannot express: ACL id duplicates, WAF scopes against the stack's Region,
 * the number of IP sets (a rule-group capacity), web ACL targets, and maxTtl against baseTtl.
 */
import { Token, type Duration, type RemovalPolicy } from 'aws-cdk-lib';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type { z } from 'zod';
import { digestSettingsProblems, type DigestSettingsSchema } from '../core/digest';
import { GuardSettingsSchema } from '../core/guard';
import { canaryCidr, canaryProblem } from '../core/selftest';
import { type BlockReason, DEFAULT_POLICY, PolicySettingsSchema, type PolicySettings, SimulationSettingsSchema } from '../core/policy';
import {
  NACL_DEFAULT_QUOTA,
  NACL_DEFAULT_RESIDENCE_SECONDS,
  NaclSettingsSchema,
  PipelineSettingsSchema,
  WafSettingsSchema,
  type PipelineSettingsInput,
  type WafSetRef,
} from '../core/settings';
import { DEFAULT_RECONCILE_MINUTES } from '../core/org';

export type WafScope = 'REGIONAL' | 'CLOUDFRONT';
export type AddressFamily = 'ipv4' | 'ipv6';

/** At most this many IP sets per scope and family: 100,000 addresses, and a fixed rule-group capacity. */
export const MAX_WAF_SETS_PER_FAMILY = 10;
/** Each IP set reference statement costs 1 WCU; a rule group's capacity cannot change after creation. */
export const RULE_GROUP_CAPACITY = 2 * MAX_WAF_SETS_PER_FAMILY;

/** The block policy (core/policy.ts; bounds and defaults are PolicySettingsSchema's). */
export interface BlockPolicyProps {
  /**
   * How long a first offence is blocked.
   * @default Duration.hours(1)
   */
  readonly baseTtl?: Duration;
  /**
   * Each repeat offence within the offence window multiplies the TTL by this (1–100).
   * @default 2
   */
  readonly escalationFactor?: number;
  /**
   * The TTL never exceeds this.
   * @default Duration.days(7)
   */
  readonly maxTtl?: Duration;
  /**
   * An offence more than this long after the previous one counts as a first offence again.
   * @default Duration.days(30)
   */
  readonly offenceWindow?: Duration;
  /**
   * Addresses and CIDRs (IPv4 and IPv6) that are never blocked, whoever asks: partners,
   * monitors, your office.
   * @default []
   */
  readonly allowlist?: readonly string[];
  /**
   * Block on probes that completed no TCP handshake (UDP, stealth scans, VPC Flow Logs). Their
   * source address can be forged, so anyone could make portsnare block a resolver or a partner.
   * @default false
   */
  readonly blockUnverified?: boolean;
  /**
   * More new blocks than this within one minute opens the circuit breaker: portsnare stops
   * adding blocks and raises the CircuitBreakerOpen alarm.
   * @default 100
   */
  readonly burstLimitPerMinute?: number;
  /**
   * A CIDR target wider than this IPv4 prefix is refused, whoever asks (a /16 is 65,536 addresses).
   * @default 16
   */
  readonly widestIpv4Prefix?: number;
  /**
   * The same for IPv6 (a /48 is one site).
   * @default 48
   */
  readonly widestIpv6Prefix?: number;
  /**
   * A manual block (`portsnare block --ttl`) asking for longer than this is refused.
   * @default Duration.days(30)
   */
  readonly maxManualTtl?: Duration;
  /**
   * A detected IPv6 attacker is blocked by this prefix (48–128, not wider than
   * widestIpv6Prefix; 128 = the address alone), narrowed to the address when the prefix holds a
   * protected, own or allowlisted address (core/prefix.ts). Manual blocks are taken as asked.
   * @default 64 (or widestIpv6Prefix if narrower)
   */
  readonly ipv6BlockPrefix?: number;
  /**
   * Each block's policy TTL gets a uniformly random extra of 0–N % (0–100), on top of maxTtl,
   * so a scanner cannot time its return; an operator's TTL is exact.
   * @default 0 (no jitter)
   */
  readonly ttlJitterPercent?: number;
}

export interface EnumerationBlockerProps {
  /**
   * The network ACLs portsnare writes deny entries into (`acl-…` ids, or tokens of ACLs in the
   * same app). This is the way to name ACLs: resolving them from subnet ids would need an AWS
   * lookup at synth or a custom resource at deploy, and the IAM policy must name the ACLs.
   * Find a subnet's ACL with `aws ec2 describe-network-acls --filters Name=association.subnet-id,Values=subnet-…`.
   * @default [] (WAF only)
   */
  readonly naclIds?: readonly string[];
  /**
   * The rule numbers [first, last] portsnare owns in every ACL. Entries outside this range are
   * never touched; the range must lie below your own allow rules (ACL rules are evaluated in
   * ascending order, so a deny must come first to win).
   * @default [1, 99]
   */
  readonly naclRuleRange?: readonly [number, number];
  /**
   * Rules per direction per ACL your account allows (VPC quota "Rules per network ACL",
   * 20 by default, 40 at most; the default deny counts). IPv4 and IPv6 are counted apart.
   * @default 20
   */
  readonly naclQuota?: number;
  /**
   * Which WAF scopes get IP sets and a rule group. CLOUDFRONT resources exist only in
   * us-east-1: a CLOUDFRONT scope is accepted only in a stack whose env region is us-east-1.
   * @default ['REGIONAL']
   */
  readonly wafScopes?: readonly WafScope[];
  /**
   * IP sets per scope and address family (10,000 addresses each), 1–10.
   * @default 1
   */
  readonly wafSetsPerFamily?: number;
  /**
   * Resources (Application Load Balancer, API Gateway stage, AppSync, Cognito user pool … ARNs)
   * to protect with a new REGIONAL web ACL holding only the portsnare rule group (default
   * action allow). A resource can have one web ACL only: a resource that already has one would
   * lose it, so for those add the rule group to the existing web ACL instead (see
   * `webAclRule()` and docs/deploy.md).
   * @default [] (no web ACL is created; the rule group ARN is an output)
   */
  readonly webAclResourceArns?: readonly string[];
  /** @default - the defaults of BlockPolicyProps */
  readonly policy?: BlockPolicyProps;
  /**
   * Your own networks (VPC CIDRs, on-premises ranges). Never blocked.
   * @default []
   */
  readonly vpcCidrs?: readonly string[];
  /**
   * Also act on GuardDuty `Recon:EC2/PortProbeUnprotectedPort` and `Recon:EC2/Portscan`
   * findings (GuardDuty must be enabled in the account; its findings arrive on the default bus).
   * @default false
   */
  readonly guardDuty?: boolean;
  /**
   * Where alarms notify.
   * @default - alarms without actions
   */
  readonly alarmTopic?: sns.ITopic;
  /**
   * What happens to the desired-state table (blocks and their history) when the stack is
   * deleted. With DESTROY, point-in-time recovery still leaves a system backup for 35 days.
   * @default RemovalPolicy.DESTROY
   */
  readonly tableRemovalPolicy?: RemovalPolicy;
  /**
   * Retention of every function's log group.
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * The EnforcementLagSeconds alarm fires when a block took longer than this from detection to
   * enforcement.
   * @default Duration.minutes(5)
   */
  readonly enforcementLagThreshold?: Duration;
  /**
   * IAM principal ARNs (users, roles; `*` wildcards allowed, e.g.
   * `arn:aws:iam::123456789012:role/SecOps*`) whose operator requests (`portsnare block` /
   * `unblock` with `--stack`, source `portsnare.cli`) the bus accepts. The bus policy denies
   * `events:PutEvents` of source `portsnare.cli` to every other principal, an explicit deny no
   * identity policy can override. Sensors may never send them (their roles are held to
   * `portsnare.sensor`).
   * @default - any principal of the account that IAM allows events:PutEvents on the bus
   */
  readonly operatorPrincipals?: readonly string[];
  /**
   * The address `portsnare selftest` blocks and lifts to prove the deployed pipeline end to end
   * (core/selftest.ts): one address of a documentation range (192.0.2.0/24, 198.51.100.0/24,
   * 203.0.113.0/24, 2001:db8::/32), never routed, outside `vpcCidrs` and the allowlist. The
   * guard opens exactly its host CIDR; every other special-purpose address stays refused.
   * @default - no canary: `portsnare selftest` says so and fails
   */
  readonly selftestCanaryAddress?: string;
  /**
   * AWS Security Hub findings (lambda/findings, core/findings.ts): every minute, one ASFF finding
   * per blocked source is imported into this account's Security Hub (its default product),
   * updated on re-offence and archived when lifted. Security Hub must be enabled in the account
   * and Region (docs/deploy.md "Security Hub findings").
   * @default - off
   */
  readonly securityHub?: { readonly enabled?: boolean };
  /**
   * Minutes between two full reconciles of the desired state with every WAF IP set and network
   * ACL (context key `portsnare.enforcement.reconcileMinutes`). Enforce otherwise applies only
   * what changed (the change log, core/table.ts); the reconcile repairs what an incremental run
   * missed (a console edit, a lost wake-up, index lag beyond its overlap). A whole number, 1–60.
   * @default 10
   */
  readonly reconcileMinutes?: number;
  /**
   * Seconds a network ACL entry portsnare placed keeps its place while its record stays eligible
   * (active, not expired, allowed by the never-block rules; context key
   * `portsnare.enforcement.naclResidenceSeconds`): a newer attacker takes the place of an entry
   * only once the entry is that old, so a stream of new decisions does not rewrite every ACL on
   * every run. A lift or expiry still removes the entry at once. 0: places go by recency alone.
   * A whole number, 0–86400.
   * @default 300
   */
  readonly naclResidenceSeconds?: number;
  /**
   * The notification digest (core/digest.ts DigestSettingsSchema: everyMinutes, topicArn, email,
   * webhookUrl, minNewBlocks, quietHours, timeZone, chatbot, top); lib/Digest.ts builds it.
   * @default - no digest
   */
  readonly digest?: z.input<typeof DigestSettingsSchema>;
  /**
   * Simulation (README.md "Simulation", context key `portsnare.simulation`): blocks are decided,
   * recorded and shown as always, and not enforced. `true`: the whole deployment (the WAF rules
   * count instead of block, no NACL entry); `{ inputs: [...] }`: only the blocks decided from those
   * inputs (sensor, manual, guardduty, flowlogs), which stay out of the NACLs and the IP sets.
   * Switching back applies what is still active on the next enforce run.
   * @default - off: every block is enforced
   */
  readonly simulation?: true | { readonly inputs: readonly BlockReason[] };
}

/** The props' simulation as the settings document holds it (core/policy.ts SimulationSettingsSchema). */
export function simulationOf(props: Pick<EnumerationBlockerProps, 'simulation'>): { all: boolean; inputs: BlockReason[] } {
  const simulation = props.simulation;
  if (simulation === true) return { all: true, inputs: [] };
  return { all: false, inputs: [...(simulation?.inputs ?? [])] };
}

export { DEFAULT_RECONCILE_MINUTES };
export const MAX_RECONCILE_MINUTES = 60;

/** The reconcile interval in minutes, default applied (validateEnumerationBlockerProps checks it). */
export function reconcileMinutesOf(props: Pick<EnumerationBlockerProps, 'reconcileMinutes'>): number {
  return props.reconcileMinutes ?? DEFAULT_RECONCILE_MINUTES;
}

/** The props' WAF scopes, defaults applied. */
export function wafScopesOf(props: EnumerationBlockerProps): WafScope[] {
  return [...(props.wafScopes ?? ['REGIONAL'])];
}

/** The props' NACL rule range, defaults (NaclSettingsSchema's) applied. */
export function naclRuleRangeOf(props: EnumerationBlockerProps): [number, number] {
  const [first, last] = NaclSettingsSchema.parse({}).ruleRange;
  return [props.naclRuleRange?.[0] ?? first, props.naclRuleRange?.[1] ?? last];
}

/**
 * The PORTSNARE_SETTINGS input document (PipelineSettingsSchema) the functions receive, from the
 * props and the IP sets the construct made. Defaults are core's; values may be tokens.
 */
export function pipelineSettingsFrom(props: EnumerationBlockerProps, wafSets: readonly WafSetRef[] = []): PipelineSettingsInput {
  const policy = props.policy ?? {};
  const given: Partial<PolicySettings> = {
    baseTtlSeconds: policy.baseTtl?.toSeconds(),
    escalationFactor: policy.escalationFactor,
    maxTtlSeconds: policy.maxTtl?.toSeconds(),
    offenceWindowSeconds: policy.offenceWindow?.toSeconds(),
    blockUnverified: policy.blockUnverified,
    burstLimitPerMinute: policy.burstLimitPerMinute,
    widestIpv4Prefix: policy.widestIpv4Prefix,
    widestIpv6Prefix: policy.widestIpv6Prefix,
    maxManualTtlSeconds: policy.maxManualTtl?.toSeconds(),
    ipv6BlockPrefix: policy.ipv6BlockPrefix,
    ttlJitterPercent: policy.ttlJitterPercent,
  };
  const defined = Object.fromEntries(Object.entries(given).filter(([, value]) => value !== undefined));
  return {
    policy: { ...DEFAULT_POLICY, ...defined },
    guard: {
      allowlist: [...(policy.allowlist ?? [])],
      protectedCidrs: [...(props.vpcCidrs ?? [])],
      // the selftest canary (core/selftest.ts): its host CIDR only, checked by validateEnumerationBlockerProps
      ...(props.selftestCanaryAddress !== undefined && canaryProblem(props.selftestCanaryAddress) === undefined
        ? { blockableSpecialCidrs: [canaryCidr(props.selftestCanaryAddress)] }
        : {}),
    },
    nacl: {
      aclIds: [...(props.naclIds ?? [])],
      ruleRange: naclRuleRangeOf(props),
      quotaPerDirection: props.naclQuota ?? NACL_DEFAULT_QUOTA,
      residenceSeconds: props.naclResidenceSeconds ?? NACL_DEFAULT_RESIDENCE_SECONDS,
    },
    waf: { sets: [...wafSets] },
    simulation: simulationOf(props),
  };
}

/** Where each settings key comes from in the props; `seconds` marks a Duration prop. */
const PROP_OF: Record<string, { prop: string; seconds?: true }> = {
  'policy.baseTtlSeconds': { prop: 'policy.baseTtl', seconds: true },
  'policy.maxTtlSeconds': { prop: 'policy.maxTtl', seconds: true },
  'policy.offenceWindowSeconds': { prop: 'policy.offenceWindow', seconds: true },
  'policy.escalationFactor': { prop: 'policy.escalationFactor' },
  'policy.blockUnverified': { prop: 'policy.blockUnverified' },
  'policy.burstLimitPerMinute': { prop: 'policy.burstLimitPerMinute' },
  'policy.widestIpv4Prefix': { prop: 'policy.widestIpv4Prefix' },
  'policy.widestIpv6Prefix': { prop: 'policy.widestIpv6Prefix' },
  'policy.maxManualTtlSeconds': { prop: 'policy.maxManualTtl', seconds: true },
  'policy.ipv6BlockPrefix': { prop: 'policy.ipv6BlockPrefix' },
  'policy.ttlJitterPercent': { prop: 'policy.ttlJitterPercent' },
  'guard.allowlist': { prop: 'policy.allowlist' },
  'guard.protectedCidrs': { prop: 'vpcCidrs' },
  'nacl.aclIds': { prop: 'naclIds' },
  'nacl.ruleRange': { prop: 'naclRuleRange' },
  'nacl.quotaPerDirection': { prop: 'naclQuota' },
  'nacl.residenceSeconds': { prop: 'naclResidenceSeconds' },
  'waf.sets': { prop: 'wafScopes' },
  'simulation.all': { prop: 'simulation' },
  'simulation.inputs': { prop: 'simulation.inputs' },
};

type Issue = z.core.$ZodIssue;

/** A schema issue in words: bounds as numbers, not zod's phrasing. */
function describe(issue: Issue): string {
  if (issue.code === 'too_small' && issue.origin === 'number') return `must be at least ${String(issue.minimum)}`;
  if (issue.code === 'too_big' && issue.origin === 'number') return `must be at most ${String(issue.maximum)}`;
  if (issue.code === 'invalid_type' && issue.expected === 'int') return 'must be a whole number';
  return issue.message;
}

/** "policy.baseTtl 30s: must be at least 60" — the prop, its value, what is wrong. */
function propMessage(doc: Record<string, unknown>, issue: Issue): string {
  const [section, key, ...rest] = issue.path.map(String);
  const source = PROP_OF[`${section}.${key}`];
  if (!source) return `${issue.path.join('.') || '(settings)'}: ${describe(issue)}`;
  const value = (doc[section!] as Record<string, unknown> | undefined)?.[key!];
  const index = rest[0];
  const isList = Array.isArray(value) && source.prop !== 'naclRuleRange';
  const shown = isList && index !== undefined ? (value as unknown[])[Number(index)] : value;
  const name = isList && index !== undefined ? `${source.prop}[${index}]` : source.prop;
  const where = !isList && index !== undefined ? ` element ${index}` : '';
  const text =
    source.seconds && typeof shown === 'number'
      ? `${shown}s`
      : Array.isArray(shown)
        ? `[${shown.map((v) => JSON.stringify(v)).join(', ')}]`
        : JSON.stringify(shown);
  return `${name} ${text}:${where} ${describe(issue)}`;
}

/**
 * Runs the settings document through core's schemas, one prop at a time (so every fault is
 * reported at once, cross-field checks included) and then whole, and names the prop at fault.
 * Tokens (ACL ids, CIDRs of the same app) are replaced by a valid stand-in: they cannot be
 * checked at synth.
 */
function schemaErrors(props: EnumerationBlockerProps): string[] {
  const doc = pipelineSettingsFrom(props) as Record<string, Record<string, unknown>>;
  const stand = (values: unknown, standIn: string): unknown =>
    Array.isArray(values) ? values.map((v) => (typeof v === 'string' && Token.isUnresolved(v) ? standIn : v)) : values;
  const checkable: Record<string, Record<string, unknown>> = {
    ...doc,
    nacl: { ...doc.nacl, aclIds: stand(doc.nacl?.aclIds, 'acl-00000000') },
    guard: { ...doc.guard, protectedCidrs: stand(doc.guard?.protectedCidrs, '192.0.2.0/24') },
  };
  const sections: Record<string, z.ZodType> = {
    policy: PolicySettingsSchema,
    guard: GuardSettingsSchema,
    nacl: NaclSettingsSchema,
    waf: WafSettingsSchema,
    simulation: SimulationSettingsSchema,
  };
  const issues: Issue[] = [];
  for (const [section, schema] of Object.entries(sections)) {
    for (const [key, value] of Object.entries(checkable[section] ?? {})) {
      const result = schema.safeParse({ [key]: value });
      if (!result.success) issues.push(...result.error.issues.map((i) => ({ ...i, path: [section, ...i.path] })));
    }
  }
  const whole = PipelineSettingsSchema.safeParse(checkable);
  if (!whole.success) issues.push(...whole.error.issues);
  const messages = issues.map((issue) => propMessage(doc, issue));
  return [...new Set(messages)];
}

/** Every fault of the props, each naming the prop and its value; [] when they are fine. */
export function validateEnumerationBlockerProps(props: EnumerationBlockerProps, region: string): string[] {
  const errors = schemaErrors(props);
  const securityHubEnabled = props.securityHub?.enabled;
  if (securityHubEnabled !== undefined && typeof securityHubEnabled !== 'boolean') errors.push(`securityHub.enabled ${JSON.stringify(securityHubEnabled)} must be true or false`);

  const naclIds = props.naclIds ?? [];
  const duplicates = naclIds.filter((id, i) => !Token.isUnresolved(id) && naclIds.indexOf(id) !== i);
  if (duplicates.length) errors.push(`naclIds lists ${[...new Set(duplicates)].join(', ')} more than once`);

  const scopes = wafScopesOf(props);
  scopes.forEach((scope, i) => {
    if (scope !== 'REGIONAL' && scope !== 'CLOUDFRONT') errors.push(`wafScopes[${i}] ${JSON.stringify(scope)} must be REGIONAL or CLOUDFRONT`);
  });
  if (new Set(scopes).size !== scopes.length) errors.push(`wafScopes lists a scope more than once: ${scopes.join(', ')}`);
  if (scopes.includes('CLOUDFRONT')) {
    if (Token.isUnresolved(region)) {
      errors.push(
        "wafScopes includes CLOUDFRONT but the stack is environment-agnostic: CloudFront IP sets exist only in us-east-1, so give the stack env: { region: 'us-east-1' }",
      );
    } else if (region !== 'us-east-1') {
      errors.push(
        `wafScopes includes CLOUDFRONT but the stack's region is ${region}: CloudFront IP sets exist only in us-east-1 — deploy this stack (or a second one for CloudFront) with env: { region: 'us-east-1' }`,
      );
    }
  }
  const setsPerFamily = props.wafSetsPerFamily;
  if (setsPerFamily !== undefined && (!Number.isInteger(setsPerFamily) || setsPerFamily < 1 || setsPerFamily > MAX_WAF_SETS_PER_FAMILY)) {
    errors.push(`wafSetsPerFamily ${setsPerFamily} must be a whole number within 1–${MAX_WAF_SETS_PER_FAMILY} (the rule group's fixed capacity)`);
  }
  const reconcile = props.reconcileMinutes;
  if (reconcile !== undefined && (!Number.isInteger(reconcile) || reconcile < 1 || reconcile > MAX_RECONCILE_MINUTES)) {
    errors.push(`reconcileMinutes ${reconcile} must be a whole number of minutes within 1–${MAX_RECONCILE_MINUTES}`);
  }
  const resourceArns = props.webAclResourceArns ?? [];
  if (resourceArns.length > 0 && !scopes.includes('REGIONAL')) errors.push('webAclResourceArns needs the REGIONAL scope in wafScopes');
  resourceArns.forEach((arn, i) => {
    if (!Token.isUnresolved(arn) && !arn.startsWith('arn:')) errors.push(`webAclResourceArns[${i}] ${JSON.stringify(arn)} is not an ARN`);
  });
  (props.operatorPrincipals ?? []).forEach((arn, i) => {
    if (!Token.isUnresolved(arn) && !/^arn:aws[a-z-]*:(iam|sts)::(\d{12}|\*):/.test(arn)) {
      errors.push(`operatorPrincipals[${i}] ${JSON.stringify(arn)} is not an IAM principal ARN (arn:aws:iam::123456789012:role/…)`);
    }
  });
  if (props.operatorPrincipals && props.operatorPrincipals.length === 0) {
    errors.push('operatorPrincipals is empty: no operator could block or unblock; leave it out to accept every principal of the account');
  }
  if (naclIds.length === 0 && scopes.length === 0) errors.push('naclIds and wafScopes are both empty: portsnare would have nowhere to block');
  // The quota counts the default deny (and any rule of yours): a quota of 1 leaves portsnare no entry.
  if (naclIds.length > 0 && props.naclQuota === 1) errors.push('naclQuota 1 leaves portsnare no rule: the default deny takes the one rule a direction allows');

  if (props.selftestCanaryAddress !== undefined) {
    const own = (props.vpcCidrs ?? []).filter((cidr) => !Token.isUnresolved(cidr));
    const problem = canaryProblem(props.selftestCanaryAddress, { protectedCidrs: own, allowlist: props.policy?.allowlist ?? [] });
    if (problem) errors.push(`selftestCanaryAddress ${problem}`);
  }

  if (props.digest !== undefined) errors.push(...digestSettingsProblems(props.digest));

  // PolicySettingsSchema bounds each TTL but not one against the other.
  const { baseTtlSeconds, maxTtlSeconds } = pipelineSettingsFrom(props).policy as PolicySettings;
  if (maxTtlSeconds < baseTtlSeconds) errors.push(`policy.maxTtl ${maxTtlSeconds}s is shorter than policy.baseTtl ${baseTtlSeconds}s`);
  return errors;
}
