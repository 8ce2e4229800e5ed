import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { HealthServer, renderPrometheus, type BlockControl, type ControlApi } from '../../sensor/health';
import { memoryLogger } from '../../sensor/log';

const TOKEN = 'a'.repeat(64);

/** A request over TCP; a change carries the token unless `headers.authorization` says otherwise. */
function call(port: number, method: string, path: string, body?: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  const auth: Record<string, string> = method === 'GET' ? {} : { authorization: `Bearer ${TOKEN}` };
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers: { ...auth, ...headers } }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('health and control server', () => {
  const servers: HealthServer[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) await s.stop();
  });

  async function serve(api: Partial<ControlApi>) {
    const server = new HealthServer(
      { health: () => ({ ok: true, problems: [], warnings: [] }), metrics: () => [], status: () => ({}), blocks: () => undefined, ...api },
      { host: '127.0.0.1', port: 0, logger: memoryLogger(), token: TOKEN, tokenFile: '/nonexistent/control.token' },
    );
    servers.push(server);
    return server.start();
  }

  it('answers 503 with the problems when degraded', async () => {
    const port = await serve({ health: () => ({ ok: false, problems: ['spool full'], warnings: [] }) });
    const res = await call(port, 'GET', '/healthz');
    expect(res.status).toBe(503);
    expect(JSON.parse(res.body)).toMatchObject({ status: 'degraded', problems: ['spool full'] });
  });

  it('checks the request before delegating: JSON bodies only, valid targets, known paths', async () => {
    const calls: string[] = [];
    const control: BlockControl = {
      list: () => [],
      history: () => [],
      unblock: (target) => {
        calls.push(`unblock ${target}`);
        return Promise.resolve(true);
      },
      block: (target) => {
        calls.push(`block ${target}`);
        return Promise.resolve({ action: 'block' });
      },
    };
    const port = await serve({ blocks: () => control });

    expect((await call(port, 'POST', '/blocks', 'target=198.51.100.7', { 'content-type': 'application/x-www-form-urlencoded' })).status).toBe(415);
    expect((await call(port, 'POST', '/blocks', '{"target":"198.51.100.7/24"}', { 'content-type': 'application/json' })).status).toBe(400);
    expect((await call(port, 'POST', '/blocks', '{"target":"198.51.100.7","ttlSeconds":5}', { 'content-type': 'application/json' })).status).toBe(400);
    expect((await call(port, 'POST', '/blocks', '{nope', { 'content-type': 'application/json' })).status).toBe(400);
    expect((await call(port, 'DELETE', '/blocks/not-an-address')).status).toBe(400);
    expect((await call(port, 'GET', '/nothing')).status).toBe(404);
    expect((await call(port, 'PUT', '/blocks')).status).toBe(405);
    expect(calls).toEqual([]);

    expect((await call(port, 'POST', '/blocks', '{"target":"::ffff:198.51.100.7"}', { 'content-type': 'application/json' })).status).toBe(201);
    expect((await call(port, 'DELETE', '/blocks/2001:db8::%2F32')).status).toBe(200);
    expect(calls).toEqual(['block 198.51.100.7', 'unblock 2001:db8::/32']);
  });

  it('renders Prometheus text with labels escaped', () => {
    const text = renderPrometheus([{ name: 'x_total', help: 'X.', type: 'counter', samples: [{ labels: { sink: 'file:/a"b' }, value: 3 }] }]);
    expect(text).toBe('# HELP x_total X.\n# TYPE x_total counter\nx_total{sink="file:/a\\"b"} 3\n');
  });

  it('names health.port when its port is taken', async () => {
    const taken = await serve({});
    const second = new HealthServer(
      { health: () => ({ ok: true, problems: [], warnings: [] }), metrics: () => [], status: () => ({}), blocks: () => undefined },
      { host: '127.0.0.1', port: taken, logger: memoryLogger() },
    );

    await expect(second.start()).rejects.toThrow(new RegExp(`^health\\.port: ${taken} on 127\\.0\\.0\\.1 cannot be used \\(EADDRINUSE: another agent or service holds it\\); pick another health\\.port`));
  });
});
