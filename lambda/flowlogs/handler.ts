/**
 * flowlogs: a CloudWatch Logs subscription delivers the sensor interface's flow log records;
 * rejected inbound probes become `Scan Detected` events (source portsnare.sensor) on the
 * portsnare bus, where decide treats them like any sensor's.
 *
 * Environment: EVENT_BUS_NAME, FLOWLOGS_MIN_PROBES (distinct probes per attacker and batch, default 1),
 * FLOWLOGS_DESTINATIONS (comma-separated sensor addresses; records to others are ignored; default: all).
 */
import { gunzipSync } from 'node:zlib';
import { EventBridgeClient, PutEventsCommand, type PutEventsRequestEntry } from '@aws-sdk/client-eventbridge';
import type { CloudWatchLogsDecodedData, CloudWatchLogsEvent } from 'aws-lambda';
import { canonicalAddress } from '../../core/address';
import { DETAIL_TYPE_SCAN_DETECTED, EVENT_SOURCE_SENSOR, type ScanDetected } from '../../core/event';
import { powertoolsObservability, type Observability } from '../shared/observability';
import { parseFlowLine, toScanEvents, type FlowRecord } from './records';

/** PutEvents takes at most 10 entries per call (EventBridge quotas). */
export const PUT_EVENTS_BATCH = 10;
const ATTEMPTS = 3;

export interface FlowLogsDeps {
  readonly client: Pick<EventBridgeClient, 'send'>;
  readonly busName: string;
  readonly minProbes: number;
  /** the sensors' addresses; empty: every destination */
  readonly destinations?: ReadonlySet<string>;
  readonly obs: Observability;
  /** waits between PutEvents attempts; tests pass a no-op */
  readonly pause?: (ms: number) => Promise<void>;
}

export function decodeSubscription(event: CloudWatchLogsEvent): CloudWatchLogsDecodedData {
  const json = gunzipSync(Buffer.from(event.awslogs.data, 'base64')).toString('utf8');
  return JSON.parse(json) as CloudWatchLogsDecodedData;
}

/**
 * Puts the entries, 10 at a time, and puts again only the entries EventBridge reported as failed
 * (PutEvents can fail partially: FailedEntryCount and per-entry ErrorCode). Throws when entries
 * still fail after the last attempt, so Lambda retries the batch and finally sends it to the
 * on-failure destination.
 */
export async function putAll(deps: FlowLogsDeps, entries: PutEventsRequestEntry[]): Promise<number> {
  const pause = deps.pause ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  let failed: PutEventsRequestEntry[] = [];
  let lastError = '';
  for (let i = 0; i < entries.length; i += PUT_EVENTS_BATCH) {
    let pending = entries.slice(i, i + PUT_EVENTS_BATCH);
    for (let attempt = 1; attempt <= ATTEMPTS && pending.length; attempt++) {
      if (attempt > 1) await pause(100 * 2 ** attempt);
      const result = await deps.client.send(new PutEventsCommand({ Entries: pending }));
      if (!result.FailedEntryCount) {
        pending = [];
        break;
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
    }
    failed = failed.concat(pending);
  }
  if (failed.length) {
    deps.obs.log.error('PutEvents kept failing', { failed: failed.length, lastError });
    throw new Error(`PutEvents: ${failed.length} of ${entries.length} events failed (${lastError})`);
  }
  return entries.length;
}

export async function handleFlowLogs(event: CloudWatchLogsEvent, deps: FlowLogsDeps): Promise<{ records: number; events: number; skipped: number }> {
  const data = decodeSubscription(event);
  if (data.messageType !== 'DATA_MESSAGE') return { records: 0, events: 0, skipped: 0 };
  const records: FlowRecord[] = [];
  let skipped = 0;
  for (const logEvent of data.logEvents) {
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

let defaults: FlowLogsDeps | undefined;
function defaultDeps(): FlowLogsDeps {
  if (!defaults) {
    const busName = process.env.EVENT_BUS_NAME;
    if (!busName) throw new Error('environment variable EVENT_BUS_NAME is not set');
    const minProbes = Number(process.env.FLOWLOGS_MIN_PROBES ?? '1');
    if (!Number.isInteger(minProbes) || minProbes < 1) throw new Error(`FLOWLOGS_MIN_PROBES must be a whole number ≥ 1, got ${process.env.FLOWLOGS_MIN_PROBES}`);
    const destinations = new Set(
      (process.env.FLOWLOGS_DESTINATIONS ?? '')
        .split(',')
        .map((d) => d.trim())
        .filter((d) => d !== '')
        .map(canonicalAddress),
    );
    defaults = { client: new EventBridgeClient({}), busName, minProbes, destinations, obs: powertoolsObservability() };
  }
  return defaults;
}

export const handler = async (event: CloudWatchLogsEvent): Promise<{ records: number; events: number; skipped: number }> => {
  const deps = defaultDeps();
  try {
    return await handleFlowLogs(event, deps);
  } finally {
    deps.obs.flush();
  }
};
