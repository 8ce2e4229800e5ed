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
 * A rule group rule also publishes with a `WebACL` dimension when it blocks inside a web ACL; the
 * Rule/RuleGroup/Region form does not depend on which web ACL references the group, so it is the
 * one read here. WAF counts per rule, not per address: what a rule blocked is the sum over every
 * address of its IP set.
 */

export const WAF_METRIC_NAMESPACE = 'AWS/WAFV2';

/** The visibilityConfig metric name of portsnare's rule group (each scope's). */
export const WAF_RULE_GROUP_METRIC_NAME = 'portsnare';

export type WafMetricScope = 'REGIONAL' | 'CLOUDFRONT';
export type WafMetricFamily = 'ipv4' | 'ipv6';

/** One IP set's rule in the rule group: scope, family and shard. */
export interface WafShard {
  readonly scope: WafMetricScope;
  readonly family: WafMetricFamily;
  readonly shard: number;
}

/** The name of the IP set of `shard` (lib/WafBlocklist.ts names them so). */
export function wafIpSetName(prefix: string, shard: WafShard): string {
  return `${prefix}-${shard.scope.toLowerCase()}-${shard.family}-${shard.shard}`;
}

/** The shard an IP set name stands for, or undefined when the name is not portsnare's pattern. */
export function wafShardOfIpSet(name: string): WafShard | undefined {
  const match = /-(regional|cloudfront)-(ipv4|ipv6)-(\d+)$/.exec(name);
  if (!match) return undefined;
  return { scope: match[1] === 'cloudfront' ? 'CLOUDFRONT' : 'REGIONAL', family: match[2] as WafMetricFamily, shard: Number(match[3]) };
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
export function wafRuleDimensions(shard: WafShard, region: string): Record<string, string> {
  return {
    Rule: wafRuleMetricName(shard),
    RuleGroup: WAF_RULE_GROUP_METRIC_NAME,
    ...(shard.scope === 'REGIONAL' ? { Region: region } : {}),
  };
}
