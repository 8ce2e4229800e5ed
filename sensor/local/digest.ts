/**
 * The host agent's notification digest (agent config `digest`, docs/agent-config.md): every
 * `everyMinutes` (ticks on multiples of the period since the epoch), the local pipeline's history
 * of the window — new blocks, top sources and ports, escalations, lifts — and the circuit
 * breaker's trips, as the cloud's digest (core/digest.ts), POSTed as JSON to `webhookUrl` with a
 * deadline and retries. Nothing inside quiet hours, nothing below the threshold: the window stays
 * open and the next digest covers everything since the last one sent. What was sent is kept in
 * `<stateDirectory>/digest.json` (written to a temporary file and renamed), so a restart neither
 * repeats nor skips a window; a crash between the POST and that write repeats it once.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DigestAccumulator, isQuiet, shouldSend, webhookBody, windowStart, type AgentDigestSettings, type DigestEntry } from '../../core/digest';

export const DIGEST_STATE_FILE = 'digest.json';
export const HOST_WEBHOOK_TIMEOUT_MS = 5_000;
export const HOST_WEBHOOK_ATTEMPTS = 3;

export interface HostDigestOptions {
  readonly settings: AgentDigestSettings;
  readonly stateDirectory: string;
  /** the window's history entries (FileStore.historyBetween) */
  readonly history: (from: number, until: number) => Iterable<DigestEntry>;
  /** when the circuit breaker opened (epoch ms) */
  readonly breakerTrips: () => readonly number[];
  readonly label: string;
  readonly post: (url: string, body: string, timeoutMs: number) => Promise<number>;
  readonly sleep: (ms: number) => Promise<void>;
  readonly log: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
}

export type HostDigestResult = 'not-due' | 'quiet' | 'below-threshold' | 'sent' | 'failed';

export class HostDigest {
  /** digests that could not be delivered after their retries (/metrics) */
  undelivered = 0;
  private lastTick: number | undefined;
  private running = false;

  constructor(private readonly options: HostDigestOptions) {}

  private get statePath(): string {
    return join(this.options.stateDirectory, DIGEST_STATE_FILE);
  }

  /** the end of the last window sent (or the start of the first one still open) */
  sentUntil(): number | undefined {
    try {
      const parsed = JSON.parse(readFileSync(this.statePath, 'utf8')) as { sentUntil?: unknown };
      return typeof parsed.sentUntil === 'number' && Number.isFinite(parsed.sentUntil) ? parsed.sentUntil : undefined;
    } catch {
      return undefined;
    }
  }

  private record(sentUntil: number): void {
    const temporary = `${this.statePath}.tmp-${process.pid}`;
    writeFileSync(temporary, `${JSON.stringify({ version: 1, sentUntil })}\n`, { mode: 0o640 });
    renameSync(temporary, this.statePath);
  }

  /** Called every minute or so: runs the window that ended at the latest tick, once per tick. Never rejects. */
  async maybeRun(now: number): Promise<HostDigestResult> {
    const period = this.options.settings.everyMinutes * 60_000;
    const tick = Math.floor(now / period) * period;
    if (this.running || tick === this.lastTick) return 'not-due';
    this.running = true;
    try {
      this.lastTick = tick;
      return await this.run(tick);
    } catch (error) {
      this.options.log('error', 'digest failed', { error: String(error) });
      return 'failed';
    } finally {
      this.running = false;
    }
  }

  /** The digest of the window ending at `until`. */
  async run(until: number): Promise<HostDigestResult> {
    const { settings, log } = this.options;
    if (isQuiet(until, settings.quietHours, settings.timeZone)) return 'quiet';
    const sent = this.sentUntil();
    if (sent !== undefined && sent >= until) return 'not-due';
    const from = windowStart(sent, until, settings.everyMinutes);
    if (sent === undefined) this.record(from); // the first window's start: a window not sent stays open from here
    const accumulator = new DigestAccumulator(from, until);
    for (const entry of this.options.history(from, until)) accumulator.add(entry);
    accumulator.addMetric({ name: 'CircuitBreakerOpen', points: this.options.breakerTrips().map((at) => ({ at, value: 1 })) });
    const digest = accumulator.result(settings.top);
    if (!shouldSend(digest, settings.minNewBlocks)) return 'below-threshold';
    const body = JSON.stringify(webhookBody(digest, this.options.label, `${this.options.label}-${until}`));
    for (let attempt = 1; attempt <= HOST_WEBHOOK_ATTEMPTS; attempt++) {
      let status = 0;
      try {
        status = await this.options.post(settings.webhookUrl, body, HOST_WEBHOOK_TIMEOUT_MS);
        if (status >= 200 && status < 300) {
          this.record(until);
          log('info', 'digest sent', { from: new Date(from).toISOString(), until: new Date(until).toISOString(), newBlocks: digest.newBlocks });
          return 'sent';
        }
        log('warn', 'digest: webhook answered an error', { attempt, status });
      } catch (error) {
        log('warn', 'digest: webhook POST failed', { attempt, error: String(error) });
      }
      if (!(status === 0 || status === 408 || status === 429 || status >= 500) || attempt === HOST_WEBHOOK_ATTEMPTS) break;
      await this.options.sleep(1000 * 2 ** (attempt - 1));
    }
    this.undelivered++;
    log('error', 'digest not delivered after retries; the next digest covers this window', { until: new Date(until).toISOString() });
    return 'failed';
  }
}

/** A JSON POST with a deadline; resolves to the HTTP status (no redirect is followed). */
export async function postJson(url: string, body: string, timeoutMs: number): Promise<number> {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', 'user-agent': 'portsnare-digest' }, body, redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) });
  await response.arrayBuffer().catch(() => undefined);
  return response.status;
}
