/** What every sink does with a detection. */
import type { ScanDetected } from '../../core/event';

export interface PublisherStats {
  /** events handed to the destination (written, or accepted by PutEvents) */
  readonly published: number;
  /** events lost (spool full, rejected as malformed by the destination) */
  readonly dropped: number;
  readonly errors: number;
}

export interface Publisher {
  /** "stdout", "file:/path", "eventbridge:bus" */
  readonly name: string;
  start(): Promise<void>;
  /**
   * Takes one event. Resolves once it is safe: written (stdout, file) or in the disk spool
   * (eventbridge). Resolves false when it could not be kept (spool full); never rejects.
   */
  publish(event: ScanDetected, id: string): Promise<boolean>;
  /** Stops; work not done by the deadline stays in the spool for the next start. */
  stop(deadlineMs?: number): Promise<void>;
  stats(): PublisherStats;
}
