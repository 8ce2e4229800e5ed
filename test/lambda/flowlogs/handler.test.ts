import { gzipSync } from 'node:zlib';
import { EventBridgeClient, PutEventsCommand, type PutEventsRequestEntry } from '@aws-sdk/client-eventbridge';
import type { CloudWatchLogsDecodedData, CloudWatchLogsEvent } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { parseScanDetected } from '../../../core/event';
import { createHandler, defaultDeps, handleFlowLogs, PUT_ATTEMPTS, putAll, type FlowLogsDeps } from '../../../lambda/flowlogs/handler';
import { SimClock } from '../../fakes/clock';
import { RecordingObservability } from '../../fakes/observability';
import { lambdaContext } from '../context';

const eventBridge = mockClient(EventBridgeClient);

/**
 * A PutEvents fake with EventBridge's documented shape: at most 10 entries per call (more is a
 * ValidationException), partial failure reported through FailedEntryCount and per-entry
 * ErrorCode in request order.
 * https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEvents.html
 */
class FakeBus {
  readonly accepted: PutEventsRequestEntry[] = [];
  calls = 0;
  /** how many of the next entries to refuse with ThrottlingException */
  failNext = 0;
  /** errors the next calls throw as a whole, in order */
  readonly throwNext: string[] = [];

  put(entries: PutEventsRequestEntry[]) {
    this.calls++;
    const thrown = this.throwNext.shift();
    if (thrown) throw Object.assign(new Error(thrown), { name: thrown });
    if (entries.length > 10) throw Object.assign(new Error('Entries: at most 10'), { name: 'ValidationException' });
    let failed = 0;
    const results = entries.map((entry) => {
      if (this.failNext > 0) {
        this.failNext--;
        failed++;
        return { ErrorCode: 'ThrottlingException', ErrorMessage: 'Rate exceeded' };
      }
      this.accepted.push(entry);
      return { EventId: `id-${this.accepted.length}` };
    });
    return { FailedEntryCount: failed, Entries: results };
  }
}

function subscriptionEvent(messages: string[], messageType: CloudWatchLogsDecodedData['messageType'] = 'DATA_MESSAGE'): CloudWatchLogsEvent {
  const data: CloudWatchLogsDecodedData = {
    owner: '123456789012',
    logGroup: '/portsnare/flowlogs',
    logStream: 'eni-0123456789abcdef0-all',
    subscriptionFilters: ['portsnare'],
    messageType,
    logEvents: messages.map((message, i) => ({ id: String(i), timestamp: 1795255260000, message })),
  };
  return { awslogs: { data: gzipSync(Buffer.from(JSON.stringify(data))).toString('base64') } };
}

const reject = (src: string, port: number) => `5 eni-0123456789abcdef0 ${src} 10.0.0.5 40000 ${port} 6 1 1795255200 1795255260 REJECT OK 2 ingress`;

let bus: FakeBus;
let clock: SimClock;
let deps: FlowLogsDeps & { obs: RecordingObservability };

beforeEach(() => {
  eventBridge.reset();
  bus = new FakeBus();
  eventBridge.on(PutEventsCommand).callsFake((input: { Entries: PutEventsRequestEntry[] }) => bus.put(input.Entries));
  clock = new SimClock();
  deps = { client: new EventBridgeClient({ region: 'us-east-1' }), busName: 'portsnare-bus', minProbes: 1, obs: new RecordingObservability(), clock };
});

describe('handleFlowLogs', () => {
  it('puts one Scan Detected event per attacker on the portsnare bus', async () => {
    const result = await handleFlowLogs(subscriptionEvent([reject('198.51.100.7', 23), reject('198.51.100.7', 445), reject('203.0.113.9', 22)]), deps);

    expect(result).toEqual({ records: 3, events: 2, skipped: 0 });
    expect(bus.accepted).toHaveLength(2);
    for (const entry of bus.accepted) {
      expect(entry).toMatchObject({ EventBusName: 'portsnare-bus', Source: 'portsnare.sensor', DetailType: 'Scan Detected' });
      expect(parseScanDetected(JSON.parse(entry.Detail!)).ok).toBe(true);
    }
    expect(deps.obs.metric('Detections')).toBe(2);
  });

  it('ignores CloudWatch Logs control messages', async () => {
    const result = await handleFlowLogs(subscriptionEvent([], 'CONTROL_MESSAGE'), deps);
    expect(result).toEqual({ records: 0, events: 0, skipped: 0 });
    expect(bus.calls).toBe(0);
  });

  it('counts unreadable and NODATA lines as skipped and publishes nothing for them', async () => {
    const result = await handleFlowLogs(subscriptionEvent(['garbage', '5 eni-0123456789abcdef0 - - - - - - 1 2 - NODATA - -']), deps);
    expect(result).toEqual({ records: 0, events: 0, skipped: 2 });
    expect(bus.calls).toBe(0);
  });
});

describe('putAll', () => {
  const entries = (n: number): PutEventsRequestEntry[] =>
    Array.from({ length: n }, (_, i) => ({ Source: 'portsnare.sensor', DetailType: 'Scan Detected', Detail: `{"n":${i}}` }));

  it('sends at most 10 entries per PutEvents call', async () => {
    await putAll(deps, entries(23));
    expect(bus.calls).toBe(3);
    expect(bus.accepted).toHaveLength(23);
  });

  it('resends only the entries that failed', async () => {
    bus.failNext = 3;
    await putAll(deps, entries(5));
    expect(bus.accepted.map((e) => e.Detail)).toEqual(['{"n":3}', '{"n":4}', '{"n":0}', '{"n":1}', '{"n":2}']);
    expect(bus.calls).toBe(2);
  });

  it('throws when entries still fail after the last attempt, so Lambda retries the batch', async () => {
    bus.failNext = 100;
    await expect(putAll(deps, entries(2))).rejects.toThrow(/2 of 2 events failed \(ThrottlingException/);
    expect(bus.calls).toBe(PUT_ATTEMPTS);
    expect(deps.obs.logged('PutEvents kept failing')).toHaveLength(1);
  });

  it('pauses between attempts with full jitter: random × min(cap, 400 ms × 2^n)', async () => {
    bus.failNext = 100;
    await expect(putAll({ ...deps, random: () => 0.5 }, entries(1))).rejects.toThrow();
    expect(clock.slept).toBe(0.5 * 400 + 0.5 * 800);

    const early = new SimClock();
    bus.failNext = 100;
    await expect(putAll({ ...deps, clock: early, random: () => 0 }, entries(1))).rejects.toThrow();
    expect(early.slept).toBe(2); // at least 1 ms per pause, never a fixed one
  });

  it('retries a call throttled as a whole, and lets any other error through at once', async () => {
    bus.throwNext.push('ThrottlingException');
    await putAll(deps, entries(3));
    expect(bus.calls).toBe(2);
    expect(bus.accepted).toHaveLength(3);

    bus.throwNext.push('AccessDeniedException');
    await expect(putAll(deps, entries(1))).rejects.toThrow('AccessDeniedException');
    expect(bus.calls).toBe(3);
  });
});

describe('flowlogs entry', () => {
  it('drops a payload that is not a subscription batch, counting it as malformed, instead of failing', async () => {
    const result = await handleFlowLogs({ awslogs: { data: 'bm90IGd6aXA=' } }, deps);
    expect(result).toEqual({ records: 0, events: 0, skipped: 0 });
    expect(deps.obs.metric('MalformedEvents')).toBe(1);
    expect(deps.obs.logged('unreadable subscription payload dropped')).toHaveLength(1);
    expect(bus.calls).toBe(0);
  });

  it('runs under the shared wrapper: the context is added and metrics are flushed even when PutEvents fails', async () => {
    const handle = createHandler(deps);
    bus.failNext = 100;
    const context = lambdaContext({ requestId: 'req-flow' });
    await expect(handle(subscriptionEvent([reject('198.51.100.7', 23)]), context)).rejects.toThrow(/1 of 1 events failed/);
    expect(deps.obs.flushes).toBe(1);
    expect(deps.obs.contexts).toEqual([context]);
    expect(deps.obs.logged('PutEvents kept failing')[0]?.requestId).toBe('req-flow');
  });

  it('reads its environment, naming the key and value at fault', () => {
    const obs = new RecordingObservability();
    expect(() => defaultDeps({}, obs)).toThrow('environment variable EVENT_BUS_NAME is not set');
    expect(() => defaultDeps({ EVENT_BUS_NAME: 'b', FLOWLOGS_MIN_PROBES: '0' }, obs)).toThrow('FLOWLOGS_MIN_PROBES must be a whole number ≥ 1, got "0"');
    expect(() => defaultDeps({ EVENT_BUS_NAME: 'b', FLOWLOGS_DESTINATIONS: '10.0.0.5, sensor-a' }, obs)).toThrow('FLOWLOGS_DESTINATIONS: not an IP address: "sensor-a"');
    const built = defaultDeps({ EVENT_BUS_NAME: 'portsnare-bus', FLOWLOGS_MIN_PROBES: '2', FLOWLOGS_DESTINATIONS: ' 10.0.0.5 ,::ffff:10.0.0.6,' }, obs);
    expect(built).toMatchObject({ busName: 'portsnare-bus', minProbes: 2 });
    expect([...(built.destinations ?? [])]).toEqual(['10.0.0.5', '10.0.0.6']);
  });
});
