/**
 * Amazon CloudWatch's GetMetricData and DescribeAlarms on a local HTTP port, in the wire protocol
 * @aws-sdk/client-cloudwatch 3.11xx speaks, so the REAL CloudWatchClient (its serializer, its JSON
 * parser, its error mapping) reads heartbeats and alarm states from it.
 *
 * The protocol (read from the client: dist-cjs/index.js uses AwsJson1_0Protocol with
 * serviceTarget "GraniteServiceVersion20100801" and awsQueryCompatible): POST /, Content-Type
 * application/x-amz-json-1.0, X-Amz-Target GraniteServiceVersion20100801.<Operation>, a JSON
 * body, timestamps as epoch seconds, signed with Signature Version 4 for the service "monitoring".
 * CloudWatch documents this JSON form next to the Query one ("make CloudWatch API requests over
 * HTTP using the POST request method … specify the operation in the header … JSON format in the
 * body": https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/making-api-requests.html).
 *
 * What the fake holds to, each from the API reference:
 * - GetMetricData (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_GetMetricData.html):
 *   1 to 500 MetricDataQueries; StartTime before EndTime; StartTime less than 15 days ago rounded
 *   down to the minute; results `MetricDataResults` [{Id, Label, Timestamps, Values, StatusCode}],
 *   newest first unless ScanBy is TimestampAscending; at most MaxDatapoints (default 100,800) data
 *   points per answer, the rest behind NextToken with StatusCode PartialData.
 * - MetricDataQuery (…/API_MetricDataQuery.html): Id starts with a lowercase letter, then letters,
 *   digits and underscores, unique in the call. MetricStat (…/API_MetricStat.html): Period 1, 5,
 *   10, 20, 30, 60 or a multiple of 60. A period without data has no data point.
 * - A metric is its namespace, name and exact set of dimensions: "CloudWatch treats each unique
 *   combination of dimensions as a separate metric … you can't retrieve statistics using
 *   combinations of dimensions that you did not specifically publish"
 *   (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch_concepts.html#Dimension):
 *   a query with the wrong dimensions gets an empty result, not an error, as in AWS.
 * - DescribeAlarms (…/API_DescribeAlarms.html): AlarmNames at most 100; MaxRecords 1 to 100
 *   (default 50) with NextToken; names that do not exist are simply not returned; without
 *   AlarmTypes only metric alarms come back. MetricAlarm (…/API_MetricAlarm.html): AlarmName,
 *   StateValue OK | ALARM | INSUFFICIENT_DATA, StateReason, StateUpdatedTimestamp, the metric.
 * - ListMetrics (…/API_ListMetrics.html): Namespace, MetricName and Dimensions filter (a
 *   DimensionFilter with a Value matches that exact value; a metric with more dimensions than the
 *   filter still matches); RecentlyActive "PT3H", the only valid value, keeps metrics with data in
 *   the past three hours; at most 500 results per answer, the rest behind NextToken. Answer:
 *   {Metrics: [{Namespace, MetricName, Dimensions: [{Name, Value}]}], NextToken}.
 * - Metrics are regional: a query sees the data points published in the Region it was signed for
 *   (the SigV4 credential scope); WAF publishes CloudFront's metrics in US East (N. Virginia)
 *   (https://docs.aws.amazon.com/waf/latest/developerguide/waf-metrics.html). `publishIn` puts a
 *   point in one Region; `publish` (older tests) in all.
 * - Errors: the JSON protocol's envelope {"__type", "message"}, with the Query-era code in the
 *   `x-amzn-query-error: Code;Sender` header that query-compatible services add (documented for
 *   Amazon SQS, the same migration: https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-json-api-responses.html);
 *   the common errors (AccessDeniedException, ThrottlingException…, HTTP 400):
 *   https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/CommonErrors.html
 */
import type http from 'node:http';
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { type HttpReply, HttpFake, signedFor } from './http-fake';

const TARGET = 'GraniteServiceVersion20100801';
const JSON_TYPE = 'application/x-amz-json-1.0';
const DAY_S = 86_400;

export type Dimensions = Record<string, string>;
export type AlarmStateValue = 'OK' | 'ALARM' | 'INSUFFICIENT_DATA';

export interface WireAlarm {
  readonly state: AlarmStateValue;
  readonly reason?: string;
  /** epoch ms */
  readonly updatedAt?: number;
  readonly namespace?: string;
  readonly metricName?: string;
  readonly dimensions?: Dimensions;
}

/** One GetMetricData query as the service received it (what tests assert on). */
export interface ReceivedQuery {
  readonly id: string;
  readonly namespace: string;
  readonly metricName: string;
  readonly dimensions: Dimensions;
  readonly period: number;
  readonly stat: string;
  /** epoch seconds */
  readonly startTime: number;
  readonly endTime: number;
  /**
   * the Region the request was signed for (the SigV4 credential scope, "AKID/DATE/REGION/monitoring/aws4_request":
   * https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html); CloudWatch
   * metrics are regional, so a test asserts where a query went. Data points are held per Region
   * only when published with `publishIn`.
   */
  readonly region: string;
}

class ServiceError extends Error {
  constructor(
    readonly type: string,
    message: string,
    /** the Query-era code for x-amzn-query-error; none: the header is left out */
    readonly queryCode: string | undefined = type,
    readonly status = 400,
  ) {
    super(message);
  }
}

type Body = Record<string, unknown>;

function metricKey(namespace: string, metricName: string, dimensions: Dimensions): string {
  const sorted = Object.keys(dimensions)
    .sort()
    .map((name) => [name, dimensions[name]]);
  return JSON.stringify([namespace, metricName, sorted]);
}

function invalid(message: string): ServiceError {
  return new ServiceError('InvalidParameterValue', message);
}

function epochSeconds(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw invalid(`${name} must be a timestamp (epoch seconds in the JSON protocol), got ${JSON.stringify(value)}`);
  return value;
}

export class CloudWatchWire extends HttpFake {
  /** published data points by metric (namespace, name, exact dimensions) */
  private readonly points = new Map<string, Array<{ at: number; value: number }>>();
  readonly alarms = new Map<string, WireAlarm>();
  /** every GetMetricData query received, in order */
  readonly queries: ReceivedQuery[] = [];
  /** MaxDatapoints when the request gives none (AWS: 100,800); tests lower it to see pages */
  defaultMaxDatapoints = 100_800;
  /** per-query StatusCode to answer instead of Complete (e.g. Forbidden) */
  readonly statusOverride = new Map<string, string>();
  private readonly failures: Array<{ op: string; error: ServiceError }> = [];
  /** the clock the 15-day rounding rule is measured against (epoch ms) */
  now: () => number = Date.now;

  /** A real CloudWatchClient pointed at this server. */
  client(region = 'eu-west-1'): CloudWatchClient {
    return new CloudWatchClient({ region, endpoint: this.endpoint, credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'test-secret' }, maxAttempts: 1 });
  }

  /** Forgets every data point, alarm, query, request and queued fault (between tests). */
  reset(): void {
    this.points.clear();
    this.alarms.clear();
    this.queries.length = 0;
    this.requests.length = 0;
    this.statusOverride.clear();
    this.failures.length = 0;
    this.defaultMaxDatapoints = 100_800;
  }

  /** A data point as the publishing service (here EventBridge) puts it, at `at` epoch ms, visible from every Region. */
  publish(namespace: string, metricName: string, dimensions: Dimensions, at: number, value = 1): void {
    this.publishIn(undefined, namespace, metricName, dimensions, at, value);
  }

  /** A data point published in one Region: only queries signed for that Region see it (CloudWatch metrics are regional). */
  publishIn(region: string | undefined, namespace: string, metricName: string, dimensions: Dimensions, at: number, value = 1): void {
    const key = JSON.stringify([region ?? null, metricKey(namespace, metricName, dimensions)]);
    const list = this.points.get(key) ?? [];
    list.push({ at: at / 1000, value });
    this.points.set(key, list);
  }

  /**
   * The next call of `op` fails: `type` is the JSON error type (in __type), `queryCode` the code
   * for the x-amzn-query-error header (null: no header).
   */
  failNext(op: string, type: string, message: string, queryCode: string | null = type, status = 400): void {
    this.failures.push({ op, error: new ServiceError(type, message, queryCode ?? undefined, status) });
  }

  protected serve(request: http.IncomingMessage, body: string): { op: string; reply: HttpReply } {
    const target = String(request.headers['x-amz-target'] ?? '');
    const op = target.startsWith(`${TARGET}.`) ? target.slice(TARGET.length + 1) : target;
    try {
      if (!signedFor(request, 'monitoring')) throw new ServiceError('IncompleteSignature', 'The request signature does not conform to AWS standards.');
      if (request.method !== 'POST' || request.headers['content-type'] !== JSON_TYPE) throw new ServiceError('MalformedHttpRequestException', `expected a POST of ${JSON_TYPE}`);
      if (!target.startsWith(`${TARGET}.`)) throw new ServiceError('UnknownOperationException', `unknown target ${JSON.stringify(target)}`, undefined);
      const index = this.failures.findIndex((failure) => failure.op === op);
      if (index >= 0) throw this.failures.splice(index, 1)[0]!.error;
      const input = JSON.parse(body) as Body;
      const region = /Credential=[^/]+\/\d{8}\/([^/]+)\/monitoring\/aws4_request/.exec(String(request.headers.authorization))?.[1] ?? '';
      const output = op === 'GetMetricData' ? this.getMetricData(input, region) : op === 'DescribeAlarms' ? this.describeAlarms(input) : op === 'ListMetrics' ? this.listMetrics(input, region) : undefined;
      if (!output) throw new ServiceError('UnknownOperationException', `this fake does not answer ${op}`, undefined);
      return { op, reply: { status: 200, headers: { 'content-type': JSON_TYPE }, body: JSON.stringify(output) } };
    } catch (error) {
      const failure = error instanceof ServiceError ? error : new ServiceError('FakeDefect', String(error), undefined, 500);
      const headers: Record<string, string> = { 'content-type': JSON_TYPE };
      if (failure.queryCode) headers['x-amzn-query-error'] = `${failure.queryCode};${failure.status >= 500 ? 'Receiver' : 'Sender'}`;
      return { op, reply: { status: failure.status, headers, body: JSON.stringify({ __type: `com.amazonaws.cloudwatch#${failure.type}`, message: failure.message }) } };
    }
  }

  private getMetricData(input: Body, region: string): Body {
    const queries = input.MetricDataQueries;
    if (!Array.isArray(queries) || queries.length < 1 || queries.length > 500) throw invalid('MetricDataQueries must hold 1 to 500 queries');
    let start = epochSeconds(input.StartTime, 'StartTime');
    const end = epochSeconds(input.EndTime, 'EndTime');
    if (start >= end) throw invalid('The parameter StartTime must be less than the parameter EndTime.');
    if (this.now() / 1000 - start < 15 * DAY_S) start = Math.floor(start / 60) * 60;
    const scanBy = input.ScanBy ?? 'TimestampDescending';
    if (scanBy !== 'TimestampDescending' && scanBy !== 'TimestampAscending') throw invalid(`ScanBy ${JSON.stringify(scanBy)}`);
    const max = input.MaxDatapoints === undefined ? this.defaultMaxDatapoints : Number(input.MaxDatapoints);
    const offset = input.NextToken === undefined ? 0 : Number(String(input.NextToken).replace(/^page-/, ''));
    if (!Number.isInteger(offset) || offset < 0) throw new ServiceError('InvalidNextToken', 'The service couldn\'t process the NextToken.');
    const ids = new Set<string>();
    const series = queries.map((raw: unknown) => {
      const query = { ...this.received(raw, start, end, ids), region };
      if (offset === 0) this.queries.push(query);
      const buckets = new Map<number, number>();
      const key = metricKey(query.namespace, query.metricName, query.dimensions);
      const published = [...(this.points.get(JSON.stringify([null, key])) ?? []), ...(this.points.get(JSON.stringify([region, key])) ?? [])];
      for (const point of published) {
        if (point.at < start || point.at >= end) continue;
        const bucket = start + Math.floor((point.at - start) / query.period) * query.period;
        buckets.set(bucket, (buckets.get(bucket) ?? 0) + point.value);
      }
      const ordered = [...buckets.entries()].sort((a, b) => (scanBy === 'TimestampAscending' ? a[0] - b[0] : b[0] - a[0]));
      return { query, ordered };
    });
    // pages over the concatenated points of all queries, in query order
    let seen = 0;
    let returned = 0;
    const results = series.map(({ query, ordered }) => {
      const from = Math.max(0, offset - seen);
      const room = Math.max(0, max - returned);
      const slice = ordered.slice(from, from + room);
      seen += ordered.length;
      returned += slice.length;
      const complete = from + slice.length >= ordered.length;
      return {
        Id: query.id,
        Label: query.metricName,
        Timestamps: slice.map(([at]) => at),
        Values: slice.map(([, value]) => value),
        StatusCode: this.statusOverride.get(query.id) ?? (complete ? 'Complete' : 'PartialData'),
      };
    });
    const more = offset + returned < seen;
    return { MetricDataResults: results, Messages: [], ...(more ? { NextToken: `page-${offset + returned}` } : {}) };
  }

  private received(raw: unknown, start: number, end: number, ids: Set<string>): Omit<ReceivedQuery, 'region'> {
    const query = (raw ?? {}) as Body;
    const id = String(query.Id ?? '');
    if (!/^[a-z][a-zA-Z0-9_]*$/.test(id)) throw invalid(`The value ${JSON.stringify(id)} for parameter MetricDataQueries.member.Id is invalid: it must start with a lowercase letter`);
    if (ids.has(id)) throw invalid(`The value ${id} for parameter MetricDataQueries.member.Id is not unique.`);
    ids.add(id);
    const stat = (query.MetricStat ?? {}) as Body;
    const metric = (stat.Metric ?? {}) as Body;
    if (typeof metric.Namespace !== 'string' || typeof metric.MetricName !== 'string') throw invalid(`query ${id}: MetricStat.Metric needs Namespace and MetricName (this fake answers metric queries only)`);
    const period = Number(stat.Period);
    if (!(Number.isInteger(period) && ([1, 5, 10, 20, 30].includes(period) || (period > 0 && period % 60 === 0)))) throw invalid(`query ${id}: Period ${JSON.stringify(stat.Period)} is not 1, 5, 10, 20, 30 or a multiple of 60`);
    if (typeof stat.Stat !== 'string' || !/^(Sum|Average|Minimum|Maximum|SampleCount|p\d+(\.\d+)?)$/.test(stat.Stat)) throw invalid(`query ${id}: Stat ${JSON.stringify(stat.Stat)}`);
    const dimensionList = (metric.Dimensions ?? []) as Array<{ Name?: string; Value?: string }>;
    if (dimensionList.length > 30) throw invalid(`query ${id}: more than 30 dimensions`);
    const dimensions: Dimensions = {};
    for (const d of dimensionList) {
      if (!d.Name || d.Value === undefined) throw invalid(`query ${id}: a dimension needs Name and Value`);
      dimensions[d.Name] = d.Value;
    }
    return { id, namespace: metric.Namespace, metricName: metric.MetricName, dimensions, period, stat: stat.Stat, startTime: start, endTime: end };
  }

  private listMetrics(input: Body, region: string): Body {
    const recently = input.RecentlyActive;
    if (recently !== undefined && recently !== 'PT3H') throw invalid(`RecentlyActive ${JSON.stringify(recently)}: PT3H is the only valid value`);
    const filters = (input.Dimensions ?? []) as Array<{ Name?: string; Value?: string }>;
    if (!Array.isArray(filters) || filters.length > 10) throw invalid('Dimensions: at most 10 filters');
    const since = this.now() / 1000 - 3 * 3600;
    const matching: Body[] = [];
    for (const [regionKey, points] of this.points) {
      const [published, key] = JSON.parse(regionKey) as [string | null, string];
      if (published !== null && published !== region) continue;
      const [namespace, metricName, dims] = JSON.parse(key) as [string, string, Array<[string, string]>];
      if (input.Namespace !== undefined && input.Namespace !== namespace) continue;
      if (input.MetricName !== undefined && input.MetricName !== metricName) continue;
      const dimensions = Object.fromEntries(dims);
      if (!filters.every((f) => f.Name !== undefined && f.Name in dimensions && (f.Value === undefined || dimensions[f.Name] === f.Value))) continue;
      if (recently !== undefined && !points.some((point) => point.at >= since)) continue;
      matching.push({ Namespace: namespace, MetricName: metricName, Dimensions: dims.map(([Name, Value]) => ({ Name, Value })) });
    }
    const offset = input.NextToken === undefined ? 0 : Number(String(input.NextToken).replace(/^metrics-/, ''));
    const page = matching.slice(offset, offset + 500);
    return { Metrics: page, ...(offset + 500 < matching.length ? { NextToken: `metrics-${offset + 500}` } : {}) };
  }

  private describeAlarms(input: Body): Body {
    const names = (input.AlarmNames ?? []) as string[];
    if (!Array.isArray(names) || names.length > 100) throw invalid('AlarmNames: at most 100 names');
    const types = (input.AlarmTypes ?? ['MetricAlarm']) as string[];
    const max = input.MaxRecords === undefined ? 50 : Number(input.MaxRecords);
    if (!Number.isInteger(max) || max < 1 || max > 100) throw invalid('MaxRecords must be between 1 and 100');
    const offset = input.NextToken === undefined ? 0 : Number(String(input.NextToken).replace(/^alarms-/, ''));
    const matching = types.includes('MetricAlarm') ? [...this.alarms.entries()].filter(([name]) => names.length === 0 || names.includes(name)).sort(([a], [b]) => a.localeCompare(b)) : [];
    const page = matching.slice(offset, offset + max);
    return {
      MetricAlarms: page.map(([name, alarm]) => ({
        AlarmName: name,
        AlarmArn: `arn:aws:cloudwatch:eu-west-1:111111111111:alarm:${name}`,
        ActionsEnabled: true,
        StateValue: alarm.state,
        StateReason: alarm.reason ?? `Threshold Crossed: state ${alarm.state}`,
        StateUpdatedTimestamp: (alarm.updatedAt ?? this.now()) / 1000,
        Namespace: alarm.namespace ?? 'AWS/Events',
        MetricName: alarm.metricName ?? 'MatchedEvents',
        Dimensions: Object.entries(alarm.dimensions ?? {}).map(([Name, Value]) => ({ Name, Value })),
        Statistic: 'Sum',
        Period: 300,
        EvaluationPeriods: 3,
        DatapointsToAlarm: 3,
        Threshold: 1,
        ComparisonOperator: 'LessThanThreshold',
        TreatMissingData: 'breaching',
      })),
      CompositeAlarms: [],
      ...(offset + max < matching.length ? { NextToken: `alarms-${offset + max}` } : {}),
    };
  }
}
