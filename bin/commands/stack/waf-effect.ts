/**
 * Proof of effect in the cloud: how many requests each portsnare WAF rule blocked over the last
 * hour, read from CloudWatch (AWS/WAFV2 BlockedRequests, the rule group rule's dimensions of
 * core/waf-metrics.ts: https://docs.aws.amazon.com/waf/latest/developerguide/waf-metrics.html).
 *
 * WAF counts per rule, not per address: each IP set has one rule, so a count covers every address
 * of that set. A block is credited with the count of the set that holds it, never with a share.
 *
 * One GetMetricData call per CloudWatch Region (CLOUDFRONT-scope metrics live in us-east-1), one
 * query per rule, 1-minute periods summed, NextToken followed
 * (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_GetMetricData.html).
 * Nothing here fails the listing: a denied call, missing credentials, a Forbidden or
 * InternalError status, or no data points is reported per rule as what it is.
 *
 * In simulation of the whole deployment the rules count instead of block (lib/WafBlocklist.ts
 * `count`): the metric read is then CountedRequests, what blocking would have stopped.
 */
import { type CloudWatchClient, GetMetricDataCommand, type MetricDataQuery } from '@aws-sdk/client-cloudwatch';
import { WAF_METRIC_NAMESPACE, type WafShard, wafMetricsRegion, wafRuleDimensions, wafRuleMetricName, wafRuleOfIpSet } from '../../../core/waf-metrics';
import { awsError } from './aws-errors';
import type { IpSetRef } from './placements';

/** The window `portsnare blocks` reports: the last hour. */
export const WAF_EFFECT_WINDOW_MS = 3_600_000;

export interface WafRuleEffect {
  /** the IP set's name, as `enforcedIn` names it after "waf:" */
  readonly ipSet: string;
  readonly scope: WafShard['scope'];
  /** the rule (and its metric name) in the rule group */
  readonly rule: string;
  /** the rule group's metric name (its name) */
  readonly ruleGroup: string;
  /** requests the rule blocked in the window; undefined: not known (see note), or the rule counts */
  readonly blockedRequests?: number;
  /** simulation (the rules count): requests the rule counted in the window, what it would have blocked */
  readonly countedRequests?: number;
  /** why the count is missing: no data, or the read that failed */
  readonly note?: string;
}

const NO_DATA = 'no data in the last hour: nothing was blocked, or the rule group is in no web ACL';
const NO_COUNT = 'no data in the last hour: nothing was counted, or the rule group is in no web ACL';

/** The per-rule metric: BlockedRequests, or CountedRequests when the rules count (simulation). */
export type WafEffectMetric = 'BlockedRequests' | 'CountedRequests';

/** The rule of each portsnare-named IP set, with what it blocked over the window ending at `now`. */
export async function readWafEffect(
  metrics: (region: string) => CloudWatchClient,
  ipSets: readonly IpSetRef[],
  now: number,
  metricName: WafEffectMetric = 'BlockedRequests',
): Promise<WafRuleEffect[]> {
  const counted = metricName === 'CountedRequests';
  const rules = ipSets.flatMap((ref) => {
    const shard = wafRuleOfIpSet(ref.name);
    // a set not named by lib/WafBlocklist.ts has no rule we know the metric name of
    return shard && shard.scope === ref.scope ? [{ ref, shard, metricsRegion: wafMetricsRegion(shard.scope, ref.region) }] : [];
  });
  const byRegion = new Map<string, typeof rules>();
  for (const rule of rules) byRegion.set(rule.metricsRegion, [...(byRegion.get(rule.metricsRegion) ?? []), rule]);
  const effects = new Map<string, WafRuleEffect>();
  await Promise.all(
    [...byRegion].map(async ([metricsRegion, regionRules]) => {
      const base = (i: number): Omit<WafRuleEffect, 'blockedRequests' | 'countedRequests' | 'note'> => {
        const { ref, shard } = regionRules[i]!;
        return { ipSet: ref.name, scope: shard.scope, rule: wafRuleMetricName(shard), ruleGroup: shard.ruleGroup };
      };
      const queries: MetricDataQuery[] = regionRules.map(({ ref, shard }, i) => ({
        Id: `rule${i}`,
        MetricStat: {
          Metric: { Namespace: WAF_METRIC_NAMESPACE, MetricName: metricName, Dimensions: Object.entries(wafRuleDimensions(shard, ref.region)).map(([Name, Value]) => ({ Name, Value })) },
          Period: 60,
          Stat: 'Sum',
        },
        ReturnData: true,
      }));
      try {
        const sums = new Map<string, { sum: number; points: number; status?: string }>();
        let nextToken: string | undefined;
        do {
          const answer = await metrics(metricsRegion).send(
            new GetMetricDataCommand({ MetricDataQueries: queries, StartTime: new Date(now - WAF_EFFECT_WINDOW_MS), EndTime: new Date(now), NextToken: nextToken }),
          );
          for (const result of answer.MetricDataResults ?? []) {
            const id = result.Id ?? '';
            const seen = sums.get(id) ?? { sum: 0, points: 0 };
            const values = result.Values ?? [];
            const status = result.StatusCode === 'Forbidden' || result.StatusCode === 'InternalError' ? result.StatusCode : seen.status;
            sums.set(id, { sum: seen.sum + values.reduce((a, b) => a + b, 0), points: seen.points + values.length, ...(status ? { status } : {}) });
          }
          nextToken = answer.NextToken;
        } while (nextToken);
        regionRules.forEach((_, i) => {
          const got = sums.get(`rule${i}`);
          const effect: WafRuleEffect = got?.status
            ? { ...base(i), note: `unavailable: CloudWatch answered ${got.status} for this metric` }
            : got && got.points > 0
              ? { ...base(i), ...(counted ? { countedRequests: got.sum } : { blockedRequests: got.sum }) }
              : { ...base(i), note: counted ? NO_COUNT : NO_DATA };
          effects.set(regionRules[i]!.ref.name, effect);
        });
      } catch (error) {
        const why = awsError(error, `read the WAF rule metrics (cloudwatch:GetMetricData in ${metricsRegion})`).message;
        regionRules.forEach((_, i) => effects.set(regionRules[i]!.ref.name, { ...base(i), note: `unavailable: ${why}` }));
      }
    }),
  );
  // in the order of the stack's output
  return rules.map(({ ref }) => effects.get(ref.name)!);
}

/** "42 requests", "1 request" or the note. */
export function wafEffectText(effect: WafRuleEffect): string {
  const n = effect.blockedRequests ?? effect.countedRequests;
  return n === undefined ? (effect.note ?? 'unknown') : `${n} request${n === 1 ? '' : 's'}`;
}
