import { appendFileSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { memoryLogger } from '../../sensor/log';
import { Spool } from '../../sensor/publish/spool';
import { scanEvent, tempDir, testNetAddress, until } from './helpers';

describe('disk spool', () => {
  let dir: ReturnType<typeof tempDir>;
  beforeEach(() => (dir = tempDir('spool')));
  afterEach(() => dir.remove());

  const open = async (opts: { maxBytes?: number; segmentBytes?: number } = {}) => {
    const logger = memoryLogger();
    const spool = new Spool({ directory: dir.path, maxBytes: opts.maxBytes ?? 1 << 20, ...(opts.segmentBytes ? { segmentBytes: opts.segmentBytes } : {}), logger });
    await spool.open();
    return { spool, logger };
  };
  const entry = (i: number) => ({ id: `id-${i}`, event: scanEvent(testNetAddress(i)), spooledAt: i });

  it('hands entries back in order and forgets them once committed', async () => {
    const { spool } = await open();
    for (let i = 0; i < 5; i++) await spool.append(entry(i));
    const first = await spool.peek(3);
    expect(first.entries.map((e) => e.id)).toEqual(['id-0', 'id-1', 'id-2']);
    await spool.commit(first.end, first.lines);
    const rest = await spool.peek(10);
    expect(rest.entries.map((e) => e.id)).toEqual(['id-3', 'id-4']);
    expect(spool.stats().depth).toBe(2);
  });

  it('survives a restart: what was not committed is still there, what was is not', async () => {
    const a = await open();
    for (let i = 0; i < 4; i++) await a.spool.append(entry(i));
    const batch = await a.spool.peek(1);
    await a.spool.commit(batch.end, batch.lines);
    await a.spool.close();

    const b = await open();
    expect(b.spool.stats().depth).toBe(3);
    expect((await b.spool.peek(10)).entries.map((e) => e.id)).toEqual(['id-1', 'id-2', 'id-3']);
  });

  it('cuts a torn last line (a crash mid-write) and keeps the rest', async () => {
    const a = await open();
    await a.spool.append(entry(0));
    await a.spool.close();
    const segment = readdirSync(dir.path).find((f) => f.endsWith('.jsonl'))!;
    appendFileSync(join(dir.path, segment), '{"id":"half');

    const b = await open();
    expect(b.spool.stats().depth).toBe(1);
    expect((await b.spool.peek(10)).entries.map((e) => e.id)).toEqual(['id-0']);
    expect(readFileSync(join(dir.path, segment), 'utf8').endsWith('\n')).toBe(true);
  });

  it('rolls segments and deletes them once delivered, so the bytes come back', async () => {
    const { spool } = await open({ segmentBytes: 1024 });
    for (let i = 0; i < 40; i++) await spool.append(entry(i));
    expect(readdirSync(dir.path).filter((f) => f.endsWith('.jsonl')).length).toBeGreaterThan(3);
    for (;;) {
      const batch = await spool.peek(10);
      if (!batch.lines) break;
      await spool.commit(batch.end, batch.lines);
    }
    await spool.close();
    expect(spool.stats()).toMatchObject({ depth: 0 });
    expect(spool.stats().bytes).toBeLessThan(1024);
  });

  it('refuses past maxBytes, says so, and takes events again once drained', async () => {
    const { spool, logger } = await open({ maxBytes: 4096 });
    const kept: boolean[] = [];
    for (let i = 0; i < 30; i++) kept.push(await spool.append(entry(i)));
    expect(kept.includes(false)).toBe(true);
    expect(spool.stats().full).toBe(true);
    expect(logger.lines.filter((l) => l.msg === 'spool full: event NOT kept')).not.toHaveLength(0);

    for (;;) {
      const batch = await spool.peek(10);
      if (!batch.lines) break;
      await spool.commit(batch.end, batch.lines);
    }
    await until(() => !spool.stats().full, 3000, 'room in the spool');
    expect(logger.lines.some((l) => l.msg === 'spool has room again')).toBe(true);
    expect(await spool.append(entry(100))).toBe(true);
  });
});
