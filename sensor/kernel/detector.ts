/**
 * Kernel (stealth) detection: nftables rules in `inet portsnare` see SYN, FIN, NULL, XMAS, ACK,
 * Maimon, Window and UDP probes on the decoy ports — or, with "all-unused", on every port no
 * local service listens on — and hand the first bytes of each packet to userspace through NFLOG
 * (`log group N`), read by a `tcpdump -i nflog:N -w -` child as a pcap stream. By default the
 * first such packet from a source quarantines it for a few seconds, at most once an hour (the
 * packet may be forged); with killTtlSeconds the same rule blocks it instead. Either way nothing
 * after that first packet reaches a real service for a while. See docs/kernel.md for the choice
 * of mechanism and trade-offs; rules.ts for the ruleset; sets.ts to read what the kernel holds.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { tryCanonicalAddress } from '../../core/address';
import type { ProbeKind } from '../../core/event';
import { FAMILY, TABLE, currentBaseScript, hasNetAdmin, hasProgram, nftJson, nftScript, type NftJsonItem } from '../local/nft';
import { listeningPorts } from './listening';
import { NflogPcapReader, type LoggedPacket } from './nflog';
import { DEFAULT_NFLOG_GROUP, DEFAULT_QUARANTINE_SECONDS, PREFIX_KILL, PREFIX_QUARANTINE, cidrElements, detectorScript, portElements, removalScript, replaceSet, type KillGuard } from './rules';

export interface KernelProbe {
  readonly source: string;
  /**
   * Every kind comes from one packet, which may be forged: the kernel proves nothing (a proven
   * `connect` comes only from a socket's accept, sensor/listeners).
   */
  readonly protocol: 'tcp' | 'udp';
  readonly port: number;
  readonly kind: ProbeKind;
  readonly at: number;
  /** the kernel added the source to the blocked set on this packet (killTtlSeconds) */
  readonly blockedByKernel: boolean;
  /**
   * the kernel quarantined the source on this packet (quarantineSeconds): it is held for those
   * seconds and will not be quarantined again within quarantinePeriodSeconds. Count it against
   * the burst budget; it is no proof of anything.
   */
  readonly quarantinedByKernel: boolean;
}

export interface KernelDetectorOptions {
  readonly tcpPorts: number[] | 'all-unused';
  readonly udpPorts: number[] | 'all-unused';
  /** ignore list + own addresses + allowlist (addresses and CIDRs): never reported, never blocked */
  readonly exempt: string[];
  /** when set, the kernel adds the source to the blocked set on its first decoy packet */
  readonly killTtlSeconds?: number;
  /** in-kernel blocks a minute for the whole host, per address family (default 100); beyond it, quarantine */
  readonly killPerMinute?: number;
  /**
   * seconds the kernel holds (drops everything from) a source on its first forgeable decoy
   * packet (default 10; 0 turns quarantine off)
   */
  readonly quarantineSeconds?: number;
  /** a source is quarantined at most once per this many seconds (default 3600) */
  readonly quarantinePeriodSeconds?: number;
  /** quarantines a minute for the whole host, per address family (default 100) */
  readonly quarantinePerMinute?: number;
  /** a quarantined source's TCP connection attempts: "reset" (refused, default) or "drop" */
  readonly quarantineAnswer?: 'reset' | 'drop';
  /**
   * new TCP connections to unused ports are redirected (nat `redirect`) to this local port, where
   * the agent's socket accepts them, so connect scans complete a handshake (the socket's accept is
   * the proof): every source in all-unused mode; in list mode (with quarantine) the sources seen
   * probing a decoy this period, so their rescan sees every unused port open
   */
  readonly redirectPort?: number;
  /** ports with real services, excluded in all-unused mode (in addition to what listens) */
  readonly excludePorts?: { tcp: number[]; udp: number[] };
  /**
   * What the in-kernel block must never add: protected CIDRs, and special-purpose ranges unless
   * allowed — the never-block guard's settings (see killGuardFrom). Default: every special range
   * is protected, nothing else beyond `exempt`.
   */
  readonly killGuard?: KillGuard;
  /** NFLOG group, unique per network namespace (default 2718) */
  readonly nflogGroup?: number;
  /** all-unused mode: how often the listening ports are read again, ms (default 2000) */
  readonly refreshMs?: number;
  /** per-source cap of packets handed to userspace, per second (default 100) */
  readonly ratePerSecond?: number;
  /** the tcpdump program (default "tcpdump" on PATH) */
  readonly tcpdump?: string;
}

export type Availability = { ok: true } | { ok: false; why: string };

/** The kill guard of a never-block guard's settings (core/guard.ts GuardSettings). */
export function killGuardFrom(settings: { allowlist: readonly string[]; protectedCidrs: readonly string[]; blockSpecialRanges: boolean; blockableSpecialCidrs: readonly string[] }): KillGuard {
  return {
    neverBlock: [...settings.allowlist, ...settings.protectedCidrs],
    blockSpecialRanges: settings.blockSpecialRanges,
    blockableSpecialCidrs: settings.blockableSpecialCidrs,
  };
}

export class KernelDetector extends EventEmitter {
  private child: ChildProcessWithoutNullStreams | undefined;
  private running = false;
  private refreshTimer: NodeJS.Timeout | undefined;
  private keep: { tcp: number[]; udp: number[] } = { tcp: [], udp: [] };
  private exempt: string[];
  private restarts = 0;
  private readonly group: number;
  /** packets read, probes emitted (for the agent's metrics) */
  readonly stats = { packets: 0, probes: 0, killed: 0, quarantined: 0, readerRestarts: 0 };

  constructor(readonly options: KernelDetectorOptions) {
    super();
    this.group = options.nflogGroup ?? DEFAULT_NFLOG_GROUP;
    this.exempt = [...options.exempt];
  }

  /** Linux, root or CAP_NET_ADMIN, nft and tcpdump present. */
  static async available(): Promise<Availability> {
    if (process.platform !== 'linux') return { ok: false, why: `kernel detection needs Linux (this is ${process.platform})` };
    if (!(await hasNetAdmin())) return { ok: false, why: 'kernel detection needs root or CAP_NET_ADMIN' };
    if (!(await hasProgram('nft'))) return { ok: false, why: 'the nft program (Debian package nftables) is not installed' };
    if (!(await hasProgram('tcpdump'))) return { ok: false, why: 'the tcpdump program (Debian package tcpdump) is not installed: it reads the NFLOG group' };
    return { ok: true };
  }

  /** Starts the NFLOG reader, then loads the rules: once this resolves, every probe is reported. */
  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      await this.startReader();
      if (this.usesAllUnused()) this.keep = await this.readKeepPorts();
      // what a crashed run left (a redirect chain no longer asked for, a changed set) goes first
      await this.removeRules();
      await nftScript((await currentBaseScript()) + detectorScript(this.ruleOptions()));
    } catch (error) {
      await this.stop();
      throw error;
    }
    if (this.usesAllUnused()) {
      const every = this.options.refreshMs ?? 2000;
      const tick = (): void => {
        this.refreshTimer = setTimeout(() => {
          this.refreshKeepPorts()
            .catch((error: unknown) => this.fail(new Error(`refreshing the listening ports failed: ${(error as Error).message}`)))
            .finally(() => {
              if (this.running) tick();
            });
        }, every);
        this.refreshTimer.unref();
      };
      tick();
    }
  }

  /** Removes the detector's chains and sets (not the blocked sets: blocks stay) and stops the reader. */
  async stop(): Promise<void> {
    this.running = false;
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    this.refreshTimer = undefined;
    let removeError: unknown;
    try {
      await this.removeRules();
    } catch (error) {
      removeError = error;
    }
    await this.stopReader();
    if (removeError) throw removeError as Error;
  }

  /**
   * Replaces the exempt sources (ignore list + own addresses + allowlist) in the kernel, e.g.
   * when the host's addresses change. One transaction: no packet sees a half-written set.
   */
  async updateExempt(exempt: readonly string[]): Promise<void> {
    const elements = cidrElements(exempt); // throws on junk before anything changes
    this.exempt = [...exempt];
    if (!this.running) return;
    await nftScript([...replaceSet('exempt4', elements.v4), ...replaceSet('exempt6', elements.v6)].join('\n') + '\n');
  }

  /** The ports currently kept out of detection (all-unused mode). */
  keptPorts(): { tcp: number[]; udp: number[] } {
    return { tcp: [...this.keep.tcp], udp: [...this.keep.udp] };
  }

  /** Reads the listening ports now and updates the kernel sets when they changed. */
  async refreshKeepPorts(): Promise<void> {
    if (!this.running || !this.usesAllUnused()) return;
    const next = await this.readKeepPorts();
    if (sameList(next.tcp, this.keep.tcp) && sameList(next.udp, this.keep.udp)) return;
    this.keep = next;
    await nftScript([...replaceSet('tcpkeep', portElements(next.tcp)), ...replaceSet('udpkeep', portElements(next.udp))].join('\n') + '\n');
  }

  /** the listening ports are watched: all-unused mode, and list mode with a redirect (tcpkeep) */
  private usesAllUnused(): boolean {
    const o = this.options;
    const listRedirect = o.tcpPorts !== 'all-unused' && o.redirectPort !== undefined && (o.quarantineSeconds ?? DEFAULT_QUARANTINE_SECONDS) > 0;
    return o.tcpPorts === 'all-unused' || o.udpPorts === 'all-unused' || listRedirect;
  }

  private async readKeepPorts(): Promise<{ tcp: number[]; udp: number[] }> {
    const listening = await listeningPorts();
    const exclude = this.options.excludePorts ?? { tcp: [], udp: [] };
    const merge = (a: number[], b: number[]): number[] => [...new Set([...a, ...b])].sort((x, y) => x - y);
    return { tcp: merge(listening.tcp, exclude.tcp), udp: merge(listening.udp, exclude.udp) };
  }

  private ruleOptions(): Parameters<typeof detectorScript>[0] {
    const o = this.options;
    return {
      tcpPorts: o.tcpPorts,
      udpPorts: o.udpPorts,
      exempt: this.exempt,
      keepPorts: this.keep,
      nflogGroup: this.group,
      ...(o.killTtlSeconds !== undefined ? { killTtlSeconds: o.killTtlSeconds } : {}),
      ...(o.killGuard !== undefined ? { killGuard: o.killGuard } : {}),
      ...(o.ratePerSecond !== undefined ? { ratePerSecond: o.ratePerSecond } : {}),
      ...(o.killPerMinute !== undefined ? { killPerMinute: o.killPerMinute } : {}),
      ...(o.quarantineSeconds !== undefined ? { quarantineSeconds: o.quarantineSeconds } : {}),
      ...(o.quarantinePeriodSeconds !== undefined ? { quarantinePeriodSeconds: o.quarantinePeriodSeconds } : {}),
      ...(o.quarantinePerMinute !== undefined ? { quarantinePerMinute: o.quarantinePerMinute } : {}),
      ...(o.quarantineAnswer !== undefined ? { quarantineAnswer: o.quarantineAnswer } : {}),
      ...(o.redirectPort !== undefined ? { redirectPort: o.redirectPort } : {}),
    };
  }

  private async removeRules(): Promise<void> {
    let items: NftJsonItem[];
    try {
      items = await nftJson(['list', 'table', FAMILY, TABLE]);
    } catch {
      return; // no table: nothing of ours is left
    }
    const chains = new Set(items.flatMap((i) => (i.chain ? [i.chain.name] : [])));
    const sets = new Set(items.flatMap((i) => (i.set ? [i.set.name] : [])));
    const limits = new Set(items.flatMap((i) => (i.limit ? [i.limit.name] : [])));
    const script = removalScript({ chains, sets, limits });
    if (script) await nftScript(script);
  }

  private startReader(): Promise<void> {
    return new Promise((resolve, reject) => {
      const program = this.options.tcpdump ?? 'tcpdump';
      const child = spawn(program, ['-i', `nflog:${this.group}`, '-n', '-U', '--immediate-mode', '-w', '-'], { stdio: ['pipe', 'pipe', 'pipe'] });
      this.child = child;
      const reader = new NflogPcapReader();
      let ready = false;
      let stderr = '';
      const timer = setTimeout(() => {
        if (!ready) {
          child.kill('SIGKILL');
          reject(new Error(`${program} did not start listening on nflog:${this.group} within 10 s: ${stderr.trim()}`));
        }
      }, 10_000);
      child.stderr.setEncoding('utf8');
      child.stderr.on('data', (text: string) => {
        if (stderr.length < 4096) stderr += text;
        if (!ready && /listening on/.test(stderr)) {
          ready = true;
          clearTimeout(timer);
          this.restarts = 0;
          resolve();
        }
      });
      child.stdout.on('data', (chunk: Buffer) => {
        let packets: LoggedPacket[];
        try {
          packets = reader.push(chunk);
        } catch (error) {
          this.fail(error as Error);
          child.kill('SIGTERM');
          return;
        }
        for (const packet of packets) this.report(packet);
      });
      child.on('error', (error) => {
        clearTimeout(timer);
        if (!ready) reject(new Error(`cannot run ${program}: ${error.message}`));
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        if (this.child === child) this.child = undefined;
        if (!ready) {
          reject(new Error(`${program} exited (${signal ?? `code ${code}`}) before listening on nflog:${this.group}: ${stderr.trim()}`));
          return;
        }
        if (this.running) this.restartReader(`${program} exited (${signal ?? `code ${code}`}): ${stderr.trim().split('\n').pop() ?? ''}`);
      });
    });
  }

  private restartReader(why: string): void {
    this.stats.readerRestarts++;
    this.fail(new Error(`NFLOG reader stopped, restarting: ${why}`));
    const delay = Math.min(30_000, 500 * 2 ** this.restarts++);
    setTimeout(() => {
      if (!this.running) return;
      this.startReader().catch((error: unknown) => {
        if (this.running) this.restartReader((error as Error).message);
      });
    }, delay).unref();
  }

  private async stopReader(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      child.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      child.kill('SIGTERM');
    });
  }

  private report(packet: LoggedPacket): void {
    this.stats.packets++;
    const source = tryCanonicalAddress(packet.source);
    if (source === undefined) return;
    const blockedByKernel = packet.prefix === PREFIX_KILL;
    const quarantinedByKernel = packet.prefix === PREFIX_QUARANTINE;
    if (blockedByKernel) this.stats.killed++;
    if (quarantinedByKernel) this.stats.quarantined++;
    this.stats.probes++;
    const probe: KernelProbe = { source, protocol: packet.protocol, port: packet.port, kind: packet.kind, at: packet.at, blockedByKernel, quarantinedByKernel };
    this.emit('probe', probe);
  }

  private fail(error: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', error);
    else process.stderr.write(`portsnare kernel detector: ${error.message}\n`);
  }
}

function sameList(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
