/**
 * The socket the all-unused redirect leads to (`redirectPort`, docs/kernel.md): the kernel's
 * `divert` chain sends every new TCP connection to an unused port here, so a connect scan
 * completes its handshake — and the kernel's `connect` record (which carries the port the client
 * asked for; Node cannot read SO_ORIGINAL_DST) proves the source. This socket accepts and closes
 * at once and ignores every error. It reports no hit of its own: the kernel's record is the hit
 * for the connection (its local port is always the redirect port, so it could only say
 * "redirected"); it counts what it accepted for /metrics.
 */
import { createServer, type Server } from 'node:net';

export class RedirectListener {
  private server: Server | undefined;
  /** connections accepted (each one also a kernel `connect` record) */
  accepted = 0;

  constructor(private readonly port: number) {}

  /** Listens on every address (`::`, dual-stack); rejects when the port is taken. */
  async start(): Promise<number> {
    const server = createServer({ pauseOnConnect: true }, (socket) => {
      this.accepted++;
      socket.on('error', () => undefined);
      socket.destroy();
    });
    server.on('error', () => undefined);
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      const fail = (error: Error): void => reject(new Error(`redirectPort ${this.port}: cannot listen (${error.message})`));
      server.once('error', fail);
      server.listen({ port: this.port, host: '::', ipv6Only: false, backlog: 511 }, () => {
        server.off('error', fail);
        resolve();
      });
    });
    const address = server.address();
    return typeof address === 'object' && address ? address.port : this.port;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
