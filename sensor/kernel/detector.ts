/** Kernel (stealth) detection: nftables rules in `inet portsnare` that report probes to decoy ports. */
import { EventEmitter } from 'node:events';
import type { ProbeKind } from '../../core/event';

export interface KernelProbe {
  readonly source: string;
  readonly protocol: 'tcp' | 'udp';
  readonly port: number;
  readonly kind: ProbeKind;
  readonly at: number;
  readonly blockedByKernel: boolean;
}

export interface KernelDetectorOptions {
  readonly tcpPorts: number[] | 'all-unused';
  readonly udpPorts: number[] | 'all-unused';
  /** ignore list + own addresses + allowlist (addresses and CIDRs): never reported, never blocked */
  readonly exempt: string[];
  /** when set, the kernel adds the source to the blocked set on its first decoy packet */
  readonly killTtlSeconds?: number;
  /** ports with real services, excluded in all-unused mode (in addition to what listens) */
  readonly excludePorts?: { tcp: number[]; udp: number[] };
}

export type Availability = { ok: true } | { ok: false; why: string };

export class KernelDetector extends EventEmitter {
  constructor(readonly options: KernelDetectorOptions) {
    super();
  }

  static async available(): Promise<Availability> {
    return Promise.resolve({ ok: false, why: 'not implemented yet' });
  }

  async start(): Promise<void> {
    throw new Error('not implemented yet');
  }

  async stop(): Promise<void> {
    return Promise.resolve();
  }
}
