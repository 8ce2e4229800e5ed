/**
 * portsnare's AWS WAF side: empty IP sets per scope × address family × shard, which only the
 * enforce function fills, a rule group per scope that blocks them, and optionally a REGIONAL web
 * ACL holding only that rule group for resources that have none. AWS WAF quotas:
 * https://docs.aws.amazon.com/waf/latest/developerguide/limits.html.
 */
import { Names } from 'aws-cdk-lib';
import * as wafv2 from 'aws-cdk-lib/aws-wafv2';
import { Construct } from 'constructs';
import type { WafSetRef } from '../core/settings';
import { wafIpSetName, wafRuleGroupName, wafRuleMetricName } from '../core/waf-metrics';
import { RULE_GROUP_CAPACITY, type AddressFamily, type WafScope } from './settings';

export interface PortsnareIpSet {
  readonly scope: WafScope;
  readonly family: AddressFamily;
  /** the shard number within scope × family (0-based) */
  readonly shard: number;
  /** the metric name of the rule group that blocks this set (the group's name) */
  readonly ruleGroup: string;
  readonly name: string;
  readonly ipSet: wafv2.CfnIPSet;
}

export interface WafBlocklistProps {
  readonly scopes: readonly WafScope[];
  /** IP sets per scope and family (validated by the EnumerationBlocker: 1–MAX_WAF_SETS_PER_FAMILY) */
  readonly setsPerFamily: number;
  /**
   * Resources to protect with a new REGIONAL web ACL holding only the rule group.
   * @default [] (no web ACL)
   */
  readonly webAclResourceArns?: readonly string[];
  /**
   * The start of every IP set and rule group name: unique within the account and Region.
   * @default - a name unique to this construct
   */
  readonly namePrefix?: string;
  /**
   * Simulation (lib/settings.ts `simulation: true`): every rule counts the requests from the IP
   * sets instead of blocking them (WAF rule action Count, a non-terminating action), so the
   * rules' CountedRequests metric shows what blocking would do.
   * https://docs.aws.amazon.com/waf/latest/APIReference/API_RuleAction.html
   * https://docs.aws.amazon.com/waf/latest/developerguide/web-acl-rule-actions.html (Count is non-terminating: the request is counted and the next rules decide)
   * @default false (the rules block)
   */
  readonly count?: boolean;
}

export class WafBlocklist extends Construct {
  public readonly ipSets: readonly PortsnareIpSet[];
  public readonly ruleGroups: Partial<Record<WafScope, wafv2.CfnRuleGroup>>;
  /** The REGIONAL web ACL created for `webAclResourceArns`, when any. */
  public readonly webAcl?: wafv2.CfnWebACL;
  public readonly webAclAssociations: readonly wafv2.CfnWebACLAssociation[];

  constructor(scope: Construct, id: string, props: WafBlocklistProps) {
    super(scope, id);
    const prefix = props.namePrefix ?? wafName(this, 100);
    const ipSets: PortsnareIpSet[] = [];
    const ruleGroups: Partial<Record<WafScope, wafv2.CfnRuleGroup>> = {};
    for (const wafScope of props.scopes) {
      const rules: wafv2.CfnRuleGroup.RuleProperty[] = [];
      const ruleGroup = wafRuleGroupName(prefix, wafScope);
      for (const family of ['ipv4', 'ipv6'] as const) {
        for (let shard = 0; shard < props.setsPerFamily; shard++) {
          const name = wafIpSetName(prefix, { scope: wafScope, family, shard });
          const ipSet = new wafv2.CfnIPSet(this, `IpSet${pascal(wafScope)}${pascal(family)}${shard}`, {
            name,
            scope: wafScope,
            ipAddressVersion: family === 'ipv4' ? 'IPV4' : 'IPV6',
            addresses: [],
            description: `portsnare blocked ${family} addresses, ${wafScope} shard ${shard}, managed by the enforce function`,
          });
          // The enforce function owns the address list. CloudFormation rewrites it only when this
          // resource's properties change; the next reconcile (every `reconcileMinutes`, 10 by default) restores it then.
          ipSets.push({ scope: wafScope, family, shard, ruleGroup, name, ipSet });
          // the rule's metric name is what the dashboard and `portsnare blocks` read (core/waf-metrics.ts)
          const ruleName = wafRuleMetricName({ family, shard });
          rules.push({
            name: ruleName,
            priority: rules.length,
            action: props.count === true ? { count: {} } : { block: {} },
            statement: { ipSetReferenceStatement: { arn: ipSet.attrArn } },
            visibilityConfig: { sampledRequestsEnabled: true, cloudWatchMetricsEnabled: true, metricName: ruleName },
          });
        }
      }
      ruleGroups[wafScope] = new wafv2.CfnRuleGroup(this, `RuleGroup${pascal(wafScope)}`, {
        name: ruleGroup,
        scope: wafScope,
        capacity: RULE_GROUP_CAPACITY,
        description: 'portsnare: blocks addresses caught scanning decoy ports',
        rules,
        // its own name, not a literal: the RuleGroup dimension of its rules' metrics, unique per account and Region
        visibilityConfig: { sampledRequestsEnabled: true, cloudWatchMetricsEnabled: true, metricName: ruleGroup },
      });
    }
    this.ipSets = ipSets;
    this.ruleGroups = ruleGroups;

    const resourceArns = props.webAclResourceArns ?? [];
    const associations: wafv2.CfnWebACLAssociation[] = [];
    if (resourceArns.length) {
      const webAcl = new wafv2.CfnWebACL(this, 'WebAcl', {
        scope: 'REGIONAL',
        defaultAction: { allow: {} },
        description: 'portsnare: blocks addresses caught scanning decoy ports',
        rules: [this.webAclRule('REGIONAL', 0)],
        visibilityConfig: { sampledRequestsEnabled: true, cloudWatchMetricsEnabled: true, metricName: 'portsnare-web-acl' },
      });
      resourceArns.forEach((resourceArn, i) => {
        associations.push(new wafv2.CfnWebACLAssociation(this, `WebAclAssociation${i}`, { resourceArn, webAclArn: webAcl.attrArn }));
      });
      this.webAcl = webAcl;
    }
    this.webAclAssociations = associations;
  }

  /** The IP sets as the settings document names them (core/settings.ts WafSetRef). */
  get setRefs(): WafSetRef[] {
    return this.ipSets.map((s) => ({ scope: s.scope, family: s.family, name: s.name, id: s.ipSet.attrId }));
  }

  /**
   * A web ACL rule that evaluates the portsnare rule group of `scope`, for a CfnWebACL you own
   * in the same app: `rules: [blocklist.webAclRule('REGIONAL', 0), ...yourRules]`.
   */
  webAclRule(scope: WafScope, priority: number): wafv2.CfnWebACL.RuleProperty {
    const group = this.ruleGroups[scope];
    if (!group) throw new Error(`webAclRule: scope ${scope} is not in this EnumerationBlocker's wafScopes`);
    return {
      name: 'portsnare',
      priority,
      overrideAction: { none: {} },
      statement: { ruleGroupReferenceStatement: { arn: group.attrArn } },
      visibilityConfig: { sampledRequestsEnabled: true, cloudWatchMetricsEnabled: true, metricName: 'portsnare' },
    };
  }
}

function pascal(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1).toLowerCase();
}

/** A WAF-safe name ([A-Za-z0-9_-]) unique to `scope` within the account and Region. */
export function wafName(scope: Construct, maxLength: number): string {
  return Names.uniqueResourceName(scope, { maxLength, separator: '-' }).replace(/[^A-Za-z0-9_-]/g, '');
}
