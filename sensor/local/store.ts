/**
 * The host agent's desired state on disk: one JSON file of BlockRecords and a bounded history,
 * written atomically (tmp + fsync + rename) so a crash never leaves half a file.
 */
import type { BlockRecord } from '../../core/policy';

export interface HistoryEntry {
  readonly at: number;
  readonly action: string;
  readonly record: BlockRecord;
}

export class FileStore {
  constructor(readonly directory: string) {}

  async load(): Promise<void> {
    throw new Error('not implemented yet');
  }

  get(_target: string): BlockRecord | undefined {
    return undefined;
  }

  async put(_record: BlockRecord, _action: string): Promise<void> {
    throw new Error('not implemented yet');
  }

  list(): BlockRecord[] {
    return [];
  }

  active(_now: number): BlockRecord[] {
    return [];
  }

  history(_target: string): HistoryEntry[] {
    return [];
  }
}
