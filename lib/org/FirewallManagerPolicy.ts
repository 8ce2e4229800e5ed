/**
 * Optional: an AWS Firewall Manager AWS WAF policy that puts a plane's portsnare rule group first
 * (preProcessRuleGroups) in every web ACL of the chosen resource types, in every account of the
 * organization or of the chosen OUs, so teams need not attach it by hand. It lives in a plane of
 * the Firewall Manager administrator account: an FMS policy references rule groups of that
 * account, and the rule group's IP sets are that plane's, which its enforce function fills from
 * the decision table like every plane.
 * - AWS::FMS::Policy: https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-fms-policy.html
 * - ManagedServiceData of a WAFV2 policy: https://docs.aws.amazon.com/fms/2018-01-01/APIReference/API_SecurityServicePolicyData.html
 * - AWS WAF policies: https://docs.aws.amazon.com/waf/latest/developerguide/waf-policies.html
 * Network ACLs are not managed here: docs/organization.md says why.
 */
import { Stack } from 'aws-cdk-lib';
import * as fms from 'aws-cdk-lib/aws-fms';
import type * as wafv2 from 'aws-cdk-lib/aws-wafv2';
import { Construct } from 'constructs';

export interface FirewallManagerPolicyProps {
  /** the plane's rule group of the policy's scope */
  readonly ruleGroup: wafv2.CfnRuleGroup;
  readonly resourceTypes: readonly string[];
  /** OU ids; none: every account of the organization */
  readonly organizationalUnits?: readonly string[];
  /** create and associate web ACLs where missing, and put the rule group into existing ones */
  readonly remediate: boolean;
  readonly policyName: string;
}

export class FirewallManagerPolicy extends Construct {
  public readonly policy: fms.CfnPolicy;

  constructor(scope: Construct, id: string, props: FirewallManagerPolicyProps) {
    super(scope, id);
    const types = [...props.resourceTypes];
    const managedServiceData = {
      type: 'WAFV2',
      preProcessRuleGroups: [{ ruleGroupType: 'RuleGroup', ruleGroupArn: props.ruleGroup.attrArn, overrideAction: { type: 'NONE' }, excludeRules: [] }],
      postProcessRuleGroups: [],
      defaultAction: { type: 'ALLOW' },
      // never replace a web ACL a team associated: the rule group goes into it instead
      overrideCustomerWebACLAssociation: false,
    };
    this.policy = new fms.CfnPolicy(this, 'Policy', {
      policyName: props.policyName,
      securityServicePolicyData: { type: 'WAFV2', managedServiceData: Stack.of(this).toJsonString(managedServiceData) },
      ...(types.length === 1 ? { resourceType: types[0] } : { resourceType: 'ResourceTypeList', resourceTypeList: types }),
      excludeResourceTags: false,
      remediationEnabled: props.remediate,
      // On delete, Firewall Manager cleans up what the policy made (it takes the rule group out of
      // the web ACLs it put it in, and deletes the web ACLs it created), so `cdk destroy` can then
      // delete the plane's rule group; with false the rule group stays referenced and its delete
      // fails (AWS::FMS::Policy DeleteAllPolicyResources, page above).
      deleteAllPolicyResources: true,
      ...(props.organizationalUnits ? { includeMap: { orgunit: [...props.organizationalUnits] } } : {}),
    });
  }
}
