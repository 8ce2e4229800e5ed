/** Time for the handlers: the real clock in Lambda, a simulated one in tests and benchmarks. */
export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms))),
};

/**
 * A clock that refuses to sleep past a deadline: set from the Lambda context at the start of each
 * invocation, so retries and pacing give up with a clean error (logs and metrics flushed) instead
 * of the function being killed at its timeout.
 */
export class DeadlineClock implements Clock {
  deadline: number | undefined;

  constructor(private readonly inner: Clock) {}

  now(): number {
    return this.inner.now();
  }

  async sleep(ms: number): Promise<void> {
    if (this.deadline !== undefined && this.inner.now() + ms > this.deadline) {
      throw Object.assign(new Error(`no time left for a ${ms} ms pause before the function times out`), { name: 'DeadlineExceeded' });
    }
    await this.inner.sleep(ms);
  }
}
