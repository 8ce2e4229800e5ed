/**
 * The publishers of an agent config's `sinks`, in the order the config lists them. The EventBridge
 * publisher (and the AWS SDK under it, the largest part of the agent) is loaded only when a sink
 * asks for it: in the agent bundle it is a chunk of its own (sensor/bundle.ts), so an agent with
 * local sinks only never reads it.
 */
import { join } from 'node:path';
import type { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { spoolDirectory, type AgentConfig, type SinkConfig } from '../config';
import type { Logger } from '../log';
import { FilePublisher, StdoutPublisher } from './lines';
import { Spool } from './spool';
import type { Publisher } from './types';

export type EventBridgeSink = Extract<SinkConfig, { type: 'eventbridge' }>;

export interface SinkOptions {
  readonly logger: Logger;
  /** builds the EventBridge client of an `eventbridge` sink (tests point it at a local endpoint) */
  readonly eventBridgeClient?: (sink: EventBridgeSink) => EventBridgeClient;
  /** EventBridge retry delays (tests) */
  readonly backoff?: { baseMs: number; maxMs: number };
  /** the agent's sensorId: EventBridge sinks send its `Sensor Heartbeat` */
  readonly sensorId?: string;
  /** heartbeat interval, ms (tests; default core/event.ts SENSOR_HEARTBEAT_INTERVAL_SECONDS) */
  readonly heartbeatMs?: number;
}

export async function publishersFor(config: AgentConfig, options: SinkOptions): Promise<Publisher[]> {
  const { logger } = options;
  // one spool directory per bus when there are several
  const bridges = config.sinks.filter((s) => s.type === 'eventbridge').length;
  const eventbridge = bridges > 0 ? await loadEventBridge() : undefined;
  return config.sinks.map((sink, index) => {
    switch (sink.type) {
      case 'stdout':
        return new StdoutPublisher();
      case 'file':
        return new FilePublisher(sink.path, logger);
      case 'eventbridge': {
        if (!eventbridge) throw new Error('unreachable: an eventbridge sink without its publisher loaded');
        const base = spoolDirectory(config);
        const directory = bridges > 1 ? join(base, `${index}-${sink.busName.replace(/[^A-Za-z0-9._-]/g, '_').slice(-64)}`) : base;
        const region = sink.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION;
        const client = options.eventBridgeClient?.(sink) ?? eventbridge.eventBridgeClient({ ...(region ? { region } : {}), ...(sink.endpoint ? { endpoint: sink.endpoint } : {}) });
        return new eventbridge.EventBridgePublisher({
          client,
          busName: sink.busName,
          spool: new Spool({ directory, maxBytes: config.spool.maxBytes, logger }),
          logger,
          ...(options.backoff ? { backoffBaseMs: options.backoff.baseMs, backoffMaxMs: options.backoff.maxMs } : {}),
          ...(options.sensorId ? { sensorId: options.sensorId } : {}),
          ...(options.heartbeatMs !== undefined ? { heartbeatMs: options.heartbeatMs } : {}),
        });
      }
    }
  });
}

/**
 * The EventBridge publisher module, read when first needed. In a clone, tsx's require hook
 * (bin/portsnare.js) compiles TypeScript for require() only and vitest's runner for import()
 * only; in the bundle either one becomes the chunk (sensor/bundle.ts).
 */
async function loadEventBridge(): Promise<typeof import('./eventbridge')> {
  if (typeof require === 'function' && '.ts' in require.extensions) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded on demand, see above
    return require('./eventbridge') as typeof import('./eventbridge');
  }
  return import('./eventbridge');
}
