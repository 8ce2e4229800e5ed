/**
 * The `eventbridge` sink: events go into the disk spool first, and a single sender drains it
 * with PutEvents (Source `portsnare.sensor`, DetailType `Scan Detected`).
 *
 * What AWS documents and this follows (EventBridge API Reference, PutEvents):
 * - at most 10 entries per call and 256 KB in all (a Scan Detected detail is at most ~3 KB:
 *   32 probes, so 10 always fit);
 * - a 200 response can still fail some entries: `FailedEntryCount` > 0 and, per entry,
 *   `ErrorCode`/`ErrorMessage` in the same order as the request — only those are resent;
 * - `ThrottlingException` and 5xx (`InternalException`) are retried with exponential backoff and
 *   full jitter ("Error retries and exponential backoff in AWS").
 * A batch leaves the spool only when every entry of it was accepted, so a crash or a restart
 * mid-outage resends it: at least once, never lost. An entry the service rejects as malformed can
 * never succeed: it is dropped with a log line and counted, so it cannot block the spool.
 */
import { EventBridgeClient, PutEventsCommand, type PutEventsRequestEntry } from '@aws-sdk/client-eventbridge';
import { DETAIL_TYPE_SCAN_DETECTED, DETAIL_TYPE_SENSOR_HEARTBEAT, EVENT_SOURCE_SENSOR, SENSOR_HEARTBEAT_INTERVAL_SECONDS, type ScanDetected, type SensorHeartbeat } from '../../core/event';
import { errorText, type Logger } from '../log';
import type { Spool, SpoolEntry } from './spool';
import type { Publisher, PublisherReport, PublisherStats } from './types';

export const MAX_ENTRIES_PER_CALL = 10;
/** per-entry error codes that retrying cannot fix */
const PERMANENT_ENTRY_ERRORS = new Set(['MalformedDetail', 'InvalidArgument', 'ValidationException', 'InvalidEventPatternException']);

export interface EventBridgePublisherOptions {
  readonly client: EventBridgeClient;
  readonly busName: string;
  readonly spool: Spool;
  readonly logger: Logger;
  /** first retry delay, ms (default 200) */
  readonly backoffBaseMs?: number;
  /** longest retry delay, ms (default 30 s) */
  readonly backoffMaxMs?: number;
  readonly random?: () => number;
  /** Resources of each entry (e.g. the instance ARN) */
  readonly resources?: string[];
  /**
   * Sends a `Sensor Heartbeat` for this sensor at start and then every `heartbeatMs` (default
   * SENSOR_HEARTBEAT_INTERVAL_SECONDS), so the stack's alarm sees a live sensor; none without
   * a sensorId, or with heartbeatMs 0. A heartbeat is not spooled: a lost one is only late.
   */
  readonly sensorId?: string;
  readonly heartbeatMs?: number;
}

export interface EventBridgeStats extends PublisherStats {
  readonly calls: number;
  readonly retries: number;
  readonly throttles: number;
  readonly failedEntries: number;
  readonly heartbeats: number;
  readonly heartbeatErrors: number;
}

/** A client with the SDK's own retries off (this sender retries, with the spool behind it). */
export function eventBridgeClient(opts: {
  region?: string;
  endpoint?: string;
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
}): EventBridgeClient {
  return new EventBridgeClient({
    ...(opts.region ? { region: opts.region } : {}),
    ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
    ...(opts.credentials ? { credentials: opts.credentials } : {}),
    maxAttempts: 1,
    requestHandler: { connectionTimeout: 5000, requestTimeout: 15_000 },
  });
}

export class EventBridgePublisher implements Publisher {
  readonly name: string;
  private running?: Promise<void>;
  private stopping?: AbortController;
  private counts = { published: 0, dropped: 0, errors: 0, calls: 0, retries: 0, throttles: 0, failedEntries: 0, heartbeats: 0, heartbeatErrors: 0 };
  private heartbeatTimer?: NodeJS.Timeout;
  private readonly startedAt = Date.now();
  private readonly random: () => number;
  private lastError?: string;

  constructor(private readonly options: EventBridgePublisherOptions) {
    this.name = `eventbridge:${options.busName}`;
    this.random = options.random ?? Math.random;
  }

  async start(): Promise<void> {
    await this.options.spool.open();
    const depth = this.options.spool.stats().depth;
    if (depth) this.options.logger.info('eventbridge: events waiting in the spool from before, sending them', { bus: this.options.busName, depth });
    this.stopping = new AbortController();
    this.running = this.drain(this.stopping.signal).catch((error: unknown) => {
      this.options.logger.error('eventbridge: sender stopped on an unexpected error', { error: errorText(error) });
    });
    const every = this.options.heartbeatMs ?? SENSOR_HEARTBEAT_INTERVAL_SECONDS * 1000;
    if (this.options.sensorId && every > 0) {
      void this.heartbeat();
      this.heartbeatTimer = setInterval(() => void this.heartbeat(), every);
      this.heartbeatTimer.unref();
    }
  }

  /** One `Sensor Heartbeat`; a failure is logged and counted, the next tick tries again. */
  async heartbeat(): Promise<boolean> {
    const detail: SensorHeartbeat = {
      version: 1,
      sensorId: this.options.sensorId ?? '',
      sentAt: new Date().toISOString(),
      uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000),
    };
    try {
      const output = await this.options.client.send(
        new PutEventsCommand({
          Entries: [{ Source: EVENT_SOURCE_SENSOR, DetailType: DETAIL_TYPE_SENSOR_HEARTBEAT, Detail: JSON.stringify(detail), EventBusName: this.options.busName }],
        }),
      );
      const failed = output.Entries?.[0]?.ErrorCode;
      if (failed || (output.FailedEntryCount ?? 0) > 0) throw new Error(`${failed ?? 'entry failed'}: ${output.Entries?.[0]?.ErrorMessage ?? ''}`);
      this.counts.heartbeats++;
      return true;
    } catch (error) {
      this.counts.heartbeatErrors++;
      this.options.logger.warn('eventbridge: heartbeat not sent (the next one is due in one interval)', { bus: this.options.busName, error: errorText(error) });
      return false;
    }
  }

  async publish(event: ScanDetected, id: string): Promise<boolean> {
    const kept = await this.options.spool.append({ id, event, spooledAt: Date.now() });
    if (!kept) this.counts.dropped++;
    return kept;
  }

  /** Stops sending; what is not delivered by then stays in the spool for the next start. */
  async stop(deadlineMs = 5000): Promise<void> {
    const controller = this.stopping;
    if (!controller) return;
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    // Give the sender until the deadline to empty the spool, then cut the call in flight.
    const until = Date.now() + deadlineMs;
    while (this.options.spool.stats().depth > 0 && Date.now() < until && !this.lastError) {
      await this.options.spool.waitForAppend(Math.min(50, Math.max(1, until - Date.now())));
    }
    controller.abort();
    await this.running;
    this.stopping = undefined;
    await this.options.spool.close();
    // keep-alive connections would hold the process open after a stop
    this.options.client.destroy();
  }

  stats(): EventBridgeStats {
    return { ...this.counts };
  }

  /** Counters, the spool, and the last error from EventBridge (cleared by a success). */
  describe(): PublisherReport {
    const spool = this.options.spool.stats();
    const stats = this.stats();
    const problems = spool.full ? [`${this.name}: spool full (${spool.bytes} of ${spool.maxBytes} bytes): detections are being lost`] : [];
    const warnings = this.lastError ? [`${this.name}: ${this.lastError} (${spool.depth} events waiting in the spool)`] : [];
    return {
      name: this.name,
      status: { ...stats, spool, lastError: this.lastError },
      metrics: {
        published: stats.published,
        dropped: stats.dropped,
        errors: stats.errors,
        spoolDepth: spool.depth,
        spoolBytes: spool.bytes,
        spoolMaxBytes: spool.maxBytes,
        spoolFull: spool.full ? 1 : 0,
        spoolRefused: spool.refused,
        throttles: stats.throttles,
      },
      health: { problems, warnings },
    };
  }

  private async drain(signal: AbortSignal): Promise<void> {
    let failures = 0;
    while (!signal.aborted) {
      try {
        const batch = await this.options.spool.peek(MAX_ENTRIES_PER_CALL);
        if (batch.lines === 0) {
          await this.options.spool.waitForAppend(1000, signal);
          continue;
        }
        const delivered = await this.deliver(batch.entries, signal);
        if (!delivered) return; // stopping: the batch stays in the spool
        await this.options.spool.commit(batch.end, batch.lines);
        failures = 0;
      } catch (error) {
        // the spool itself failed (disk): keep trying, never give up on what it holds
        this.counts.errors++;
        this.lastError = `spool: ${errorText(error)}`;
        this.options.logger.error('eventbridge: reading the spool failed, retrying', { error: errorText(error) });
        await sleep(this.backoff(failures++), signal);
      }
    }
  }

  /** Sends until every entry is accepted (or dropped as malformed); false when stopped first. */
  private async deliver(batch: SpoolEntry[], signal: AbortSignal): Promise<boolean> {
    let pending = batch;
    let attempt = 0;
    while (pending.length) {
      if (signal.aborted) return false;
      try {
        this.counts.calls++;
        const output = await this.options.client.send(new PutEventsCommand({ Entries: pending.map((e) => this.entry(e)) }), { abortSignal: signal });
        const results = output.Entries ?? [];
        const failed: SpoolEntry[] = [];
        pending.forEach((entry, index) => {
          const result = results[index];
          if (result?.EventId && !result.ErrorCode) {
            this.counts.published++;
            return;
          }
          const code = result?.ErrorCode ?? 'NoResult';
          this.counts.failedEntries++;
          if (code === 'ThrottlingException') this.counts.throttles++;
          if (PERMANENT_ENTRY_ERRORS.has(code)) {
            this.counts.dropped++;
            this.options.logger.error('eventbridge: entry rejected, dropped', { id: entry.id, attacker: entry.event.attacker, code, message: result?.ErrorMessage });
            return;
          }
          failed.push(entry);
        });
        if (failed.length) {
          this.lastError = `${failed.length} of ${pending.length} entries failed (FailedEntryCount ${output.FailedEntryCount ?? '?'})`;
          this.options.logger.warn('eventbridge: some entries failed, resending them', { bus: this.options.busName, failed: failed.length, of: pending.length });
        } else {
          this.lastError = undefined;
          attempt = 0;
        }
        pending = failed;
      } catch (error) {
        if (signal.aborted) return false;
        this.counts.errors++;
        const name = (error as { name?: string }).name ?? 'Error';
        const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
        if (name === 'ThrottlingException' || status === 429) this.counts.throttles++;
        this.lastError = `${name}${status ? ` (HTTP ${status})` : ''}: ${errorText(error)}`;
        this.options.logger.warn('eventbridge: PutEvents failed, will retry', { bus: this.options.busName, error: this.lastError, entries: pending.length, attempt });
      }
      if (pending.length) {
        this.counts.retries++;
        await sleep(this.backoff(attempt++), signal);
      }
    }
    return true;
  }

  private backoff(attempt: number): number {
    const base = this.options.backoffBaseMs ?? 200;
    const cap = this.options.backoffMaxMs ?? 30_000;
    return Math.round(this.random() * Math.min(cap, base * 2 ** Math.min(attempt, 30)));
  }

  private entry(entry: SpoolEntry): PutEventsRequestEntry {
    return {
      Source: EVENT_SOURCE_SENSOR,
      DetailType: DETAIL_TYPE_SCAN_DETECTED,
      Detail: JSON.stringify(entry.event),
      EventBusName: this.options.busName,
      Time: new Date(entry.event.lastSeen),
      ...(this.options.resources?.length ? { Resources: this.options.resources } : {}),
    };
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
