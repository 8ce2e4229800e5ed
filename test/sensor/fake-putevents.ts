/**
 * A local HTTP endpoint that speaks EventBridge PutEvents the way the service documents it
 * (AWS JSON 1.1 protocol: POST /, X-Amz-Target: AWSEvents.PutEvents,
 * Content-Type: application/x-amz-json-1.1), so the REAL @aws-sdk/client-eventbridge client can
 * be pointed at it. Modelled behaviour, each from the EventBridge API Reference (PutEvents):
 * - more than 10 entries → 400 ValidationException (Entries: "Maximum number of 10 items");
 * - a 200 response may carry FailedEntryCount > 0 and per-entry ErrorCode/ErrorMessage, in the
 *   order of the request entries; an accepted entry gets an EventId;
 * - ThrottlingException (400) and InternalException (500) are request-level errors
 *   (x-amzn-ErrorType header and {"__type": …} body, as the JSON protocols send them).
 * Responses are scripted per request; with an empty script every request succeeds.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export type Reply =
  | { kind: 'ok' }
  | { kind: 'internal' }
  | { kind: 'throttle' }
  /** 200 with these request positions failed with `code` (default InternalFailure) */
  | { kind: 'partial'; fail: number[]; code?: string }
  /** no HTTP answer at all: the socket is destroyed */
  | { kind: 'drop' };

export interface ReceivedEntry {
  readonly Source: string;
  readonly DetailType: string;
  readonly Detail: string;
  readonly EventBusName: string;
  readonly Time?: number | string;
}

export class FakePutEvents {
  /** entries the "service" accepted, in order */
  readonly accepted: ReceivedEntry[] = [];
  readonly requests: Array<{ entries: number; target: string | undefined; contentType: string | undefined }> = [];
  script: Reply[] = [];
  /** when set, every request gets this reply (an outage) */
  down?: Reply;
  /** the rules behind the bus: called with each accepted entry after the answer is sent */
  onAccepted?: (entry: ReceivedEntry) => void;
  private server?: http.Server;
  private waiters: Array<{ count: number; resolve: () => void }> = [];

  async start(): Promise<string> {
    this.server = http.createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => this.answer(request, response, Buffer.concat(chunks).toString('utf8')));
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  /** Resolves once `count` Scan Detected entries have been accepted in all (heartbeats are apart). */
  waitForAccepted(count: number): Promise<void> {
    if (this.scans().length >= count) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ count, resolve }));
  }

  /** the accepted Scan Detected entries */
  scans(): ReceivedEntry[] {
    return this.accepted.filter((entry) => entry.DetailType === 'Scan Detected');
  }

  /** the accepted Sensor Heartbeat entries */
  heartbeats(): ReceivedEntry[] {
    return this.accepted.filter((entry) => entry.DetailType === 'Sensor Heartbeat');
  }

  /** the details of the accepted Scan Detected entries */
  details(): Array<Record<string, unknown>> {
    return this.scans().map((entry) => JSON.parse(entry.Detail) as Record<string, unknown>);
  }

  private answer(request: http.IncomingMessage, response: http.ServerResponse, body: string): void {
    const target = request.headers['x-amz-target'] as string | undefined;
    const contentType = request.headers['content-type'];
    let entries: ReceivedEntry[] = [];
    try {
      entries = (JSON.parse(body) as { Entries?: ReceivedEntry[] }).Entries ?? [];
    } catch {
      return this.error(response, 400, 'SerializationException', 'body is not JSON');
    }
    this.requests.push({ entries: entries.length, target, contentType });
    if (request.method !== 'POST' || target !== 'AWSEvents.PutEvents') return this.error(response, 400, 'UnknownOperationException', `target ${target}`);
    if (entries.length < 1 || entries.length > 10) {
      return this.error(response, 400, 'ValidationException', `1 validation error detected: Value at 'entries' failed to satisfy constraint: Member must have length less than or equal to 10`);
    }
    const reply = this.down ?? this.script.shift() ?? { kind: 'ok' };
    switch (reply.kind) {
      case 'drop':
        request.socket.destroy();
        return;
      case 'internal':
        return this.error(response, 500, 'InternalException', 'Internal service error');
      case 'throttle':
        return this.error(response, 400, 'ThrottlingException', 'Rate exceeded');
      case 'ok':
      case 'partial': {
        const fail = new Set(reply.kind === 'partial' ? reply.fail : []);
        const results = entries.map((entry, index) => {
          if (fail.has(index)) return { ErrorCode: reply.kind === 'partial' ? (reply.code ?? 'InternalFailure') : 'InternalFailure', ErrorMessage: 'failed' };
          this.accepted.push(entry);
          return { EventId: randomUUID() };
        });
        response.writeHead(200, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': randomUUID() });
        response.end(JSON.stringify({ FailedEntryCount: fail.size ? [...fail].filter((i) => i < entries.length).length : 0, Entries: results }));
        this.wake();
        const delivered = results.flatMap((result, index) => (result.EventId && entries[index] ? [entries[index]] : []));
        if (this.onAccepted) for (const entry of delivered) setImmediate(() => this.onAccepted?.(entry));
        return;
      }
    }
  }

  private error(response: http.ServerResponse, status: number, type: string, message: string): void {
    response.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-errortype': type, 'x-amzn-requestid': randomUUID() });
    response.end(JSON.stringify({ __type: type, message }));
  }

  private wake(): void {
    this.waiters = this.waiters.filter((w) => {
      if (this.scans().length < w.count) return true;
      w.resolve();
      return false;
    });
  }
}
