import { EventEmitter } from 'node:events';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { ScanDetected } from '../../core/event';
import { Agent, defaultSensorId, type AgentOptions } from '../../sensor/agent';
import { parseAgentConfig, type AgentConfigInput } from '../../sensor/config';
import type { KernelBlocks } from '../../sensor/kernel/sets';
import type { KernelDetectorOptions, KernelProbe } from '../../sensor/kernel/detector';
import type { Enforcer } from '../../sensor/local/pipeline';
import { memoryLogger } from '../../sensor/log';
import { eventBridgeClient } from '../../sensor/publish/eventbridge';
import type { Publisher, PublisherReport } from '../../sensor/publish/types';
import { FakePutEvents } from './fake-putevents';
import { freePorts, tcpProbe, tempDir, TEST_SOURCE_CIDR, udpProbe, until } from './helpers';

/** A sink that keeps what it is given. */
class Capture implements Publisher {
  readonly name = 'capture';
  readonly events: ScanDetected[] = [];
  start = (): Promise<void> => Promise.resolve();
  stop = (): Promise<void> => Promise.resolve();
  publish(event: ScanDetected): Promise<boolean> {
    this.events.push(event);
    return Promise.resolve(true);
  }
  describe(): PublisherReport {
    return { name: this.name, status: { published: this.events.length, dropped: 0, errors: 0 }, metrics: { published: this.events.length, dropped: 0, errors: 0 }, health: { problems: [], warnings: [] } };
  }
}

/** An enforcer that remembers what it was told (the kernel side: test/lab/enforce.test.ts). */
class FakeEnforcer implements Enforcer {
  readonly blocked = new Map<string, number>();
  ensure = (): Promise<void> => Promise.resolve();
  block(target: string, expiresAt: number): Promise<void> {
    this.blocked.set(target, expiresAt);
    return Promise.resolve();
  }
  blockMany(entries: ReadonlyArray<{ target: string; expiresAt: number }>): Promise<void> {
    for (const e of entries) this.blocked.set(e.target, e.expiresAt);
    return Promise.resolve();
  }
  unblock(target: string): Promise<void> {
    this.blocked.delete(target);
    return Promise.resolve();
  }
  list(): Promise<Array<{ target: string; expiresAt: number }>> {
    return Promise.resolve([...this.blocked].map(([target, expiresAt]) => ({ target, expiresAt })));
  }
}

/** Stands in for the nftables detector (the real one is exercised in test/lab). */
class FakeDetector extends EventEmitter {
  started = false;
  constructor(readonly options: KernelDetectorOptions) {
    super();
  }
  start(): Promise<void> {
    this.started = true;
    return Promise.resolve();
  }
  stop(): Promise<void> {
    this.started = false;
    return Promise.resolve();
  }
  probe(p: Partial<KernelProbe> & { source: string; port: number }): void {
    this.emit('probe', { protocol: 'tcp', kind: 'syn', at: Date.now(), blockedByKernel: false, ...p });
  }
}

/** The aggregator's count of hits (socket and kernel, before filtering): what a probe has surely reached. */
function hitsOf(agent: Agent): number {
  return (agent.status().aggregator as { hits: number } | undefined)?.hits ?? 0;
}

/** The value of an unlabelled metric, read in process. */
function metricOf(agent: Agent, name: string): number | undefined {
  return agent.metrics().find((m) => m.name === name)?.samples[0]?.value;
}

/** each agent's TCP change token (control.tokenFile in its state directory), by health port */
const tokens = new Map<number, string>();

/** A request over loopback TCP; a change carries the agent's token, as root's CLI does. */
function request(port: number, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; text: string; json: () => unknown }> {
  const token = method === 'GET' ? undefined : tokens.get(port);
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(
      { host: '127.0.0.1', port, method, path, headers: { ...(payload ? { 'content-type': 'application/json' } : {}), ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers } },
      (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => (text += chunk.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text, json: () => JSON.parse(text) as unknown }));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

describe('defaultSensorId', () => {
  it('is the EC2 instance id from the DMI asset tag, else the hostname', () => {
    expect(defaultSensorId(() => 'i-0123456789abcdef0\n')).toBe('i-0123456789abcdef0');
    expect(defaultSensorId(() => 'Default string')).toBe(hostname());
    expect(
      defaultSensorId(() => {
        throw new Error('ENOENT');
      }),
    ).toBe(hostname());
  });
});

describe('agent on loopback (monitor mode, real sockets)', () => {
  const agents: Agent[] = [];
  const dirs: Array<{ remove: () => void }> = [];
  const services: FakePutEvents[] = [];

  async function startAgent(input: AgentConfigInput, options: Partial<AgentOptions> = {}) {
    const state = tempDir('agent');
    dirs.push(state);
    const parsed = parseAgentConfig({ sensorId: 'test-agent', listen: ['127.0.0.1', '::1'], stateDirectory: state.path, health: { port: 0 }, ...input });
    if (!parsed.ok) throw new Error(parsed.error);
    const capture = new Capture();
    const logger = memoryLogger();
    const agent = new Agent({ config: parsed.value, logger, publishers: [capture], ownAddresses: () => ['127.0.0.1', '::1'], ...options });
    agents.push(agent);
    const report = await agent.start();
    if (report.healthPort !== undefined) tokens.set(report.healthPort, readFileSync(join(agent.config.stateDirectory, 'control.token'), 'utf8').trim());
    return { agent, capture, logger, report, state: state.path };
  }

  afterEach(async () => {
    for (const agent of agents.splice(0)) await agent.stop(1000);
    for (const service of services.splice(0)) await service.stop();
    for (const dir of dirs.splice(0)) dir.remove();
  });

  it('reports a TCP probe from another address as one Scan Detected event', async () => {
    const [tcp, udp] = await freePorts(2);
    const { capture, report } = await startAgent({ tcpPorts: [tcp!], udpPorts: [udp!] });
    expect(report).toMatchObject({ sensorId: 'test-agent', enforcement: 'off', stealth: 'off', listeners: { tcp: [tcp], udp: [udp] } });

    await tcpProbe('127.0.0.1', tcp!, '127.99.0.7');
    await until(() => capture.events.length === 1, 3000, 'an event');

    expect(capture.events[0]).toMatchObject({ version: 1, sensorId: 'test-agent', attacker: '127.99.0.7', probes: [{ protocol: 'tcp', port: tcp, kind: 'connect' }], handshake: true });
  });

  it('reports a UDP probe, unverified', async () => {
    const [udp] = await freePorts(1);
    const { capture } = await startAgent({ tcpPorts: [], udpPorts: [udp!] });
    await udpProbe('127.0.0.1', udp!, Buffer.from('x'), '127.99.0.8', 20);
    await until(() => capture.events.length === 1, 3000, 'an event');
    expect(capture.events[0]).toMatchObject({ attacker: '127.99.0.8', handshake: false, probes: [{ protocol: 'udp', kind: 'udp' }] });
  });

  it('never reports an ignored source or its own addresses', async () => {
    const [tcp] = await freePorts(1);
    const { capture, agent } = await startAgent({ tcpPorts: [tcp!], ignore: ['127.99.77.0/24'] });

    await tcpProbe('127.0.0.1', tcp!, '127.99.77.4');
    await tcpProbe('127.0.0.1', tcp!, '127.0.0.1');
    await tcpProbe('::1', tcp!);
    await tcpProbe('127.0.0.1', tcp!, '127.99.0.9'); // the one that counts, last
    await until(() => capture.events.length === 1, 3000, 'an event');

    expect(capture.events.map((e) => e.attacker)).toEqual(['127.99.0.9']);
    expect(agent.status()).toMatchObject({ aggregator: { ignored: 1, own: 2 } });
  });

  it('applies trigger and dedupe: one event per attacker however many probes', async () => {
    const ports = await freePorts(3);
    const { capture, agent } = await startAgent({ tcpPorts: ports, trigger: { hits: 2, windowSeconds: 30 }, dedupeSeconds: 60 });

    await tcpProbe('127.0.0.1', ports[0]!, '127.99.1.1');
    await until(() => hitsOf(agent) === 1, 3000, 'the first hit'); // the aggregator emits synchronously on a hit
    expect(capture.events).toHaveLength(0); // one probe is below the trigger
    for (const port of ports) await tcpProbe('127.0.0.1', port, '127.99.1.1');
    await until(() => capture.events.length === 1, 3000, 'an event');
    const before = hitsOf(agent);
    await tcpProbe('127.0.0.1', ports[0]!, '127.99.1.1');
    await until(() => hitsOf(agent) === before + 1, 3000, 'the hit inside the dedupe window');

    expect(capture.events).toHaveLength(1);
    expect(capture.events[0]!.probeCount).toBe(2);
  });

  it('serves /healthz, /metrics and /status on loopback, and refuses a foreign Host header', async () => {
    const [tcp] = await freePorts(1);
    const { agent } = await startAgent({ tcpPorts: [tcp!], udpPorts: [] });
    const port = agent.healthPort!;
    await tcpProbe('127.0.0.1', tcp!, '127.99.0.7');
    await until(() => metricOf(agent, 'portsnare_detections_total') === 1, 3000, 'an event');

    const health = await request(port, 'GET', '/healthz');
    expect(health.status).toBe(200);
    expect(health.json()).toMatchObject({ status: 'ok' });

    const metrics = await request(port, 'GET', '/metrics');
    expect(metrics.text).toContain('# TYPE portsnare_detections_total counter');
    expect(metrics.text).toMatch(/^portsnare_detections_total 1$/m);
    expect(metrics.text).toMatch(/^portsnare_events_published_total\{sink="capture"\} 1$/m);
    expect(metrics.text).toMatch(/^portsnare_sockets_open \d+$/m);
    expect(metrics.text).toMatch(/^portsnare_listeners\{protocol="tcp"\} 2$/m);

    const status = await request(port, 'GET', '/status');
    expect(status.json()).toMatchObject({ sensorId: 'test-agent', watching: { tcp: String(tcp) }, enforcement: 'off' });

    expect((await request(port, 'GET', '/blocks')).status).toBe(409);
    expect((await request(port, 'GET', '/healthz', undefined, { host: 'evil.example' })).status).toBe(403);
  });

  it('with local enforcement: blocks a scanner, answers the control API, refuses what the guard protects', async () => {
    const [tcp] = await freePorts(1);
    const enforcer = new FakeEnforcer();
    const { agent, state } = await startAgent(
      { tcpPorts: [tcp!], enforce: { nftables: { enabled: true } }, guard: { blockableSpecialCidrs: [TEST_SOURCE_CIDR] } },
      { enforcer },
    );
    const port = agent.healthPort!;

    await tcpProbe('127.0.0.1', tcp!, '127.99.0.7');
    await until(() => enforcer.blocked.has('127.99.0.7'), 3000, 'the block');

    const list = (await request(port, 'GET', '/blocks')).json() as Array<{ target: string; active: boolean }>;
    expect(list).toEqual([expect.objectContaining({ target: '127.99.0.7', active: true, reason: 'sensor' })]);

    const refused = await request(port, 'POST', '/blocks', { target: '127.0.0.1' });
    expect(refused.status).toBe(403);
    expect(refused.json()).toMatchObject({ rule: expect.stringMatching(/127\.0\.0\.1|loopback/) });

    const badReason = await request(port, 'POST', '/blocks', { target: '127.99.5.0/24', reason: 'because' });
    expect(badReason.status).toBe(400);
    expect(badReason.json()).toMatchObject({ error: expect.stringMatching(/^reason: /) });

    const manual = await request(port, 'POST', '/blocks', { target: '127.99.5.0/24', ttlSeconds: 600, requestedBy: 'alice: test' });
    expect(manual.text).toContain('"action": "block"');
    expect(manual.status).toBe(201);
    expect(enforcer.blocked.has('127.99.5.0/24')).toBe(true);

    expect((await request(port, 'DELETE', '/blocks/127.99.5.0%2F24')).status).toBe(200);
    expect(enforcer.blocked.has('127.99.5.0/24')).toBe(false);
    expect((await request(port, 'DELETE', '/blocks/127.99.5.0/24')).status).toBe(404);
    const history = (await request(port, 'GET', '/history/127.99.5.0%2F24')).json() as unknown[];
    expect(history.length).toBeGreaterThanOrEqual(2);

    // a restart puts the block back
    await agent.stop(1000);
    const again = new FakeEnforcer();
    await startAgent({ tcpPorts: [tcp!], stateDirectory: state, enforce: { nftables: { enabled: true } }, guard: { blockableSpecialCidrs: [TEST_SOURCE_CIDR] } }, { enforcer: again });
    expect(again.blocked.has('127.99.0.7')).toBe(true);
  });

  it('opens the circuit breaker past burstLimitPerMinute: refuses the next block and says so in /status, /healthz and /metrics', async () => {
    const [tcp] = await freePorts(1);
    const enforcer = new FakeEnforcer();
    const { agent } = await startAgent(
      { tcpPorts: [tcp!], enforce: { nftables: { enabled: true, policy: { burstLimitPerMinute: 1 } } }, guard: { blockableSpecialCidrs: [TEST_SOURCE_CIDR] } },
      { enforcer },
    );
    const port = agent.healthPort!;
    const status = async () => (await request(port, 'GET', '/status')).json() as { circuitBreakerOpen: boolean };
    const metrics = async () => (await request(port, 'GET', '/metrics')).text;
    expect((await status()).circuitBreakerOpen).toBe(false);

    await tcpProbe('127.0.0.1', tcp!, '127.99.8.1');
    await until(() => enforcer.blocked.has('127.99.8.1'), 3000, 'the first block');
    expect((await status()).circuitBreakerOpen).toBe(true); // the minute's one block is spent

    await tcpProbe('127.0.0.1', tcp!, '127.99.8.2');
    await until(() => metricOf(agent, 'portsnare_blocks_refused_total') === 1, 3000, 'the refusal');
    expect(await metrics()).toMatch(/^portsnare_blocks_refused_total 1$/m);
    expect(enforcer.blocked.has('127.99.8.2')).toBe(false);
    expect((await request(port, 'GET', '/healthz')).json()).toMatchObject({ warnings: [expect.stringMatching(/^circuit breaker open/)] });
    expect(await metrics()).toMatch(/^portsnare_circuit_breaker_open 1$/m);
  });

  it('the runtime allowlist: allow add lifts the blocks it covers at once, refuses new ones, survives a restart; remove undoes it', async () => {
    const [tcp] = await freePorts(1);
    const enforcer = new FakeEnforcer();
    const input: AgentConfigInput = { tcpPorts: [tcp!], enforce: { nftables: { enabled: true } }, guard: { blockableSpecialCidrs: ['203.0.113.0/24'] } };
    const { agent, state } = await startAgent(input, { enforcer });
    const port = agent.healthPort!;
    expect((await request(port, 'POST', '/blocks', { target: '203.0.113.7' })).status).toBe(201);
    expect(enforcer.blocked.has('203.0.113.7')).toBe(true);

    const added = await request(port, 'POST', '/allow', { target: '203.0.113.0/28', requestedBy: 'ops' });
    const again = await request(port, 'POST', '/blocks', { target: '203.0.113.7' });

    expect(added.status).toBe(201);
    expect(added.json()).toMatchObject({ target: '203.0.113.0/28', added: true, lifted: ['203.0.113.7'] });
    expect(enforcer.blocked.has('203.0.113.7')).toBe(false);
    expect(again.status).toBe(403);
    expect(again.text).toContain('203.0.113.0/28');

    await agent.stop(1000);
    const parsed = parseAgentConfig({ sensorId: 'test-agent', listen: ['127.0.0.1'], stateDirectory: state, health: { port: 0 }, ...input });
    if (!parsed.ok) throw new Error(parsed.error);
    const restarted = new Agent({ config: parsed.value, logger: memoryLogger(), publishers: [], ownAddresses: () => ['127.0.0.1'], enforcer });
    agents.push(restarted);
    await restarted.start();
    const second = restarted.healthPort!;
    tokens.set(second, readFileSync(join(state, 'control.token'), 'utf8').trim());
    expect((await request(second, 'GET', '/allow')).json()).toMatchObject([{ target: '203.0.113.0/28', by: 'token ops' }]);
    expect((await request(second, 'POST', '/blocks', { target: '203.0.113.7' })).status).toBe(403);

    expect((await request(second, 'DELETE', '/allow/203.0.113.0%2F28')).status).toBe(200);
    expect((await request(second, 'POST', '/blocks', { target: '203.0.113.7' })).status).toBe(201);
    expect((await request(second, 'DELETE', '/allow/203.0.113.0%2F28')).status).toBe(404);
  });

  it('control: the socket changes state and names the kernel\'s uid; TCP reads, and changes only with the token', async () => {
    const [tcp] = await freePorts(1);
    const { agent, state } = await startAgent({ tcpPorts: [tcp!], enforce: { nftables: { enabled: true } }, guard: { blockableSpecialCidrs: ['198.51.100.0/24'] } }, { enforcer: new FakeEnforcer() });
    const port = agent.healthPort!;
    const socketPath = join(state, 'control.sock');
    expect(statSync(socketPath).isSocket()).toBe(true);
    // the group may not exist on this machine: then owner only (0600); with it, 0660
    expect(statSync(socketPath).mode & 0o777).toBeLessThanOrEqual(0o660);
    expect(statSync(socketPath).mode & 0o007).toBe(0);
    expect(statSync(join(state, 'control.token')).mode & 0o077).toBe(0);

    // TCP without the token: reads yes, changes no (and nothing changed)
    for (const [method, path, body] of [['POST', '/blocks', { target: '198.51.100.9' }], ['DELETE', '/blocks/198.51.100.9', undefined], ['POST', '/allow', { target: '198.51.100.0/28' }], ['DELETE', '/allow/198.51.100.0%2F28', undefined], ['POST', '/reload', {}]] as const) {
      const answer = await request(port, method, path, body, { authorization: 'Bearer wrong' });
      expect(answer.status, `${method} ${path}`).toBe(403);
      expect(answer.json()).toMatchObject({ permission: 'denied' });
    }
    expect((await request(port, 'GET', '/blocks')).json()).toEqual([]);
    expect((await request(port, 'GET', '/status')).status).toBe(200);

    // the socket: allowed, and the history says who by the kernel, whatever the client claims
    const viaSocket = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const payload = JSON.stringify({ target: '198.51.100.9', requestedBy: 'root-claimed' });
      const req = http.request({ socketPath, method: 'POST', path: '/blocks', headers: { 'content-type': 'application/json', host: 'localhost' } }, (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => (text += chunk.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      });
      req.on('error', reject);
      req.end(payload);
    });
    expect(viaSocket.status).toBe(201);
    const history = (await request(port, 'GET', '/history/198.51.100.9')).json() as Array<{ record: { note?: string } }>;
    const uid = process.getuid!();
    expect(history.at(-1)?.record.note).toMatch(new RegExp(`^requested by uid=${uid}\\(\\S+\\) root-claimed`));
  });

  it('a failing store makes /healthz 503 naming the path and the error, and sets the metric, until a write succeeds', async (ctx) => {
    const [tcp] = await freePorts(1);
    const { agent, state } = await startAgent({ tcpPorts: [tcp!], enforce: { nftables: { enabled: true } }, guard: { blockableSpecialCidrs: ['198.51.100.0/24'] } }, { enforcer: new FakeEnforcer() });
    const port = agent.healthPort!;
    expect((await request(port, 'POST', '/blocks', { target: '198.51.100.30' })).status).toBe(201);
    const journal = readdirSync(state).find((name) => name.endsWith('.journal'))!;
    // the immutable flag (as in the report): needs root and a file system that has it (ext4, xfs; not tmpfs)
    if (spawnSync('chattr', ['+i', join(state, journal)]).status !== 0) {
      if (process.env.CI) throw new Error(`chattr +i failed on ${state}: the store-failure test needs root and ext4/xfs for the temporary directory`);
      ctx.skip();
    }
    try {
      expect((await request(port, 'POST', '/blocks', { target: '198.51.100.31' })).status).toBe(500);
      const health = await request(port, 'GET', '/healthz');
      expect(health.status).toBe(503);
      expect((health.json() as { problems: string[] }).problems).toEqual([expect.stringMatching(new RegExp(`^block store failing: stateDirectory .* cannot append to ${join(state, journal).replace(/[.]/g, '\\.')}: EPERM`))]);
      const metrics = (await request(port, 'GET', '/metrics')).text;
      expect(metrics).toMatch(/^portsnare_store_healthy 0$/m);
      expect(metrics).toMatch(/^portsnare_store_write_errors_total 1$/m);
    } finally {
      spawnSync('chattr', ['-i', join(state, journal)]);
    }
    expect((await request(port, 'POST', '/blocks', { target: '198.51.100.31' })).status).toBe(201);
    expect((await request(port, 'GET', '/healthz')).status).toBe(200);
    expect((await request(port, 'GET', '/metrics')).text).toMatch(/^portsnare_store_healthy 1$/m);
  });

  it('says plainly when enforcement is log-only', async () => {
    const [tcp] = await freePorts(1);
    const { report, logger, agent } = await startAgent({ tcpPorts: [tcp!], enforce: { nftables: { enabled: true } } }, { enforcer: null });
    expect(report.enforcement).toBe('log-only');
    expect(logger.lines.some((l) => l.level === 'warn' && String(l.msg).startsWith('enforcement is LOG-ONLY'))).toBe(true);
    const health = (await request(agent.healthPort!, 'GET', '/healthz')).json();
    expect(health).toMatchObject({ warnings: expect.arrayContaining([expect.stringMatching(/log-only/)]) });
  });

  it('publishes to EventBridge through the spool, and keeps what an outage holds across a restart', async () => {
    const service = new FakePutEvents();
    services.push(service);
    const endpoint = await service.start();
    const [tcp] = await freePorts(1);
    const state = tempDir('agent-eb');
    dirs.push(state);
    const input: AgentConfigInput = { tcpPorts: [tcp!], udpPorts: [], stateDirectory: state.path, sinks: [{ type: 'eventbridge', busName: 'bus', region: 'eu-west-1', endpoint }] };
    const options: Partial<AgentOptions> = {
      publishers: undefined,
      eventBridgeClient: (sink) => eventBridgeClient({ region: sink.region!, endpoint: sink.endpoint!, credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'secret' } }),
      backoff: { baseMs: 5, maxMs: 30 },
    };

    service.down = { kind: 'internal' };
    const first = await startAgent(input, options);
    await tcpProbe('127.0.0.1', tcp!, '127.99.0.7');
    await tcpProbe('127.0.0.1', tcp!, '127.99.0.8');
    await until(() => metricOf(first.agent, 'portsnare_spool_depth_events') === 2, 3000, 'two spooled events');
    const stopping = Date.now();
    await first.agent.stop(300);
    expect(Date.now() - stopping).toBeLessThan(2000);
    expect(service.scans()).toHaveLength(0);

    service.down = undefined;
    await startAgent(input, options);
    await service.waitForAccepted(2);
    expect(service.details().map((d) => d.attacker).sort()).toEqual(['127.99.0.7', '127.99.0.8']);
  });

  it('refuses to start when every decoy port is taken and nothing else watches', async () => {
    const [busy] = await freePorts(1);
    const service = net.createServer();
    await new Promise<void>((resolve) => service.listen(busy!, '127.0.0.1', resolve));
    try {
      await expect(startAgent({ tcpPorts: [busy!], udpPorts: [] })).rejects.toThrow(/nothing to watch/);
    } finally {
      await new Promise((resolve) => service.close(resolve));
    }
  });

  it('reports a full spool in /healthz and /metrics', async () => {
    const service = new FakePutEvents();
    services.push(service);
    const endpoint = await service.start();
    service.down = { kind: 'internal' };
    const [tcp] = await freePorts(1);
    const { agent, logger } = await startAgent(
      { tcpPorts: [tcp!], udpPorts: [], spool: { maxBytes: 4096 }, sinks: [{ type: 'eventbridge', busName: 'bus', region: 'eu-west-1', endpoint }] },
      {
        publishers: undefined,
        eventBridgeClient: (sink) => eventBridgeClient({ region: sink.region!, endpoint: sink.endpoint!, credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'secret' } }),
        backoff: { baseMs: 5, maxMs: 30 },
      },
    );
    for (let i = 1; i <= 30; i++) await tcpProbe('127.0.0.1', tcp!, `127.99.3.${i}`);
    await until(() => logger.lines.some((l) => l.msg === 'spool full: event NOT kept'), 3000, 'the spool to fill');

    const health = await request(agent.healthPort!, 'GET', '/healthz');
    expect(health.status).toBe(503);
    expect(health.json()).toMatchObject({ problems: [expect.stringMatching(/spool full/)] });
    const metrics = (await request(agent.healthPort!, 'GET', '/metrics')).text;
    expect(metrics).toMatch(/^portsnare_spool_full\{sink="eventbridge:bus"\} 1$/m);
    expect(metrics).toMatch(/^portsnare_spool_refused_total\{sink="eventbridge:bus"\} [1-9]\d*$/m);
  });

  describe('with stealth (kernel detector)', () => {
    async function stealthAgent(input: AgentConfigInput, options: Partial<AgentOptions> = {}) {
      let detector: FakeDetector | undefined;
      const started = await startAgent({ stealth: true, ...input }, { kernelDetector: (o) => (detector = new FakeDetector(o)), ...options });
      return { ...started, detector: detector! };
    }

    it('watches the decoys the sockets hold, exempts ignore, own and allowlist, and reports kernel probes by kind', async () => {
      const [a, b] = await freePorts(2);
      const { detector, capture, report } = await stealthAgent({ tcpPorts: [a!, b!], udpPorts: [], ignore: ['198.51.100.0/24'], guard: { allowlist: ['203.0.113.5'] } });

      expect(report.stealth).toBe('on');
      expect(detector.started).toBe(true);
      expect(detector.options).toMatchObject({ tcpPorts: [a!, b!].sort((x, y) => x - y), udpPorts: [] });
      expect(detector.options.exempt).toEqual(expect.arrayContaining(['198.51.100.0/24', '127.0.0.1', '::1', '203.0.113.5']));
      expect(detector.options.killTtlSeconds).toBeUndefined();

      detector.probe({ source: '192.0.2.9', port: a!, kind: 'xmas' });
      await until(() => capture.events.length === 1, 2000, 'an event');
      expect(capture.events[0]).toMatchObject({ attacker: '192.0.2.9', handshake: false, probes: [{ protocol: 'tcp', port: a, kind: 'xmas' }] });
    });

    it('counts the kernel SYN, the kernel handshake and the socket accept of one connect as one hit', async () => {
      const ports = await freePorts(2);
      const { detector, capture, agent } = await stealthAgent({ tcpPorts: ports, udpPorts: [], trigger: { hits: 2, windowSeconds: 60 } });

      detector.probe({ source: '127.99.2.2', port: ports[0]! });
      detector.probe({ source: '127.99.2.2', port: ports[0]!, kind: 'connect' });
      await tcpProbe('127.0.0.1', ports[0]!, '127.99.2.2');
      await until(() => hitsOf(agent) === 3, 3000, 'the socket accept'); // two kernel views and the accept
      expect(capture.events).toHaveLength(0); // one connect, seen twice, is one hit

      detector.probe({ source: '127.99.2.2', port: ports[1]! });
      await until(() => capture.events.length === 1, 2000, 'an event');
      expect(capture.events[0]).toMatchObject({ handshake: true });
    });

    it('never takes a kernel record for proof, whatever its kind: only a socket accept proves (a duplicated SYN is "established" to conntrack)', async () => {
      const [a] = await freePorts(1);
      const { detector, capture } = await stealthAgent({ tcpPorts: [a!], udpPorts: [] });

      detector.probe({ source: '192.0.2.10', port: a!, kind: 'connect' });
      await until(() => capture.events.length === 1, 2000, 'an event');
      expect(capture.events[0]).toMatchObject({ attacker: '192.0.2.10', handshake: false, proof: 'none' });
    });

    it('lets the kernel block on the first packet only when the policy blocks unverified sources', async () => {
      const [a] = await freePorts(1);
      const off = await stealthAgent({ tcpPorts: [a!], enforce: { nftables: { enabled: true } } }, { enforcer: new FakeEnforcer() });
      expect(off.detector.options.killTtlSeconds).toBeUndefined();
      await off.agent.stop(500);

      const on = await stealthAgent(
        { tcpPorts: [a!], enforce: { nftables: { enabled: true, policy: { blockUnverified: true, baseTtlSeconds: 600 } } }, guard: { allowlist: ['203.0.113.5'], blockableSpecialCidrs: ['198.51.100.0/24'] } },
        { enforcer: new FakeEnforcer() },
      );
      expect(on.detector.options.killTtlSeconds).toBe(600);
      // the kernel never adds what the guard protects: allowlist, this host, special ranges unless allowed
      expect(on.detector.options.killGuard).toEqual({ neverBlock: ['203.0.113.5', '127.0.0.1', '::1'], blockSpecialRanges: false, blockableSpecialCidrs: ['198.51.100.0/24'] });
    });

    it('counts kernel quarantines and kernel blocks in /metrics; a quarantine is no block and trips no breaker', async () => {
      const [a] = await freePorts(1);
      const { detector, agent } = await stealthAgent({ tcpPorts: [a!], enforce: { nftables: { enabled: true, policy: { burstLimitPerMinute: 1 } } } }, { enforcer: new FakeEnforcer() });
      expect(detector.options).toMatchObject({ quarantineSeconds: 10, quarantinePerMinute: 1, killPerMinute: 1 });
      detector.probe({ source: '192.0.2.20', port: a!, quarantinedByKernel: true });
      detector.probe({ source: '192.0.2.21', port: a!, quarantinedByKernel: true });
      detector.probe({ source: '192.0.2.22', port: a!, kind: 'connect', blockedByKernel: true });
      await until(() => metricOf(agent, 'portsnare_kernel_blocks_total') === 1, 2000, 'the kernel block counted');
      expect(metricOf(agent, 'portsnare_kernel_quarantines_total')).toBe(2);
      expect(metricOf(agent, 'portsnare_circuit_breaker_open')).toBe(0);
    });

    it('monitor mode asks the kernel for no quarantine and no redirect', async () => {
      const { detector } = await stealthAgent({ tcpPorts: 'all-unused', udpPorts: [] });
      expect(detector.options.quarantineSeconds).toBe(0);
      expect(detector.options.redirectPort).toBeUndefined();
    });

    it('all-unused with enforcement: a connection the redirect socket accepts is proof, and blocks its source', async () => {
      const [redirect] = await freePorts(1);
      const enforcer = new FakeEnforcer();
      const { detector, agent, capture } = await stealthAgent(
        { tcpPorts: 'all-unused', udpPorts: [], redirectPort: redirect!, enforce: { nftables: { enabled: true } }, guard: { blockableSpecialCidrs: ['127.0.0.0/8'] } },
        { enforcer },
      );
      expect(detector.options.redirectPort).toBe(redirect);
      await tcpProbe('127.0.0.1', redirect!, '127.99.3.3');
      await until(() => metricOf(agent, 'portsnare_redirected_connections_total') === 1, 2000, 'the redirected connection');
      // not redirected here (no nat on loopback in this test): the port is the redirect port itself
      await until(() => capture.events.length === 1, 2000, 'the proven event');
      expect(capture.events[0]).toMatchObject({ attacker: '127.99.3.3', handshake: true, proof: 'handshake', probes: [{ protocol: 'tcp', port: redirect, kind: 'connect' }] });
      await until(() => enforcer.blocked.has('127.99.3.3'), 2000, 'the block');
    });

    it('records at start the blocks the kernel made while the agent was down, with their remaining time', async () => {
      const [a] = await freePorts(1);
      const enforcer = new FakeEnforcer();
      const read = (): Promise<KernelBlocks> =>
        Promise.resolve({ blocked: [{ address: '192.0.2.30', remainingSeconds: 500, expiresAt: Date.now() + 500_000 }], quarantined: [] });
      const { agent } = await stealthAgent(
        { tcpPorts: [a!], enforce: { nftables: { enabled: true } }, guard: { blockableSpecialCidrs: ['192.0.2.0/24'] } },
        { enforcer, readKernelBlocks: read },
      );
      expect(metricOf(agent, 'portsnare_blocks_active')).toBe(1);
      const left = ((enforcer.blocked.get('192.0.2.30') ?? 0) - Date.now()) / 1000;
      expect(left).toBeGreaterThan(490);
      expect(left).toBeLessThanOrEqual(500);
    });
  });
});
