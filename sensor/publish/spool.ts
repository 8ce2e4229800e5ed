/**
 * A disk spool: the queue between detection and EventBridge. Every event is written (and
 * fdatasync'ed, in groups) before it counts as taken, so it survives a crash, a restart and an
 * outage of any length; it leaves the spool only after PutEvents accepted it.
 *
 * Layout: `<directory>/<segment>.jsonl` (numbered, one JSON entry per line) and `cursor.json`
 * ({segment, offset}: everything before it was delivered; written by rename, so it is atomic).
 * Bounded in bytes: an append that would pass `maxBytes` is refused, logged and counted — the
 * spool says clearly when it is full and when it has room again.
 */
import { mkdir, open, readdir, readFile, rename, stat, truncate, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { ScanDetected } from '../../core/event';
import { errorText, type Logger } from '../log';

export interface SpoolEntry {
  readonly id: string;
  readonly event: ScanDetected;
  /** epoch ms */
  readonly spooledAt: number;
}

export interface SpoolPosition {
  readonly segment: number;
  readonly offset: number;
}

export interface SpoolOptions {
  readonly directory: string;
  readonly maxBytes: number;
  /** a segment is closed and a new one begun past this size; default min(1 MiB, maxBytes/8) */
  readonly segmentBytes?: number;
  readonly logger: Logger;
}

export interface SpoolStats {
  /** entries waiting */
  readonly depth: number;
  /** bytes on disk (segments) */
  readonly bytes: number;
  readonly maxBytes: number;
  readonly full: boolean;
  /** appends refused because the spool was full */
  readonly refused: number;
  /** lines that could not be read back (torn or corrupt), skipped */
  readonly corrupt: number;
}

const SEGMENT = /^(\d{12})\.jsonl$/;
const name = (segment: number): string => `${String(segment).padStart(12, '0')}.jsonl`;

export class Spool {
  private readonly segmentBytes: number;
  /** segment number → bytes written and synced (what a reader may read) */
  private readonly sizes = new Map<number, number>();
  private cursor: SpoolPosition = { segment: 0, offset: 0 };
  private writeSegment = 0;
  private writer?: FileHandle;
  private queue: Array<{ line: Buffer; resolve: (ok: boolean) => void }> = [];
  private queuedBytes = 0;
  private flushing?: Promise<void>;
  private depthCount = 0;
  private refusedCount = 0;
  private corruptCount = 0;
  private isFull = false;
  private rotateRequested = false;
  private cursorWrites = 0;
  private opened = false;
  private readonly appendWaiters = new Set<() => void>();

  constructor(private readonly options: SpoolOptions) {
    this.segmentBytes = options.segmentBytes ?? Math.max(1024, Math.min(2 ** 20, Math.floor(options.maxBytes / 8)));
  }

  get directory(): string {
    return this.options.directory;
  }

  async open(): Promise<void> {
    await mkdir(this.options.directory, { recursive: true, mode: 0o750 });
    const segments = (await readdir(this.options.directory))
      .map((file) => SEGMENT.exec(file))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b);
    this.cursor = await this.readCursor(segments[0] ?? 0);
    for (const segment of segments) {
      const path = join(this.options.directory, name(segment));
      if (segment < this.cursor.segment) {
        await unlink(path).catch(() => undefined);
        continue;
      }
      let size = (await stat(path)).size;
      if (segment === segments[segments.length - 1]) size = await this.dropTornTail(path, size);
      this.sizes.set(segment, size);
    }
    if (!this.sizes.has(this.cursor.segment)) this.cursor = { segment: segments.find((s) => s >= this.cursor.segment) ?? this.cursor.segment, offset: 0 };
    this.writeSegment = Math.max(this.cursor.segment, ...this.sizes.keys());
    if (!this.sizes.has(this.writeSegment)) this.sizes.set(this.writeSegment, 0);
    this.writer = await open(join(this.options.directory, name(this.writeSegment)), 'a', 0o640);
    this.depthCount = await this.countFrom(this.cursor);
    this.opened = true;
    this.updateFull();
  }

  stats(): SpoolStats {
    return {
      depth: this.depthCount,
      bytes: this.diskBytes(),
      maxBytes: this.options.maxBytes,
      full: this.isFull,
      refused: this.refusedCount,
      corrupt: this.corruptCount,
    };
  }

  /** Writes one entry; resolves true once it is on disk, false when the spool is full. */
  append(entry: SpoolEntry): Promise<boolean> {
    if (!this.opened) return Promise.reject(new Error('spool is not open'));
    const line = Buffer.from(JSON.stringify(entry) + '\n', 'utf8');
    if (this.diskBytes() + this.queuedBytes + line.length > this.options.maxBytes) {
      this.refusedCount++;
      if (!this.isFull || this.refusedCount % 1000 === 1) {
        this.options.logger.error('spool full: event NOT kept', {
          directory: this.options.directory,
          maxBytes: this.options.maxBytes,
          depth: this.depthCount,
          refused: this.refusedCount,
          attacker: entry.event.attacker,
        });
      }
      this.isFull = true;
      return Promise.resolve(false);
    }
    this.queuedBytes += line.length;
    return new Promise((resolve) => {
      this.queue.push({ line, resolve });
      this.kick();
    });
  }

  /** Resolves when an entry is appended (or after `ms`, or on `signal`). */
  waitForAppend(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.appendWaiters.delete(done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.appendWaiters.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  /**
   * Up to `max` entries from the cursor; `end` is the position after the last line read and
   * `lines` how many lines that is (unreadable lines are skipped but counted, for commit).
   */
  async peek(max: number): Promise<{ entries: SpoolEntry[]; end: SpoolPosition; lines: number }> {
    const out: SpoolEntry[] = [];
    let lines = 0;
    let position = this.cursor;
    while (lines < max) {
      const size = this.sizes.get(position.segment);
      if (size === undefined) break;
      if (position.offset >= size) {
        const next = [...this.sizes.keys()].filter((s) => s > position.segment).sort((a, b) => a - b)[0];
        if (next === undefined) break;
        position = { segment: next, offset: 0 };
        continue;
      }
      const handle = await open(join(this.options.directory, name(position.segment)), 'r');
      try {
        const length = Math.min(size - position.offset, 4 * 2 ** 20);
        const buffer = Buffer.alloc(length);
        const { bytesRead } = await handle.read(buffer, 0, length, position.offset);
        let start = 0;
        while (lines < max) {
          const newline = buffer.indexOf(0x0a, start);
          if (newline < 0 || newline >= bytesRead) break;
          const text = buffer.subarray(start, newline).toString('utf8');
          start = newline + 1;
          lines++;
          const entry = parseEntry(text);
          if (entry) out.push(entry);
          else {
            this.corruptCount++;
            this.options.logger.warn('spool: unreadable line skipped', { segment: position.segment, offset: position.offset + start });
          }
        }
        position = { segment: position.segment, offset: position.offset + start };
        if (start === 0) break; // a line longer than the read window: cannot happen with our entries
      } finally {
        await handle.close();
      }
    }
    return { entries: out, end: position, lines };
  }

  /** Everything up to `position` was delivered: move the cursor, delete finished segments. */
  async commit(position: SpoolPosition, lines: number): Promise<void> {
    this.cursor = position;
    this.depthCount = Math.max(0, this.depthCount - lines);
    for (const segment of [...this.sizes.keys()]) {
      const finished = segment < position.segment || (segment === position.segment && segment !== this.writeSegment && position.offset >= (this.sizes.get(segment) ?? 0));
      if (finished && segment !== this.writeSegment) {
        this.sizes.delete(segment);
        await unlink(join(this.options.directory, name(segment))).catch(() => undefined);
      }
    }
    if (!this.sizes.has(this.cursor.segment)) {
      const next = [...this.sizes.keys()].sort((a, b) => a - b)[0] ?? this.writeSegment;
      this.cursor = { segment: next, offset: 0 };
    }
    // Everything delivered: the writer starts a fresh segment so the bytes come back.
    this.rotateRequested = true;
    this.kick();
    await this.writeCursor();
    this.updateFull();
  }

  async close(): Promise<void> {
    while (this.flushing) await this.flushing;
    await this.writeCursor();
    await this.writer?.close();
    this.writer = undefined;
    this.opened = false;
  }

  private diskBytes(): number {
    let total = 0;
    for (const size of this.sizes.values()) total += size;
    return total;
  }

  private updateFull(): void {
    if (this.isFull && this.diskBytes() + this.queuedBytes < this.options.maxBytes * 0.9) {
      this.isFull = false;
      this.options.logger.warn('spool has room again', { directory: this.options.directory, depth: this.depthCount, refused: this.refusedCount });
    }
  }

  /** Runs the one writer (appends and rotation are serialized through it). */
  private kick(): void {
    if (this.flushing) return;
    this.flushing = this.flushLoop().finally(() => {
      this.flushing = undefined;
      if (this.queue.length || this.rotateRequested) this.kick();
    });
  }

  private async flushLoop(): Promise<void> {
    for (;;) {
      if (this.rotateRequested) {
        this.rotateRequested = false;
        const written = this.sizes.get(this.writeSegment) ?? 0;
        if (this.depthCount === 0 && this.cursor.segment === this.writeSegment && written > 0 && this.cursor.offset >= written) {
          await this.rotate();
          await this.writeCursor();
          this.updateFull();
        }
      }
      if (!this.queue.length) return;
      const batch = this.queue.splice(0, 512);
      try {
        if ((this.sizes.get(this.writeSegment) ?? 0) >= this.segmentBytes) await this.rotate();
        const data = Buffer.concat(batch.map((b) => b.line));
        await this.writer!.write(data);
        await this.writer!.datasync();
        this.sizes.set(this.writeSegment, (this.sizes.get(this.writeSegment) ?? 0) + data.length);
        this.depthCount += batch.length;
        this.queuedBytes -= data.length;
        for (const b of batch) b.resolve(true);
        for (const wake of [...this.appendWaiters]) wake();
      } catch (error) {
        this.queuedBytes -= batch.reduce((n, b) => n + b.line.length, 0);
        this.refusedCount += batch.length;
        this.options.logger.error('spool: write failed, events NOT kept', { directory: this.options.directory, error: errorText(error), events: batch.length });
        for (const b of batch) b.resolve(false);
      }
    }
  }

  private async rotate(): Promise<void> {
    await this.writer?.close();
    const previous = this.writeSegment;
    this.writeSegment = previous + 1;
    this.sizes.set(this.writeSegment, 0);
    this.writer = await open(join(this.options.directory, name(this.writeSegment)), 'a', 0o640);
    if (this.cursor.segment === previous && this.cursor.offset >= (this.sizes.get(previous) ?? 0)) {
      this.sizes.delete(previous);
      await unlink(join(this.options.directory, name(previous))).catch(() => undefined);
      this.cursor = { segment: this.writeSegment, offset: 0 };
    }
  }

  private async readCursor(fallbackSegment: number): Promise<SpoolPosition> {
    try {
      const raw = JSON.parse(await readFile(join(this.options.directory, 'cursor.json'), 'utf8')) as Partial<SpoolPosition>;
      if (Number.isSafeInteger(raw.segment) && Number.isSafeInteger(raw.offset) && raw.segment! >= 0 && raw.offset! >= 0) {
        return { segment: raw.segment!, offset: raw.offset! };
      }
    } catch {
      // no cursor yet (first start) or unreadable: start from the oldest segment
    }
    return { segment: fallbackSegment, offset: 0 };
  }

  private async writeCursor(): Promise<void> {
    const path = join(this.options.directory, 'cursor.json');
    const tmp = `${path}.${process.pid}.${++this.cursorWrites}.tmp`;
    await writeFile(tmp, JSON.stringify(this.cursor));
    await rename(tmp, path);
  }

  /** A crash mid-write can leave half a line at the end: cut it off. */
  private async dropTornTail(path: string, size: number): Promise<number> {
    if (size === 0) return 0;
    const handle = await open(path, 'r');
    try {
      const window = Math.min(size, 64 * 1024);
      const buffer = Buffer.alloc(window);
      await handle.read(buffer, 0, window, size - window);
      if (buffer[window - 1] === 0x0a) return size;
      const last = buffer.lastIndexOf(0x0a);
      const keep = last < 0 ? size - window : size - window + last + 1;
      this.options.logger.warn('spool: torn last line cut off', { path, bytes: size - keep });
      await truncate(path, keep);
      return keep;
    } finally {
      await handle.close();
    }
  }

  private async countFrom(position: SpoolPosition): Promise<number> {
    let count = 0;
    for (const [segment, size] of [...this.sizes.entries()].sort(([a], [b]) => a - b)) {
      if (segment < position.segment || size === 0) continue;
      const data = await readFile(join(this.options.directory, name(segment)));
      const from = segment === position.segment ? position.offset : 0;
      for (let i = from; i < Math.min(size, data.length); i++) if (data[i] === 0x0a) count++;
    }
    return count;
  }
}

function parseEntry(text: string): SpoolEntry | undefined {
  try {
    const value = JSON.parse(text) as SpoolEntry;
    return typeof value?.id === 'string' && value.id && typeof value.event === 'object' && value.event !== null ? value : undefined;
  } catch {
    return undefined;
  }
}
