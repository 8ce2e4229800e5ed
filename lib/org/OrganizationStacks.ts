/**
 * The organization app (bin/app.ts with `organization` in the context): one decision stack and
 * one stack per enforcement plane, plain Stacks with explicit environments in one App, deployed
 * with `cdk deploy --all` (the decision stack first: every plane stack depends on it).
 * docs/organization.md says why not StackSets.
 */
import { RemovalPolicy, Stack, type StackProps, type App } from 'aws-cdk-lib';
import * as sns from 'aws-cdk-lib/aws-sns';
import { alarmTopic } from '../alarmTopic';
import type { Construct } from 'constructs';
import { blockPolicyOf, type PortsnareContext } from '../appConfig';
import { FMS_CLOUDFRONT_RESOURCE_TYPE, planeScopes, type FirewallManagerContext, type OrganizationContext, type PlaneContext } from './config';
import { DecisionPlane } from './DecisionPlane';
import { EnforcementPlane } from './EnforcementPlane';
import { FirewallManagerPolicy } from './FirewallManagerPolicy';
import { orgNames, ROLE_NAME_MAX, type OrgNames } from './names';

export interface OrganizationStackProps extends StackProps {
  readonly config: PortsnareContext;
  readonly organization: OrganizationContext;
  readonly names: OrgNames;
}

function alarmTopicOf(stack: Stack, config: PortsnareContext): sns.Topic | undefined {
  if (!config.alarmEmail) return undefined;
  // lib/alarmTopic.ts, as in PortsnareStack: CloudWatch may publish, TLS only, not encrypted
  return alarmTopic(stack, config.alarmEmail);
}

/** The selftest canary (core/selftest.ts): decide and every plane's enforce must let it through. */
function canaryOf(config: PortsnareContext): { selftestCanaryAddress?: string } {
  return config.selftest.canaryAddress === false ? {} : { selftestCanaryAddress: config.selftest.canaryAddress };
}

export class DecisionStack extends Stack {
  public readonly plane: DecisionPlane;

  constructor(scope: Construct, id: string, props: OrganizationStackProps) {
    super(scope, id, props);
    const { config, organization } = props;
    this.plane = new DecisionPlane(this, 'Decision', {
      organizationId: organization.organizationId,
      sensorPrincipals: organization.sensorPrincipals,
      names: props.names,
      planes: organization.planes,
      policy: blockPolicyOf(config),
      vpcCidrs: config.vpcCidrs,
      guardDuty: config.guardDuty,
      alarmTopic: alarmTopicOf(this, config),
      ...canaryOf(config),
      tableRemovalPolicy: config.tableRemovalPolicy === 'retain' ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
      operatorPrincipals: config.operatorPrincipals,
      securityHub: config.securityHub,
      reconcileMinutes: config.enforcement?.reconcileMinutes,
    });
    // the optional notification digest (lib/Digest.ts) runs where the decision table is
    if (config.digest) {
      const digest = this.plane.decision.addDigest(config.digest, { label: this.stackName, deadLetterQueues: [this.plane.failureQueue, this.plane.wakeUpDeadLetterQueue] });
      this.plane.monitoring.alarms.push(digest.undeliveredAlarm, digest.function.errorsAlarm);
    }
  }
}

export interface PlaneStackProps extends OrganizationStackProps {
  readonly planeConfig: PlaneContext;
}

export class PlaneStack extends Stack {
  public readonly plane: EnforcementPlane;
  public readonly firewallManagerPolicies: FirewallManagerPolicy[] = [];

  constructor(scope: Construct, id: string, props: PlaneStackProps) {
    super(scope, id, props);
    const { config, organization, planeConfig } = props;
    const scopes = planeScopes(planeConfig);
    this.plane = new EnforcementPlane(this, 'Plane', {
      organizationId: organization.organizationId,
      names: props.names,
      decision: organization.decision,
      naclIds: planeConfig.naclIds,
      naclRuleRange: config.naclRuleRange,
      naclQuota: config.naclQuota,
      wafScopes: scopes,
      wafSetsPerFamily: config.wafSetsPerFamily,
      policy: blockPolicyOf(config),
      vpcCidrs: config.vpcCidrs,
      alarmTopic: alarmTopicOf(this, config),
      ...canaryOf(config),
      reconcileMinutes: config.enforcement?.reconcileMinutes,
      naclResidenceSeconds: config.enforcement?.naclResidenceSeconds,
      ...(config.simulation !== undefined ? { simulation: config.simulation } : {}),
    });
    const fmsConfig = organization.firewallManager;
    if (fmsConfig && fmsConfig.adminAccount === planeConfig.account) this.addFirewallManager(fmsConfig, props.names);
  }

  private addFirewallManager(fmsConfig: FirewallManagerContext, names: OrgNames): void {
    const groups = this.plane.waf.ruleGroups;
    const common = { organizationalUnits: fmsConfig.organizationalUnits, remediate: fmsConfig.remediate };
    if (groups.REGIONAL) {
      this.firewallManagerPolicies.push(
        new FirewallManagerPolicy(this, 'FirewallManagerRegional', { ...common, ruleGroup: groups.REGIONAL, resourceTypes: fmsConfig.resourceTypes, policyName: `${names.planeBus}-regional-${this.region}` }),
      );
    }
    if (groups.CLOUDFRONT) {
      this.firewallManagerPolicies.push(
        new FirewallManagerPolicy(this, 'FirewallManagerCloudFront', { ...common, ruleGroup: groups.CLOUDFRONT, resourceTypes: [FMS_CLOUDFRONT_RESOURCE_TYPE], policyName: `${names.planeBus}-cloudfront` }),
      );
    }
  }
}

/**
 * Adds the decision stack and one stack per plane to `app`. Throws with the key at fault when a
 * derived name would break an AWS limit.
 */
export function addOrganizationStacks(app: App, config: PortsnareContext): { decision: DecisionStack; planes: PlaneStack[] } {
  const organization = config.organization;
  if (!organization) throw new Error('portsnare.organization: missing');
  const names = orgNames(config.stackName);
  for (const plane of organization.planes) {
    const role = names.enforceRole(plane.region);
    if (role.length > ROLE_NAME_MAX) {
      throw new Error(`portsnare.stackName: ${JSON.stringify(config.stackName)} makes the role name ${JSON.stringify(role)} longer than IAM's ${ROLE_NAME_MAX} characters: choose a shorter stackName`);
    }
  }
  const common = { config, organization, names };
  const decision = new DecisionStack(app, names.decisionStack, {
    ...common,
    env: organization.decision,
    description: 'portsnare decision plane: the organization\'s bus, decide, desired-state table and expiry',
  });
  const planes = organization.planes.map((planeConfig) => {
    const stack = new PlaneStack(app, names.planeStack(planeConfig.account, planeConfig.region), {
      ...common,
      planeConfig,
      env: { account: planeConfig.account, region: planeConfig.region },
      description: `portsnare enforcement plane ${planeConfig.account}/${planeConfig.region}: NACL entries and WAF IP sets from the organization's decisions`,
    });
    // deploy order only: the plane reads the decision table (no cross-stack reference)
    stack.addStackDependency(decision, 'the plane reads the decision table and receives the decision bus\'s fan-out');
    return stack;
  });
  return { decision, planes };
}
