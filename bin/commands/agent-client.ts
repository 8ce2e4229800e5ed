/**
 * The local backend when an agent runs: its control API on loopback (default
 * http://127.0.0.1:9466). The agent owns the store and nftables; the command line only asks.
 *
 *   GET /healthz · GET /status · GET /blocks · POST /blocks {target, ttlSeconds?, reason?, requestedBy?}
 *   DELETE /blocks/<target> · GET /history/<target>
 */
import type { BlockRecord } from '../../core/policy';
import type { Backend, BlockOutcome, BlockRequest, BlockView, HistoryView, StatusView, UnblockOutcome } from './backend';
import { byExpiry } from './backend';
import { CliError, EXIT } from './errors';
import { isoSeconds } from './output';

const TIMEOUT_MS = 5000;

interface Answer {
  readonly status: number;
  readonly body: unknown;
}

/** GET /healthz with a short timeout: undefined when nothing answers (no agent). */
export async function probeAgent(baseUrl: string, timeoutMs = 800): Promise<Answer | undefined> {
  try {
    const response = await fetch(new URL('/healthz', baseUrl), { signal: AbortSignal.timeout(timeoutMs) });
    const text = await response.text();
    return { status: response.status, body: parseBody(text) };
  } catch {
    return undefined;
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

  constructor(readonly baseUrl: string) {
    this.where = `agent ${baseUrl.replace(/\/$/, '')}`;
  }

  async status(now: number): Promise<StatusView> {
    const health = await this.call('GET', '/healthz', undefined, true);
    const status = await this.call('GET', '/status');
    const blocks = await this.blocks(now);
    const body = (status.body && typeof status.body === 'object' ? status.body : {}) as Record<string, unknown>;
    const healthy = health.status === 200;
    const lines: Array<[string, string]> = [['agent', `${healthy ? 'running, healthy' : `running, UNHEALTHY (${describe(health.body)})`} — ${this.baseUrl}`]];
    for (const [key, value] of Object.entries(body)) {
      if (key === 'blocks') continue;
      lines.push([label(key), describe(value)]);
    }
    if (!('activeBlocks' in body)) lines.push(['active blocks', String(blocks.length)]);
    return { where: this.where, healthy, lines, data: { backend: 'agent', url: this.baseUrl, healthy, health: health.body, ...body, activeBlocks: body['activeBlocks'] ?? blocks.length } };
  }

  async blocks(now: number): Promise<BlockView[]> {
    const answer = await this.call('GET', '/blocks');
    const list = Array.isArray(answer.body) ? answer.body : (field(answer.body, 'blocks') as unknown[] | undefined) ?? [];
    const enforcement = field(answer.body, 'enforcedIn');
    return (list as BlockRecord[])
      .map((record) => recordView(record, enforcement))
      .filter((view) => view.active && view.expiresAt > now)
      .sort(byExpiry);
  }

  async block(request: BlockRequest): Promise<BlockOutcome> {
    const answer = await this.call('POST', '/blocks', {
      target: request.target,
      ...(request.ttlSeconds !== undefined ? { ttlSeconds: request.ttlSeconds } : {}),
      ...(request.reason !== undefined ? { reason: request.reason } : {}),
      requestedBy: request.requestedBy,
    });
    const record = (field(answer.body, 'record') ?? answer.body) as BlockRecord;
    return { kind: 'applied', block: recordView(record, field(answer.body, 'enforcedIn')) };
  }

  async unblock(target: string): Promise<UnblockOutcome> {
    await this.call('DELETE', `/blocks/${encodeURIComponent(target)}`);
    return { kind: 'lifted', target };
  }

  async history(target: string): Promise<{ current?: BlockView; entries: HistoryView[] }> {
    const answer = await this.call('GET', `/history/${encodeURIComponent(target)}`);
    const list = Array.isArray(answer.body) ? answer.body : ((field(answer.body, 'history') ?? field(answer.body, 'entries')) as unknown[] | undefined) ?? [];
    const current = field(answer.body, 'current') as BlockRecord | undefined;
    const entries = (list as Array<{ at: number; action: string; record?: BlockRecord }>).map((entry) => historyView(entry.at, entry.action, entry.record));
    const latest = current ?? (list.length > 0 ? (list[list.length - 1] as { record?: BlockRecord }).record : undefined);
    return { ...(latest ? { current: recordView(latest, undefined) } : {}), entries };
  }

  private async call(method: string, path: string, body?: unknown, anyStatus = false): Promise<Answer> {
    let response: Response;
    try {
      response = await fetch(new URL(path, this.baseUrl), {
        method,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
    } catch (error) {
      throw new CliError(`the agent at ${this.baseUrl} did not answer ${method} ${path}: ${error instanceof Error ? error.message : String(error)}`, EXIT.unhealthy);
    }
    const answer = { status: response.status, body: parseBody(await response.text()) };
    if (anyStatus || (response.status >= 200 && response.status < 300)) return answer;
    throw agentError(answer, method, path);
  }
}

/** The agent's refusal as the command line's error: same message, an exit code by kind. */
function agentError(answer: Answer, method: string, path: string): CliError {
  const message = String(field(answer.body, 'error') ?? field(answer.body, 'message') ?? describe(answer.body));
  const rule = field(answer.body, 'rule');
  if (answer.status === 403 || answer.status === 409 || rule !== undefined || /^refused/i.test(message)) {
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
    enforcedIn: places ?? [...(fallbackEnforcement ?? (record.active ? ['nftables or log-only (as the agent runs)'] : []))],
    sensors: [...(record.sensors ?? [])],
    ...(record.note !== undefined ? { note: record.note } : {}),
    ...(record.liftedBy !== undefined ? { liftedBy: record.liftedBy } : {}),
  };
}

export function historyView(at: number, action: string, record: BlockRecord | undefined): HistoryView {
  if (!record) return { at, action, detail: '' };
  const parts = [`reason ${record.reason}`, `offence ${record.offences}`, `${record.hitCount} hits`];
  if (/^(block|refresh)$/.test(action)) parts.push(`until ${isoSeconds(record.expiresAt)}`);
  if (record.note) parts.push(record.note);
  if (record.liftedBy) parts.push(`lifted by ${record.liftedBy}`);
  return { at, action, detail: parts.join(', ') };
}
