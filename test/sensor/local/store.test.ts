import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { BlockRecord } from '../../../core/policy';
import { FileStore } from '../../../sensor/local/store';

function record(target: string, overrides: Partial<BlockRecord> = {}): BlockRecord {
  return {
    target,
    family: target.includes(':') ? 'ipv6' : 'ipv4',
    reason: 'sensor',
    firstSeen: 1000,
    lastSeen: 2000,
    hitCount: 3,
    offences: 1,
    blockedAt: 2000,
    expiresAt: 10_000,
    active: true,
    eventIds: ['e1'],
    sensors: ['s1'],
    ...overrides,
  };
}

describe('FileStore', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'portsnare-store-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('starts empty when there is no file yet', async () => {
    const store = new FileStore(join(dir, 'state'));
    await store.load();
    expect(store.list()).toEqual([]);
  });

  it('keeps records and history across a reload', async () => {
    const store = new FileStore(dir, { now: () => 5 });
    await store.load();
    await store.put(record('198.51.100.7'), 'block');
    await store.put(record('198.51.100.7', { hitCount: 9 }), 'refresh');
    await store.put(record('2001:db8::7'), 'block');

    const again = new FileStore(dir);
    await again.load();
    expect(again.get('198.51.100.7')?.hitCount).toBe(9);
    expect(again.list().map((r) => r.target).sort()).toEqual(['198.51.100.7', '2001:db8::7']);
    expect(again.history('198.51.100.7').map((h) => [h.at, h.action])).toEqual([
      [5, 'block'],
      [5, 'refresh'],
    ]);
  });

  it('answers active() by the clock given', async () => {
    const store = new FileStore(dir);
    await store.load();
    await store.put(record('198.51.100.1', { expiresAt: 100 }), 'block');
    await store.put(record('198.51.100.2', { expiresAt: 300 }), 'block');
    await store.put(record('198.51.100.3', { expiresAt: 300, active: false }), 'unblock');
    expect(store.active(200).map((r) => r.target)).toEqual(['198.51.100.2']);
  });

  it('bounds the history per target, dropping the oldest', async () => {
    const store = new FileStore(dir, { maxHistoryPerTarget: 3 });
    await store.load();
    for (let i = 0; i < 10; i++) await store.put(record('198.51.100.7', { hitCount: i }), `a${i}`);
    expect(store.history('198.51.100.7').map((h) => h.action)).toEqual(['a7', 'a8', 'a9']);
  });

  it('drops the least recently written inactive records past maxRecords, never active ones', async () => {
    const store = new FileStore(dir, { maxRecords: 2 });
    await store.load();
    await store.put(record('198.51.100.1', { active: false }), 'expire');
    await store.put(record('198.51.100.2'), 'block');
    await store.put(record('198.51.100.3'), 'block');
    await store.put(record('198.51.100.4'), 'block');
    expect(store.list().map((r) => r.target).sort()).toEqual(['198.51.100.2', '198.51.100.3', '198.51.100.4']);
  });

  it('writes atomically: concurrent puts all land and no temporary file is left', async () => {
    const store = new FileStore(dir);
    await store.load();
    await Promise.all(Array.from({ length: 50 }, (_, i) => store.put(record(`198.51.100.${i + 1}`), 'block')));
    const onDisk = JSON.parse(await readFile(join(dir, 'blocks.json'), 'utf8')) as { records: BlockRecord[] };
    expect(onDisk.records).toHaveLength(50);
    expect(await readdir(dir)).toEqual(['blocks.json']);
  });

  it('refuses a corrupt file with its path in the message', async () => {
    await writeFile(join(dir, 'blocks.json'), '{"version":1,"records":[');
    const store = new FileStore(dir);
    await expect(store.load()).rejects.toThrow(/blocks\.json is not valid JSON/);
  });
});
