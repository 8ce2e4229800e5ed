/** decide → desired state → enforce, on one host: the file store and the nftables enforcer. */
import type { ScanDetected } from '../../core/event';
import type { NeverBlockGuard } from '../../core/guard';
import type { BlockRecord, Decision, PolicySettings } from '../../core/policy';
import type { NftEnforcer } from './nft';
import type { FileStore, HistoryEntry } from './store';

export interface LocalPipelineOptions {
  readonly store: FileStore;
  readonly enforcer?: NftEnforcer;
  readonly policy: PolicySettings;
  readonly guard: NeverBlockGuard;
  readonly logger?: (line: object) => void;
  readonly now?: () => number;
}

export type Refusal = { readonly action: 'refused'; readonly why: string };
export type LocalDecision = Decision | Refusal;

export interface HandleOptions {
  /** the kernel already added the source to the blocked set for this many seconds (stealth kill) */
  readonly kernelBlockTtlSeconds?: number;
}

export class LocalPipeline {
  constructor(private readonly opts: LocalPipelineOptions) {}

  async restore(): Promise<void> {
    throw new Error('not implemented yet');
  }

  async handle(_event: ScanDetected, _eventId: string, _handleOpts: HandleOptions = {}): Promise<LocalDecision> {
    throw new Error('not implemented yet');
  }

  async block(_target: string, _opts: { ttlSeconds?: number; reason?: string; requestedBy: string }): Promise<LocalDecision> {
    throw new Error('not implemented yet');
  }

  async unblock(_target: string, _requestedBy: string): Promise<boolean> {
    throw new Error('not implemented yet');
  }

  async expire(): Promise<number> {
    throw new Error('not implemented yet');
  }

  list(): BlockRecord[] {
    return this.opts.store.list();
  }

  history(target: string): HistoryEntry[] {
    return this.opts.store.history(target);
  }
}
