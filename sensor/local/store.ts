/**
 * The host agent's desired state on disk: a snapshot (`blocks.json`) and an append-only journal
 * of JSON lines after it (layout in ./store/files.ts).
 *
 * Durability: `put()` resolves once its line is written to the journal with write(2). From then
 * on it survives the process being killed (kill -9, a crash): the data is the kernel's. The
 * journal is fsynced at most `syncIntervalMs` (100 ms) after a write (the timer holds the
 * process until then), so a power loss or kernel crash can lose the blocks acknowledged in that
 * last window; `flush()` resolves once everything put so far is fsynced. A line torn by a crash is cut off at the next open; the snapshot is
 * replaced atomically, so no crash leaves a file that prevents a restart.
 *
 * Compaction: once the journal holds as many lines as the state has records (and at least
 * `compactAfterLines`), appends move to a new journal file, a snapshot of the state up to there
 * is written beside it, and the journals it covers are removed.
 *
 * Several writers (the agent and any number of `portsnare … --state-dir` commands): every write,
 * open and compaction holds flock(2) on `blocks.lock` (the native helper; the kernel drops it when
 * its holder dies, kill -9 included). Holding it, a store first catches up with what others
 * appended (the journal's new lines, a journal another writer started, a compaction that replaced
 * its file), so sequence numbers stay unique and no acknowledged line is dropped at replay. The
 * local pipeline holds it across read-decide-write (`transaction`). The agent polls for the lock
 * and never blocks its event loop; a command line may wait in the kernel (`blockingLock`).
 */
import { closeSync, existsSync, fstatSync, fsync, fsyncSync, ftruncateSync, openSync, readFileSync, readSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { BlockRecord } from '../../core/policy';
import { isActive } from '../../core/policy';
import {
  appendAll,
  type HistoryEntry,
  journalName,
  listDirectory,
  LOCK_FILE,
  parseLine,
  makeDirectory,
  ownTemporaries,
  processAlive,
  readJournal,
  removeFile,
  StateDirectoryError,
  STORE_FILE,
  syncDirectory,
  writeSnapshot,
} from './store/files';

import { lockFile, nativeUnavailable, unlockFile } from '../native-helper';

let warnedNoLock = false;
import { COMPACT_AFTER_LINES, type FileStoreOptions, MAX_HISTORY_PER_TARGET, MAX_RECORDS, type StoreStats, SYNC_INTERVAL_MS } from './store/options';

export { STORE_FILE, StateDirectoryError, COMPACT_AFTER_LINES, MAX_HISTORY_PER_TARGET, MAX_RECORDS, SYNC_INTERVAL_MS };
export type { FileStoreOptions, StoreStats };
export type { HistoryEntry };

const fsyncAsync = promisify(fsync);

export class FileStore {
  readonly path: string;
  private readonly records = new Map<string, BlockRecord>();
  private readonly histories = new Map<string, HistoryEntry[]>();
  private readonly maxHistory: number;
  private readonly maxRecords: number;
  private readonly now: () => number;
  private readonly syncIntervalMs: number;
  private readonly compactAfterLines: number;
  private readonly readOnly: boolean;
  private readonly warn: (line: { msg: string; [key: string]: unknown }) => void;
  private journals: Array<{ firstSeq: number; path: string }> = [];
  private fd: number | undefined;
  private fdSize = 0;
  private seq = 0;
  /** the last line the snapshot on disk holds */
  private snapshotSeq = 0;
  private syncedSeq = 0;
  private linesSinceSnapshot = 0;
  private recovered = { tornBytes: 0, corruptLines: 0 };
  private loading: Promise<void> | undefined;
  private syncTimer: NodeJS.Timeout | undefined;
  /** every fsync and close of a journal descriptor runs on this chain, one at a time */
  private fdChain: Promise<void> = Promise.resolve();
  private compacting: Promise<void> | undefined;
  private compactNotBefore = 0;
  /** blocks.lock, open while the store is */
  private lockFd: number | undefined;
  /** operations of this process inside the lock (they share it: JS runs one at a time) */
  private holders = 0;
  private acquiring: Promise<void> | undefined;
  private readonly blockingLock: boolean;
  private failure: Error | undefined;
  private writeErrors = 0;
  private readonly lockTimeoutMs: number;

  constructor(
    readonly directory: string,
    options: FileStoreOptions = {},
  ) {
    this.path = join(directory, STORE_FILE);
    this.maxHistory = options.maxHistoryPerTarget ?? MAX_HISTORY_PER_TARGET;
    this.maxRecords = options.maxRecords ?? MAX_RECORDS;
    this.now = options.now ?? Date.now;
    this.syncIntervalMs = options.syncIntervalMs ?? SYNC_INTERVAL_MS;
    this.compactAfterLines = options.compactAfterLines ?? COMPACT_AFTER_LINES;
    this.readOnly = options.readOnly ?? false;
    this.warn = options.onWarning ?? (() => undefined);
    this.blockingLock = options.blockingLock ?? false;
    this.lockTimeoutMs = options.lockTimeoutMs ?? 30_000;
  }

  /**
   * Runs `task` holding the store's lock, after catching up with other writers: what `task` reads
   * and writes is not interleaved with another process's writes. Nested and concurrent calls of
   * this process share the lock.
   */
  async transaction<T>(task: () => Promise<T>): Promise<T> {
    if (this.readOnly) return task();
    await this.acquire();
    try {
      return await task();
    } finally {
      this.release();
    }
  }

  private async acquire(): Promise<void> {
    if (this.holders++ > 0) {
      try {
        await this.acquiring;
      } catch (error) {
        this.holders--;
        throw error;
      }
      return;
    }
    this.acquiring = this.takeLock();
    try {
      await this.acquiring;
    } catch (error) {
      this.holders--;
      throw error;
    } finally {
      this.acquiring = undefined;
    }
  }

  private release(): void {
    if (--this.holders > 0 || this.lockFd === undefined) return;
    unlockFile(this.lockFd);
  }

  private async takeLock(): Promise<void> {
    if (this.lockFd === undefined) {
      makeDirectory(this.directory);
      try {
        this.lockFd = openSync(join(this.directory, LOCK_FILE), 'a', 0o640);
      } catch (error) {
        throw StateDirectoryError.from(this.directory, join(this.directory, LOCK_FILE), 'open', error);
      }
    }
    const fd = this.lockFd;
    if (nativeUnavailable && !warnedNoLock) {
      warnedNoLock = true;
      this.warn({ msg: `store: no writer lock (${nativeUnavailable}): concurrent writers (the agent and \`portsnare … --state-dir\`) may lose blocks`, level: 'error', directory: this.directory });
    }
    const until = Date.now() + this.lockTimeoutMs;
    let pause = 1;
    while (!lockFile(fd, this.blockingLock)) {
      if (Date.now() > until) throw new Error(`the store in ${this.directory} stayed locked for ${this.lockTimeoutMs} ms (${LOCK_FILE}: another portsnare writer holds it)`);
      await new Promise((resolve) => setTimeout(resolve, pause));
      pause = Math.min(pause * 2, 20);
    }
    try {
      if (this.fd !== undefined) await this.catchUp();
    } catch (error) {
      unlockFile(fd);
      throw error;
    }
  }

  /**
   * Holding the lock: reads what other writers appended since this store last looked — the rest
   * of its journal, then any journal begun after it — or re-opens when a compaction removed its
   * journal. A torn last line (its writer died) is cut: nobody else can be writing it.
   */
  private async catchUp(): Promise<void> {
    for (;;) {
      const fd = this.fd;
      const current = this.journals.at(-1);
      if (fd === undefined || !current) return;
      const stat = fstatSync(fd);
      if (stat.nlink === 0) {
        await this.open(); // another writer compacted: its snapshot and journal hold everything
        return;
      }
      if (stat.size > this.fdSize) {
        const length = stat.size - this.fdSize;
        const buffer = Buffer.alloc(length);
        let read = 0;
        while (read < length) {
          const n = readSync(fd, buffer, read, length - read, this.fdSize + read);
          if (n === 0) break;
          read += n;
        }
        const good = buffer.lastIndexOf(0x0a, read - 1) + 1;
        for (const text of buffer.toString('utf8', 0, good).split('\n')) {
          if (text === '') continue;
          const line = parseLine(text);
          if (!line) {
            this.recovered.corruptLines++;
            continue;
          }
          if (line.s <= this.seq) continue;
          this.seq = line.s;
          this.linesSinceSnapshot++;
          this.apply(line.at, line.a, line.r);
        }
        if (good < stat.size) ftruncateSync(fd, this.fdSize + good);
        this.fdSize += good;
        this.syncedSeq = this.seq;
      }
      const next = join(this.directory, journalName(this.seq + 1));
      if (next === current.path || !existsSync(next)) return;
      // another writer began a new journal (its compaction): follow it
      await this.onFd(async () => {
        closeSync(fd);
      });
      this.journals.push({ firstSeq: this.seq + 1, path: next });
      this.fd = this.openJournal(next);
      this.fdSize = 0;
    }
  }

  /** A loaded store: `new FileStore(directory, options)` and `load()`. */
  static async open(directory: string, options: FileStoreOptions = {}): Promise<FileStore> {
    const store = new FileStore(directory, options);
    await store.load();
    return store;
  }

  /** Whether `directory` can hold the store (see `check()`), without reading it. */
  static async check(directory: string): Promise<void> {
    await new FileStore(directory).check();
  }

  /**
   * Creates the state directory when missing and proves a file in it can be created, written,
   * fsynced and removed. Throws a StateDirectoryError naming `stateDirectory`, the path and the
   * errno (EACCES, EROFS, ENOTDIR, ENOENT under /proc …). For the agent's `--check`.
   */
  async check(): Promise<void> {
    makeDirectory(this.directory);
    const probe = `${this.path}.tmp-${process.pid}-check`;
    try {
      const fd = openSync(probe, 'w', 0o640);
      try {
        writeSync(fd, 'portsnare state directory check\n');
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      unlinkSync(probe);
    } catch (error) {
      throw StateDirectoryError.from(this.directory, probe, 'write', error);
    }
    const last = listDirectory(this.directory).journals.at(-1);
    if (last) closeSync(this.openJournal(last.path));
  }

  /**
   * Opens the store: creates the directory, removes temporary files left by dead processes, reads
   * the snapshot (an old `blocks.json` included) and replays the journal after it, cutting a torn
   * last line. A missing directory or file is an empty store; an unusable directory is a
   * StateDirectoryError; a snapshot that is not valid JSON is an error naming it. Loading again
   * re-reads the disk.
   */
  async load(): Promise<void> {
    this.loading ??= (this.readOnly ? this.open() : this.transaction(() => this.open())).finally(() => (this.loading = undefined));
    return this.loading;
  }

  get(target: string): BlockRecord | undefined {
    return this.records.get(target);
  }

  /**
   * Appends the record to the journal and then stores it (replacing the one for its target) and
   * appends it to its history. Resolves with the record stored once the line is written (see
   * the header for what that survives). A failed write rejects and changes nothing. The record
   * is stored as given: the re-block rule (never shorten an active block unless asked) is the
   * policy's, core/policy.ts `decide`.
   */
  async put(record: BlockRecord, action: string): Promise<BlockRecord> {
    if (this.readOnly) throw new Error(`the store in ${this.directory} is open read-only`);
    if (this.fd === undefined) await this.load();
    return this.transaction(async () => this.append(record, action));
  }

  private append(record: BlockRecord, action: string): BlockRecord {
    const fd = this.fd;
    if (fd === undefined) throw new Error(`the store in ${this.directory} is not open`);
    const at = this.now();
    const stored = record;
    const line = JSON.stringify({ s: this.seq + 1, at, a: action, r: stored }) + '\n';
    const path = this.journals.at(-1)?.path ?? this.directory;
    try {
      appendAll(fd, line, this.fdSize);
    } catch (error) {
      throw this.failed(StateDirectoryError.from(this.directory, path, 'append to', error));
    }
    this.failure = undefined;
    this.fdSize += Buffer.byteLength(line);
    this.seq++;
    this.linesSinceSnapshot++;
    this.apply(at, action, stored);
    this.scheduleSync();
    this.maybeCompact();
    return stored;
  }

  list(): BlockRecord[] {
    return [...this.records.values()];
  }

  active(now: number): BlockRecord[] {
    return this.list().filter((record) => isActive(record, now));
  }

  history(target: string): HistoryEntry[] {
    return [...(this.histories.get(target) ?? [])];
  }

  /** Every history entry at or after `from` and before `until` (the host digest's window: sensor/local/digest.ts). */
  *historyBetween(from: number, until: number): Generator<HistoryEntry & { readonly target: string }> {
    for (const [target, entries] of this.histories) {
      for (const entry of entries) if (entry.at >= from && entry.at < until) yield { ...entry, target };
    }
  }

  /** Resolves once everything put so far is fsynced; rejects with the fsync's error. */
  async flush(): Promise<void> {
    if (this.syncTimer) clearTimeout(this.syncTimer);
    this.syncTimer = undefined;
    const upTo = this.seq;
    await this.onFd(async () => {
      if (this.syncedSeq >= upTo || this.fd === undefined) return;
      try {
        await fsyncAsync(this.fd);
      } catch (error) {
        throw this.failed(StateDirectoryError.from(this.directory, this.journals.at(-1)?.path ?? this.directory, 'fsync', error));
      }
      this.syncedSeq = Math.max(this.syncedSeq, upTo);
    });
  }

  /** Writes a snapshot of the state now and removes the journals it covers (normally automatic). */
  async compact(): Promise<void> {
    if (this.readOnly) throw new Error(`the store in ${this.directory} is open read-only`);
    if (this.fd === undefined) await this.load();
    this.compacting ??= this.transaction(() => this.runCompaction()).finally(() => (this.compacting = undefined));
    return this.compacting;
  }

  /** Flushes, waits for a compaction in flight and closes the journal. Put after close reopens. */
  async close(): Promise<void> {
    await this.loading;
    await this.compacting?.catch(() => undefined);
    await this.flush();
    await this.onFd(async () => {
      if (this.fd !== undefined) closeSync(this.fd);
      this.fd = undefined;
    });
    if (this.lockFd !== undefined && this.holders === 0) {
      closeSync(this.lockFd);
      this.lockFd = undefined;
    }
  }

  /**
   * The last write or fsync failure, until a write succeeds again: the agent's /healthz turns 503
   * and `status` names it (a store that cannot write loses every block it is told).
   */
  health(): { readonly ok: boolean; readonly problem?: string; readonly writeErrors: number } {
    return this.failure ? { ok: false, problem: `block store failing: ${this.failure.message}`, writeErrors: this.writeErrors } : { ok: true, writeErrors: this.writeErrors };
  }

  private failed(error: Error): Error {
    this.failure = error;
    this.writeErrors++;
    return error;
  }

  stats(): StoreStats {
    return { seq: this.seq, syncedSeq: this.syncedSeq, journalLines: this.linesSinceSnapshot, recovered: { ...this.recovered } };
  }

  private async open(): Promise<void> {
    await this.compacting?.catch(() => undefined);
    if (this.syncTimer) clearTimeout(this.syncTimer);
    this.syncTimer = undefined;
    await this.onFd(async () => {
      if (this.fd !== undefined) closeSync(this.fd);
      this.fd = undefined;
    });
    this.records.clear();
    this.histories.clear();
    this.journals = [];
    this.seq = this.snapshotSeq = this.syncedSeq = this.linesSinceSnapshot = 0;
    this.recovered = { tornBytes: 0, corruptLines: 0 };

    if (this.readOnly) {
      try {
        listDirectory(this.directory);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw StateDirectoryError.from(this.directory, this.directory, 'read directory', error);
      }
    } else {
      makeDirectory(this.directory);
    }
    let listing: ReturnType<typeof listDirectory>;
    try {
      listing = listDirectory(this.directory);
    } catch (error) {
      throw StateDirectoryError.from(this.directory, this.directory, 'read directory', error);
    }
    if (!this.readOnly) {
      for (const tmp of listing.temporaries) {
        const mine = tmp.pid === process.pid;
        if ((mine && !ownTemporaries.has(tmp.path)) || (!mine && !processAlive(tmp.pid))) removeFile(tmp.path);
      }
    }

    const snapshotSeq = this.readSnapshot();
    this.snapshotSeq = snapshotSeq;
    this.seq = snapshotSeq;
    listing.journals.forEach((journal, i) => {
      const last = i === listing.journals.length - 1;
      let read: ReturnType<typeof readJournal>;
      try {
        read = readJournal(journal.path, last && !this.readOnly);
      } catch (error) {
        throw StateDirectoryError.from(this.directory, journal.path, 'read', error);
      }
      this.recovered.tornBytes += read.tornBytes;
      this.recovered.corruptLines += read.corrupt;
      for (const line of read.lines) {
        if (line.s <= this.seq) continue; // in the snapshot already
        this.seq = line.s;
        this.linesSinceSnapshot++;
        this.apply(line.at, line.a, line.r);
      }
    });
    // journals wholly in the snapshot: left by a crash between the snapshot's rename and their removal
    const live = listing.journals.filter((_journal, i) => {
      const next = listing.journals[i + 1];
      return next === undefined || next.firstSeq - 1 > snapshotSeq;
    });
    if (this.readOnly) return;
    for (const journal of listing.journals) if (!live.includes(journal)) removeFile(journal.path);
    this.journals = live;
    if (this.journals.length === 0) this.journals.push({ firstSeq: this.seq + 1, path: join(this.directory, journalName(this.seq + 1)) });
    const current = this.journals.at(-1)!;
    this.fd = this.openJournal(current.path);
    this.fdSize = fstatSync(this.fd).size;
    this.syncedSeq = this.seq;
    const { tornBytes, corruptLines } = this.recovered;
    if (tornBytes > 0 || corruptLines > 0) {
      this.warn({ msg: 'store journal recovered', directory: this.directory, tornBytes, corruptLines });
    }
    // damaged lines are skipped: a snapshot now replaces the journal that holds them
    if (corruptLines > 0) await this.runCompaction();
    else this.maybeCompact();
  }

  /** The snapshot's records and history into memory; its seq (0 for none or a file from before the journal). */
  private readSnapshot(): number {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw StateDirectoryError.from(this.directory, this.path, 'read', error);
    }
    let parsed: { version?: unknown; seq?: unknown; records?: unknown; history?: unknown };
    try {
      parsed = JSON.parse(text) as typeof parsed;
    } catch (error) {
      throw new Error(`state file ${this.path} is not valid JSON: ${(error as Error).message}`);
    }
    if (parsed.version !== 1 || !Array.isArray(parsed.records)) throw new Error(`state file ${this.path} has an unknown format (version ${String(parsed.version)})`);
    for (const record of parsed.records as BlockRecord[]) this.records.set(record.target, record);
    for (const [target, entries] of Object.entries((parsed.history ?? {}) as Record<string, HistoryEntry[]>)) {
      this.histories.set(target, entries.slice(-this.maxHistory));
    }
    return typeof parsed.seq === 'number' && Number.isSafeInteger(parsed.seq) ? parsed.seq : 0;
  }

  private openJournal(path: string): number {
    try {
      const fresh = listDirectory(this.directory).journals.every((j) => j.path !== path);
      const fd = openSync(path, 'a+', 0o640); // read too: catchUp() reads what other writers appended
      if (fresh) syncDirectory(this.directory);
      return fd;
    } catch (error) {
      throw StateDirectoryError.from(this.directory, path, 'open for append', error);
    }
  }

  private apply(at: number, action: string, record: BlockRecord): void {
    this.records.delete(record.target); // re-insert: the map's order is least recently written first
    this.records.set(record.target, record);
    const entries = this.histories.get(record.target) ?? [];
    entries.push({ at, action, record });
    if (entries.length > this.maxHistory) entries.splice(0, entries.length - this.maxHistory);
    this.histories.set(record.target, entries);
    this.prune();
  }

  private prune(): void {
    if (this.records.size <= this.maxRecords) return;
    for (const [target, record] of this.records) {
      if (this.records.size <= this.maxRecords) break;
      if (record.active) continue;
      this.records.delete(target);
      this.histories.delete(target);
    }
  }

  private onFd(task: () => Promise<void>): Promise<void> {
    const result = this.fdChain.then(task, task);
    this.fdChain = result.catch(() => undefined);
    return result;
  }

  private scheduleSync(): void {
    if (this.syncTimer) return;
    this.syncTimer = setTimeout(() => {
      this.syncTimer = undefined;
      this.flush().catch((error: unknown) => this.warn({ msg: 'store fsync failed', level: 'error', error: (error as Error).message }));
    }, this.syncIntervalMs); // not unref'd: a process that ends without close() still fsyncs its last puts
  }

  private maybeCompact(): void {
    if (this.compacting || this.now() < this.compactNotBefore) return;
    // at least as many lines as records: the snapshot's cost is spread over the lines it replaces
    if (this.linesSinceSnapshot < Math.max(this.compactAfterLines, this.records.size)) return;
    this.compact().catch(() => undefined); // runCompaction reports its failure
  }

  private async runCompaction(): Promise<void> {
    const oldFd = this.fd;
    if (oldFd === undefined) return;
    const seq = this.seq;
    try {
      if (seq > this.snapshotSeq) {
        // the state at `seq`, taken before any await: later puts go to the new journal only
        const content = { seq, records: this.list(), history: [...this.histories].map(([target, entries]) => [target, entries.slice()] as const) };
        if ((this.journals.at(-1)?.firstSeq ?? 0) <= seq) {
          // appends go to a new journal from here; the snapshot covers everything up to `seq`
          const next = { firstSeq: seq + 1, path: join(this.directory, journalName(seq + 1)) };
          this.fd = this.openJournal(next.path);
          this.fdSize = 0;
          this.journals.push(next);
          await this.onFd(async () => {
            try {
              await fsyncAsync(oldFd);
            } finally {
              closeSync(oldFd);
            }
          });
        }
        this.linesSinceSnapshot = 0;
        await writeSnapshot(this.directory, content);
        this.snapshotSeq = seq;
      } else if (this.fdSize > 0 && this.journals.at(-1)?.firstSeq === seq + 1) {
        // nothing valid since the snapshot, yet bytes in the journal: the damaged lines just skipped
        ftruncateSync(oldFd, 0);
        this.fdSize = 0;
      }
      // every journal but the current one ends where the next begins: those before snapshotSeq + 1 are in the snapshot
      const current = this.journals.at(-1);
      for (const journal of this.journals.filter((j) => j !== current && j.firstSeq <= this.snapshotSeq)) removeFile(journal.path);
      this.journals = this.journals.filter((j) => j === current || j.firstSeq > this.snapshotSeq);
    } catch (error) {
      this.compactNotBefore = this.now() + 60_000;
      this.warn({ msg: 'store compaction failed; the journal keeps growing, retried in a minute', level: 'error', directory: this.directory, error: (error as Error).message });
      throw error;
    }
  }
}
