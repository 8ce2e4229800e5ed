/**
 * The `organization` section of the `portsnare` context (lib/appConfig.ts): one decision plane,
 * any number of enforcement planes (one per account × Region), optionally a Firewall Manager
 * policy. docs/organization.md explains each key. Errors name the key and its value.
 */
import { z } from 'zod';
import { planeId } from '../../core/org';

const account = z.string().regex(/^\d{12}$/, 'must be a 12-digit account id');
const region = z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'must be an AWS Region such as eu-west-1');

/**
 * The resource types a Firewall Manager AWS WAF policy can cover (AWS::FMS::Policy ResourceType:
 * https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-fms-policy.html).
 * CloudFront distributions take the CLOUDFRONT rule group (us-east-1 only), the others the REGIONAL one.
 */
export const FMS_REGIONAL_RESOURCE_TYPES = [
  'AWS::ElasticLoadBalancingV2::LoadBalancer',
  'AWS::ApiGateway::Stage',
  'AWS::AppSync::GraphQLApi',
  'AWS::Cognito::UserPool',
  'AWS::AppRunner::Service',
  'AWS::EC2::VerifiedAccessInstance',
  'AWS::Amplify::App',
] as const;
export const FMS_CLOUDFRONT_RESOURCE_TYPE = 'AWS::CloudFront::Distribution';

/** an IAM role ARN, `*` allowed in the account and the name (ArnLike: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html#Conditions_ARN) */
const SENSOR_PRINCIPAL = /^arn:aws[a-z-]*:iam::(\d{12}|\*):role\/[\w+=,.@*/-]+$/;

export const PlaneContextSchema = z.strictObject({
  account,
  region,
  /** this account's network ACLs in this Region that the plane writes deny entries into */
  naclIds: z.array(z.string().regex(/^acl-[0-9a-f]{8,17}$/, 'must be a network ACL id (acl-…)')).default([]),
  /** REGIONAL IP sets and rule group (default); CLOUDFRONT here or through `cloudfront` */
  wafScopes: z.array(z.enum(['REGIONAL', 'CLOUDFRONT'])).default(['REGIONAL']),
  /** also CLOUDFRONT IP sets and rule group: only in a us-east-1 plane */
  cloudfront: z.boolean().default(false),
});
export type PlaneContext = z.output<typeof PlaneContextSchema>;

export const FirewallManagerSchema = z.strictObject({
  /** the Firewall Manager administrator account: its planes hold the policies */
  adminAccount: account,
  /** the OUs whose accounts the policies cover; default: every account of the organization */
  organizationalUnits: z.array(z.string().regex(/^ou-[0-9a-z]{4,32}-[0-9a-z]{8,32}$/, 'must be an OU id (ou-…)')).min(1).optional(),
  /** the REGIONAL resource types whose web ACLs get the portsnare rule group first */
  resourceTypes: z.array(z.enum(FMS_REGIONAL_RESOURCE_TYPES)).min(1).default(['AWS::ElasticLoadBalancingV2::LoadBalancer', 'AWS::ApiGateway::Stage']),
  /** let Firewall Manager create and associate web ACLs (else it only reports what is not compliant) */
  remediate: z.boolean().default(false),
});
export type FirewallManagerContext = z.output<typeof FirewallManagerSchema>;

export const OrganizationSchema = z
  .strictObject({
    organizationId: z.string().regex(/^o-[a-z0-9]{10,32}$/, 'must be an organization id (o-…)'),
    /** where the decision plane runs: the delegated security account and its Region */
    decision: z.strictObject({ account, region }),
    /**
     * The sensors' IAM roles, as ARN patterns (`arn:aws:iam::*:role/portsnare-sensor-*`): only
     * they, within the organization, may put sensor events on the decision bus.
     */
    sensorPrincipals: z.array(z.string().regex(SENSOR_PRINCIPAL, 'must be an IAM role ARN or pattern (arn:aws:iam::<account or *>:role/<name, * allowed>)')).min(1, 'needs at least one sensor role pattern: only these principals may put sensor events on the decision bus'),
    planes: z.array(PlaneContextSchema).min(1, 'needs at least one enforcement plane'),
    firewallManager: FirewallManagerSchema.optional(),
  })
  .superRefine((org, ctx) => {
    const seen = new Map<string, number>();
    org.planes.forEach((plane, i) => {
      const id = planeId(plane.account, plane.region);
      const first = seen.get(id);
      if (first !== undefined) ctx.addIssue({ code: 'custom', path: ['planes', i], message: `${JSON.stringify(id)} is already planes.${first}: one plane per account and Region` });
      else seen.set(id, i);
      if ((plane.cloudfront || plane.wafScopes.includes('CLOUDFRONT')) && plane.region !== 'us-east-1') {
        ctx.addIssue({
          code: 'custom',
          path: ['planes', i, plane.cloudfront ? 'cloudfront' : 'wafScopes'],
          message: `CLOUDFRONT IP sets exist only in us-east-1, and this plane's region is ${JSON.stringify(plane.region)}: add a us-east-1 plane with cloudfront: true (it follows every Region's decisions)`,
        });
      }
      if (new Set(plane.wafScopes).size !== plane.wafScopes.length) {
        ctx.addIssue({ code: 'custom', path: ['planes', i, 'wafScopes'], message: `${JSON.stringify(plane.wafScopes)} lists a scope more than once` });
      }
      if (plane.naclIds.length === 0 && plane.wafScopes.length === 0 && !plane.cloudfront) {
        ctx.addIssue({ code: 'custom', path: ['planes', i, 'wafScopes'], message: '[] with no naclIds: the plane would have nowhere to block' });
      }
    });
    const fms = org.firewallManager;
    if (fms && !org.planes.some((p) => p.account === fms.adminAccount && p.wafScopes.includes('REGIONAL'))) {
      ctx.addIssue({
        code: 'custom',
        path: ['firewallManager', 'adminAccount'],
        message: `${JSON.stringify(fms.adminAccount)} has no plane with the REGIONAL scope: Firewall Manager policies reference rule groups of the administrator account, so add a plane in it`,
      });
    }
  });
export type OrganizationContext = z.output<typeof OrganizationSchema>;

/** The WAF scopes of a plane, `cloudfront` folded in. */
export function planeScopes(plane: PlaneContext): Array<'REGIONAL' | 'CLOUDFRONT'> {
  const scopes = [...plane.wafScopes];
  if (plane.cloudfront && !scopes.includes('CLOUDFRONT')) scopes.push('CLOUDFRONT');
  return scopes;
}

/** Keys of the single-account app that an organization replaces by per-plane keys. */
export const SINGLE_ACCOUNT_KEYS = ['account', 'region', 'naclIds', 'wafScopes', 'webAclResourceArns', 'sensor'] as const;
