/**
 * Decoy sockets: TCP and UDP, IPv4 and IPv6, on the ports no legitimate client uses. Whoever
 * touches one is reported as a hit. Portsentry's service check: a port a real service already
 * holds (EADDRINUSE) is skipped on every address, with a log line, so a real service is never
 * shadowed on the other address family.
 *
 * Every socket is bounded: a timeout, a cap on bytes read, a cap on decoy connections open at
 * once (more are closed at accept, still counted as hits). A UDP reply (the banner) is never
 * larger than the datagram that caused it and is rate limited, so the sensor cannot amplify.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { tryCanonicalAddress } from '../../core/address';
import type { ProbeKind, Protocol } from '../../core/event';
import { errorText, type Logger } from '../log';
import { savedSyn } from './saved-syn';

/** One probe seen by a sensor (socket or kernel), before aggregation. */
export interface Hit {
  readonly source: string;
  readonly protocol: Protocol;
  readonly port: number;
  readonly kind: ProbeKind;
  /** the TCP handshake completed: the source address is proven */
  readonly handshake: boolean;
  /** epoch ms */
  readonly at: number;
  /**
   * the same packet exchange was already counted under another kind (the kernel's SYN and the
   * socket's accept of one connect): adds the kind to the event, not to the trigger count
   */
  readonly echo?: boolean;
}

export interface DecoyListenerOptions {
  readonly addresses: readonly string[];
  readonly tcpPorts: readonly number[];
  readonly udpPorts: readonly number[];
  readonly banner?: (port: number) => string | undefined;
  readonly maxSockets: number;
  readonly socketTimeoutMs: number;
  readonly maxReadBytes: number;
  readonly udpRepliesPerSecond: number;
  readonly onHit: (hit: Hit) => void;
  readonly logger: Logger;
  /** bind this many sockets at once while starting */
  readonly bindConcurrency?: number;
}

export interface SkippedPort {
  readonly protocol: Protocol;
  readonly port: number;
  readonly address: string;
  readonly code: string;
  readonly why: string;
}

export interface ListenerReport {
  /** ports watched on at least one address */
  readonly tcp: number[];
  readonly udp: number[];
  readonly skipped: SkippedPort[];
}

export interface ListenerStats {
  readonly socketsOpen: number;
  readonly socketsRejected: number;
  /** connections reset before accept whose source only the saved SYN named */
  readonly resetBeforeAccept: number;
  /** the saved-SYN helper is loaded */
  readonly savedSyn: boolean;
  readonly tcpListeners: number;
  readonly udpListeners: number;
  readonly udpReplies: number;
  readonly udpRepliesSuppressed: number;
  readonly bytesRead: number;
}

/** listen(2) backlog; the kernel caps it at net.core.somaxconn (4096 by default since Linux 5.4) */
export const ACCEPT_BACKLOG = 4096;

type Bound = { kind: 'tcp'; server: net.Server } | { kind: 'udp'; socket: dgram.Socket };

const WHY: Record<string, string> = {
  EADDRINUSE: 'in use by a service',
  EACCES: 'needs CAP_NET_BIND_SERVICE (ports below 1024)',
  EADDRNOTAVAIL: 'address not on this host',
  EAFNOSUPPORT: 'address family not supported (IPv6 disabled?)',
};

export class DecoyListeners {
  private readonly bound: Bound[] = [];
  private readonly connections = new Set<net.Socket>();
  private rejected = 0;
  private resetBeforeAccept = 0;
  private replies = 0;
  private suppressed = 0;
  private bytesRead = 0;
  private replyTokens: number;
  private replyRefill = Date.now();
  private stopping = false;

  constructor(private readonly options: DecoyListenerOptions) {
    this.replyTokens = options.udpRepliesPerSecond;
  }

  stats(): ListenerStats {
    return {
      socketsOpen: this.connections.size,
      socketsRejected: this.rejected,
      resetBeforeAccept: this.resetBeforeAccept,
      savedSyn: savedSyn.available,
      tcpListeners: this.bound.filter((b) => b.kind === 'tcp').length,
      udpListeners: this.bound.filter((b) => b.kind === 'udp').length,
      udpReplies: this.replies,
      udpRepliesSuppressed: this.suppressed,
      bytesRead: this.bytesRead,
    };
  }

  /** Binds every decoy; resolves with what is watched and what was skipped (and why). */
  async start(): Promise<ListenerReport> {
    const skipped: SkippedPort[] = [];
    const watched = { tcp: [] as number[], udp: [] as number[] };
    const jobs: Array<{ protocol: Protocol; port: number }> = [
      ...this.options.tcpPorts.map((port) => ({ protocol: 'tcp' as const, port })),
      ...this.options.udpPorts.map((port) => ({ protocol: 'udp' as const, port })),
    ];
    const concurrency = this.options.bindConcurrency ?? 128;
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < jobs.length && !this.stopping) {
        const job = jobs[next++]!;
        const outcome = await this.bindPort(job.protocol, job.port);
        skipped.push(...outcome.skipped);
        if (outcome.bound) watched[job.protocol].push(job.port);
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, jobs.length) }, worker));
    watched.tcp.sort((a, b) => a - b);
    watched.udp.sort((a, b) => a - b);
    this.logSkipped(skipped);
    return { tcp: watched.tcp, udp: watched.udp, skipped };
  }

  /** Closes every listener and every open decoy connection. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const socket of this.connections) socket.destroy();
    this.connections.clear();
    const closing = this.bound.splice(0).map((b) => closeBound(b));
    await Promise.all(closing);
  }

  /**
   * Binds one port on every address. EADDRINUSE or EACCES on any address skips the port on all
   * of them; an address that is not available (no IPv6) only loses that address.
   */
  private async bindPort(protocol: Protocol, port: number): Promise<{ bound: boolean; skipped: SkippedPort[] }> {
    type Result = { address: string; bound: Bound } | { address: string; code: string; why: string };
    const results = await Promise.all(
      this.options.addresses.map(async (address): Promise<Result> => {
        try {
          return { address, bound: protocol === 'tcp' ? await this.bindTcp(address, port) : await this.bindUdp(address, port) };
        } catch (error) {
          const code = (error as NodeJS.ErrnoException).code ?? 'ERROR';
          return { address, code, why: WHY[code] ?? errorText(error) };
        }
      }),
    );
    const skipped: SkippedPort[] = [];
    const fatal = results.find((r) => 'code' in r && (r.code === 'EADDRINUSE' || r.code === 'EACCES'));
    if (fatal || this.stopping) {
      await Promise.all(results.flatMap((r) => ('bound' in r ? [closeBound(r.bound)] : [])));
      for (const r of results) if ('code' in r) skipped.push({ protocol, port, address: r.address, code: r.code, why: r.why });
      if (fatal) {
        for (const r of results) if ('bound' in r) skipped.push({ protocol, port, address: r.address, code: 'SHADOW', why: `port held by a service on ${fatal.address}` });
      }
      return { bound: false, skipped };
    }
    let any = false;
    for (const r of results) {
      if ('bound' in r) {
        this.bound.push(r.bound);
        any = true;
      } else {
        skipped.push({ protocol, port, address: r.address, code: r.code, why: r.why });
      }
    }
    return { bound: any, skipped };
  }

  private bindTcp(address: string, port: number): Promise<Bound> {
    const server = net.createServer({ allowHalfOpen: false }, (socket) => this.onConnection(socket, port));
    server.maxConnections = Math.max(this.options.maxSockets * 2, 64);
    return new Promise((resolve, reject) => {
      const onError = (error: Error): void => {
        server.close();
        reject(error);
      };
      server.once('error', onError);
      // A scanner connects and resets at once; the accept queue must absorb bursts while the event
      // loop is busy, or SYNs are dropped and hits arrive a retransmission (1 s) late.
      server.listen({ host: address, port, exclusive: true, ipv6Only: address.includes(':'), backlog: ACCEPT_BACKLOG }, () => {
        server.off('error', onError);
        // Keep each SYN, so a connect scan's source survives its reset (see saved-syn.ts).
        if (savedSyn.available && !savedSyn.enable(server)) this.options.logger.warn('saved-SYN not enabled on a decoy listener', { address, port });
        server.on('error', (error) => this.options.logger.warn('decoy listener error', { protocol: 'tcp', address, port, error: errorText(error) }));
        resolve({ kind: 'tcp', server });
      });
    });
  }

  private bindUdp(address: string, port: number): Promise<Bound> {
    const socket = dgram.createSocket({ type: address.includes(':') ? 'udp6' : 'udp4', ipv6Only: address.includes(':'), reuseAddr: false });
    return new Promise((resolve, reject) => {
      const onError = (error: Error): void => {
        socket.close();
        reject(error);
      };
      socket.once('error', onError);
      socket.bind({ address, port, exclusive: true }, () => {
        socket.off('error', onError);
        socket.on('error', (error) => this.options.logger.warn('decoy listener error', { protocol: 'udp', address, port, error: errorText(error) }));
        socket.on('message', (message, remote) => this.onDatagram(socket, port, message, remote));
        resolve({ kind: 'udp', socket });
      });
    });
  }

  private onConnection(socket: net.Socket, port: number): void {
    const at = Date.now();
    socket.on('error', () => undefined);
    // A connect scan resets right after the handshake: by the time it is accepted getpeername
    // fails, and only the saved SYN still names the source. The handshake did complete.
    const peer = socket.remoteAddress ?? savedSyn.source(socket);
    if (socket.remoteAddress === undefined && peer !== undefined) this.resetBeforeAccept++;
    const source = peer === undefined ? undefined : tryCanonicalAddress(peer);
    if (source !== undefined) this.options.onHit({ source, protocol: 'tcp', port, kind: 'connect', handshake: true, at });
    if (this.stopping || this.connections.size >= this.options.maxSockets) {
      this.rejected++;
      socket.destroy();
      return;
    }
    this.connections.add(socket);
    socket.on('close', () => this.connections.delete(socket));
    socket.setTimeout(this.options.socketTimeoutMs, () => socket.destroy());
    let read = 0;
    socket.on('data', (chunk: Buffer) => {
      read += chunk.length;
      this.bytesRead += chunk.length;
      if (read >= this.options.maxReadBytes) socket.destroy();
    });
    // Portsentry's connect mode: show the banner, then close.
    const banner = this.options.banner?.(port);
    if (banner) socket.end(banner.endsWith('\n') ? banner : `${banner}\r\n`);
    else socket.end();
  }

  private onDatagram(socket: dgram.Socket, port: number, message: Buffer, remote: dgram.RemoteInfo): void {
    const source = tryCanonicalAddress(remote.address);
    if (source !== undefined) this.options.onHit({ source, protocol: 'udp', port, kind: 'udp', handshake: false, at: Date.now() });
    const banner = this.options.banner?.(port);
    if (!banner || message.length === 0 || this.stopping) return;
    if (!this.takeReplyToken()) {
      this.suppressed++;
      return;
    }
    // Never larger than what came in: no amplification.
    const reply = Buffer.from(banner, 'utf8').subarray(0, message.length);
    this.replies++;
    socket.send(reply, remote.port, remote.address, () => undefined);
  }

  private takeReplyToken(): boolean {
    const now = Date.now();
    const rate = this.options.udpRepliesPerSecond;
    this.replyTokens = Math.min(rate, this.replyTokens + ((now - this.replyRefill) / 1000) * rate);
    this.replyRefill = now;
    if (this.replyTokens < 1) return false;
    this.replyTokens -= 1;
    return true;
  }

  private logSkipped(skipped: SkippedPort[]): void {
    const groups = new Map<string, SkippedPort[]>();
    for (const s of skipped) {
      const key = `${s.protocol}|${s.address}|${s.code}`;
      groups.set(key, [...(groups.get(key) ?? []), s]);
    }
    for (const group of groups.values()) {
      const first = group[0]!;
      const ports = group.map((s) => s.port);
      this.options.logger.warn(`decoy ${first.protocol} port${ports.length > 1 ? 's' : ''} ${compactPorts(ports)} skipped on ${first.address}: ${first.why}`, {
        protocol: first.protocol,
        address: first.address,
        code: first.code,
        ports: ports.length > 64 ? ports.length : ports,
      });
    }
  }
}

function closeBound(bound: Bound): Promise<void> {
  return new Promise((resolve) => {
    if (bound.kind === 'tcp') bound.server.close(() => resolve());
    else {
      try {
        bound.socket.close(() => resolve());
      } catch {
        resolve();
      }
    }
  });
}

/** [1,2,3,7,9,10] → "1-3,7,9-10" */
export function compactPorts(ports: readonly number[]): string {
  const sorted = [...new Set(ports)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    parts.push(i === j ? `${sorted[i]}` : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}
