/**
 * The local backend when an agent runs: its control socket (changes allowed to root and the
 * group, the caller named by the kernel) or its control API on loopback TCP (default
 * http://127.0.0.1:9466; read-only without the token). The agent owns the store and nftables;
 * the command line only asks.
 *
 *   GET /healthz · GET /status · GET /blocks · POST /blocks {target, ttlSeconds?, reason?, requestedBy?}
 *   DELETE /blocks/<target> · GET /history/<target>
 */
import http from 'node:http';
import type { BlockRecord } from '../../core/policy';
import type { Backend, BlockOutcome, BlockRequest, BlockView, HistoryView, StatusView, UnblockOutcome } from './backend';
import type { DetectionEntry } from '../../sensor/detections';
import { byExpiry } from './backend';
import { CliError, EXIT } from './errors';
import { humanDuration, isoSeconds } from './output';

const TIMEOUT_MS = 5000;

/** One detection as GET /detections gives it: the agent's entry, as JSON. */
export type DetectionView = Readonly<DetectionEntry>;

/** The parts of the agent's GET /status the command line shows (sensor/agent.ts, status()). */
interface AgentStatus {
  readonly sensorId?: string;
  readonly uptimeSeconds?: number;
  readonly watching?: { tcp?: string; udp?: string; skipped?: string[]; listen?: string[] };
  readonly stealth?: string;
  readonly enforcement?: string;
  readonly aggregator?: { hits?: number; ignored?: number; own?: number; events?: number };
  readonly sinks?: Array<{ name: string; published?: number; dropped?: number; errors?: number; spool?: { depth?: number; full?: boolean } }>;
  readonly blocksActive?: number;
  readonly circuitBreakerOpen?: boolean;
  readonly usage?: Array<{ name: string; used: number; limit: number }>;
}

function stringsOf(value: unknown): string[] {
  return Array.isArray(value) ? value.map(String) : [];
}

function enforcementText(mode: string | undefined): string {
  if (mode === 'nftables') return 'nftables (table inet portsnare)';
  if (mode === 'log-only') return 'LOG-ONLY: enforce.nftables is on but nftables is unavailable; blocks are recorded, nothing is dropped';
  if (mode === 'off') return 'off (enforce.nftables.enabled: false): detections are reported, nothing is blocked here';
  return mode ?? 'unknown';
}

interface Answer {
  readonly status: number;
  readonly body: unknown;
}

/** Where the agent answers: its control socket, or a loopback URL (with the token when this user can read it). */
export interface AgentEndpoint {
  readonly socketPath?: string;
  readonly url?: string;
  readonly token?: string;
}

/** One HTTP exchange over the socket or TCP; rejects with the errno (ECONNREFUSED, EACCES, ENOENT) when nothing answers. */
export function exchange(endpoint: AgentEndpoint, method: string, path: string, options: { body?: unknown; headers?: Record<string, string>; timeoutMs?: number } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
    const headers: Record<string, string> = { ...(options.headers ?? {}), ...(payload !== undefined ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(payload)) } : {}) };
    if (endpoint.token !== undefined && endpoint.socketPath === undefined) headers['authorization'] = `Bearer ${endpoint.token}`;
    const target = endpoint.socketPath !== undefined ? { socketPath: endpoint.socketPath, path, headers: { ...headers, host: 'localhost' } } : (() => {
      const url = new URL(path, endpoint.url);
      return { hostname: url.hostname.replace(/^\[|\]$/g, ''), port: url.port || 80, path: url.pathname + url.search, headers };
    })();
    const request = http.request({ ...target, method, timeout: options.timeoutMs ?? TIMEOUT_MS }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body: parseBody(Buffer.concat(chunks).toString('utf8')) }));
      response.on('error', reject);
    });
    request.on('timeout', () => request.destroy(Object.assign(new Error(`no answer within ${options.timeoutMs ?? TIMEOUT_MS} ms`), { code: 'ETIMEDOUT' })));
    request.on('error', reject);
    request.end(payload);
  });
}

/** GET /healthz with a short timeout: undefined when nothing answers (no agent). */
export async function probeAgent(baseUrl: string, timeoutMs = 800): Promise<Answer | undefined> {
  try {
    return await exchange({ url: baseUrl }, 'GET', '/healthz', { timeoutMs });
  } catch {
    return undefined;
  }
}

/** GET /healthz on the control socket: the answer, or the errno that kept us out (EACCES: not root, not in the group). */
export async function probeSocket(socketPath: string, timeoutMs = 800): Promise<Answer | { error: string }> {
  try {
    return await exchange({ socketPath }, 'GET', '/healthz', { timeoutMs });
  } catch (error) {
    return { error: (error as NodeJS.ErrnoException).code ?? String(error) };
  }
}

function parseBody(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

function field(body: unknown, key: string): unknown {
  return body && typeof body === 'object' ? (body as Record<string, unknown>)[key] : undefined;
}

export class AgentBackend implements Backend {
  readonly where: string;
  readonly baseUrl: string;

  /** `endpoint`: a loopback URL, or where the agent answers (socket, URL and token) */
  constructor(
    endpoint: string | AgentEndpoint,
    /** why changes over TCP will be refused (the socket was not usable), for the error */
    private readonly readOnlyWhy?: string,
  ) {
    this.endpoint = typeof endpoint === 'string' ? { url: endpoint } : endpoint;
    this.baseUrl = this.endpoint.socketPath !== undefined ? `unix:${this.endpoint.socketPath}` : (this.endpoint.url ?? '').replace(/\/$/, '');
    this.where = `agent ${this.baseUrl}`;
  }

  private readonly endpoint: AgentEndpoint;

  async status(now: number): Promise<StatusView> {
    const health = await this.call('GET', '/healthz', undefined, true);
    const status = (await this.call('GET', '/status')).body as AgentStatus;
    const blocks = status.enforcement === 'off' ? [] : await this.blocks(now);
    const healthy = health.status === 200;
    const problems = stringsOf(field(health.body, 'problems'));
    const warnings = stringsOf(field(health.body, 'warnings'));
    const agg = status.aggregator ?? {};
    const spools = (status.sinks ?? []).filter((sink) => sink.spool);
    const spoolDepth = spools.reduce((sum, sink) => sum + (sink.spool?.depth ?? 0), 0);
    const lines: Array<[string, string]> = [
      ['agent', `${healthy ? 'running, healthy' : 'running, UNHEALTHY'} — ${this.baseUrl} (sensor ${status.sensorId ?? '?'}, up ${humanDuration(status.uptimeSeconds ?? 0)})`],
      ...problems.map((problem): [string, string] => ['problem', problem]),
      ...warnings.map((warning): [string, string] => ['warning', warning]),
      ['watching', `tcp ${status.watching?.tcp || 'none'}, udp ${status.watching?.udp || 'none'} on ${(status.watching?.listen ?? []).join(', ')}${status.stealth ? `; stealth ${status.stealth}` : ''}`],
      ...(status.watching?.skipped ?? []).map((skip): [string, string] => ['skipped', skip]),
      ['enforcement', enforcementText(status.enforcement)],
      ['detections', `${agg.events ?? 0} (from ${agg.hits ?? 0} probes; ${agg.ignored ?? 0} from ignored sources, ${agg.own ?? 0} from this host)`],
      ['active blocks', String(status.blocksActive ?? blocks.length)],
      [
        'circuit breaker',
        status.circuitBreakerOpen
          ? 'OPEN — more new blocks this minute than burstLimitPerMinute: new blocks are refused, existing ones stay'
          : 'closed',
      ],
      ['limits', (status.usage ?? []).map((u) => `${u.name} ${u.used}/${u.limit}${u.used >= u.limit ? ' FULL' : ''}`).join(', ') || '-'],
      [
        'sinks',
        (status.sinks ?? []).map((sink) => `${sink.name} ${sink.published ?? 0} published${sink.errors ? `, ${sink.errors} errors` : ''}${sink.dropped ? `, ${sink.dropped} DROPPED` : ''}`).join('; ') || 'none',
      ],
      [
        'spool depth',
        spools.length === 0
          ? 'no spool (no eventbridge sink)'
          : `${spoolDepth} events waiting${spools.some((sink) => sink.spool?.full) ? ' — FULL: new detections are being lost' : ''}`,
      ],
    ];
    return {
      where: this.where,
      healthy,
      lines,
      data: { backend: 'agent', url: this.baseUrl, healthy, problems, warnings, usage: status.usage ?? [], activeBlocks: status.blocksActive ?? blocks.length, circuitBreakerOpen: status.circuitBreakerOpen ?? false, spoolDepth, detections: agg.events ?? 0, status },
    };
  }

  async blocks(now: number): Promise<BlockView[]> {
    const answer = await this.call('GET', '/blocks');
    const list = Array.isArray(answer.body) ? answer.body : (field(answer.body, 'blocks') as unknown[] | undefined) ?? [];
    const place = await this.placement();
    return (list as BlockRecord[])
      .map((record) => recordView(record, undefined, place))
      .filter((view) => view.active && view.expiresAt > now)
      .sort(byExpiry);
  }

  async block(request: BlockRequest): Promise<BlockOutcome> {
    // The agent's `reason` is the block reason (manual, sensor, …): the operator's text travels
    // with the requester into the record's note.
    const requestedBy = request.reason !== undefined ? `${request.requestedBy}: ${request.reason}` : request.requestedBy;
    const answer = await this.call('POST', '/blocks', {
      target: request.target,
      ...(request.ttlSeconds !== undefined ? { ttlSeconds: request.ttlSeconds } : {}),
      requestedBy: requestedBy.slice(0, 256),
      ...(request.replace === true ? { replace: true } : {}),
    });
    const record = (field(answer.body, 'record') ?? answer.body) as BlockRecord;
    return { kind: 'applied', block: recordView(record, undefined, await this.placement()) };
  }

  async unblock(target: string, requestedBy: string): Promise<UnblockOutcome> {
    await this.call('DELETE', `/blocks/${encodeURIComponent(target)}`, undefined, false, { 'x-requested-by': requestedBy });
    return { kind: 'lifted', target };
  }

  async history(target: string): Promise<{ current?: BlockView; entries: HistoryView[] }> {
    const answer = await this.call('GET', `/history/${encodeURIComponent(target)}`);
    const list = Array.isArray(answer.body) ? answer.body : ((field(answer.body, 'history') ?? field(answer.body, 'entries')) as unknown[] | undefined) ?? [];
    const current = field(answer.body, 'current') as BlockRecord | undefined;
    const entries = (list as Array<{ at: number; action: string; record?: BlockRecord }>).map((entry) => historyView(entry.at, entry.action, entry.record));
    const latest = current ?? (list.length > 0 ? (list[list.length - 1] as { record?: BlockRecord }).record : undefined);
    // where it is enforced, as `blocks` says it (an inactive record is enforced nowhere)
    const places = latest && latest.active && latest.expiresAt > Date.now() ? await this.placement() : [];
    return { ...(latest ? { current: recordView(latest, undefined, places) } : {}), entries };
  }

  /** GET /detections: recent detections, newest first, at or after `since` (epoch ms). */
  async detections(since: number): Promise<{ seen: number; kept: number; enforcement: string; detections: DetectionView[] }> {
    const answer = await this.call('GET', `/detections?since=${Math.max(0, Math.floor(since))}`);
    const body = answer.body as { seen?: number; kept?: number; enforcement?: string; detections?: DetectionView[] };
    return { seen: body.seen ?? 0, kept: body.kept ?? 0, enforcement: body.enforcement ?? 'unknown', detections: body.detections ?? [] };
  }

  /** The runtime allowlist: GET /allow, POST /allow, DELETE /allow/<target>. */
  async allowList(): Promise<Array<{ target: string; addedAt: number; by: string }>> {
    const body = (await this.call('GET', '/allow')).body;
    return Array.isArray(body) ? (body as Array<{ target: string; addedAt: number; by: string }>) : [];
  }

  async allowAdd(target: string, requestedBy: string): Promise<{ added: boolean; lifted: string[] }> {
    const body = (await this.call('POST', '/allow', { target, requestedBy: requestedBy.slice(0, 256) })).body as { added?: boolean; lifted?: string[] };
    return { added: body.added ?? false, lifted: body.lifted ?? [] };
  }

  async allowRemove(target: string, requestedBy: string): Promise<void> {
    await this.call('DELETE', `/allow/${encodeURIComponent(target)}`, undefined, false, { 'x-requested-by': requestedBy });
  }

  /** POST /reload: the agent re-reads its config file. */
  async reload(): Promise<{ applied: string[]; restartNeeded: string[]; lifted: string[] }> {
    const body = (await this.call('POST', '/reload', {})).body as { applied?: string[]; restartNeeded?: string[]; lifted?: string[] };
    return { applied: body.applied ?? [], restartNeeded: body.restartNeeded ?? [], lifted: body.lifted ?? [] };
  }

  /** Where the agent's blocks are in force: its enforcement mode. */
  private async placement(): Promise<string[]> {
    const mode = field((await this.call('GET', '/status')).body, 'enforcement');
    return [mode === 'nftables' ? 'nftables' : mode === 'log-only' ? 'store only (log-only)' : String(mode ?? 'unknown')];
  }

  private async call(method: string, path: string, body?: unknown, anyStatus = false, headers: Record<string, string> = {}): Promise<Answer> {
    let answer: Answer;
    try {
      answer = await exchange(this.endpoint, method, path, { ...(body !== undefined ? { body } : {}), headers });
    } catch (error) {
      throw new CliError(`the agent at ${this.baseUrl} did not answer ${method} ${path}: ${error instanceof Error ? error.message : String(error)}`, EXIT.unhealthy);
    }
    if (anyStatus || (answer.status >= 200 && answer.status < 300)) return answer;
    if (answer.status === 403 && field(answer.body, 'permission') === 'denied') {
      throw new CliError(`not permitted: ${String(field(answer.body, 'error') ?? 'forbidden')}${this.readOnlyWhy ? ` (${this.readOnlyWhy})` : ''}`, EXIT.permission);
    }
    throw agentError(answer, method, path);
  }
}

/** The agent's refusal as the command line's error: same message, an exit code by kind. */
function agentError(answer: Answer, method: string, path: string): CliError {
  const message = String(field(answer.body, 'error') ?? field(answer.body, 'message') ?? describe(answer.body));
  const rule = field(answer.body, 'rule');
  if (answer.status === 409) return new CliError(`the agent at its control API says: ${message}`, EXIT.failure);
  if (answer.status === 403 || rule !== undefined || /^refused/i.test(message)) {
    return new CliError(message.startsWith('refused') ? message : `refused: ${message}${typeof rule === 'string' && !message.includes(rule) ? ` (${rule})` : ''}`, EXIT.refused);
  }
  if (answer.status === 404) return new CliError(message, EXIT.notFound);
  if (answer.status === 400 || answer.status === 422) return new CliError(message, EXIT.usage);
  return new CliError(`the agent answered ${method} ${path} with ${answer.status}: ${message}`, EXIT.failure);
}

function label(key: string): string {
  return key.replace(/([a-z0-9])([A-Z])/g, '$1 $2').toLowerCase();
}

/** A status value on one line: objects as "key value, key value". */
function describe(value: unknown): string {
  if (value === null || value === undefined) return '-';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return value.map(describe).join(', ') || 'none';
  return Object.entries(value as Record<string, unknown>)
    .map(([key, inner]) => `${label(key)} ${typeof inner === 'object' && inner !== null ? JSON.stringify(inner) : String(inner)}`)
    .join(', ');
}

/** A BlockRecord from the store or the agent as a BlockView; enforcement as reported, else by the record. */
export function recordView(record: BlockRecord, enforcement: unknown, fallbackEnforcement?: readonly string[]): BlockView {
  const own = (record as { enforcedIn?: unknown }).enforcedIn;
  const places = Array.isArray(own) ? own.map(String) : Array.isArray(enforcement) ? enforcement.map(String) : typeof enforcement === 'string' ? [enforcement] : undefined;
  const simulated = (record as { simulated?: unknown }).simulated === true;
  return {
    target: record.target,
    family: record.family,
    reason: record.reason,
    offences: record.offences,
    hitCount: record.hitCount,
    firstSeen: record.firstSeen,
    lastSeen: record.lastSeen,
    blockedAt: record.blockedAt,
    expiresAt: record.expiresAt,
    active: record.active,
    // a block in simulation (the agent marks it: sensor/local/enforcement.ts control) is not where the agent enforces
    enforcedIn: places ?? (simulated ? [] : [...(fallbackEnforcement ?? (record.active ? ['nftables or log-only (as the agent runs)'] : []))]),
    ...(simulated ? { simulated: true } : {}),
    sensors: [...(record.sensors ?? [])],
    ...droppedOf(record),
    ...(record.note !== undefined ? { note: record.note } : {}),
    ...(record.liftedBy !== undefined ? { liftedBy: record.liftedBy } : {}),
  };
}

/** The agent's `dropped` of a record (sensor/local/enforcement.ts), when it is two counts. */
function droppedOf(record: BlockRecord): { dropped?: { packets: number; bytes: number } } {
  const dropped = (record as { dropped?: unknown }).dropped as { packets?: unknown; bytes?: unknown } | undefined;
  if (!dropped || typeof dropped !== 'object') return {};
  const { packets, bytes } = dropped;
  return typeof packets === 'number' && typeof bytes === 'number' && packets >= 0 && bytes >= 0 ? { dropped: { packets, bytes } } : {};
}

export function historyView(at: number, action: string, record: BlockRecord | undefined): HistoryView {
  if (!record) return { at, action, detail: '' };
  const parts = [`reason ${record.reason}`, `offence ${record.offences}`, `${record.hitCount} hits`];
  if (/^(block|refresh)$/.test(action)) parts.push(`until ${isoSeconds(record.expiresAt)}`);
  if (record.note) parts.push(record.note);
  if (record.liftedBy) parts.push(`lifted by ${record.liftedBy}`);
  return { at, action, detail: parts.join(', ') };
}
