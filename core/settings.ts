/**
 * The pipeline's settings: one JSON document the CDK construct writes into each function's
 * environment (PORTSNARE_SETTINGS) and the local pipeline reads from the agent's config.
 * One schema on both sides, so a construct and a handler cannot disagree.
 */
import { z } from 'zod';
import { GuardSettingsSchema } from './guard';
import { NO_SIMULATION, PolicySettingsSchema, SimulationSettingsSchema } from './policy';

/** AWS: network ACL rule numbers run 1–32766 (EC2 API, CreateNetworkAclEntry RuleNumber). */
export const NACL_RULE_MIN = 1;
export const NACL_RULE_MAX = 32766;
/** AWS VPC quotas: rules per network ACL, per direction, IPv4 and IPv6 apart; 20 by default, 40 at most. */
export const NACL_DEFAULT_QUOTA = 20;
export const NACL_MAX_QUOTA = 40;
/**
 * How long (seconds) a NACL entry portsnare placed keeps its place while its record stays
 * eligible (core/nacl.ts planNacl `residence`): 5 minutes by default; 0 places by recency alone.
 */
export const NACL_DEFAULT_RESIDENCE_SECONDS = 300;
export const NACL_MAX_RESIDENCE_SECONDS = 86_400;
/** AWS WAF quotas: at most 10,000 addresses in one IP set. */
export const WAF_MAX_ADDRESSES_PER_SET = 10_000;

export const NaclSettingsSchema = z
  .strictObject({
    /** the network ACLs portsnare writes deny entries into */
    aclIds: z.array(z.string().regex(/^acl-[0-9a-f]{8,17}$/, 'must be a network ACL id (acl-…)')).default([]),
    /** the reserved rule-number range [first, last] portsnare owns; entries outside it are never touched */
    ruleRange: z
      .tuple([z.number().int().min(NACL_RULE_MIN).max(NACL_RULE_MAX), z.number().int().min(NACL_RULE_MIN).max(NACL_RULE_MAX)])
      .default([1, 99]),
    /** rules per direction per ACL (the default deny counts), IPv4 and IPv6 apart */
    quotaPerDirection: z.number().int().min(1).max(NACL_MAX_QUOTA).default(NACL_DEFAULT_QUOTA),
    /**
     * seconds an entry placed by this stack keeps its place ahead of candidates without one while
     * its record stays eligible; 0: every run places by recency alone (core/nacl.ts planNacl)
     */
    residenceSeconds: z.number().int().min(0).max(NACL_MAX_RESIDENCE_SECONDS).default(NACL_DEFAULT_RESIDENCE_SECONDS),
  })
  .refine((nacl) => nacl.ruleRange[0] <= nacl.ruleRange[1], {
    path: ['ruleRange'],
    message: 'first rule number must not exceed the last',
  });
export type NaclSettings = z.output<typeof NaclSettingsSchema>;

export const WafSetRefSchema = z.strictObject({
  scope: z.enum(['REGIONAL', 'CLOUDFRONT']),
  family: z.enum(['ipv4', 'ipv6']),
  name: z.string().min(1).max(128),
  id: z.string().min(1).max(36),
});
export type WafSetRef = z.output<typeof WafSetRefSchema>;

export const WafSettingsSchema = z.strictObject({
  /** portsnare's own IP sets, sharded by family; more sets of a family mean more capacity */
  sets: z.array(WafSetRefSchema).default([]),
});
export type WafSettings = z.output<typeof WafSettingsSchema>;

export const PipelineSettingsSchema = z.strictObject({
  policy: PolicySettingsSchema.default(PolicySettingsSchema.parse({})),
  guard: GuardSettingsSchema.default(GuardSettingsSchema.parse({})),
  nacl: NaclSettingsSchema.default(NaclSettingsSchema.parse({})),
  waf: WafSettingsSchema.default(WafSettingsSchema.parse({})),
  /** blocks decided and recorded but not enforced (core/policy.ts SimulationSettingsSchema); off by default */
  simulation: SimulationSettingsSchema.default(() => ({ ...NO_SIMULATION, inputs: [] })),
});
export type PipelineSettings = z.output<typeof PipelineSettingsSchema>;
export type PipelineSettingsInput = z.input<typeof PipelineSettingsSchema>;

/** the variable the document travels in (core/environment.ts, the functions' environment contract) */
export { SETTINGS_ENV } from './environment';

/**
 * The enforce queue's contract: every message is in one FIFO group (one enforce run at a time)
 * and its body is a wake-up `{"kind": …}` of one of these kinds (lambda/shared/queue.ts).
 */
export const ENFORCE_GROUP_ID = 'enforce';
export const ENFORCE_KINDS = ['enforce', 'expire', 'reconcile'] as const;
