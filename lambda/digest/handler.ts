/**
 * digest — on its own EventBridge Scheduler schedule (every `everyMinutes`, only when
 * `portsnare.digest` is configured): one message per window with the new blocks, top sources and
 * ports, escalations, lifts, breaker trips, enforcement failures and dead letters
 * (core/digest.ts), to an SNS topic (email, AWS Chatbot) and/or a webhook. Never one per scan.
 *
 * 1. The window ends at the schedule's time (`scheduledTime`, the scheduler's
 *    <aws.scheduler.scheduled-time>; a manual invocation: now), to the minute. Inside quiet hours
 *    nothing happens: the next digest covers the time since the last one sent.
 * 2. The window is claimed in the decision table (lambda/digest/store.ts): a duplicated or
 *    redelivered invocation of the same tick sends nothing.
 * 3. The table's history entries and the metrics the functions publish (GetMetricData on
 *    core/metrics.ts names; AWS/SQS ApproximateNumberOfMessagesVisible of the dead-letter queues)
 *    are folded into the digest of each channel's window (from that channel's last delivery).
 * 4. Below the threshold nothing is sent and the window stays open. Otherwise each channel gets
 *    the digest with retries; a channel that still fails is counted (DigestUndelivered, alarmed),
 *    its window stays open, and the invocation fails so that Lambda retries it (the channels
 *    already delivered are not sent again).
 * Env: TABLE_NAME, DIGEST_SETTINGS (core/digest.ts DigestRuntime).
 */
import { randomUUID } from 'node:crypto';
import { type CloudWatchClient, GetMetricDataCommand, type MetricDataQuery } from '@aws-sdk/client-cloudwatch';
import { PublishCommand, type SNSClient } from '@aws-sdk/client-sns';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import {
  DIGEST_METRICS,
  DIGEST_SETTINGS_ENV,
  DigestAccumulator,
  type DigestChannel,
  DigestRuntimeSchema,
  type DigestRuntime,
  isQuiet,
  shouldSend,
  snsMessage,
  webhookBody,
  windowStart,
  type Digest,
  type DigestMetricPoints,
  type DeadLetterPoints,
} from '../../core/digest';
import { formatZodError } from '../../core/event';
import { METRIC_DIMENSIONS, METRIC_NAMESPACE } from '../../core/metrics';
import { cloudWatchClient } from '../../aws/clients/cloudwatch';
import { documentClient } from '../../aws/clients/dynamodb';
import { snsClient } from '../../aws/clients/sns';
import { type Clock, systemClock } from '../../aws/clock';
import { FUNCTION_ENV, requireEnv } from '../shared/env';
import { entryPoint, instrument } from '../shared/handler';
import { type Observability, powertoolsObservability } from '../../aws/observability';
import { DigestStore } from './store';

/** how long a claim holds: longer than the function's timeout (lib/Digest.ts DIGEST_TIMEOUT_SECONDS, 120 s) */
export const CLAIM_LEASE_MS = 180_000;
/** a webhook POST: each attempt ends after this long */
export const WEBHOOK_TIMEOUT_MS = 5_000;
export const WEBHOOK_ATTEMPTS = 3;
/** SNS Publish attempts of our own, on top of the SDK's (which retries throttling and 5xx) */
export const SNS_ATTEMPTS = 2;

export interface DigestDeps {
  readonly store: DigestStore;
  readonly cloudwatch: CloudWatchClient;
  readonly sns?: SNSClient;
  readonly post: (url: string, body: string, timeoutMs: number) => Promise<number>;
  readonly runtime: DigestRuntime;
  readonly obs: Observability;
  readonly clock: Clock;
  readonly newId?: () => string;
}

export type DigestOutcome =
  | { readonly result: 'quiet' | 'already-sent' | 'claimed-elsewhere'; readonly until: number }
  | { readonly result: 'done'; readonly until: number; readonly channels: Partial<Record<DigestChannel, 'sent' | 'below-threshold' | 'failed'>> };

function untilOf(event: unknown, now: number): number {
  const at = typeof event === 'object' && event !== null && 'scheduledTime' in event ? Date.parse(String((event as { scheduledTime: unknown }).scheduledTime)) : NaN;
  const end = Number.isFinite(at) && at <= now + 60_000 ? at : now;
  return Math.floor(end / 60_000) * 60_000;
}

function channelsOf(runtime: DigestRuntime): DigestChannel[] {
  return [...(runtime.topicArn ? (['sns'] as const) : []), ...(runtime.webhookUrl ? (['webhook'] as const) : [])];
}

/** GetMetricData for the failure metrics and the dead-letter queues over [from, until), every page. */
export async function readMetrics(client: CloudWatchClient, runtime: DigestRuntime, from: number, until: number): Promise<{ metrics: DigestMetricPoints[]; deadLetters: DeadLetterPoints[] }> {
  // 1-minute points are kept 15 days; a window over a day asks for hours (at most 336 points a metric)
  // https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_GetMetricData.html
  const period = until - from > 86_400_000 ? 3600 : 60;
  const dimensions = Object.entries(METRIC_DIMENSIONS).map(([Name, Value]) => ({ Name, Value }));
  const queries: MetricDataQuery[] = [
    ...DIGEST_METRICS.map((name, i) => ({ Id: `m${i}`, Label: name, MetricStat: { Metric: { Namespace: METRIC_NAMESPACE, MetricName: name, Dimensions: dimensions }, Period: period, Stat: 'Sum' }, ReturnData: true })),
    ...runtime.deadLetterQueues.map((queue, i) => ({
      Id: `q${i}`,
      Label: queue,
      MetricStat: { Metric: { Namespace: 'AWS/SQS', MetricName: 'ApproximateNumberOfMessagesVisible', Dimensions: [{ Name: 'QueueName', Value: queue }] }, Period: period, Stat: 'Maximum' },
      ReturnData: true,
    })),
  ];
  const points = new Map<string, Array<{ at: number; value: number }>>();
  let token: string | undefined;
  do {
    const out = await client.send(new GetMetricDataCommand({ MetricDataQueries: queries, StartTime: new Date(from), EndTime: new Date(until), NextToken: token }));
    for (const result of out.MetricDataResults ?? []) {
      const list = points.get(result.Id ?? '') ?? [];
      (result.Timestamps ?? []).forEach((t, i) => list.push({ at: new Date(t).getTime(), value: result.Values?.[i] ?? 0 }));
      points.set(result.Id ?? '', list);
    }
    token = out.NextToken;
  } while (token);
  return {
    metrics: DIGEST_METRICS.map((name, i) => ({ name, points: points.get(`m${i}`) ?? [] })),
    deadLetters: runtime.deadLetterQueues.map((queue, i) => ({ queue, points: points.get(`q${i}`) ?? [] })),
  };
}

/** A status a retry may change: a timeout, throttling, a server error (not a 4xx that will answer the same). */
function retryable(status: number): boolean {
  return status === 0 || status === 408 || status === 429 || status >= 500;
}

async function deliver(channel: DigestChannel, digest: Digest, deps: DigestDeps, id: string): Promise<boolean> {
  const { runtime, obs } = deps;
  if (channel === 'sns') {
    for (let attempt = 1; attempt <= SNS_ATTEMPTS; attempt++) {
      try {
        if (!deps.sns || !runtime.topicArn) throw new Error('no SNS client or topic');
        await deps.sns.send(new PublishCommand({ TopicArn: runtime.topicArn, ...snsMessage(digest, runtime, id) }));
        return true;
      } catch (error) {
        obs.log.warn('digest: SNS publish failed', { attempt, error: String(error), topicArn: runtime.topicArn });
        if (attempt < SNS_ATTEMPTS) await deps.clock.sleep(1000 * attempt);
      }
    }
    return false;
  }
  const body = JSON.stringify(webhookBody(digest, runtime.label, id));
  for (let attempt = 1; attempt <= WEBHOOK_ATTEMPTS; attempt++) {
    let status = 0;
    try {
      status = await deps.post(runtime.webhookUrl ?? '', body, WEBHOOK_TIMEOUT_MS);
      if (status >= 200 && status < 300) return true;
      obs.log.warn('digest: webhook answered an error', { attempt, status });
    } catch (error) {
      obs.log.warn('digest: webhook POST failed', { attempt, error: String(error) });
    }
    if (!retryable(status) || attempt === WEBHOOK_ATTEMPTS) break;
    await deps.clock.sleep(1000 * 2 ** (attempt - 1));
  }
  return false;
}

export function createHandler(deps: DigestDeps): (event?: unknown) => Promise<DigestOutcome> {
  return instrument(deps.obs, async (event: unknown) => {
    const { runtime, obs, store } = deps;
    const now = deps.clock.now();
    const until = untilOf(event, now);
    if (isQuiet(until, runtime.quietHours, runtime.timeZone)) {
      obs.log.info('digest: quiet hours, nothing sent', { quietHours: runtime.quietHours, timeZone: runtime.timeZone, until: new Date(until).toISOString() });
      return { result: 'quiet', until };
    }
    const state = await store.read();
    const due = channelsOf(runtime).filter((channel) => (state.sent[channel] ?? -Infinity) < until);
    if (due.length === 0) {
      obs.log.info('digest: this window was already sent', { until: new Date(until).toISOString() });
      return { result: 'already-sent', until };
    }
    const id = deps.newId?.() ?? randomUUID();
    if (!(await store.claim(id, until, now, now + CLAIM_LEASE_MS))) {
      obs.log.info('digest: another run holds the window', { until: new Date(until).toISOString() });
      return { result: 'claimed-elsewhere', until };
    }
    const channels: Partial<Record<DigestChannel, 'sent' | 'below-threshold' | 'failed'>> = {};
    try {
      const fresh = await store.read(); // after the claim: a run that finished in between moved `sent`
      const pending = due.filter((channel) => (fresh.sent[channel] ?? -Infinity) < until);
      const accumulators = new Map(pending.map((channel) => [channel, new DigestAccumulator(windowStart(fresh.sent[channel], until, runtime.everyMinutes), until)]));
      const all = [...accumulators.values()];
      if (all.length === 0) return { result: 'already-sent', until };
      const from = Math.min(...all.map((a) => a.from));
      let malformed = 0;
      for await (const entry of store.history(from, until, () => malformed++)) for (const a of all) a.add(entry);
      if (malformed) obs.log.warn('digest: history entries it could not read were skipped', { count: malformed });
      const { metrics, deadLetters } = await readMetrics(deps.cloudwatch, runtime, from, until);
      for (const a of all) {
        for (const m of metrics) a.addMetric(m);
        for (const q of deadLetters) a.addDeadLetters(q);
      }
      for (const [channel, accumulator] of accumulators) {
        const digest = accumulator.result(runtime.top);
        // a channel never sent to: its first window's start is recorded, so a window not sent now stays open from there
        if (fresh.sent[channel] === undefined) await store.markSent(id, channel, accumulator.from);
        if (!shouldSend(digest, runtime.minNewBlocks)) {
          channels[channel] = 'below-threshold';
          obs.log.info('digest: below the threshold, the window stays open', { channel, newBlocks: digest.newBlocks, minNewBlocks: runtime.minNewBlocks });
          continue;
        }
        if (await deliver(channel, digest, deps, `${id}-${channel}`)) {
          channels[channel] = 'sent';
          if (!(await store.markSent(id, channel, until))) obs.log.warn('digest: sent, but the claim was lost before it was recorded', { channel });
          obs.log.info('digest sent', { channel, from: new Date(accumulator.from).toISOString(), until: new Date(until).toISOString(), newBlocks: digest.newBlocks });
        } else {
          channels[channel] = 'failed';
          obs.count('DigestUndelivered');
          obs.log.error('digest: not delivered after retries; the next digest covers this window', { channel });
        }
      }
    } finally {
      await store.release(id);
    }
    const failed = Object.entries(channels).filter(([, r]) => r === 'failed').map(([c]) => c);
    // Lambda retries a failed asynchronous invocation (the same event, the same window); channels delivered are not sent again
    if (failed.length) throw new Error(`digest not delivered to ${failed.join(', ')}`);
    return { result: 'done', until, channels };
  });
}

/** A JSON POST with a deadline; resolves to the HTTP status (no redirect is followed). */
export async function postJson(url: string, body: string, timeoutMs: number): Promise<number> {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', 'user-agent': 'portsnare-digest' }, body, redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) });
  await response.arrayBuffer().catch(() => undefined);
  return response.status;
}

export function runtimeOf(env: NodeJS.ProcessEnv = process.env): DigestRuntime {
  const raw = requireEnv(DIGEST_SETTINGS_ENV, env);
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (error) {
    throw new Error(`${DIGEST_SETTINGS_ENV} is not JSON: ${(error as Error).message}`);
  }
  const parsed = DigestRuntimeSchema.safeParse(json);
  if (!parsed.success) throw new Error(`${DIGEST_SETTINGS_ENV}: ${formatZodError(parsed.error)}`);
  return parsed.data;
}

export function defaultDeps(env: NodeJS.ProcessEnv = process.env, obs: Observability = powertoolsObservability(), clock: Clock = systemClock): DigestDeps {
  const runtime = runtimeOf(env);
  const doc: DynamoDBDocumentClient = documentClient();
  return {
    store: new DigestStore(doc, requireEnv(FUNCTION_ENV.table, env)),
    cloudwatch: cloudWatchClient(),
    ...(runtime.topicArn ? { sns: snsClient() } : {}),
    post: postJson,
    runtime,
    obs,
    clock,
  };
}

export const handler = entryPoint(() => createHandler(defaultDeps()));
