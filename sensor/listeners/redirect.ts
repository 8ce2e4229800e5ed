/**
 * The socket the redirect leads to (`redirectPort`, docs/kernel.md): the kernel's `divert` chain
 * sends new TCP connections to unused ports here — every source in all-unused mode, and in list
 * mode every source seen probing a decoy this period — so a connect scan completes its handshake
 * here, and only here is it proof.
 *
 * Proof is accept(): Linux hands a connection to accept() only after the client's ACK
 * acknowledged exactly our SYN/ACK's initial sequence number plus one (or, when the listener's
 * SYN queue overflowed, a valid SYN cookie). A forger who never sees our SYN/ACK cannot do that
 * but by guessing; a duplicated SYN never gets there at all. The kernel's connection tracking
 * calls a connection "established" on far less (any packet after a reply), so nothing the
 * kernel's rules see is proof: every proven hit comes from a socket (this one, or a decoy
 * listener in sensor/listeners/index.ts).
 *
 * Each accepted connection is one `connect` hit with `handshake: true`, naming the port the
 * client asked for (SO_ORIGINAL_DST, through the native helper; the redirect port itself without
 * it). The socket is closed at once and every error ignored.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { tryCanonicalAddress } from '../../core/address';
import type { Hit } from './index';
import { savedSyn } from './saved-syn';

export interface RedirectListenerOptions {
  readonly port: number;
  /** each accepted connection: the source is proven */
  readonly onHit?: (hit: Hit) => void;
}

/** what Linux keeps of half-open connections for one listener before it answers with SYN cookies */
const BACKLOG = 4096;

export class RedirectListener {
  private server: Server | undefined;
  /** connections accepted (each one a proven `connect` hit when its source could be read) */
  accepted = 0;
  /** accepted connections whose original port could not be read (named by the redirect port) */
  unnamedPort = 0;
  private readonly options: RedirectListenerOptions;
  private readonly port: number;

  constructor(options: RedirectListenerOptions | number) {
    this.options = typeof options === 'number' ? { port: options } : options;
    this.port = this.options.port;
  }

  /** Listens on every address (`::`, dual-stack); rejects when the port is taken. */
  async start(): Promise<number> {
    const server = createServer({ pauseOnConnect: true }, (socket) => this.onConnection(socket));
    server.on('error', () => undefined);
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      const fail = (error: Error): void => reject(new Error(`redirectPort ${this.port}: cannot listen (${error.message})`));
      server.once('error', fail);
      server.listen({ port: this.port, host: '::', ipv6Only: false, backlog: BACKLOG }, () => {
        server.off('error', fail);
        // a connect scanner resets at once: the saved SYN still names its source
        if (savedSyn.available) savedSyn.enable(server);
        resolve();
      });
    });
    const address = server.address();
    return typeof address === 'object' && address ? address.port : this.port;
  }

  private onConnection(socket: Socket): void {
    const at = Date.now();
    this.accepted++;
    socket.on('error', () => undefined);
    const peer = socket.remoteAddress ?? savedSyn.source(socket);
    const original = savedSyn.originalPort(socket);
    socket.destroy();
    const source = peer === undefined ? undefined : tryCanonicalAddress(peer);
    if (source === undefined || !this.options.onHit) return;
    if (original === undefined) this.unnamedPort++;
    this.options.onHit({ source, protocol: 'tcp', port: original ?? this.port, kind: 'connect', handshake: true, at });
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
