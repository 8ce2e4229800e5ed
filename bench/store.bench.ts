/**
 * The host agent's block store (`npx tsx bench/run.ts store`):
 * - store_blocks_per_s: new blocks recorded per second, one put() awaited at a time (as the
 *   local pipeline does), default options (journal write per put, fsync batched per 100 ms,
 *   compaction), including the final flush() that fsyncs the last of them;
 * - local_pipeline_blocks_per_s: the same burst as kernel-blocked Scan Detected events through
 *   LocalPipeline.handle (guard, policy, store; kernel blocks bypass the breaker), without an enforcer: what the store
 *   leaves of the pipeline's rate, nft excluded;
 * - store_open_ms_100k: opening a store whose journal holds 100,000 blocks (replay), median of 3;
 * - store_concurrent_writers_lost: acknowledged records missing after 20 rounds of 16
 *   command-line writers plus a flooding agent-like writer on one directory, the flooder and a few
 *   others killed with SIGKILL at a random moment (test/sensor/local/store-writers-run.ts); the
 *   goal is 0.
 * The directory is made under STORE_BENCH_DIR (default the OS temporary directory): point it at
 * the disk the agent's stateDirectory lives on, fsync costs differ between tmpfs and disks.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NeverBlockGuard } from '../core/guard';
import { type BlockRecord, PolicySettingsSchema } from '../core/policy';
import { LocalPipeline } from '../sensor/local/pipeline';
import { FileStore } from '../sensor/local/store';
import { concurrentRound } from '../test/sensor/local/store-writers-run';
import type { BenchSuite, Figure } from './suite';

const ROUNDS = 20;

async function concurrentLost(): Promise<{ lost: number; acknowledged: number; killed: number }> {
  let lost = 0;
  let acknowledged = 0;
  let killed = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const dir = mkdtempSync(join(BASE, 'portsnare-store-writers-'));
    try {
      const result = await concurrentRound(dir, { writers: 16, perWriter: 20, killAfterMs: 300 + Math.floor(Math.random() * 2500), killWriters: 3 });
      if (result.errors.length > 0) throw new Error(`round ${round}: ${result.errors.join('; ')}`);
      lost += result.lost.length;
      acknowledged += result.acknowledged;
      killed += result.killed;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return { lost, acknowledged, killed };
}

const BLOCKS = 20_000;
const REPLAY = 100_000;
const BASE = process.env['STORE_BENCH_DIR'] ?? tmpdir();

function target(i: number): string {
  return `2001:db8:${Math.floor(i / 65536).toString(16)}::${(i % 65536).toString(16)}`;
}

function record(i: number, now: number): BlockRecord {
  return {
    target: target(i),
    family: 'ipv6',
    reason: 'sensor',
    firstSeen: now,
    lastSeen: now,
    hitCount: 1,
    offences: 1,
    blockedAt: now,
    expiresAt: now + 900_000,
    active: true,
    eventIds: [`bench-${i}`],
    sensors: ['bench'],
    note: 'blocked by the kernel on a decoy packet',
  };
}

async function withDirectory<T>(run: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(BASE, 'portsnare-store-bench-'));
  try {
    return await run(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function storeRate(): Promise<number> {
  return withDirectory(async (dir) => {
    const store = await FileStore.open(dir);
    const start = performance.now();
    for (let i = 0; i < BLOCKS; i++) await store.put(record(i, Date.now()), 'block');
    await store.flush();
    const seconds = (performance.now() - start) / 1000;
    await store.close();
    const check = await FileStore.open(dir);
    if (check.list().length !== BLOCKS) throw new Error(`reopened store holds ${check.list().length} blocks, not ${BLOCKS}`);
    await check.close();
    return BLOCKS / seconds;
  });
}

async function pipelineRate(): Promise<number> {
  return withDirectory(async (dir) => {
    const store = await FileStore.open(dir);
    // one record per address (many of these addresses share a /64): what the store is measured on
    const policy = PolicySettingsSchema.parse({ blockUnverified: true, ipv6BlockPrefix: 128 });
    const guard = NeverBlockGuard.from({ blockableSpecialCidrs: ['2001:db8::/32'] });
    const pipeline = new LocalPipeline({ store, policy, guard });
    const start = performance.now();
    const seen = new Date().toISOString();
    await Promise.all(
      Array.from({ length: BLOCKS }, (_, i) =>
        pipeline.handle(
          { version: 1, sensorId: 'bench', attacker: target(i), probes: [{ protocol: 'tcp', port: 23, kind: 'syn' }], probeCount: 1, handshake: false, firstSeen: seen, lastSeen: seen },
          `bench-${i}`,
          { kernelBlockTtlSeconds: 900 },
        ),
      ),
    );
    await store.flush();
    const seconds = (performance.now() - start) / 1000;
    const active = store.active(Date.now()).length;
    await store.close();
    if (active !== BLOCKS) throw new Error(`the pipeline recorded ${active} active blocks, not ${BLOCKS}`);
    return BLOCKS / seconds;
  });
}

async function openMs(): Promise<number> {
  return withDirectory(async (dir) => {
    const store = await FileStore.open(dir, { compactAfterLines: REPLAY * 2 });
    for (let i = 0; i < REPLAY; i++) await store.put(record(i, Date.now()), 'block');
    await store.close();
    const times: number[] = [];
    for (let run = 0; run < 3; run++) {
      const start = performance.now();
      const again = await FileStore.open(dir, { compactAfterLines: REPLAY * 2, readOnly: true });
      times.push(performance.now() - start);
      if (again.list().length !== REPLAY) throw new Error(`replayed ${again.list().length} blocks, not ${REPLAY}`);
    }
    return times.sort((a, b) => a - b)[1]!;
  });
}

export const suite: BenchSuite = {
  title: 'Host agent block store: journal throughput and replay',
  async run(): Promise<Figure[]> {
    const where = `${BASE} (STORE_BENCH_DIR)`;
    return [
      { name: 'store_blocks_per_s', value: Math.round(await storeRate()), unit: 'blocks/s', note: `${BLOCKS} new blocks, one awaited put() at a time, journal + fsync every 100 ms + compaction, final flush included; directory in ${where}` },
      { name: 'local_pipeline_blocks_per_s', value: Math.round(await pipelineRate()), unit: 'blocks/s', note: `${BLOCKS} kernel-blocked events through LocalPipeline.handle (guard, policy, store; no enforcer), final flush included; directory in ${where}` },
      { name: 'store_open_ms_100k', value: Math.round(await openMs()), unit: 'ms', note: `open() of a store whose journal holds ${REPLAY} blocks (replay, no snapshot), median of 3` },
      await (async (): Promise<Figure> => {
        const run = await concurrentLost();
        return { name: 'store_concurrent_writers_lost', value: run.lost, unit: 'records', note: `${ROUNDS} rounds of 16 command-line writers (20 puts each) + a flooding writer on one directory, ${run.killed} writers killed with SIGKILL at random moments; ${run.acknowledged} acknowledged in all; goal 0` };
      })(),
    ];
  },
};
