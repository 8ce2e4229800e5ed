/**
 * portsnare's alarms and dashboard: an alarm per function error, per dead-letter queue holding a
 * message, on the circuit breaker, on enforcement lag, on every failure class of core/metrics.ts
 * (FAILURE_METRICS: failed enforcement points, a missing or full IP set, a full ACL, a shadowed
 * deny, foreign entries in our rule range) and on an own instance that GuardDuty saw scanning; a
 * dashboard of
 * detections, blocks and retries, and of the requests each portsnare WAF rule blocked (AWS/WAFV2
 * BlockedRequests per IP set rule of the rule group, core/waf-metrics.ts). Metric names are core/metrics.ts's, so a typo fails to compile.
 */
import { Duration, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { FAILURE_METRICS, METRIC_DIMENSIONS, METRIC_NAMESPACE, type MetricName } from '../core/metrics';
import { WAF_METRIC_NAMESPACE, type WafRuleRef, wafMetricsRegion, wafRuleDimensions, wafRuleMetricName } from '../core/waf-metrics';

/** A metric the functions publish (namespace Portsnare, dimension service=portsnare). */
export function portsnareMetric(metricName: MetricName, statistic = 'Sum', period = Duration.minutes(5)): cloudwatch.Metric {
  return new cloudwatch.Metric({ namespace: METRIC_NAMESPACE, metricName, dimensionsMap: { ...METRIC_DIMENSIONS }, statistic, period });
}

/**
 * AWS/WAFV2 BlockedRequests of one IP set rule of portsnare's rule group (CountedRequests when
 * the rules count: simulation): dimensions Rule, RuleGroup and (REGIONAL) Region; CloudFront's in
 * us-east-1 (https://docs.aws.amazon.com/waf/latest/developerguide/waf-metrics.html).
 */
export function wafBlockedRequests(rule: WafRuleRef, region: string, period = Duration.minutes(5), metricName: WafRuleMetric = 'BlockedRequests'): cloudwatch.Metric {
  return new cloudwatch.Metric({
    namespace: WAF_METRIC_NAMESPACE,
    metricName,
    dimensionsMap: wafRuleDimensions(rule, region),
    statistic: 'Sum',
    period,
    label: wafRuleMetricName(rule),
    ...(rule.scope === 'CLOUDFRONT' ? { region: wafMetricsRegion(rule.scope, region) } : {}),
  });
}

/**
 * The function that publishes each alarmed metric (lambda/decide/decider.ts: CircuitBreakerOpen,
 * OwnInstanceScanning; lambda/enforce/handler.ts and lambda/shared/enforcer.ts: EnforcementLagSeconds
 * and every failure class). An alarm goes only into a stack where that function runs: elsewhere its
 * metric is never emitted and the alarm could never fire.
 */
export type MetricEmitter = 'decide' | 'enforce';

/** The per-rule WAF metric a dashboard line graphs. */
export type WafRuleMetric = 'BlockedRequests' | 'CountedRequests';

export interface MonitoringProps {
  /**
   * The metric-publishing functions that run in this stack.
   * @default ['decide', 'enforce'] (the single-account pipeline)
   */
  readonly emitters?: readonly MetricEmitter[];
  /** alarms made elsewhere (each function's errors alarm) that the dashboard shows too */
  readonly alarms?: readonly cloudwatch.Alarm[];
  /** queues whose depth means something failed for good */
  readonly deadLetterQueues: ReadonlyArray<{ readonly id: string; readonly queue: sqs.IQueue; readonly what: string }>;
  /** the EnforcementLagSeconds alarm threshold */
  readonly enforcementLagThreshold: Duration;
  /**
   * The IP set rules of portsnare's WAF rule groups (lib/WafBlocklist.ts): one BlockedRequests
   * line each on the dashboard, per scope.
   * @default [] (no WAF widget)
   */
  readonly wafRules?: readonly WafRuleRef[];
  /**
   * What the rules' lines graph: `CountedRequests` when they count (simulation: lib/WafBlocklist.ts `count`).
   * @default 'BlockedRequests'
   */
  readonly wafMetric?: WafRuleMetric;
  /** @default - alarms without actions */
  readonly alarmAction?: cloudwatch.IAlarmAction;
}

export class Monitoring extends Construct {
  /** Every portsnare alarm; the dashboard's alarm widget shows alarms added here later too. */
  public readonly alarms: cloudwatch.Alarm[];
  public readonly dashboard: cloudwatch.Dashboard;
  private readonly alarmAction?: cloudwatch.IAlarmAction;

  constructor(scope: Construct, id: string, props: MonitoringProps) {
    super(scope, id);
    this.alarmAction = props.alarmAction;
    this.alarms = [...(props.alarms ?? [])];
    for (const { id: alarmId, queue, what } of props.deadLetterQueues) {
      this.alarm(alarmId, queue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(5), statistic: 'Maximum' }), 1, what);
    }
    const emitters = new Set(props.emitters ?? ['decide', 'enforce']);
    if (emitters.has('decide')) {
      this.alarm('CircuitBreakerOpenAlarm', portsnareMetric('CircuitBreakerOpen', 'Sum', Duration.minutes(1)), 1, 'the burst circuit breaker opened: new blocks are paused');
    }
    if (emitters.has('enforce')) {
      const lag = props.enforcementLagThreshold.toSeconds();
      this.alarm(
        'EnforcementLagAlarm',
        portsnareMetric('EnforcementLagSeconds', 'Maximum'),
        lag,
        `a block took more than ${lag} s from detection to enforcement`,
        cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      );
      // one alarm per failure class (`<metric>Alarm`: NaclQuotaFullAlarm keeps its logical id)
      for (const [name, what] of Object.entries(FAILURE_METRICS) as Array<[MetricName, string]>) this.alarm(`${name}Alarm`, portsnareMetric(name), 1, what);
    }
    if (emitters.has('decide')) {
      this.alarm(
        'OwnInstanceScanningAlarm',
        portsnareMetric('OwnInstanceScanning'),
        1,
        'GuardDuty reports one of your own instances scanning (Recon:EC2/Portscan): it may be compromised; portsnare does not block your own addresses',
      );
    }

    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', { defaultInterval: Duration.hours(24) });
    const graph = (title: string, names: MetricName[]): cloudwatch.GraphWidget =>
      new cloudwatch.GraphWidget({ title, width: 12, left: names.map((n) => portsnareMetric(n)) });
    this.dashboard.addWidgets(graph('Detections', ['Detections']), graph('Blocks and unblocks', ['Blocks', 'Unblocks', 'Evictions']));
    this.dashboard.addWidgets(
      graph('Lock retries and throttles', ['LockRetries', 'Throttles']),
      new cloudwatch.AlarmStatusWidget({ title: 'Alarms', width: 12, alarms: this.alarms }),
    );
    const wafWidgets = (['REGIONAL', 'CLOUDFRONT'] as const).flatMap((wafScope) => {
      const rules = (props.wafRules ?? []).filter((rule) => rule.scope === wafScope);
      if (rules.length === 0) return [];
      return [
        new cloudwatch.GraphWidget({
          title:
            props.wafMetric === 'CountedRequests'
              ? `WAF requests counted per portsnare rule (simulation: nothing blocked; ${wafScope}; per IP set, WAF does not count per address)`
              : `WAF requests blocked per portsnare rule (${wafScope}; per IP set, WAF does not count per address)`,
          width: 12,
          left: rules.map((rule) => wafBlockedRequests(rule, Stack.of(this).region, Duration.minutes(5), props.wafMetric)),
        }),
      ];
    });
    if (wafWidgets.length > 0) this.dashboard.addWidgets(...wafWidgets);
  }

  private alarm(
    id: string,
    metric: cloudwatch.IMetric,
    threshold: number,
    what: string,
    comparisonOperator = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
  ): void {
    const alarm = new cloudwatch.Alarm(this, id, {
      alarmDescription: `portsnare: ${what}`,
      metric,
      threshold,
      evaluationPeriods: 1,
      comparisonOperator,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    if (this.alarmAction) alarm.addAlarmAction(this.alarmAction);
    this.alarms.push(alarm);
  }
}
