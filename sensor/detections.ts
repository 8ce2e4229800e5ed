/**
 * The agent's recent detections, kept for `portsnare detections` (GET /detections) in every mode,
 * monitor mode included: a bounded ring of the last `capacity` events, oldest dropped first, each
 * with its evidence (probes, kinds, handshake, sensor) and what the local pipeline did with it.
 * Bounded in count and per entry (at most MAX_PROBES probes kept), so a flood cannot grow it.
 */
import { MAX_PROBES, type ScanDetected } from '../core/event';

export const DEFAULT_DETECTIONS_KEPT = 1000;

export interface DetectionEntry {
  readonly id: string;
  readonly at: number;
  readonly attacker: string;
  readonly sensorId: string;
  readonly handshake: boolean;
  readonly probeCount: number;
  readonly firstSeen: string;
  readonly lastSeen: string;
  readonly probes: ReadonlyArray<{ protocol: string; port: number; kind: string }>;
  /** what the local pipeline decided: block, refresh, ignore, refused; absent when enforcement is off */
  outcome?: string;
  why?: string;
}

export class DetectionRing {
  private readonly entries: Array<DetectionEntry | undefined>;
  private next = 0;
  private total = 0;

  constructor(readonly capacity = DEFAULT_DETECTIONS_KEPT) {
    this.entries = new Array<DetectionEntry | undefined>(capacity);
  }

  add(event: ScanDetected, id: string, at: number): DetectionEntry {
    const entry: DetectionEntry = {
      id,
      at,
      attacker: event.attacker,
      sensorId: event.sensorId,
      handshake: event.handshake,
      probeCount: event.probeCount,
      firstSeen: event.firstSeen,
      lastSeen: event.lastSeen,
      probes: event.probes.slice(0, MAX_PROBES).map((p) => ({ protocol: p.protocol, port: p.port, kind: p.kind })),
    };
    this.entries[this.next] = entry;
    this.next = (this.next + 1) % this.capacity;
    this.total++;
    return entry;
  }

  /** Newest first, detected at or after `since` (epoch ms), at most `limit`. */
  list(since = 0, limit = this.capacity): DetectionEntry[] {
    const out: DetectionEntry[] = [];
    for (let i = 1; i <= this.capacity && out.length < limit; i++) {
      const entry = this.entries[(this.next - i + this.capacity) % this.capacity];
      if (!entry || entry.at < since) break;
      out.push(entry);
    }
    return out;
  }

  /** detections seen since start (also those the ring no longer holds) */
  get seen(): number {
    return this.total;
  }
}
