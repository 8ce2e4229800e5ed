/**
 * The store across crashes: a writer killed with SIGKILL at a random moment loses no acknowledged
 * record, a torn last line is cut off, temporary files from dead writers are removed, and a
 * burst of 500 blocks all land.
 */
import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { BlockRecord } from '../../../core/policy';
import { FileStore } from '../../../sensor/local/store';
import { tempDir } from '../helpers';

const WRITER = join(__dirname, 'store-writer.ts');

function record(target: string, hitCount = 1): BlockRecord {
  return {
    target,
    family: target.includes(':') ? 'ipv6' : 'ipv4',
    reason: 'sensor',
    firstSeen: 1,
    lastSeen: 2,
    hitCount,
    offences: 1,
    blockedAt: 2,
    expiresAt: 4_000_000_000_000,
    active: true,
    eventIds: [`e-${target}`],
    sensors: ['s1'],
  };
}

/** Runs the writer until it has acknowledged `killAfter` records, then SIGKILLs it. */
async function writeAndKill(dir: string, first: number, killAfter: number, compactAfterLines: number): Promise<Map<string, number>> {
  const child = spawn(process.execPath, ['--require', 'tsx/cjs', WRITER, dir, String(first), String(compactAfterLines)], { stdio: ['ignore', 'pipe', 'pipe'] });
  const acked = new Map<string, number>();
  let stderr = '';
  let rest = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  child.stdout.on('data', (chunk: Buffer) => {
    const lines = (rest + chunk.toString()).split('\n');
    rest = lines.pop() ?? '';
    for (const line of lines) {
      const [word, target, hits] = line.split(' ');
      if (word === 'ack' && target && hits) acked.set(target, Number(hits));
    }
    if (acked.size >= killAfter && child.exitCode === null && !child.killed) child.kill('SIGKILL');
  });
  const { code, signal } = await exited;
  expect({ code, signal, stderr }).toEqual({ code: null, signal: 'SIGKILL', stderr: '' });
  return acked;
}

describe('FileStore durability', () => {
  let dir: { path: string; remove: () => void };
  beforeEach(() => {
    dir = tempDir('store-durable');
  });
  afterEach(() => dir.remove());

  it('keeps every acknowledged record when the writer is killed with SIGKILL mid-write, round after round', async () => {
    const seed = Date.now();
    const random = mulberry32(seed);
    const acked = new Map<string, number>();
    let first = 0;
    for (let round = 0; round < 3; round++) {
      // a small compaction threshold, so kills also land during snapshot writes and journal switches
      const killAfter = 200 + Math.floor(random() * 1500);
      const got = await writeAndKill(dir.path, first, killAfter, 300);
      for (const [target, hits] of got) acked.set(target, hits);
      first += 100_000;

      const store = new FileStore(dir.path);
      await store.load();
      // each target was put once: one record, one history entry (a line replayed twice would show)
      const missing = [...acked].filter(([target, hits]) => store.get(target)?.hitCount !== hits || store.history(target).length !== 1);
      expect(missing, `seed ${seed}, round ${round}: acknowledged but not restored`).toEqual([]);
      expect(got.size, `seed ${seed}`).toBeGreaterThanOrEqual(killAfter);
      await store.close();
      expect(readdirSync(dir.path).filter((name) => name.includes('.tmp-')), `seed ${seed}`).toEqual([]);
    }
  });

  it('cuts a torn last line and appends after it cleanly', async () => {
    const store = await FileStore.open(dir.path);
    await store.put(record('198.51.100.1'), 'block');
    await store.put(record('198.51.100.2'), 'block');
    await store.close();
    const journal = readdirSync(dir.path).find((name) => name.endsWith('.journal'))!;
    const torn = '{"s":3,"at":5,"a":"block","r":{"target":"198.51.1';
    appendFileSync(join(dir.path, journal), torn);

    const warnings: object[] = [];
    const reopened = await FileStore.open(dir.path, { onWarning: (line) => warnings.push(line) });
    expect(reopened.list().map((r) => r.target)).toEqual(['198.51.100.1', '198.51.100.2']);
    expect(reopened.stats().recovered.tornBytes).toBe(torn.length);
    expect(warnings).toEqual([expect.objectContaining({ msg: 'store journal recovered', tornBytes: torn.length, corruptLines: 0 })]);
    await reopened.put(record('198.51.100.3'), 'block');
    await reopened.close();

    const text = readFileSync(join(dir.path, journal), 'utf8');
    expect(text.endsWith('\n')).toBe(true);
    expect(text.split('\n').filter(Boolean).map((line) => (JSON.parse(line) as { r: BlockRecord }).r.target)).toEqual(['198.51.100.1', '198.51.100.2', '198.51.100.3']);
    const again = await FileStore.open(dir.path);
    expect(again.list().map((r) => r.target)).toEqual(['198.51.100.1', '198.51.100.2', '198.51.100.3']);
    expect(again.stats().recovered).toEqual({ tornBytes: 0, corruptLines: 0 });
  });

  it('skips a damaged line in the middle, keeps the rest and replaces the damaged journal with a snapshot', async () => {
    const store = await FileStore.open(dir.path);
    for (let i = 1; i <= 3; i++) await store.put(record(`198.51.100.${i}`), 'block');
    await store.close();
    const journal = join(dir.path, readdirSync(dir.path).find((name) => name.endsWith('.journal'))!);
    const lines = readFileSync(journal, 'utf8').split('\n');
    lines[1] = '\0\0\0\0\0\0';
    writeFileSync(journal, lines.join('\n'));

    const reopened = await FileStore.open(dir.path);
    expect(reopened.list().map((r) => r.target)).toEqual(['198.51.100.1', '198.51.100.3']);
    expect(reopened.stats().recovered.corruptLines).toBe(1);
    await reopened.close();
    expect(existsSync(journal)).toBe(false);
    const again = await FileStore.open(dir.path);
    expect(again.list().map((r) => r.target)).toEqual(['198.51.100.1', '198.51.100.3']);
    expect(again.stats().recovered).toEqual({ tornBytes: 0, corruptLines: 0 });
  });

  it('removes temporary files left by dead writers and keeps those of live ones', async () => {
    const dead = await deadPid();
    writeFileSync(join(dir.path, `blocks.json.tmp-${dead}`), '{"version":1,"rec');
    writeFileSync(join(dir.path, `blocks.json.tmp-${dead}-7`), '{"version":1,"rec');
    writeFileSync(join(dir.path, `blocks.json.tmp-${process.ppid}`), 'a live writer');
    const store = await FileStore.open(dir.path);
    expect(readdirSync(dir.path).filter((name) => name.includes('.tmp-'))).toEqual([`blocks.json.tmp-${process.ppid}`]);
    await store.close();
  });

  it('records a burst of 500 new blocks, every one of them, and finds them after a reopen', async () => {
    const store = await FileStore.open(dir.path, { compactAfterLines: 100 });
    const targets = Array.from({ length: 500 }, (_, i) => `2001:db8::${(i + 1).toString(16)}`);
    await Promise.all(targets.map((target, i) => store.put(record(target, i), 'block')));
    expect(store.list()).toHaveLength(500);
    await store.close();
    const again = await FileStore.open(dir.path);
    expect(again.list().map((r) => [r.target, r.hitCount])).toEqual(targets.map((target, i) => [target, i]));
    expect(again.history(targets[499]!)).toEqual([expect.objectContaining({ action: 'block' })]);
    expect(readdirSync(dir.path).filter((name) => name.includes('.tmp-'))).toEqual([]);
  });
});

/** The pid of a process that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await new Promise((resolve) => child.on('exit', resolve));
  return child.pid!;
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
