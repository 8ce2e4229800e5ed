/**
 * The HTTP side shared by the wire fakes: a node:http server on 127.0.0.1, port 0 (the kernel
 * picks a free one, so test files and concurrent runs never collide), the request log, and the
 * "response lost" fault: the service does the work, then the connection drops before the answer,
 * which is what a client sees on a network failure or a Lambda freeze mid-call.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface HttpReply {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

export interface LoggedRequest {
  readonly op: string;
  readonly body: string;
  readonly status: number;
  readonly dropped: boolean;
}

export abstract class HttpFake {
  readonly requests: LoggedRequest[] = [];
  private server?: http.Server;
  private readonly drops: string[] = [];
  private readonly hangs: string[] = [];
  /**
   * Runs before each request is served, while its caller waits (something that happens in the
   * middle of a run: a decision, a stack's cleanup, which may itself call this service).
   */
  beforeServe?: (op: string) => Promise<void>;
  /** Called when a request is taken to hang (a simulation moves its clock by the caller's budget). */
  onHang?: (op: string) => void;

  /** Answers one request: the operation name (for the log and faults) and the reply. */
  protected abstract serve(request: http.IncomingMessage, body: string): { op: string; reply: HttpReply };

  async start(): Promise<string> {
    this.server = http.createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const before = this.beforeServe;
        if (before) {
          void before(this.opOf(request, body))
            .catch(() => undefined) // what ran before a request is its caller's concern, not the service's
            .then(() => this.answer(request, response, body));
          return;
        }
        this.answer(request, response, body);
      });
    });
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(0, '127.0.0.1', () => resolve());
    });
    return this.endpoint;
  }

  private answer(request: http.IncomingMessage, response: http.ServerResponse, body: string): void {
    const hung = this.takeHang(request, body);
    if (hung) {
      // a call that never answers: nothing is done, the connection stays open, silent
      this.requests.push({ op: hung, body, status: 0, dropped: true });
      this.onHang?.(hung);
      return;
    }
    const { op, reply } = this.serve(request, body);
    const drop = this.takeDrop(op);
    this.requests.push({ op, body, status: reply.status, dropped: drop });
    if (drop) {
      request.socket.destroy();
      return;
    }
    response.writeHead(reply.status, { 'x-amzn-requestid': randomUUID(), ...reply.headers });
    response.end(reply.body);
  }

  get endpoint(): string {
    if (!this.server) throw new Error('the fake is not started');
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  /** The next `n` calls of `op` ('*': any) are carried out, then the connection drops unanswered. */
  dropResponseNext(op: string, n = 1): void {
    for (let i = 0; i < n; i++) this.drops.push(op);
  }

  /** Forgets the lost answers and hung calls still queued (the faults stop). */
  clearDrops(): void {
    this.drops.length = 0;
    this.hangs.length = 0;
  }

  /** The next `n` calls of `op` ('*': any) never answer (and are not carried out). */
  hangNext(op: string, n = 1): void {
    for (let i = 0; i < n; i++) this.hangs.push(op);
  }

  /** Hung calls still queued. */
  get hangsQueued(): number {
    return this.hangs.length;
  }

  /** The operation a request names, before it is served (for hung calls). */
  protected opOf(request: http.IncomingMessage, body: string): string {
    const target = request.headers['x-amz-target'];
    if (typeof target === 'string') return target.split('.').pop() ?? '';
    return new URLSearchParams(body).get('Action') ?? '';
  }

  private takeHang(request: http.IncomingMessage, body: string): string | undefined {
    if (this.hangs.length === 0) return undefined;
    const op = this.opOf(request, body);
    const index = this.hangs.findIndex((h) => h === op || h === '*');
    if (index < 0) return undefined;
    this.hangs.splice(index, 1);
    return op;
  }

  /** How many requests of `op` reached the service (retries included). */
  count(op: string): number {
    return this.requests.filter((r) => r.op === op).length;
  }

  private takeDrop(op: string): boolean {
    const index = this.drops.findIndex((d) => d === op || d === '*');
    if (index < 0) return false;
    this.drops.splice(index, 1);
    return true;
  }
}

/** The AWS error code and HTTP status of an error thrown by a fake's state (test/fakes/errors.ts). */
export function errorParts(error: unknown): { code: string; message: string; status: number } {
  const status = (error as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
  // Not an AWS error: a bug in the fake. Answer 500 with a code no adapter knows, so the test fails loudly.
  if (!(error instanceof Error) || status === undefined) return { code: 'FakeDefect', message: String(error), status: 500 };
  return { code: error.name, message: error.message, status };
}

/** Signature Version 4 is what the real SDK sends; an unsigned request is not from it. */
export function signedFor(request: http.IncomingMessage, service: string): boolean {
  const auth = request.headers.authorization;
  return typeof auth === 'string' && auth.startsWith('AWS4-HMAC-SHA256 ') && auth.includes(`/${service}/aws4_request`);
}
