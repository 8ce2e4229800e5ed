/** Shared bits of the sensor tests: events, temporary directories, waiting for a condition. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ScanDetected } from '../../core/event';

export function scanEvent(attacker: string, overrides: Partial<ScanDetected> = {}): ScanDetected {
  return {
    version: 1,
    sensorId: 'test-sensor',
    attacker,
    probes: [{ protocol: 'tcp', port: 23, kind: 'connect' }],
    probeCount: 1,
    handshake: true,
    firstSeen: '2026-11-21T10:00:00.000Z',
    lastSeen: '2026-11-21T10:00:00.250Z',
    ...overrides,
  };
}

/**
 * The loopback sources of the unit tests: 127.99.0.0/16, nobody else's. The demo's attacker range
 * 127.66.0.0/16 (bin/commands/probe.ts DEMO_ATTACKER_CIDR) is not used, so a `portsnare demo`
 * running on the same host — which blocks 127.66.0.7 in `table inet portsnare` when root — cannot
 * drop a test's probes, and a test cannot unblock the demo's attacker. A test that needs a
 * 127.66 address (the demo's own guard opens only that range) runs in a network namespace of
 * its own (test/bin/agent.test.ts, test/bin/demo.test.ts).
 */
export const TEST_SOURCE_CIDR = '127.99.0.0/16';

/** 127.99.a.b: the `n`th unit-test loopback source (n < 65,536), e.g. testSource(7) = 127.99.0.7 */
export function testSource(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 0xffff) throw new Error(`testSource: n must be 0-65535, got ${n}`);
  return `127.99.${n >> 8}.${n & 0xff}`;
}

/** 198.51.100.x, 203.0.113.x … n distinct TEST-NET addresses */
export function testNetAddress(n: number): string {
  const nets = ['198.51.100', '203.0.113', '192.0.2'];
  return `${nets[Math.floor(n / 250) % nets.length]}.${(n % 250) + 1}`;
}

export function tempDir(prefix: string): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), `portsnare-${prefix}-`));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** Polls `check` until it is true (an event we cannot await directly), failing after `ms`. */
export async function until(check: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/**
 * For `it.skipIf(...)`: `why` is what the test lacks here (undefined when it can run). Outside CI
 * it prints why and skips; in CI (env CI set) it never skips: the test runs and fails there.
 */
export function skipOutsideCi(why: string | undefined): boolean {
  if (why === undefined || process.env['CI']) return false;
  console.warn(`skipped: ${why}`);
  return true;
}

import dgram from 'node:dgram';
import net from 'node:net';

/** `count` distinct ports that were free on 127.0.0.1 and ::1 for TCP and UDP a moment ago. */
export async function freePorts(count: number): Promise<number[]> {
  const ports: number[] = [];
  while (ports.length < count) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = net.createServer();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const { port: p } = server.address() as net.AddressInfo;
        server.close(() => resolve(p));
      });
    });
    if (!ports.includes(port) && (await udpFree(port))) ports.push(port);
  }
  return ports;
}

function udpFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket('udp4');
    socket.once('error', () => resolve(false));
    socket.bind(port, '127.0.0.1', () => socket.close(() => resolve(true)));
  });
}

/** Connects from `source` (any 127.x works on loopback) and resolves with what the peer sent before closing. */
export function tcpProbe(host: string, port: number, source?: string, opts: { send?: string; keepOpen?: boolean } = {}): Promise<{ data: string; socket: net.Socket }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port, ...(source ? { localAddress: source } : {}), allowHalfOpen: opts.keepOpen ?? false });
    let data = '';
    socket.on('data', (chunk: Buffer) => (data += chunk.toString('utf8')));
    socket.on('error', reject);
    socket.on('connect', () => {
      if (opts.send) socket.write(opts.send);
      if (opts.keepOpen) resolve({ data, socket });
    });
    socket.on('close', () => resolve({ data, socket }));
  });
}

/** Sends one datagram from `source`; resolves with the reply, or undefined after `waitMs`. */
export function udpProbe(host: string, port: number, payload: Buffer, source = '127.0.0.1', waitMs = 300): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
    const finish = (reply?: Buffer): void => {
      clearTimeout(timer);
      socket.close();
      resolve(reply);
    };
    const timer = setTimeout(() => finish(undefined), waitMs);
    socket.on('message', (message) => finish(message));
    socket.bind(0, source, () => socket.send(payload, port, host));
  });
}
