/**
 * The file side of the local block store: the state directory's layout, creating and checking it
 * with errors that name `stateDirectory`, the journal's line format, and the snapshot writer.
 *
 * Layout of the state directory:
 * - `blocks.json`: the snapshot, `{ version: 1, seq, records, history }`, replaced atomically
 *   (temporary file, fsync, rename, fsync of the directory). A file written before the journal
 *   existed has no `seq` and counts as seq 0: it is read as is, nothing to migrate by hand.
 * - `blocks.<first seq>.journal`: JSON lines `{ s, at, a, r }` appended after the snapshot, one
 *   line per put, numbered by `s`. Lines at or below the snapshot's `seq` are already in it.
 * - `blocks.json.tmp-<pid>-<n>`: a snapshot being written; one left by a dead process is removed
 *   when the store opens.
 * - `blocks.lock`: empty; the writers' flock(2).
 */
import { closeSync, fstatSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readdirSync, readSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { BlockRecord } from '../../../core/policy';

export const STORE_FILE = 'blocks.json';
/** flock(2)ed by every writer around each write, open and compaction (../store.ts) */
export const LOCK_FILE = 'blocks.lock';
const JOURNAL = /^blocks\.(\d+)\.journal$/;
const TEMPORARY = /^blocks\.json\.tmp-(\d+)(?:-\w+)?$/;

export interface HistoryEntry {
  readonly at: number;
  readonly action: string;
  readonly record: BlockRecord;
}

/** One journal line: a put, numbered. */
export interface JournalLine {
  readonly s: number;
  readonly at: number;
  readonly a: string;
  readonly r: BlockRecord;
}

export function journalName(firstSeq: number): string {
  return `blocks.${firstSeq}.journal`;
}

/**
 * The state directory cannot be created, read or written. The message names `stateDirectory`,
 * the path, the operation and the errno, so `--check` and the agent's start say what to fix.
 */
export class StateDirectoryError extends Error {
  constructor(
    readonly directory: string,
    readonly path: string,
    readonly operation: string,
    readonly code: string,
    detail: string,
  ) {
    super(`stateDirectory ${JSON.stringify(directory)} is not usable: cannot ${operation} ${path}: ${code} (${detail})`);
    this.name = 'StateDirectoryError';
  }

  static from(directory: string, path: string, operation: string, error: unknown): StateDirectoryError {
    if (error instanceof StateDirectoryError) return error;
    const e = error as NodeJS.ErrnoException;
    const code = e.code ?? 'EUNKNOWN';
    const detail = (e.message ?? String(error)).replace(/^[A-Z]+: /, '').replace(/, \w+ '.*'$/, '');
    return new StateDirectoryError(directory, path, operation, code, detail);
  }
}

/**
 * `mkdir -p` that gives up: Node's own recursive mkdir loops forever (100 % CPU) where mkdir
 * answers ENOENT for a parent that exists, as under /proc. Each level is tried at most twice.
 */
export function makeDirectory(directory: string, path = directory): void {
  try {
    mkdirSync(path, { mode: 0o750 });
    return;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') {
      if (!statSync(path).isDirectory()) throw new StateDirectoryError(directory, path, 'use as a directory', 'ENOTDIR', 'exists and is not a directory');
      return;
    }
    const parent = dirname(path);
    if (code !== 'ENOENT' || parent === path) throw StateDirectoryError.from(directory, path, 'create directory', error);
    makeDirectory(directory, parent);
  }
  try {
    mkdirSync(path, { mode: 0o750 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST' && statSync(path).isDirectory()) return;
    throw StateDirectoryError.from(directory, path, 'create directory', error);
  }
}

/** fsync of a directory, so a rename or a new file in it survives a power loss. */
export function syncDirectory(directory: string): void {
  const fd = openSync(directory, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export interface DirectoryListing {
  readonly journals: Array<{ readonly firstSeq: number; readonly path: string }>;
  readonly temporaries: Array<{ readonly pid: number; readonly path: string }>;
}

export function listDirectory(directory: string): DirectoryListing {
  const journals: Array<{ firstSeq: number; path: string }> = [];
  const temporaries: Array<{ pid: number; path: string }> = [];
  for (const name of readdirSync(directory)) {
    const journal = JOURNAL.exec(name);
    if (journal) journals.push({ firstSeq: Number(journal[1]), path: join(directory, name) });
    const temporary = TEMPORARY.exec(name);
    if (temporary) temporaries.push({ pid: Number(temporary[1]), path: join(directory, name) });
  }
  journals.sort((a, b) => a.firstSeq - b.firstSeq);
  return { journals, temporaries };
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function isRecord(value: unknown): value is BlockRecord {
  const r = value as Partial<BlockRecord> | null;
  return typeof r === 'object' && r !== null && typeof r.target === 'string' && typeof r.expiresAt === 'number' && typeof r.active === 'boolean';
}

export function parseLine(text: string): JournalLine | undefined {
  let value: Partial<JournalLine>;
  try {
    value = JSON.parse(text) as Partial<JournalLine>;
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  if (!Number.isSafeInteger(value.s) || typeof value.at !== 'number' || typeof value.a !== 'string' || !isRecord(value.r)) return undefined;
  return value as JournalLine;
}

export interface ReadJournal {
  readonly lines: JournalLine[];
  /** complete lines that did not parse (damage other than a torn end) */
  readonly corrupt: number;
  /** bytes after the last newline: a write cut short by a crash */
  readonly tornBytes: number;
  /** length up to and including the last newline */
  readonly goodLength: number;
}

/** Reads a journal; with `repair`, cuts a torn last line off so the next append starts clean. */
export function readJournal(path: string, repair: boolean): ReadJournal {
  const fd = openSync(path, repair ? 'r+' : 'r');
  try {
    const size = fstatSync(fd).size;
    const buffer = Buffer.alloc(size);
    let read = 0;
    while (read < size) {
      const n = readSync(fd, buffer, read, size - read, read);
      if (n === 0) break;
      read += n;
    }
    const goodLength = buffer.lastIndexOf(0x0a, read - 1) + 1;
    const lines: JournalLine[] = [];
    let corrupt = 0;
    for (const text of buffer.toString('utf8', 0, goodLength).split('\n')) {
      if (text === '') continue;
      const line = parseLine(text);
      if (line) lines.push(line);
      else corrupt++;
    }
    const tornBytes = read - goodLength;
    if (repair && tornBytes > 0) {
      ftruncateSync(fd, goodLength);
      fsyncSync(fd);
    }
    return { lines, corrupt, tornBytes, goodLength };
  } finally {
    closeSync(fd);
  }
}

/** Appends all of `text` at `offset`'s end; on a failure cuts the file back to `offset`, so no half line stays. */
export function appendAll(fd: number, text: string, offset: number): void {
  const data = Buffer.from(text, 'utf8');
  let written = 0;
  try {
    while (written < data.length) written += writeSync(fd, data, written, data.length - written);
  } catch (error) {
    if (written > 0) {
      try {
        ftruncateSync(fd, offset);
      } catch {
        // the torn line is cut at the next open
      }
    }
    throw error;
  }
}

export interface SnapshotContent {
  readonly seq: number;
  readonly records: readonly BlockRecord[];
  readonly history: ReadonlyArray<readonly [string, readonly HistoryEntry[]]>;
}

let temporaryCounter = 0;
/** temporary files being written by this process, which the open of another store must leave alone */
export const ownTemporaries = new Set<string>();

/**
 * Writes the snapshot atomically. The JSON is produced a thousand records at a time with a write
 * in between, so a large state does not stall the event loop for the whole serialisation.
 */
export async function writeSnapshot(directory: string, content: SnapshotContent): Promise<void> {
  const path = join(directory, STORE_FILE);
  const tmp = `${path}.tmp-${process.pid}-${++temporaryCounter}`;
  ownTemporaries.add(tmp);
  try {
    const file = await open(tmp, 'w', 0o640);
    try {
      await file.write(`{"version":1,"seq":${content.seq},"records":[`);
      for (let i = 0; i < content.records.length; i += 1000) {
        await file.write((i > 0 ? ',' : '') + content.records.slice(i, i + 1000).map((r) => JSON.stringify(r)).join(','));
      }
      await file.write('],"history":{');
      for (let i = 0; i < content.history.length; i += 1000) {
        const chunk = content.history.slice(i, i + 1000).map(([target, entries]) => `${JSON.stringify(target)}:${JSON.stringify(entries)}`);
        await file.write((i > 0 ? ',' : '') + chunk.join(','));
      }
      await file.write('}}');
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(tmp, path);
    syncDirectory(directory);
  } catch (error) {
    await unlink(tmp).catch(() => undefined);
    throw error;
  } finally {
    ownTemporaries.delete(tmp);
  }
}

export function removeFile(path: string): void {
  try {
    unlinkSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}
