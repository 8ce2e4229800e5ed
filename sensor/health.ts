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
 * Who may do what (docs/agent-config.md, "Control"):
 * - the control socket (`control.socket`, default /run/portsnare/control.sock as root): mode 0660,
 *   owner the agent's user, group `control.group` (portsnare) — the kernel lets only root and
 *   that group's members connect. Every request is allowed; the caller is the kernel's peer
 *   credentials (SO_PEERCRED), recorded as `uid=N(name)` in front of whatever the client says
 *   about itself in `requestedBy`/`x-requested-by`.
 * - TCP on loopback: reads only (GET); a change (POST, DELETE) is 403 unless it carries
 *   `Authorization: Bearer <token>` with the token in `control.tokenFile` (mode 0600, the agent's
 *   user only), recorded as `token`.
 *
 * A browser page must not be able to drive it (CSRF, DNS rebinding): the Host header must name a
 * loopback address and a body must be application/json (which a cross-site form cannot send
 * without a CORS preflight this server never answers).
 */
import { timingSafeEqual } from 'node:crypto';
import { chmodSync, chownSync, lstatSync, mkdirSync, readFileSync, unlinkSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { dirname } from 'node:path';
import { z } from 'zod';
import { TargetSchema } from '../core/commands';
import { formatZodError } from '../core/event';
import { BLOCK_REASONS, type BlockRecord } from '../core/policy';
import { errorText, type Logger } from './log';
import { nativeUnavailable, peerCredentials, type PeerCredentials } from './native-helper';

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

/** Where a request came from: the control socket (with the kernel's word on the caller) or TCP. */
type Caller = { readonly via: 'socket'; readonly peer: PeerCredentials | undefined } | { readonly via: 'tcp' };

export interface ControlSocketOptions {
  readonly path: string;
  /** the group allowed to connect (mode 0660); a name or a numeric gid. Missing: owner only */
  readonly group?: string;
}

export interface HealthServerOptions {
  readonly host: string;
  readonly port: number;
  readonly logger: Logger;
  /** false: no TCP listener (the socket only) */
  readonly tcp?: boolean;
  readonly socket?: ControlSocketOptions;
  /** the bearer token that allows changes over TCP; undefined: none do */
  readonly token?: string;
  /** where the token is, for the 403's message */
  readonly tokenFile?: string;
}

const peers = new WeakMap<Socket, PeerCredentials | undefined>();

export class HealthServer {
  private server?: http.Server;
  private socketServer?: http.Server;
  private socketPath?: string;

  constructor(
    private readonly api: ControlApi,
    private readonly options: HealthServerOptions,
  ) {}

  /** Listens; resolves with the TCP port (useful with port 0), 0 without TCP. */
  async start(): Promise<number> {
    if (this.options.socket) await this.startSocket(this.options.socket);
    if (this.options.tcp === false) return 0;
    const server = http.createServer((request, response) => {
      this.route(request, response, { via: 'tcp' }).catch((error: unknown) => {
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

  /**
   * The control socket: its directory (0750) and the socket (0660) owned by this process's user
   * and `group`; a socket left by a dead agent is replaced, anything else at the path is an error.
   */
  private async startSocket(options: ControlSocketOptions): Promise<void> {
    const gid = groupId(options.group);
    const directory = dirname(options.path);
    try {
      mkdirSync(directory, { recursive: true, mode: 0o750 });
    } catch (error) {
      throw new Error(`control.socket: cannot create ${directory}: ${errorText(error)}`);
    }
    try {
      if (lstatSync(options.path).isSocket()) unlinkSync(options.path);
      else throw new Error(`control.socket: ${options.path} exists and is not a socket; remove it or pick another path`);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    const server = http.createServer((request, response) => {
      this.route(request, response, { via: 'socket', peer: peers.get(request.socket) }).catch((error: unknown) => {
        const status = error instanceof HttpError ? error.status : 500;
        if (status >= 500) this.options.logger.error('control API error', { path: request.url, error: errorText(error) });
        send(response, status, { error: errorText(error), ...(error instanceof HttpError ? error.extra : {}) });
      });
    });
    // the kernel's word on the caller, taken once per connection, as it connects
    server.on('connection', (socket: Socket) => peers.set(socket, peerCredentials(socket)));
    server.requestTimeout = 10_000;
    server.headersTimeout = 5_000;
    server.maxConnections = 64;
    // created with no permission for anyone but the owner; opened to the group once chowned
    const umask = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', (error: NodeJS.ErrnoException) => reject(new Error(`control.socket: cannot listen on ${options.path}: ${error.code ?? errorText(error)}`)));
        server.listen(options.path, () => {
          server.removeAllListeners('error');
          resolve();
        });
      });
    } finally {
      process.umask(umask);
    }
    try {
      if (gid !== undefined) {
        chownSync(directory, process.getuid?.() ?? 0, gid);
        chmodSync(directory, 0o750);
        chownSync(options.path, process.getuid?.() ?? 0, gid);
      }
      chmodSync(options.path, gid !== undefined ? 0o660 : 0o600);
    } catch (error) {
      server.close();
      throw new Error(`control.socket: cannot set the owner and mode of ${options.path}: ${errorText(error)}`);
    }
    if (nativeUnavailable) this.options.logger.warn(`control socket: callers cannot be identified (${nativeUnavailable}); history names them "uid=?"`);
    if (gid === undefined) this.options.logger.warn(`control socket ${options.path}: group ${JSON.stringify(options.group ?? '')} does not exist, only ${process.getuid?.() === 0 ? 'root' : 'this user'} may use it`);
    this.socketServer = server;
    this.socketPath = options.path;
  }

  async stop(): Promise<void> {
    const servers = [this.server, this.socketServer].filter((s): s is http.Server => s !== undefined);
    this.server = this.socketServer = undefined;
    for (const server of servers) server.closeAllConnections();
    await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
    if (this.socketPath) {
      try {
        unlinkSync(this.socketPath);
      } catch {
        // gone already
      }
      this.socketPath = undefined;
    }
  }

  /** Who asks, for the history: the kernel's uid on the socket, `token` over TCP; then what the client says. */
  private actor(caller: Caller, claimed: string | undefined): string {
    const who = caller.via === 'tcp' ? 'token' : caller.peer ? `uid=${caller.peer.uid}(${userName(caller.peer.uid) ?? '?'})` : 'uid=?';
    return (claimed ? `${who} ${claimed}` : who).slice(0, 256);
  }

  /** A change over TCP needs the token; the socket's permissions already let only root and the group in. */
  private authorize(request: http.IncomingMessage, caller: Caller): void {
    if (caller.via === 'socket') return;
    const method = request.method ?? 'GET';
    if (method === 'GET' || method === 'HEAD') return;
    const token = this.options.token;
    const given = /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? '')?.[1];
    if (token !== undefined && given !== undefined) {
      const a = Buffer.from(given);
      const b = Buffer.from(token);
      if (a.length === b.length && timingSafeEqual(a, b)) return;
    }
    const where = [this.socketPath ? `the control socket ${this.socketPath} (root or group ${this.options.socket?.group ?? 'portsnare'})` : undefined, this.options.tokenFile ? `the token in ${this.options.tokenFile}` : undefined].filter(Boolean).join(' or ');
    throw new HttpError(403, `forbidden: changes over TCP need ${where || 'the control socket'}; TCP is read-only`, { permission: 'denied' });
  }

  private async route(request: http.IncomingMessage, response: http.ServerResponse, caller: Caller): Promise<void> {
    if (caller.via === 'tcp') {
      const host = (request.headers.host ?? '').replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
      if (!/^(localhost|127(\.\d{1,3}){3}|::1)$/.test(host)) throw new HttpError(403, `Host ${JSON.stringify(host)} is not a loopback name`);
    }
    this.authorize(request, caller);
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
        const result = await allow.add(body.data.target, this.actor(caller, body.data.requestedBy));
        return send(response, result.added ? 201 : 200, { target: body.data.target, ...result });
      }
      if (method === 'DELETE' && path.startsWith('/allow/')) {
        const target = TargetSchema.safeParse(safeDecode(path.slice('/allow/'.length)));
        if (!target.success) throw new HttpError(400, formatZodError(target.error).replace(/^\(root\): /, ''));
        const by = request.headers['x-requested-by'];
        if (!(await allow.remove(target.data, this.actor(caller, typeof by === 'string' && by ? by.slice(0, 200) : undefined)))) throw new HttpError(404, `${target.data} is not in the runtime allowlist`);
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
          requestedBy: this.actor(caller, requestedBy),
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
        const lifted = await control.unblock(target.data, this.actor(caller, typeof by === 'string' && by ? by.slice(0, 200) : undefined));
        if (!lifted) throw new HttpError(404, `no active block for ${target.data}`);
        return send(response, 200, { target: target.data, unblocked: true });
      }
      return send(response, 200, control.history(target.data));
    }
    if (path === '/healthz' || path === '/metrics' || path === '/status') throw new HttpError(405, `${method} ${path}: method not allowed`);
    throw new HttpError(404, `${method} ${path}: no such endpoint`);
  }
}

/** A group name or numeric gid as a gid; undefined when no such group exists. */
export function groupId(group: string | undefined): number | undefined {
  if (group === undefined || group === '') return undefined;
  if (/^\d+$/.test(group)) return Number(group);
  return lookup('/etc/group', group, 0, 2);
}

/** The name of a uid in /etc/passwd, or undefined. */
export function userName(uid: number): string | undefined {
  try {
    for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const fields = line.split(':');
      if (fields[2] === String(uid)) return fields[0];
    }
  } catch {
    // no passwd file (a minimal container)
  }
  return undefined;
}

function lookup(file: string, name: string, nameField: number, idField: number): number | undefined {
  try {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const fields = line.split(':');
      if (fields[nameField] === name && /^\d+$/.test(fields[idField] ?? '')) return Number(fields[idField]);
    }
  } catch {
    // no such file
  }
  return undefined;
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
