/**
 * The names under which AWS WAF publishes the metrics of portsnare's rule group, shared by the
 * CDK construct that names the rules (lib/WafBlocklist.ts), the dashboard (lib/Monitoring.ts) and
 * `portsnare blocks --stack` (bin/commands/stack/waf-effect.ts), so the three cannot drift apart.
 *
 * AWS WAF publishes per-rule metrics (BlockedRequests, CountedRequests…) once a minute in the
 * namespace AWS/WAFV2. A rule inside a rule group is the metric with the dimensions `Rule` (the
 * rule's visibilityConfig metric name), `RuleGroup` (the rule group's metric name) and `Region`
 * (the Region of the protected resource; not for CloudFront, whose metrics are published in
 * US East (N. Virginia)): https://docs.aws.amazon.com/waf/latest/developerguide/waf-metrics.html
 * portsnare's rule group takes its own name as metric name, so the RuleGroup dimension is
 * unique per stack and the CLI finds it from an IP set's name (both start with the same prefix).
 * A rule group rule also publishes with a `WebACL` dimension when it blocks inside a web ACL; the
 * Rule/RuleGroup/Region form does not depend on which web ACL references the group, so it is the
 * one read here. WAF counts per rule, not per address: what a rule blocked is the sum over every
 * address of its IP set.
 */

export const WAF_METRIC_NAMESPACE = 'AWS/WAFV2';


export type WafMetricScope = 'REGIONAL' | 'CLOUDFRONT';
export type WafMetricFamily = 'ipv4' | 'ipv6';

/** One IP set's rule in the rule group: scope, family and shard. */
export interface WafShard {
  readonly scope: WafMetricScope;
  readonly family: WafMetricFamily;
  readonly shard: number;
}

/** A rule of a deployed rule group: its shard and the group's metric name. */
export interface WafRuleRef extends WafShard {
  /** the rule group's visibilityConfig metric name (wafRuleGroupName: unique per account and Region) */
  readonly ruleGroup: string;
}

/**
 * The name of the rule group of `scope`, also its metric name: WAF names are unique per account,
 * Region and scope, so two portsnare stacks never add up under one metric.
 */
export function wafRuleGroupName(prefix: string, scope: WafMetricScope): string {
  return `${prefix}-${scope.toLowerCase()}`;
}

/** The name of the IP set of `shard` (lib/WafBlocklist.ts names them so). */
export function wafIpSetName(prefix: string, shard: WafShard): string {
  return `${prefix}-${shard.scope.toLowerCase()}-${shard.family}-${shard.shard}`;
}

/** The rule an IP set name stands for, or undefined when the name is not portsnare's pattern. */
export function wafRuleOfIpSet(name: string): WafRuleRef | undefined {
  const match = /^(.+)-(regional|cloudfront)-(ipv4|ipv6)-(\d+)$/.exec(name);
  if (!match) return undefined;
  const scope: WafMetricScope = match[2] === 'cloudfront' ? 'CLOUDFRONT' : 'REGIONAL';
  return { scope, family: match[3] as WafMetricFamily, shard: Number(match[4]), ruleGroup: wafRuleGroupName(match[1]!, scope) };
}

/** The rule's name and visibilityConfig metric name in the rule group, e.g. portsnare-ipv4-0. */
export function wafRuleMetricName(shard: Pick<WafShard, 'family' | 'shard'>): string {
  return `portsnare-${shard.family}-${shard.shard}`;
}

/** The Region whose CloudWatch holds the metrics of `scope` (CloudFront: us-east-1). */
export function wafMetricsRegion(scope: WafMetricScope, region: string): string {
  return scope === 'CLOUDFRONT' ? 'us-east-1' : region;
}

/** The dimensions of the rule of `shard` deployed in `region` (see the page cited above). */
export function wafRuleDimensions(rule: WafRuleRef, region: string): Record<string, string> {
  return {
    Rule: wafRuleMetricName(rule),
    RuleGroup: rule.ruleGroup,
    ...(rule.scope === 'REGIONAL' ? { Region: region } : {}),
  };
}
