/**
 * One writer's lock (issue 19): 16 command-line writers and a flooding agent-like writer on one
 * state directory, the flooder killed with SIGKILL half-way: every acknowledged record is in
 * the store. Before the lock, concurrent writers reused sequence numbers and replay dropped the
 * duplicates (8 parallel `portsnare block` kept 5-8 of 8). The 20-round version with random
 * kills is the benchmark store_concurrent_writers_lost (bench/store.bench.ts).
 */
import { expect, it } from 'vitest';
import { tempDir } from '../helpers';
import { concurrentRound } from './store-writers-run';

it('16 concurrent writers plus a flooding writer killed with SIGKILL lose no acknowledged record', async () => {
  const dir = tempDir('store-writers');
  try {
    const round = await concurrentRound(dir.path, { writers: 16, perWriter: 20, killAfterMs: 1500, killWriters: 3 });
    expect(round.errors).toEqual([]);
    expect(round.acknowledged).toBeGreaterThan(16 * 5);
    expect(round.lost).toEqual([]);
  } finally {
    dir.remove();
  }
}, 120_000);
