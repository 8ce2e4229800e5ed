/**
 * Timeouts for every AWS call the functions make. Without them one call that never answers runs
 * past the function's timeout (the SDK's default has no request timeout), the other enforcement
 * points are not written either, and an SQS batch waits out its visibility timeout.
 * https://docs.aws.amazon.com/sdk-for-javascript/v3/developer-guide/node-configuring-maxsockets.html
 * https://docs.aws.amazon.com/lambda/latest/dg/typescript-context.html (getRemainingTimeInMillis)
 *
 * - connecting: CONNECTION_TIMEOUT_MS;
 * - each attempt of a call: at most MAX_CALL_MS, and never past the invocation's deadline less
 *   CALL_MARGIN_MS (set per invocation by lambda/shared/handler.ts `instrument` from the Lambda
 *   context), so a hung call fails with time left to record the failure, flush the metrics and
 *   shorten the batch's retry; never less than MIN_CALL_MS.
 * A call cut off fails with `TimeoutError` (its outcome unknown: aws/nacl-adapter.ts
 * retries it only when it is idempotent; lambda/shared/enforcer.ts counts it as transient).
 */
import type { HttpRequest } from '@smithy/core/protocols';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { HttpHandlerOptions } from '@smithy/types';

export const CONNECTION_TIMEOUT_MS = 2_000;
export const MAX_CALL_MS = 8_000;
export const CALL_MARGIN_MS = 3_000;
export const MIN_CALL_MS = 250;

let deadlineAt: number | undefined;

/** The invocation's deadline (epoch ms), or undefined outside an invocation. */
export function setCallDeadline(at: number | undefined): void {
  deadlineAt = at;
}

/** How long the next attempt of a call may take. */
export function callTimeoutMs(now: number = Date.now(), deadline: number | undefined = deadlineAt): number {
  if (deadline === undefined) return MAX_CALL_MS;
  return Math.max(MIN_CALL_MS, Math.min(MAX_CALL_MS, deadline - CALL_MARGIN_MS - now));
}

/** NodeHttpHandler with a connection timeout and a whole-attempt deadline (`budget`, ms). */
export class DeadlineHttpHandler extends NodeHttpHandler {
  constructor(private readonly budget: () => number = () => callTimeoutMs()) {
    super({ connectionTimeout: CONNECTION_TIMEOUT_MS });
  }

  override async handle(request: HttpRequest, options: HttpHandlerOptions = {}): ReturnType<NodeHttpHandler['handle']> {
    const ms = this.budget();
    const controller = new AbortController();
    const outer = options.abortSignal as AbortSignal | undefined;
    const forward = () => controller.abort();
    outer?.addEventListener?.('abort', forward);
    const timer = setTimeout(() => controller.abort(), ms);
    try {
      return await super.handle(request, { ...options, abortSignal: controller.signal, requestTimeout: ms });
    } catch (error) {
      if (controller.signal.aborted && !outer?.aborted) throw Object.assign(new Error(`no answer from ${request.hostname} within ${ms} ms`), { name: 'TimeoutError' });
      // the socket's idle timeout (requestTimeout) fired first
      if (error instanceof Error && /timeout|timed out/i.test(error.name + error.message)) throw Object.assign(error, { name: 'TimeoutError' });
      throw error;
    } finally {
      clearTimeout(timer);
      outer?.removeEventListener?.('abort', forward);
    }
  }
}

/** What every client of aws/clients is built with. */
export function timedClientConfig(): { requestHandler: DeadlineHttpHandler } {
  return { requestHandler: new DeadlineHttpHandler() };
}
