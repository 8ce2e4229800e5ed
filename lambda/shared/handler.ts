/**
 * The one Lambda handler wrapper. Every function's handler.ts is
 *
 *   export function createHandler(deps) { return instrument(deps.obs, async (event, context) => …); }
 *   export const handler = entryPoint(() => createHandler(defaultDeps()));
 *
 * - `instrument` is the per-invocation part: the Lambda context goes into every log line
 *   (Observability.addContext, Powertools' injectLambdaContext behaviour) and the metrics are
 *   flushed in one place — a `finally`, so also when the body throws.
 * - `entryPoint` is the per-container part: it builds the dependencies (SDK clients, settings,
 *   logger, metrics) lazily on the first invocation and keeps them for the container's life.
 *   Lazily rather than at module load so that importing a handler has no side effects (tests,
 *   the bundle benchmark) and a configuration error is reported by an invocation, whose next
 *   attempt builds again, instead of failing the init phase.
 * Tests call `createHandler(deps)` with fakes; the context is optional there.
 * https://docs.aws.amazon.com/lambda/latest/dg/typescript-handler.html
 * https://docs.aws.amazon.com/lambda/latest/dg/best-practices.html (initialize SDK clients outside the handler)
 */
import type { Context } from 'aws-lambda';
import { setCallDeadline } from '../../aws/clients/timeouts';
import type { Observability } from '../../aws/observability';

/** A handler as createHandler returns it: the context is optional so tests may leave it out. */
export type Invocation<E, R> = (event: E, context?: Context) => Promise<R>;

/** A scheduled function's handler: the event (EventBridge Scheduler's payload) carries nothing it reads. */
export type ScheduledInvocation<R> = (event?: unknown, context?: Context) => Promise<R>;

/** The per-invocation wrapper: context into the logs before, metrics flushed after (always). */
export function instrument<E, R>(obs: Observability, body: (event: E, context: Context | undefined) => Promise<R>): Invocation<E, R> {
  return async (event, context) => {
    if (context) obs.addContext(context);
    // every AWS call of this invocation ends before the function's timeout (clients/timeouts.ts)
    setCallDeadline(context ? Date.now() + context.getRemainingTimeInMillis() : undefined);
    try {
      return await body(event, context);
    } finally {
      setCallDeadline(undefined);
      try {
        obs.flush();
      } catch (error) {
        // Losing this invocation's metrics must neither hide the body's error nor fail its work.
        obs.log.error('could not publish metrics', { error: String(error) });
      }
    }
  };
}

/** The Lambda entry: `create` runs once per container, on the first invocation that gets past it. */
export function entryPoint<E, R>(create: () => Invocation<E, R>): (event: E, context: Context) => Promise<R> {
  let invoke: Invocation<E, R> | undefined;
  return async (event, context) => {
    invoke ??= create();
    return invoke(event, context);
  };
}
