/**
 * Many writers on one state directory at once (issue 19): an agent-like writer flooding the store
 * (polls for the lock, compacts often) and N command-line writers (wait for the lock in the
 * kernel, a few puts each, then exit), with kill -9 at random moments. Every record a writer
 * acknowledged (its put() resolved) must be in the store opened afterwards. Used by
 * store-concurrency.test.ts (one round) and bench/store.bench.ts (20 rounds).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { FileStore } from '../../../sensor/local/store';

const WRITER = join(__dirname, 'store-writer.ts');

interface Writer {
  readonly child: ChildProcess;
  readonly acked: Set<string>;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
}

function startWriter(dir: string, first: number, compactAfterLines: number, count: number | undefined, blocking: boolean): Writer {
  const args = ['--require', 'tsx/cjs', WRITER, dir, String(first), String(compactAfterLines), String(count ?? 'Infinity'), blocking ? 'blocking' : 'poll'];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const acked = new Set<string>();
  let stderr = '';
  let rest = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdout!.on('data', (chunk: Buffer) => {
    const lines = (rest + chunk.toString()).split('\n');
    rest = lines.pop() ?? '';
    for (const line of lines) {
      const [word, target] = line.split(' ');
      if (word === 'ack' && target) acked.add(target);
    }
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, stderr })));
  return { child, acked, exited };
}

export interface RoundResult {
  /** acknowledged records missing from the store afterwards */
  readonly lost: string[];
  readonly acknowledged: number;
  readonly killed: number;
  /** writers that failed other than by our SIGKILL */
  readonly errors: string[];
}

/**
 * One round: the flooding writer and `writers` command-line writers of `perWriter` puts each
 * start together; after `killAfterMs` the flooding writer and `killWriters` random others are
 * killed with SIGKILL; the rest finish. Then the store is opened and checked.
 */
export async function concurrentRound(dir: string, options: { writers: number; perWriter: number; killAfterMs: number; killWriters: number }): Promise<RoundResult> {
  const agent = startWriter(dir, 0, 200, undefined, false);
  const clis = Array.from({ length: options.writers }, (_, k) => startWriter(dir, (k + 1) * 1_000_000, 200, options.perWriter, true));
  await new Promise((resolve) => setTimeout(resolve, options.killAfterMs));
  const victims = [agent, ...clis.filter(() => Math.random() < options.killWriters / options.writers)];
  for (const victim of victims) if (victim.child.exitCode === null) victim.child.kill('SIGKILL');
  const results = await Promise.all([agent, ...clis].map((w) => w.exited));
  const errors = results.filter((r) => r.signal !== 'SIGKILL' && r.code !== 0).map((r) => `exit ${r.code}: ${r.stderr.trim().split('\n')[0] ?? ''}`);
  const store = await FileStore.open(dir);
  const present = new Set(store.list().map((record) => record.target));
  await store.close();
  const lost: string[] = [];
  let acknowledged = 0;
  for (const writer of [agent, ...clis]) {
    acknowledged += writer.acked.size;
    for (const target of writer.acked) if (!present.has(target)) lost.push(target);
  }
  return { lost, acknowledged, killed: victims.length, errors };
}
