/** What every sink does with a detection, and what it reports about itself. */
import type { ScanDetected } from '../../core/event';

export interface PublisherStats {
  /** events handed to the destination (written, or accepted by PutEvents) */
  readonly published: number;
  /** events lost (spool full, rejected as malformed by the destination) */
  readonly dropped: number;
  readonly errors: number;
}

/**
 * The per-sink values the agent's /metrics shows (each labelled `sink="<name>"`). Every sink has
 * the three counters; the spool and throttle values only a sink with a spool reports.
 */
export interface SinkMetrics extends PublisherStats {
  readonly spoolDepth?: number;
  readonly spoolBytes?: number;
  readonly spoolMaxBytes?: number;
  /** 1 while the spool refuses events */
  readonly spoolFull?: number;
  readonly spoolRefused?: number;
  readonly throttles?: number;
}

/** A sink's own account of itself: the agent's /status, /metrics and /healthz are built from it. */
export interface PublisherReport {
  readonly name: string;
  /** the sink's entry in /status `sinks` (after its name): counters and whatever else it has */
  readonly status: PublisherStats & Record<string, unknown>;
  readonly metrics: SinkMetrics;
  /** problems make /healthz answer 503; warnings do not */
  readonly health: { readonly problems: readonly string[]; readonly warnings: readonly string[] };
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
  describe(): PublisherReport;
}

/** The report of a sink that has nothing but the three counters and is always healthy. */
export function countersOnly(name: string, stats: PublisherStats): PublisherReport {
  return { name, status: { ...stats }, metrics: { ...stats }, health: { problems: [], warnings: [] } };
}
