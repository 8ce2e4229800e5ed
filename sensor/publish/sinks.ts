/** The publishers of an agent config's `sinks`, in the order the config lists them. */
import { join } from 'node:path';
import type { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { spoolDirectory, type AgentConfig, type SinkConfig } from '../config';
import type { Logger } from '../log';
import { EventBridgePublisher, eventBridgeClient } from './eventbridge';
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

export function publishersFor(config: AgentConfig, options: SinkOptions): Publisher[] {
  const { logger } = options;
  // one spool directory per bus when there are several
  const bridges = config.sinks.filter((s) => s.type === 'eventbridge').length;
  return config.sinks.map((sink, index) => {
    switch (sink.type) {
      case 'stdout':
        return new StdoutPublisher();
      case 'file':
        return new FilePublisher(sink.path, logger);
      case 'eventbridge': {
        const base = spoolDirectory(config);
        const directory = bridges > 1 ? join(base, `${index}-${sink.busName.replace(/[^A-Za-z0-9._-]/g, '_').slice(-64)}`) : base;
        const region = sink.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION;
        const client = options.eventBridgeClient?.(sink) ?? eventBridgeClient({ ...(region ? { region } : {}), ...(sink.endpoint ? { endpoint: sink.endpoint } : {}) });
        return new EventBridgePublisher({
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
