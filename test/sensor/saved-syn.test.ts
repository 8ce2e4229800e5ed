/**
 * A connect scan resets each connection right after the handshake (nmap -sT). When the reset
 * arrives before the agent accepts, getpeername fails; the saved-SYN helper still names the
 * source. The race is made certain here: the agent's event loop is held (execFileSync) while a
 * child process connects from 127.99.x.y and resets.
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { DecoyListeners, type Hit } from '../../sensor/listeners';
import { savedSyn } from '../../sensor/listeners/saved-syn';
import { memoryLogger } from '../../sensor/log';
import { freePorts, skipOutsideCi, until } from './helpers';

/** Connects from `source` and resets at once (SO_LINGER 0), in another process. */
function connectAndReset(host: string, port: number, source: string): void {
  const script = `
    const s = require('node:net').connect({ host: ${JSON.stringify(host)}, port: ${port}, localAddress: ${JSON.stringify(source)} });
    s.on('connect', () => s.resetAndDestroy());
    s.on('close', () => process.exit(0));
    s.on('error', () => process.exit(1));`;
  execFileSync(process.execPath, ['-e', script], { timeout: 10_000 });
}

async function tcpDecoy(port: number, hits: Hit[]): Promise<DecoyListeners> {
  const listeners = new DecoyListeners({
    addresses: ['127.0.0.1'],
    tcpPorts: [port],
    udpPorts: [],
    maxSockets: 64,
    socketTimeoutMs: 2000,
    maxReadBytes: 1024,
    udpRepliesPerSecond: 100,
    onHit: (hit) => hits.push(hit),
    logger: memoryLogger(),
  });
  await listeners.start();
  return listeners;
}

describe('saved SYN (connect scans that reset before accept)', () => {
  const notBuilt = savedSyn.available ? undefined : 'the saved-SYN helper is not built (build/savedsyn.node: sh scripts/build-native.sh needs gcc and Node headers)';

  // CI installs from a fresh clone on Linux with the compiler present: the helper must be there.
  it.skipIf(skipOutsideCi('the saved-SYN build check asserts only in CI (a fresh npm ci on Linux with a C compiler)'))(
    'is built by npm ci where a C compiler and Node headers exist',
    () => {
      expect(savedSyn.available, notBuilt).toBe(true);
    },
  );

  it.skipIf(skipOutsideCi(notBuilt))('reports the source of a connection reset before it was accepted', async () => {
    expect(savedSyn.available, notBuilt).toBe(true);
    const [port] = await freePorts(1);
    const hits: Hit[] = [];
    const listeners = await tcpDecoy(port!, hits);
    try {
      connectAndReset('127.0.0.1', port!, '127.99.5.5'); // our event loop is blocked meanwhile
      await until(() => hits.length === 1, 3000, 'a hit');
      expect(hits[0]).toMatchObject({ source: '127.99.5.5', protocol: 'tcp', port, kind: 'connect', handshake: true });
      expect(listeners.stats().resetBeforeAccept).toBe(1);
    } finally {
      await listeners.stop();
    }
  });

  it('getpeername fails for such a connection: only the saved SYN names the source', async () => {
    const [port] = await freePorts(1);
    const hits: Hit[] = [];
    const listeners = await tcpDecoy(port!, hits);
    const server = (listeners as unknown as { bound: Array<{ kind: string; server?: { on: (e: string, f: (s: { remoteAddress?: string }) => void) => void } }> }).bound[0]?.server;
    const peers: Array<string | undefined> = [];
    server?.on('connection', (socket) => peers.push(socket.remoteAddress));
    try {
      connectAndReset('127.0.0.1', port!, '127.99.5.6');
      await until(() => peers.length === 1, 3000, 'an accepted connection');
      expect(peers[0]).toBeUndefined(); // getpeername failed: the reset won the race
    } finally {
      await listeners.stop();
    }
  });
});
