import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
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

  it('concurrent puts all land, each in the journal, and no temporary file is left', async () => {
    const store = new FileStore(dir);
    await store.load();
    await Promise.all(Array.from({ length: 50 }, (_, i) => store.put(record(`198.51.100.${i + 1}`), 'block')));
    await store.flush();
    const names = (await readdir(dir)).filter((name) => name !== 'blocks.lock');
    expect(names).toEqual(['blocks.1.journal']);
    const lines = (await readFile(join(dir, 'blocks.1.journal'), 'utf8')).trim().split('\n');
    expect(lines.map((line) => (JSON.parse(line) as { r: BlockRecord }).r.target)).toEqual(Array.from({ length: 50 }, (_, i) => `198.51.100.${i + 1}`));
  });

  it('compacts into blocks.json and removes the journal the snapshot covers', async () => {
    const store = new FileStore(dir, { compactAfterLines: 10 });
    await store.load();
    for (let i = 1; i <= 12; i++) await store.put(record(`198.51.100.${i}`), 'block');
    await store.close();
    expect((await readdir(dir)).filter((name) => name !== 'blocks.lock').sort()).toEqual(['blocks.11.journal', 'blocks.json']);
    const snapshot = JSON.parse(await readFile(join(dir, 'blocks.json'), 'utf8')) as { version: number; seq: number; records: BlockRecord[] };
    expect(snapshot).toMatchObject({ version: 1, seq: 10 });
    expect(snapshot.records).toHaveLength(10);
    const again = new FileStore(dir);
    await again.load();
    expect(again.list()).toHaveLength(12);
  });

  it('reads a blocks.json written before the journal existed and journals after it', async () => {
    const old = { version: 1, records: [record('198.51.100.9')], history: { '198.51.100.9': [{ at: 7, action: 'block', record: record('198.51.100.9') }] } };
    await writeFile(join(dir, 'blocks.json'), JSON.stringify(old));
    const store = new FileStore(dir);
    await store.load();
    expect(store.get('198.51.100.9')).toEqual(record('198.51.100.9'));
    await store.put(record('198.51.100.10'), 'block');
    const again = new FileStore(dir);
    await again.load();
    expect(again.list().map((r) => r.target)).toEqual(['198.51.100.9', '198.51.100.10']);
    expect(again.history('198.51.100.9')).toEqual([{ at: 7, action: 'block', record: record('198.51.100.9') }]);
  });

  it('refuses a corrupt file with its path in the message', async () => {
    await writeFile(join(dir, 'blocks.json'), '{"version":1,"records":[');
    const store = new FileStore(dir);
    await expect(store.load()).rejects.toThrow(/blocks\.json is not valid JSON/);
  });

});

describe('FileStore compaction failure', () => {
  it('keeps the journals when the snapshot cannot be written and compacts them all on the next try', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'portsnare-store-'));
    try {
      const warnings: Array<{ msg: string }> = [];
      const store = new FileStore(dir, { onWarning: (line) => warnings.push(line) });
      await store.load();
      for (let i = 1; i <= 5; i++) await store.put(record(`198.51.100.${i}`), 'block');
      // a non-empty directory where the snapshot goes: the rename fails
      await mkdir(join(dir, 'blocks.json', 'in-the-way'), { recursive: true });
      await expect(store.compact()).rejects.toThrow(/blocks\.json/);
      expect(warnings.map((w) => w.msg)).toEqual(['store compaction failed; the journal keeps growing, retried in a minute']);
      expect((await readdir(dir)).filter((name) => name !== 'blocks.lock').sort()).toEqual(['blocks.1.journal', 'blocks.6.journal', 'blocks.json']);
      await rm(join(dir, 'blocks.json'), { recursive: true });

      await store.compact();
      await store.put(record('198.51.100.6'), 'block');
      await store.close();
      expect((await readdir(dir)).filter((name) => name !== 'blocks.lock').sort()).toEqual(['blocks.6.journal', 'blocks.json']);
      const again = new FileStore(dir);
      await again.load();
      expect(again.list().map((r) => r.target)).toEqual(['198.51.100.1', '198.51.100.2', '198.51.100.3', '198.51.100.4', '198.51.100.5', '198.51.100.6']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
