import { describe, expect, it } from 'vitest';
import { backoffMs, withRetry } from '../../aws/retry';
import { SimClock } from '../fakes/clock';

/** A clock that records each pause instead of waiting. */
class PauseLog extends SimClock {
  readonly pauses: number[] = [];
  override async sleep(ms: number): Promise<void> {
    this.pauses.push(ms);
    await super.sleep(ms);
  }
}

const throttled = () => Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' });

describe('backoffMs: full jitter', () => {
  it('draws uniformly below min(cap, base × 2^attempt)', () => {
    // base 100, cap 5000: ceilings 100, 200, 400, … 3200, then 5000
    expect([0, 1, 2, 5, 6, 10].map((n) => backoffMs(n, 100, 5_000, () => 0.5))).toEqual([50, 100, 200, 1600, 2500, 2500]);
    expect(backoffMs(3, 100, 5_000, () => 0)).toBe(0);
    expect(backoffMs(3, 100, 5_000, () => 0.999999)).toBe(799);
  });
});

describe('withRetry', () => {
  it('pauses with the injected random between throttled attempts, then returns the result', async () => {
    const clock = new PauseLog();
    const draws = [0.25, 0.75, 0.5];
    let calls = 0;
    const retried: number[] = [];
    const result = await withRetry(
      async () => {
        if (++calls < 4) throw throttled();
        return 'ok';
      },
      { clock, baseMs: 200, capMs: 8_000, random: () => draws.shift() ?? 0, onRetry: (_e, n) => retried.push(n) },
    );
    expect(result).toBe('ok');
    expect(clock.pauses).toEqual([0.25 * 200, 0.75 * 400, 0.5 * 800]);
    expect(retried).toEqual([1, 2, 3]);
  });

  it('never pauses 0 ms, even when the draw is 0', async () => {
    const clock = new PauseLog();
    let calls = 0;
    await withRetry(
      async () => {
        if (++calls < 3) throw throttled();
      },
      { clock, random: () => 0 },
    );
    expect(clock.pauses).toEqual([1, 1]);
  });

  it('gives up after the last attempt with the last error, and at once on an error that is not retryable', async () => {
    const clock = new PauseLog();
    let calls = 0;
    await expect(
      withRetry(
        async () => {
          calls++;
          throw throttled();
        },
        { clock, attempts: 3, random: () => 0.5 },
      ),
    ).rejects.toThrow('Rate exceeded');
    expect(calls).toBe(3);
    expect(clock.pauses).toHaveLength(2);

    calls = 0;
    const denied = Object.assign(new Error('no'), { name: 'AccessDeniedException' });
    await expect(
      withRetry(
        async () => {
          calls++;
          throw denied;
        },
        { clock, random: () => 0.5 },
      ),
    ).rejects.toBe(denied);
    expect(calls).toBe(1);
  });
});
