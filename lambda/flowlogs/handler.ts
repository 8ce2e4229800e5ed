/**
 * flowlogs: a CloudWatch Logs subscription delivers the sensor interface's flow log records;
 * rejected inbound probes become `Scan Detected` events (source portsnare.sensor) on the
 * portsnare bus, where decide treats them like any sensor's.
 * https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/SubscriptionFilters.html
 *
 * Environment: EVENT_BUS_NAME, FLOWLOGS_MIN_PROBES (distinct probes per attacker and batch, default 1),
 * FLOWLOGS_DESTINATIONS (comma-separated sensor addresses; records to others are ignored; default: all).
 */
import { gunzipSync } from 'node:zlib';
import { type EventBridgeClient, PutEventsCommand, type PutEventsRequestEntry } from '@aws-sdk/client-eventbridge';
import type { CloudWatchLogsDecodedData, CloudWatchLogsEvent } from 'aws-lambda';
import { tryCanonicalAddress } from '../../core/address';
import { DETAIL_TYPE_SCAN_DETECTED, EVENT_SOURCE_SENSOR, type ScanDetected } from '../../core/event';
import { eventBridgeClient } from '../../aws/clients/eventbridge';
import { type Clock, systemClock } from '../../aws/clock';
import { requireEnv } from '../shared/env';
import { entryPoint, instrument, type Invocation } from '../shared/handler';
import { powertoolsObservability, type Observability } from '../../aws/observability';
import { isThrottling, withRetry } from '../../aws/retry';
import { parseFlowLine, toScanEvents, type FlowRecord } from './records';

/** PutEvents takes at most 10 entries per call (EventBridge quotas). */
export const PUT_EVENTS_BATCH = 10;
/** PutEvents calls per batch of 10, the first included; pauses between them are fully jittered */
export const PUT_ATTEMPTS = 3;
const BASE_MS = 400;
const CAP_MS = 2_000;

export interface FlowLogsDeps {
  readonly client: Pick<EventBridgeClient, 'send'>;
  readonly busName: string;
  readonly minProbes: number;
  /** the sensors' addresses; empty: every destination */
  readonly destinations?: ReadonlySet<string>;
  readonly obs: Observability;
  /** waits between PutEvents attempts (simulated in tests) */
  readonly clock: Clock;
  /** the jitter's random source; Math.random by default */
  readonly random?: () => number;
}

export type FlowLogsResult = { records: number; events: number; skipped: number };

export function decodeSubscription(event: CloudWatchLogsEvent): CloudWatchLogsDecodedData {
  const json = gunzipSync(Buffer.from(event.awslogs.data, 'base64')).toString('utf8');
  return JSON.parse(json) as CloudWatchLogsDecodedData;
}

/** Thrown inside the retry when PutEvents accepted the call but refused some entries. */
class EntriesFailed extends Error {
  override readonly name = 'EntriesFailed';
}

/**
 * Puts the entries, 10 at a time, and puts again only the entries EventBridge reported as failed
 * (PutEvents can fail partially: FailedEntryCount and per-entry ErrorCode), through the shared
 * retry (full jitter); a throttled call as a whole is retried the same way. Throws when entries
 * still fail after the last attempt, so Lambda retries the batch and finally sends it to the
 * on-failure destination.
 * https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEvents.html
 */
export async function putAll(deps: FlowLogsDeps, entries: PutEventsRequestEntry[]): Promise<number> {
  let failed: PutEventsRequestEntry[] = [];
  let lastError = '';
  for (let i = 0; i < entries.length; i += PUT_EVENTS_BATCH) {
    let pending = entries.slice(i, i + PUT_EVENTS_BATCH);
    const attempt = async (): Promise<void> => {
      const result = await deps.client.send(new PutEventsCommand({ Entries: pending }));
      if (!result.FailedEntryCount) {
        pending = [];
        return;
      }
      const retry: PutEventsRequestEntry[] = [];
      (result.Entries ?? []).forEach((entry, index) => {
        if (entry.ErrorCode) {
          lastError = `${entry.ErrorCode}: ${entry.ErrorMessage ?? ''}`;
          const original = pending[index];
          if (original) retry.push(original);
        }
      });
      pending = retry;
      if (pending.length) throw new EntriesFailed(lastError);
    };
    try {
      await withRetry(attempt, {
        clock: deps.clock,
        random: deps.random,
        attempts: PUT_ATTEMPTS,
        baseMs: BASE_MS,
        capMs: CAP_MS,
        retryable: (error) => error instanceof EntriesFailed || isThrottling(error),
      });
    } catch (error) {
      if (!(error instanceof EntriesFailed)) throw error;
    }
    failed = failed.concat(pending);
  }
  if (failed.length) {
    deps.obs.log.error('PutEvents kept failing', { failed: failed.length, lastError });
    throw new Error(`PutEvents: ${failed.length} of ${entries.length} events failed (${lastError})`);
  }
  return entries.length;
}

export async function handleFlowLogs(event: CloudWatchLogsEvent, deps: FlowLogsDeps): Promise<FlowLogsResult> {
  let data: CloudWatchLogsDecodedData;
  try {
    data = decodeSubscription(event);
  } catch (error) {
    // Not a CloudWatch Logs subscription payload: retrying cannot mend it.
    deps.obs.count('MalformedEvents');
    deps.obs.log.error('unreadable subscription payload dropped', { error: String(error) });
    return { records: 0, events: 0, skipped: 0 };
  }
  if (data.messageType !== 'DATA_MESSAGE') return { records: 0, events: 0, skipped: 0 };
  const records: FlowRecord[] = [];
  let skipped = 0;
  for (const logEvent of data.logEvents ?? []) {
    const parsed = parseFlowLine(logEvent.message);
    if (parsed.ok) records.push(parsed.record);
    else {
      skipped++;
      if (parsed.skip.startsWith('malformed')) deps.obs.log.warn('unreadable flow log record', { why: parsed.skip, logStream: data.logStream });
    }
  }
  const scans: ScanDetected[] = toScanEvents(records, { minProbes: deps.minProbes, destinations: deps.destinations });
  for (const scan of scans) {
    deps.obs.log.info('stealth probes seen in flow logs', { attacker: scan.attacker, sensorId: scan.sensorId, probes: scan.probes.length });
  }
  deps.obs.count('Detections', scans.length);
  const entries: PutEventsRequestEntry[] = scans.map((scan) => ({
    EventBusName: deps.busName,
    Source: EVENT_SOURCE_SENSOR,
    DetailType: DETAIL_TYPE_SCAN_DETECTED,
    Detail: JSON.stringify(scan),
    Time: new Date(scan.lastSeen),
  }));
  if (entries.length) await putAll(deps, entries);
  return { records: records.length, events: scans.length, skipped };
}

export function createHandler(deps: FlowLogsDeps): Invocation<CloudWatchLogsEvent, FlowLogsResult> {
  return instrument(deps.obs, (event) => handleFlowLogs(event, deps));
}

export function defaultDeps(env: NodeJS.ProcessEnv = process.env, obs: Observability = powertoolsObservability(), clock: Clock = systemClock): FlowLogsDeps {
  const busName = requireEnv('EVENT_BUS_NAME', env);
  const minProbes = Number(env.FLOWLOGS_MIN_PROBES ?? '1');
  if (!Number.isInteger(minProbes) || minProbes < 1) throw new Error(`FLOWLOGS_MIN_PROBES must be a whole number ≥ 1, got ${JSON.stringify(env.FLOWLOGS_MIN_PROBES)}`);
  const destinations = new Set(
    (env.FLOWLOGS_DESTINATIONS ?? '')
      .split(',')
      .map((d) => d.trim())
      .filter((d) => d !== '')
      .map((d) => {
        const address = tryCanonicalAddress(d);
        if (address === undefined) throw new Error(`FLOWLOGS_DESTINATIONS: not an IP address: ${JSON.stringify(d)}`);
        return address;
      }),
  );
  return { client: eventBridgeClient(), busName, minProbes, destinations, obs, clock };
}

export const handler = entryPoint(() => createHandler(defaultDeps()));
