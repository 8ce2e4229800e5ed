/**
 * The agent's local HTTP server (loopback only, default 127.0.0.1:9466): health, Prometheus
 * metrics, status, and the control API the `portsnare` CLI uses for local blocks.
 *
 *   GET    /healthz             200 {status:"ok"} | 503 {status:"degraded", problems}
 *   GET    /metrics             Prometheus text format 0.0.4
 *   GET    /status              JSON: what is watched, counters, sinks, spool, enforcement
 *   GET    /blocks              JSON list of BlockRecord (active and lifted)
 *   POST   /blocks              {target, ttlSeconds?, reason?, requestedBy?} → 201 | 400 | 403 (the guard's rule)
 *   DELETE /blocks/<target>     → 200 | 404 (a CIDR's "/" may be sent as is or as %2F)
 *   GET    /history/<target>    JSON list of HistoryEntry
 *   GET    /detections?since=ms recent detections with their evidence, newest first (every mode)
 *   POST   /reload              {} → re-reads the config file, as SIGHUP does
 *   GET    /allow · POST /allow {target, requestedBy?} · DELETE /allow/<target>   the runtime allowlist
 *
 * A browser page must not be able to drive it (CSRF, DNS rebinding): the Host header must name a
 * loopback address and a body must be application/json (which a cross-site form cannot send
 * without a CORS preflight this server never answers).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import { TargetSchema } from '../core/commands';
import { formatZodError } from '../core/event';
import { BLOCK_REASONS, type BlockRecord } from '../core/policy';
import { errorText, type Logger } from './log';

export interface Sample {
  readonly labels?: Record<string, string>;
  readonly value: number;
}

export interface Metric {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge';
  readonly samples: readonly Sample[];
}

/** Prometheus text exposition format, version 0.0.4. */
export function renderPrometheus(metrics: readonly Metric[]): string {
  const lines: string[] = [];
  for (const metric of metrics) {
    lines.push(`# HELP ${metric.name} ${metric.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`);
    lines.push(`# TYPE ${metric.name} ${metric.type}`);
    for (const sample of metric.samples) {
      const labels = Object.entries(sample.labels ?? {});
      const text = labels.length ? `{${labels.map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`).join(',')}}` : '';
      lines.push(`${metric.name}${text} ${Number.isFinite(sample.value) ? sample.value : 0}`);
    }
  }
  return lines.join('\n') + '\n';
}

/** What the local block endpoints delegate to (the LocalPipeline). */
export interface BlockControl {
  list(): BlockRecord[];
  block(target: string, opts: { ttlSeconds?: number; reason?: string; requestedBy: string; replace?: boolean }): Promise<{ action: string; why?: string; record?: BlockRecord }>;
  unblock(target: string, requestedBy: string): Promise<boolean>;
  history(target: string): unknown[];
}

export interface ControlApi {
  health(): { ok: boolean; problems: string[]; warnings: string[] };
  metrics(): Metric[];
  status(): unknown;
  /** undefined when local enforcement is off: the block endpoints answer 409 saying so */
  blocks(): BlockControl | undefined;
  /** recent detections (every mode, monitor included), newest first, detected at or after `since` (epoch ms) */
  detections?(since: number): unknown;
  /** re-reads the config file (what SIGHUP does); resolves with what was applied */
  reload?(): Promise<unknown>;
  /** the runtime allowlist (portsnare allow) */
  allow?(): AllowControl;
}

export interface AllowControl {
  list(): unknown[];
  add(target: string, by: string): Promise<{ added: boolean; lifted: string[] }>;
  remove(target: string, by: string): Promise<boolean>;
}

const AllowRequestSchema = z.strictObject({ target: TargetSchema, requestedBy: z.string().min(1).max(256).optional() });

const BlockRequestSchema = z.strictObject({
  target: TargetSchema,
  ttlSeconds: z.number().int().min(60).max(365 * 86400).optional(),
  /** the block reason (BLOCK_REASONS; default manual); the operator's words go in requestedBy */
  reason: z.enum(BLOCK_REASONS).optional(),
  requestedBy: z.string().min(1).max(256).optional(),
  /** replace an active block's expiry and note even when that shortens it (`block --replace`) */
  replace: z.boolean().optional(),
});

const MAX_BODY = 64 * 1024;
const NO_ENFORCEMENT = 'local enforcement is off (enforce.nftables.enabled: false in the agent config)';

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export class HealthServer {
  private server?: http.Server;

  constructor(
    private readonly api: ControlApi,
    private readonly options: { host: string; port: number; logger: Logger },
  ) {}

  /** Listens; resolves with the port (useful with port 0). */
  async start(): Promise<number> {
    const server = http.createServer((request, response) => {
      this.route(request, response).catch((error: unknown) => {
        const status = error instanceof HttpError ? error.status : 500;
        if (status >= 500) this.options.logger.error('control API error', { path: request.url, error: errorText(error) });
        send(response, status, { error: errorText(error), ...(error instanceof HttpError ? error.extra : {}) });
      });
    });
    server.requestTimeout = 10_000;
    server.headersTimeout = 5_000;
    server.maxConnections = 64;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error: NodeJS.ErrnoException) =>
        reject(
          error.code === 'EADDRINUSE' || error.code === 'EACCES' || error.code === 'EADDRNOTAVAIL'
            ? new Error(`health.port: ${this.options.port} on ${this.options.host} cannot be used (${error.code}${error.code === 'EADDRINUSE' ? ': another agent or service holds it' : ''}); pick another health.port, or health.enabled: false`)
            : error,
        ),
      );
      server.listen({ host: this.options.host, port: this.options.port }, () => {
        server.removeAllListeners('error');
        resolve();
      });
    });
    this.server = server;
    return (server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private async route(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    const host = (request.headers.host ?? '').replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
    if (!/^(localhost|127(\.\d{1,3}){3}|::1)$/.test(host)) throw new HttpError(403, `Host ${JSON.stringify(host)} is not a loopback name`);
    const url = new URL(request.url ?? '/', 'http://localhost');
    const path = url.pathname;
    const method = request.method ?? 'GET';

    if (method === 'GET' && path === '/healthz') {
      const health = this.api.health();
      return send(response, health.ok ? 200 : 503, { status: health.ok ? 'ok' : 'degraded', problems: health.problems, warnings: health.warnings });
    }
    if (method === 'GET' && path === '/metrics') {
      response.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
      response.end(renderPrometheus(this.api.metrics()));
      return;
    }
    if (method === 'GET' && path === '/status') return send(response, 200, this.api.status());
    if (method === 'GET' && path === '/detections' && this.api.detections) {
      const since = Number(url.searchParams.get('since') ?? '0');
      if (!Number.isFinite(since) || since < 0) throw new HttpError(400, `since: ${JSON.stringify(url.searchParams.get('since'))} is not a time in epoch milliseconds`);
      return send(response, 200, this.api.detections(since));
    }
    if (method === 'POST' && path === '/reload' && this.api.reload) {
      await readJson(request); // a JSON body (may be {}): a cross-site form cannot send one
      try {
        return send(response, 200, await this.api.reload());
      } catch (error) {
        // an invalid file is the operator's to fix (400, the key named); the running config stays
        throw new HttpError(error instanceof Error && error.name === 'ConfigError' ? 400 : 500, errorText(error));
      }
    }

    if ((path === '/allow' || path.startsWith('/allow/')) && this.api.allow) {
      const allow = this.api.allow();
      if (method === 'GET' && path === '/allow') return send(response, 200, allow.list());
      if (method === 'POST' && path === '/allow') {
        const body = AllowRequestSchema.safeParse(await readJson(request));
        if (!body.success) throw new HttpError(400, formatZodError(body.error));
        const result = await allow.add(body.data.target, body.data.requestedBy ?? 'local-api');
        return send(response, result.added ? 201 : 200, { target: body.data.target, ...result });
      }
      if (method === 'DELETE' && path.startsWith('/allow/')) {
        const target = TargetSchema.safeParse(safeDecode(path.slice('/allow/'.length)));
        if (!target.success) throw new HttpError(400, formatZodError(target.error).replace(/^\(root\): /, ''));
        const by = request.headers['x-requested-by'];
        if (!(await allow.remove(target.data, typeof by === 'string' && by ? by.slice(0, 256) : 'local-api'))) throw new HttpError(404, `${target.data} is not in the runtime allowlist`);
        return send(response, 200, { target: target.data, removed: true });
      }
      throw new HttpError(405, `${method} ${path}: method not allowed`);
    }
    if (path === '/blocks' || path.startsWith('/blocks/') || path.startsWith('/history/')) {
      const control = this.api.blocks();
      if (!control) throw new HttpError(409, NO_ENFORCEMENT);
      if (method === 'GET' && path === '/blocks') return send(response, 200, control.list());
      if (method === 'POST' && path === '/blocks') {
        const body = BlockRequestSchema.safeParse(await readJson(request));
        if (!body.success) throw new HttpError(400, formatZodError(body.error));
        const { target, ttlSeconds, reason, requestedBy, replace } = body.data;
        const result = await control.block(target, {
          requestedBy: requestedBy ?? 'local-api',
          ...(ttlSeconds !== undefined ? { ttlSeconds } : {}),
          ...(reason !== undefined ? { reason } : {}),
          ...(replace === true ? { replace } : {}),
        });
        if (result.action === 'refused') throw new HttpError(403, `refused: ${result.why ?? 'never-block rule'}`, { target, rule: result.why });
        return send(response, result.action === 'block' ? 201 : 200, result);
      }
      const deleting = method === 'DELETE' && path.startsWith('/blocks/');
      const reading = method === 'GET' && path.startsWith('/history/');
      if (!deleting && !reading) throw new HttpError(405, `${method} ${path}: method not allowed`);
      const rest = deleting ? path.slice('/blocks/'.length) : path.slice('/history/'.length);
      const target = TargetSchema.safeParse(safeDecode(rest));
      if (!target.success) throw new HttpError(400, formatZodError(target.error).replace(/^\(root\): /, ''));
      if (deleting) {
        const by = request.headers['x-requested-by'];
        const lifted = await control.unblock(target.data, typeof by === 'string' && by ? by.slice(0, 256) : 'local-api');
        if (!lifted) throw new HttpError(404, `no active block for ${target.data}`);
        return send(response, 200, { target: target.data, unblocked: true });
      }
      return send(response, 200, control.history(target.data));
    }
    if (path === '/healthz' || path === '/metrics' || path === '/status') throw new HttpError(405, `${method} ${path}: method not allowed`);
    throw new HttpError(404, `${method} ${path}: no such endpoint`);
  }
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

function send(response: http.ServerResponse, status: number, body: unknown): void {
  if (response.headersSent) return;
  response.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  response.end(JSON.stringify(body, null, 2) + '\n');
}

async function readJson(request: http.IncomingMessage): Promise<unknown> {
  const type = request.headers['content-type'] ?? '';
  if (!/^application\/json\b/i.test(type)) throw new HttpError(415, 'the body must be application/json');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new HttpError(413, `body larger than ${MAX_BODY} bytes`);
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    throw new HttpError(400, 'the body is not valid JSON');
  }
}
