/** A simulated clock: sleep() advances time at once, so retries and pacing cost no real time. */
import type { Clock } from '../../aws/clock';

export class SimClock implements Clock {
  /** total simulated time spent sleeping, ms */
  slept = 0;
  constructor(private current = Date.parse('2026-11-21T10:00:00.000Z')) {}

  now(): number {
    return this.current;
  }

  async sleep(ms: number): Promise<void> {
    const step = Math.max(0, ms);
    this.current += step;
    this.slept += step;
    await Promise.resolve();
  }

  advance(ms: number): void {
    this.current += ms;
  }

  set(time: number): void {
    this.current = time;
  }
}
