import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { DecoyListeners, compactPorts, type DecoyListenerOptions, type Hit } from '../../sensor/listeners';
import { memoryLogger } from '../../sensor/log';
import { freePorts, tcpProbe, udpProbe, until } from './helpers';

describe('decoy listeners (real sockets on loopback)', () => {
  const running: DecoyListeners[] = [];
  const held: net.Server[] = [];

  async function start(overrides: Partial<DecoyListenerOptions> = {}) {
    const hits: Hit[] = [];
    const logger = memoryLogger();
    const listeners = new DecoyListeners({
      addresses: ['127.0.0.1', '::1'],
      tcpPorts: [],
      udpPorts: [],
      maxSockets: 64,
      socketTimeoutMs: 2000,
      maxReadBytes: 1024,
      udpRepliesPerSecond: 100,
      onHit: (hit) => hits.push(hit),
      logger,
      ...overrides,
    });
    running.push(listeners);
    const report = await listeners.start();
    return { listeners, hits, logger, report };
  }

  afterEach(async () => {
    for (const l of running.splice(0)) await l.stop();
    for (const s of held.splice(0)) await new Promise((resolve) => s.close(resolve));
  });

  it('reports a TCP connect as kind connect with a handshake, from the real source address', async () => {
    const [port] = await freePorts(1);
    const { hits } = await start({ tcpPorts: [port!] });

    await tcpProbe('127.0.0.1', port!, '127.99.0.7');
    await until(() => hits.length === 1, 2000, 'a hit');

    expect(hits[0]).toMatchObject({ source: '127.99.0.7', protocol: 'tcp', port, kind: 'connect', handshake: true });
  });

  it('listens on IPv6 too', async () => {
    const [port] = await freePorts(1);
    const { hits } = await start({ tcpPorts: [port!] });
    await tcpProbe('::1', port!);
    await until(() => hits.length === 1, 2000, 'a hit');
    expect(hits[0]).toMatchObject({ source: '::1', protocol: 'tcp' });
  });

  it('reports a UDP datagram as kind udp without a handshake', async () => {
    const [port] = await freePorts(1);
    const { hits } = await start({ udpPorts: [port!] });
    await udpProbe('127.0.0.1', port!, Buffer.from('ping'), '127.99.0.9', 50);
    await until(() => hits.length === 1, 2000, 'a hit');
    expect(hits[0]).toMatchObject({ source: '127.99.0.9', protocol: 'udp', port, kind: 'udp', handshake: false });
  });

  it('shows the banner on TCP, then closes', async () => {
    const [port] = await freePorts(1);
    await start({ tcpPorts: [port!], banner: () => 'SSH-2.0-OpenSSH_9.6' });
    const { data } = await tcpProbe('127.0.0.1', port!, '127.99.0.7');
    expect(data).toBe('SSH-2.0-OpenSSH_9.6\r\n');
  });

  it('never answers a datagram with more bytes than it carried (no amplification)', async () => {
    const [port] = await freePorts(1);
    await start({ udpPorts: [port!], banner: () => 'A'.repeat(500) });

    const small = await udpProbe('127.0.0.1', port!, Buffer.from('abc'), '127.99.0.9');
    const big = await udpProbe('127.0.0.1', port!, Buffer.alloc(800, 1), '127.99.0.9');

    expect(small?.length).toBe(3);
    expect(big?.length).toBe(500);
  });

  it('rate-limits UDP replies', async () => {
    const [port] = await freePorts(1);
    const { listeners, hits } = await start({ udpPorts: [port!], banner: () => 'hello', udpRepliesPerSecond: 2 });
    for (let i = 0; i < 6; i++) await udpProbe('127.0.0.1', port!, Buffer.from('hello'), '127.99.0.9', 30);
    await until(() => hits.length === 6, 2000, 'six hits');
    expect(listeners.stats().udpReplies).toBeLessThanOrEqual(3);
    expect(listeners.stats().udpRepliesSuppressed).toBeGreaterThanOrEqual(3);
  });

  it('skips a port a real service holds, on every address, with a log line', async () => {
    const [busy, free] = await freePorts(2);
    const service = net.createServer();
    held.push(service);
    await new Promise<void>((resolve) => service.listen(busy!, '127.0.0.1', resolve));

    const { report, logger } = await start({ tcpPorts: [busy!, free!] });

    expect(report.tcp).toEqual([free]);
    expect(report.skipped.filter((s) => s.port === busy).map((s) => s.address).sort()).toEqual(['127.0.0.1', '::1']);
    expect(logger.lines.some((l) => l.level === 'warn' && String(l.msg).includes(`port ${busy} skipped on 127.0.0.1: in use by a service`))).toBe(true);
    // the IPv6 side was not left listening either
    await expect(tcpProbe('::1', busy!)).rejects.toThrow(/ECONNREFUSED/);
  });

  it('caps concurrent decoy connections: the rest are closed at accept but still reported', async () => {
    const [port] = await freePorts(1);
    const { listeners, hits } = await start({ tcpPorts: [port!], maxSockets: 2, socketTimeoutMs: 10_000 });

    const open = await Promise.all([1, 2].map((n) => tcpProbe('127.0.0.1', port!, `127.99.0.${n}`, { keepOpen: true })));
    await until(() => listeners.stats().socketsOpen === 2, 2000, 'two open sockets');
    await Promise.all([3, 4, 5].map((n) => tcpProbe('127.0.0.1', port!, `127.99.0.${n}`)));

    expect(listeners.stats().socketsRejected).toBe(3);
    expect(hits).toHaveLength(5);
    for (const { socket } of open) socket.destroy();
  });

  it('closes a silent connection at the timeout', async () => {
    const [port] = await freePorts(1);
    const { listeners } = await start({ tcpPorts: [port!], socketTimeoutMs: 150 });

    const started = Date.now();
    const silent = await tcpProbe('127.0.0.1', port!, '127.99.0.1', { keepOpen: true });
    await until(() => listeners.stats().socketsOpen === 1, 2000, 'an open socket');
    await until(() => listeners.stats().socketsOpen === 0, 3000, 'the timeout');

    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    silent.socket.destroy();
  });

  it('closes a connection that sends more than maxReadBytes', async () => {
    const [port] = await freePorts(1);
    const { listeners } = await start({ tcpPorts: [port!], socketTimeoutMs: 30_000, maxReadBytes: 100 });

    const chatty = await tcpProbe('127.0.0.1', port!, '127.99.0.2', { keepOpen: true });
    chatty.socket.on('error', () => undefined);
    await until(() => listeners.stats().socketsOpen === 1, 2000, 'an open socket');
    chatty.socket.write(Buffer.alloc(200, 0x41));
    await until(() => listeners.stats().socketsOpen === 0, 3000, 'the byte cap');

    expect(listeners.stats().bytesRead).toBeGreaterThanOrEqual(100);
    chatty.socket.destroy();
  });

  it('writes port lists compactly', () => {
    expect(compactPorts([9, 1, 2, 3, 7, 10])).toBe('1-3,7,9-10');
  });
});
