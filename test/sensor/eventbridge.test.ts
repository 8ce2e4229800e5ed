import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { SensorHeartbeatSchema } from '../../core/event';
import { EventBridgePublisher, eventBridgeClient } from '../../sensor/publish/eventbridge';
import { Spool } from '../../sensor/publish/spool';
import { memoryLogger } from '../../sensor/log';
import { FakePutEvents } from './fake-putevents';
import { scanEvent, tempDir, testNetAddress, until } from './helpers';

const BUS = 'portsnare-test-bus';

describe('EventBridge publisher (real SDK client, local PutEvents endpoint)', () => {
  let service: FakePutEvents;
  let endpoint: string;
  let dir: ReturnType<typeof tempDir>;
  const started: EventBridgePublisher[] = [];

  function publisher(opts: { maxBytes?: number; sensorId?: string; heartbeatMs?: number } = {}) {
    const logger = memoryLogger();
    const client = eventBridgeClient({ region: 'eu-west-1', endpoint, credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'secret' } });
    const spool = new Spool({ directory: dir.path, maxBytes: opts.maxBytes ?? 1 << 20, logger });
    const heartbeat = opts.sensorId ? { sensorId: opts.sensorId, heartbeatMs: opts.heartbeatMs ?? 0 } : {};
    const sink = new EventBridgePublisher({ client, busName: BUS, spool, logger, backoffBaseMs: 5, backoffMaxMs: 40, ...heartbeat });
    started.push(sink);
    return { sink, logger, spool };
  }

  async function publishMany(sink: EventBridgePublisher, count: number, from = 0): Promise<boolean[]> {
    const kept: boolean[] = [];
    for (let i = from; i < from + count; i++) kept.push(await sink.publish(scanEvent(testNetAddress(i)), `id-${i}`));
    return kept;
  }

  function attackers(): string[] {
    return service.details().map((detail) => detail.attacker as string);
  }

  beforeEach(async () => {
    service = new FakePutEvents();
    endpoint = await service.start();
    dir = tempDir('eb');
  });

  afterEach(async () => {
    for (const sink of started.splice(0)) await sink.stop(0);
    await service.stop();
    dir.remove();
  });

  it('sends every event as a PutEvents entry, at most 10 per call, with the contract source, detail-type and bus', async () => {
    const { sink } = publisher();
    await sink.start();
    await publishMany(sink, 25);
    await service.waitForAccepted(25);

    expect(new Set(attackers()).size).toBe(25);
    expect(service.requests.every((r) => r.entries <= 10 && r.target === 'AWSEvents.PutEvents')).toBe(true);
    expect(service.requests[0]!.contentType).toBe('application/x-amz-json-1.1');
    const entry = service.accepted[0]!;
    expect(entry).toMatchObject({ Source: 'portsnare.sensor', DetailType: 'Scan Detected', EventBusName: BUS });
    expect(JSON.parse(entry.Detail)).toEqual(scanEvent(testNetAddress(0)));
  });

  it('sends a Sensor Heartbeat at start and on every interval, with the sensor id, in the contract shape', async () => {
    const { sink } = publisher({ sensorId: 'Portsnare/Sensor', heartbeatMs: 20 });
    await sink.start();
    await until(() => sink.stats().heartbeats >= 3, 5000, 'three heartbeats answered');
    const beats = service.heartbeats();
    for (const beat of beats) {
      expect(beat).toMatchObject({ Source: 'portsnare.sensor', EventBusName: BUS });
      expect(SensorHeartbeatSchema.safeParse(JSON.parse(beat.Detail)).success).toBe(true);
      expect(JSON.parse(beat.Detail)).toMatchObject({ version: 1, sensorId: 'Portsnare/Sensor' });
    }
    expect(sink.stats().heartbeats).toBeGreaterThanOrEqual(3);
  });

  it('counts a refused heartbeat and sends none without a sensor id', async () => {
    const quiet = publisher();
    await quiet.sink.start();
    const { sink, logger } = publisher({ sensorId: 'Portsnare/Sensor' });
    service.down = { kind: 'partial', fail: [0], code: 'AccessDeniedException' };
    expect(await sink.heartbeat()).toBe(false);
    expect(sink.stats().heartbeatErrors).toBe(1);
    expect(logger.lines.some((l) => String(l.msg).includes('heartbeat not sent'))).toBe(true);
    expect(service.heartbeats()).toEqual([]);
  });

  it('retries 500 InternalException with backoff until the events are accepted', async () => {
    service.script = [{ kind: 'internal' }, { kind: 'internal' }, { kind: 'internal' }];
    const { sink } = publisher();
    await sink.start();
    await publishMany(sink, 3);
    await service.waitForAccepted(3);

    expect(attackers().sort()).toEqual([0, 1, 2].map(testNetAddress).sort());
    expect(sink.stats().retries).toBeGreaterThanOrEqual(3);
  });

  it('retries ThrottlingException and counts the throttles', async () => {
    service.script = [{ kind: 'throttle' }, { kind: 'throttle' }];
    const { sink } = publisher();
    await sink.start();
    await publishMany(sink, 4);
    await service.waitForAccepted(4);

    expect(new Set(attackers()).size).toBe(4);
    expect(sink.stats().throttles).toBe(2);
  });

  it('retries a connection dropped without an answer', async () => {
    service.script = [{ kind: 'drop' }];
    const { sink } = publisher();
    await sink.start();
    await publishMany(sink, 2);
    await service.waitForAccepted(2);
    expect(sink.stats().errors).toBeGreaterThanOrEqual(1);
  });

  it('resends only the entries a partial failure (FailedEntryCount) names', async () => {
    // ten events in the spool before the sender starts: one call of 10
    const logger = memoryLogger();
    const spool = new Spool({ directory: dir.path, maxBytes: 1 << 20, logger });
    await spool.open();
    await Promise.all([...Array(10).keys()].map((i) => spool.append({ id: `id-${i}`, event: scanEvent(testNetAddress(i)), spooledAt: 0 })));
    await spool.close();
    service.script = [{ kind: 'partial', fail: [1, 3, 8] }];
    const { sink } = publisher();
    await sink.start();
    await service.waitForAccepted(10);

    expect(service.requests.map((r) => r.entries)).toEqual([10, 3]);
    expect(attackers().sort()).toEqual([...Array(10).keys()].map(testNetAddress).sort());
    expect(sink.stats().failedEntries).toBe(3);
  });

  it('drops an entry the service rejects as malformed, logs it, and delivers the rest', async () => {
    service.down = { kind: 'internal' };
    const { sink, logger } = publisher();
    await sink.start();
    await publishMany(sink, 3);
    service.down = undefined;
    service.script = [{ kind: 'partial', fail: [0], code: 'MalformedDetail' }];
    await service.waitForAccepted(2);
    // the sink counts the drop when it has read the answer, which may come after the service
    // counted the accepted entries (seen on a loaded CI machine): await the counter
    await vi.waitFor(() => expect(sink.stats().dropped).toBe(1), { timeout: 5000, interval: 10 });
    expect(logger.lines.some((l) => l.msg === 'eventbridge: entry rejected, dropped' && l.code === 'MalformedDetail')).toBe(true);
  });

  it('loses nothing when the publisher restarts in the middle of an outage', async () => {
    service.down = { kind: 'internal' };
    const first = publisher();
    await first.sink.start();
    expect(await publishMany(first.sink, 15)).toEqual(Array(15).fill(true));
    await first.sink.stop(20); // outage still on: nothing delivered, all in the spool
    started.splice(started.indexOf(first.sink), 1);
    expect(service.accepted).toHaveLength(0);

    const second = publisher();
    await second.sink.start();
    expect(second.spool.stats().depth).toBe(15);
    await publishMany(second.sink, 5, 15);
    service.down = undefined;
    await service.waitForAccepted(20);

    expect(new Set(attackers())).toEqual(new Set([...Array(20).keys()].map(testNetAddress)));
    await until(() => second.spool.stats().depth === 0, 3000, 'the spool to empty after the last accepted batch');
  });

  it('describes itself: counters and spool for /status and /metrics, the last error as a warning, a full spool as a problem', async () => {
    service.down = { kind: 'internal' };
    const { sink } = publisher({ maxBytes: 4096 });
    await sink.start();
    await publishMany(sink, 2);
    await until(() => sink.describe().health.warnings.length === 1, 3000, 'the outage warning');
    const outage = sink.describe();
    expect(outage.name).toBe(`eventbridge:${BUS}`);
    expect(outage.health).toEqual({ problems: [], warnings: [expect.stringMatching(/^eventbridge:portsnare-test-bus: .*InternalException.*\(2 events waiting in the spool\)$/)] });
    expect(outage.metrics).toMatchObject({ published: 0, spoolDepth: 2, spoolFull: 0, spoolMaxBytes: 4096, throttles: 0 });
    expect(outage.status).toMatchObject({ published: 0, spool: { depth: 2, full: false }, lastError: expect.stringContaining('InternalException') });

    await publishMany(sink, 40, 2);
    expect(sink.describe().health.problems).toEqual([expect.stringMatching(/^eventbridge:portsnare-test-bus: spool full \(\d+ of 4096 bytes\): detections are being lost$/)]);
    expect(sink.describe().metrics.spoolFull).toBe(1);

    service.down = undefined;
    await until(() => sink.describe().metrics.spoolDepth === 0, 5000, 'the spool to drain');
    expect(sink.describe().health).toEqual({ problems: [], warnings: [] });
  });

  it('says clearly when the spool is full and refuses more events', async () => {
    service.down = { kind: 'internal' };
    const { sink, logger, spool } = publisher({ maxBytes: 4096 });
    await sink.start();
    const kept = await publishMany(sink, 40);

    expect(kept.filter((k) => !k).length).toBeGreaterThan(0);
    expect(spool.stats()).toMatchObject({ full: true });
    expect(spool.stats().refused).toBe(kept.filter((k) => !k).length);
    expect(spool.stats().bytes).toBeLessThanOrEqual(4096);
    expect(logger.lines.some((l) => l.level === 'error' && l.msg === 'spool full: event NOT kept')).toBe(true);

    // everything that was kept still arrives once the service is back
    service.down = undefined;
    await service.waitForAccepted(kept.filter(Boolean).length);
  });
});
