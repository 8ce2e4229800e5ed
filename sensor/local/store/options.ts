/**
 * The local block store's settings and options (the store itself is ../store.ts, its files
 * ./files.ts).
 */

/** history entries kept per target, newest last */
export const MAX_HISTORY_PER_TARGET = 50;
/** records kept; past this the inactive records lifted longest ago go first */
export const MAX_RECORDS = 100_000;
/** the journal is fsynced this long after a write at most (the power-loss window), ms */
export const SYNC_INTERVAL_MS = 100;
/** the journal is compacted only past this many lines */
export const COMPACT_AFTER_LINES = 10_000;

export interface FileStoreOptions {
  readonly maxHistoryPerTarget?: number;
  readonly maxRecords?: number;
  /** clock for history entries and for "is the previous block still active"; defaults to Date.now */
  readonly now?: () => number;
  /** fsync the journal at most this long after a write, ms (default SYNC_INTERVAL_MS) */
  readonly syncIntervalMs?: number;
  /** compact only past this many journal lines (default COMPACT_AFTER_LINES) */
  readonly compactAfterLines?: number;
  /** read the state without writing anything (no repair, no clean-up); put() is refused */
  readonly readOnly?: boolean;
  /** wait for the writers' lock in the kernel (a command line) instead of polling it (the agent, whose event loop must not stop) */
  readonly blockingLock?: boolean;
  /** give up waiting for the lock after this long, ms (default 30 s) */
  readonly lockTimeoutMs?: number;
  /** recoveries and background failures (a torn line cut, a failed fsync or compaction) */
  readonly onWarning?: (line: { msg: string; [key: string]: unknown }) => void;
}

export interface StoreStats {
  /** number of the last line written */
  readonly seq: number;
  /** number of the last line known fsynced */
  readonly syncedSeq: number;
  /** lines in the journal after the snapshot */
  readonly journalLines: number;
  /** the last open: bytes of a torn last line cut off, and complete lines that did not parse */
  readonly recovered: { readonly tornBytes: number; readonly corruptLines: number };
}
