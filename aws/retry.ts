/**
 * Retries with jittered exponential backoff ("full jitter"), for the throttling errors AWS
 * documents as retryable. The clock is injected so tests and benchmarks run on simulated time.
 * https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html
 */
import type { Clock } from './clock';

/** The AWS error code of an SDK error (`name`), or undefined. */
export function errorName(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const name = (error as { name?: unknown; Code?: unknown }).name ?? (error as { Code?: unknown }).Code;
  return typeof name === 'string' ? name : undefined;
}

/** EC2 throttles with RequestLimitExceeded; most other APIs with ThrottlingException. */
export const THROTTLING_ERRORS = new Set([
  'RequestLimitExceeded',
  'ThrottlingException',
  'Throttling',
  'TooManyRequestsException',
  'ProvisionedThroughputExceededException',
  'RequestThrottled',
]);

export function isThrottling(error: unknown): boolean {
  return THROTTLING_ERRORS.has(errorName(error) ?? '');
}

export interface RetryOptions {
  readonly clock: Clock;
  /** total attempts, the first included */
  readonly attempts?: number;
  readonly baseMs?: number;
  readonly capMs?: number;
  readonly random?: () => number;
  readonly retryable?: (error: unknown) => boolean;
  readonly onRetry?: (error: unknown, attempt: number) => void;
}

export function backoffMs(attempt: number, baseMs: number, capMs: number, random: () => number): number {
  return Math.floor(random() * Math.min(capMs, baseMs * 2 ** attempt));
}

export async function withRetry<T>(fn: () => Promise<T>, options: RetryOptions): Promise<T> {
  const attempts = options.attempts ?? 6;
  const retryable = options.retryable ?? isThrottling;
  const random = options.random ?? Math.random;
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (error) {
      if (attempt + 1 >= attempts || !retryable(error)) throw error;
      options.onRetry?.(error, attempt + 1);
      await options.clock.sleep(Math.max(1, backoffMs(attempt, options.baseMs ?? 100, options.capMs ?? 5_000, random)));
    }
  }
}
