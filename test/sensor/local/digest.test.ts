/**
 * The host agent's digest (sensor/local/digest.ts) over the real local pipeline and file store
 * (LocalEnforcement, log-only: no nftables needed), POSTing to a loopback HTTP server.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ScanDetected } from '../../../core/event';
import { parseAgentConfig, type AgentConfigInput } from '../../../sensor/config';
import { LocalEnforcement } from '../../../sensor/local/enforcement';
import { memoryLogger } from '../../../sensor/log';
import { tempDir } from '../helpers';

const hook = { statuses: [] as number[], bodies: [] as Array<Record<string, unknown>>, url: '' };
const server = http.createServer((request, response) => {
  const chunks: Buffer[] = [];
  request.on('data', (c: Buffer) => chunks.push(c));
  request.on('end', () => {
    hook.bodies.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>);
    const status = hook.statuses.shift() ?? 200;
    response.writeHead(status).end();
  });
});

beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  hook.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

let dir: { path: string; remove: () => void };
beforeEach(() => {
  dir = tempDir('digest');
  hook.statuses = [];
  hook.bodies = [];
});
afterEach(() => dir.remove());

function event(attacker: string, ports: number[], at: number): ScanDetected {
  return {
    version: 1,
    sensorId: 'host-1',
    attacker,
    probes: ports.map((port) => ({ protocol: 'tcp' as const, port, kind: 'connect' as const })),
    probeCount: ports.length + 2,
    handshake: true,
    firstSeen: new Date(at - 1000).toISOString(),
    lastSeen: new Date(at).toISOString(),
  };
}

async function open(digest: Record<string, unknown>): Promise<LocalEnforcement> {
  // documentation addresses are special-purpose: the guard refuses them unless opened
  const guard = { blockableSpecialCidrs: ['198.51.100.0/24', '203.0.113.0/24'] };
  const input: AgentConfigInput = { sensorId: 'web-1', stateDirectory: dir.path, enforce: { nftables: { enabled: true } }, guard, digest: digest as AgentConfigInput['digest'] };
  const parsed = parseAgentConfig(input);
  if (!parsed.ok) throw new Error(parsed.error);
  // the digest's URL is https in a real config; the loopback server is plain http
  const config = { ...parsed.value, digest: { ...parsed.value.digest!, webhookUrl: hook.url } };
  const local = await LocalEnforcement.open({ config, own: [], enforcer: null, logger: memoryLogger() });
  return local!;
}

describe('the host digest', () => {
  it('sends the window\'s new blocks, sources and ports once; a restart does not send it again', async () => {
    const local = await open({ webhookUrl: 'https://hooks.example.com/x' });
    const now = Date.now();
    await local.handle(event('203.0.113.7', [22, 23], now), 'e1');
    await local.handle(event('198.51.100.9', [22], now), 'e2');
    const until = Math.floor(now / 3_600_000) * 3_600_000 + 3_600_000;
    expect(await local.digest!.run(until)).toBe('sent');
    expect(hook.bodies).toHaveLength(1);
    expect(hook.bodies[0]).toMatchObject({
      deployment: 'web-1',
      newBlocks: 2,
      sources: 2,
      topSources: [
        { source: '203.0.113.7', hits: 4 },
        { source: '198.51.100.9', hits: 3 },
      ],
      topPorts: [
        { port: 22, sources: 2 },
        { port: 23, sources: 1 },
      ],
    });
    expect(await local.digest!.run(until)).toBe('not-due');
    const again = await open({ webhookUrl: 'https://hooks.example.com/x' });
    expect(await again.digest!.run(until)).toBe('not-due');
    expect(hook.bodies).toHaveLength(1);
  });

  it('below the threshold and after a failed delivery the window stays open: the next digest covers both', async () => {
    const local = await open({ webhookUrl: 'https://hooks.example.com/x', minNewBlocks: 2, everyMinutes: 60 });
    const now = Date.now();
    const first = Math.floor(now / 3_600_000) * 3_600_000 + 3_600_000;
    await local.handle(event('203.0.113.7', [22], now), 'e1');
    expect(await local.digest!.run(first)).toBe('below-threshold');
    await local.handle(event('203.0.113.8', [22], now), 'e2');
    hook.statuses = [503, 503, 503];
    const digest = local.digest!;
    // retries back off 1 s and 2 s: the test's sleep is instant
    (digest as unknown as { options: { sleep: (ms: number) => Promise<void> } }).options.sleep = () => Promise.resolve();
    expect(await digest.run(first + 3_600_000)).toBe('failed');
    expect(hook.bodies).toHaveLength(3);
    expect(digest.undelivered).toBe(1);
    expect(await digest.run(first + 2 * 3_600_000)).toBe('sent');
    expect(hook.bodies.at(-1)).toMatchObject({ from: new Date(first - 3_600_000).toISOString().replace('.000Z', 'Z'), newBlocks: 2 });
  });

  it('sends nothing inside quiet hours', async () => {
    const local = await open({ webhookUrl: 'https://hooks.example.com/x', quietHours: '00:00-23:59', timeZone: 'UTC' });
    await local.handle(event('203.0.113.7', [22], Date.now()), 'e1');
    // 00:00-23:59 UTC is quiet at every minute but 23:59: ask at 12:00 of the next day
    const noon = Math.floor(Date.now() / 86_400_000) * 86_400_000 + 86_400_000 + 12 * 3_600_000;
    expect(await local.digest!.run(noon)).toBe('quiet');
    expect(hook.bodies).toHaveLength(0);
  });

  it('the config: https only, and only with the local pipeline (enforce.nftables)', () => {
    const a = parseAgentConfig({ digest: { webhookUrl: 'http://hooks.example.com/x' }, enforce: { nftables: { enabled: true } } });
    expect(!a.ok && a.error).toMatch(/digest\.webhookUrl: must be https \(got http\)/);
    const b = parseAgentConfig({ digest: { webhookUrl: 'https://hooks.example.com/x' } });
    expect(!b.ok && b.error).toMatch(/digest: needs enforce\.nftables\.enabled/);
  });
});
