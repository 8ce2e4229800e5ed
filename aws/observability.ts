/**
 * Logger and metrics for every function, from one module (Powertools for AWS Lambda).
 * Namespace and service come from POWERTOOLS_METRICS_NAMESPACE / POWERTOOLS_SERVICE_NAME.
 * Handlers talk to the narrow `Observability` interface so tests hand in a recording fake; the
 * per-invocation calls (`addContext`, `flush`) are made by one wrapper, shared/handler.ts.
 * https://docs.powertools.aws.dev/lambda/typescript/latest/core/logger/
 * https://docs.powertools.aws.dev/lambda/typescript/latest/core/metrics/
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Context } from 'aws-lambda';
import { METRIC_NAMESPACE, SERVICE_NAME, type MetricName } from '../core/metrics';

export { METRIC_NAMES, type MetricName } from '../core/metrics';

export type LogAttributes = Record<string, unknown>;

export interface Log {
  debug(message: string, attributes?: LogAttributes): void;
  info(message: string, attributes?: LogAttributes): void;
  warn(message: string, attributes?: LogAttributes): void;
  error(message: string, attributes?: LogAttributes): void;
}

export interface Observability {
  readonly log: Log;
  /** adds to a count metric */
  count(name: MetricName, value?: number): void;
  /** records a duration in seconds */
  seconds(name: MetricName, value: number): void;
  /**
   * Start of an invocation: every later log line carries this Lambda context (request id, cold
   * start, function name, version, ARN, memory), as Powertools' injectLambdaContext does.
   */
  addContext(context: Context): void;
  /** publishes what was recorded (end of each invocation) */
  flush(): void;
}

export function powertoolsObservability(): Observability {
  const logger = new Logger({ serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? SERVICE_NAME });
  const metrics = new Metrics({
    namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? METRIC_NAMESPACE,
    serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? SERVICE_NAME,
  });
  const log: Log = {
    debug: (message, attributes) => logger.debug(message, attributes ?? {}),
    info: (message, attributes) => logger.info(message, attributes ?? {}),
    warn: (message, attributes) => logger.warn(message, attributes ?? {}),
    error: (message, attributes) => logger.error(message, attributes ?? {}),
  };
  return {
    log,
    count: (name, value = 1) => {
      if (value > 0) metrics.addMetric(name, MetricUnit.Count, value);
    },
    seconds: (name, value) => metrics.addMetric(name, MetricUnit.Seconds, value),
    addContext: (context) => {
      // What injectLambdaContext does before the handler (Logger 2.x): re-draw the debug
      // sampling decision, then attach the context; the cold-start flag is true only for the
      // first invocation of this container (AWS_LAMBDA_INITIALIZATION_TYPE=on-demand).
      logger.refreshSampleRateCalculation();
      logger.addContext(context);
    },
    flush: () => {
      // Powertools warns on every flush of an empty buffer; a quiet run (reconcile, an expiry
      // with nothing due) is normal here, not worth a warning line.
      if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
    },
  };
}
