import { gzipSync } from 'node:zlib';
import { EventBridgeClient, PutEventsCommand, type PutEventsRequestEntry } from '@aws-sdk/client-eventbridge';
import type { CloudWatchLogsDecodedData, CloudWatchLogsEvent } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { parseScanDetected } from '../../../core/event';
import { handleFlowLogs, putAll, type FlowLogsDeps } from '../../../lambda/flowlogs/handler';
import type { Observability } from '../../../lambda/shared/observability';

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

  put(entries: PutEventsRequestEntry[]) {
    this.calls++;
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

function recordingObs(): Observability & { counts: Record<string, number> } {
  const counts: Record<string, number> = {};
  return {
    counts,
    log: { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} },
    count: (name, value = 1) => {
      counts[name] = (counts[name] ?? 0) + value;
    },
    seconds: () => {},
    flush: () => {},
  };
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
let deps: FlowLogsDeps & { obs: ReturnType<typeof recordingObs> };

beforeEach(() => {
  eventBridge.reset();
  bus = new FakeBus();
  eventBridge.on(PutEventsCommand).callsFake((input: { Entries: PutEventsRequestEntry[] }) => bus.put(input.Entries));
  deps = { client: new EventBridgeClient({ region: 'us-east-1' }), busName: 'portsnare-bus', minProbes: 1, obs: recordingObs(), pause: async () => {} };
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
    expect(deps.obs.counts.Detections).toBe(2);
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
    expect(bus.calls).toBe(3);
  });
});
