/**
 * The host agent's desired state on disk: one JSON file (`blocks.json` in the state directory)
 * of BlockRecords and a bounded history, written atomically — a temporary file, fsync, rename,
 * fsync of the directory — so a crash leaves either the old or the new file, never half of one.
 * Writes are coalesced: while one is in flight, later puts are folded into the next write.
 */
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { BlockRecord } from '../../core/policy';
import { isActive } from '../../core/policy';

export interface HistoryEntry {
  readonly at: number;
  readonly action: string;
  readonly record: BlockRecord;
}

export const STORE_FILE = 'blocks.json';
/** history entries kept per target, newest last */
export const MAX_HISTORY_PER_TARGET = 50;
/** records kept; past this the inactive records lifted longest ago go first */
export const MAX_RECORDS = 100_000;

interface StoreFile {
  readonly version: 1;
  readonly records: BlockRecord[];
  readonly history: Record<string, HistoryEntry[]>;
}

export interface FileStoreOptions {
  readonly maxHistoryPerTarget?: number;
  readonly maxRecords?: number;
  /** clock for history entries; defaults to Date.now */
  readonly now?: () => number;
}

export class FileStore {
  readonly path: string;
  private readonly records = new Map<string, BlockRecord>();
  private readonly histories = new Map<string, HistoryEntry[]>();
  private readonly maxHistory: number;
  private readonly maxRecords: number;
  private readonly now: () => number;
  private writing: Promise<void> | undefined;
  private pending: Promise<void> | undefined;

  constructor(
    readonly directory: string,
    options: FileStoreOptions = {},
  ) {
    this.path = join(directory, STORE_FILE);
    this.maxHistory = options.maxHistoryPerTarget ?? MAX_HISTORY_PER_TARGET;
    this.maxRecords = options.maxRecords ?? MAX_RECORDS;
    this.now = options.now ?? Date.now;
  }

  /** Reads the file (a missing file is an empty store); a corrupt file is an error naming it. */
  async load(): Promise<void> {
    await mkdir(this.directory, { recursive: true, mode: 0o750 });
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    let parsed: StoreFile;
    try {
      parsed = JSON.parse(text) as StoreFile;
    } catch (error) {
      throw new Error(`state file ${this.path} is not valid JSON: ${(error as Error).message}`);
    }
    if (parsed.version !== 1 || !Array.isArray(parsed.records)) throw new Error(`state file ${this.path} has an unknown format (version ${String(parsed.version)})`);
    this.records.clear();
    this.histories.clear();
    for (const record of parsed.records) this.records.set(record.target, record);
    for (const [target, entries] of Object.entries(parsed.history ?? {})) this.histories.set(target, entries.slice(-this.maxHistory));
  }

  get(target: string): BlockRecord | undefined {
    return this.records.get(target);
  }

  /** Stores the record (replacing the one for its target), appends to its history, and writes the file. */
  async put(record: BlockRecord, action: string): Promise<void> {
    this.records.delete(record.target); // re-insert: the map's order is least recently written first
    this.records.set(record.target, record);
    const entries = this.histories.get(record.target) ?? [];
    entries.push({ at: this.now(), action, record });
    if (entries.length > this.maxHistory) entries.splice(0, entries.length - this.maxHistory);
    this.histories.set(record.target, entries);
    this.prune();
    await this.flush();
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

  /** Resolves once everything put so far is on disk. */
  async flush(): Promise<void> {
    if (this.pending) return this.pending;
    if (!this.writing) {
      this.writing = this.write().finally(() => (this.writing = undefined));
      return this.writing;
    }
    // a write is in flight with older contents: queue exactly one more after it
    const after = this.writing.catch(() => undefined);
    this.pending = after.then(() => {
      this.pending = undefined;
      return this.flush();
    });
    return this.pending;
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

  private async write(): Promise<void> {
    const body: StoreFile = { version: 1, records: this.list(), history: Object.fromEntries(this.histories) };
    const tmp = `${this.path}.tmp-${process.pid}`;
    await mkdir(this.directory, { recursive: true, mode: 0o750 });
    const file = await open(tmp, 'w', 0o640);
    try {
      await file.writeFile(JSON.stringify(body));
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(tmp, this.path);
    const dir = await open(this.directory, 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }
}
