/** Records logs and metrics instead of publishing them, for assertions. */
import type { Context } from 'aws-lambda';
import type { LogAttributes, MetricName, Observability } from '../../aws/observability';

export interface LogLine {
  readonly level: 'debug' | 'info' | 'warn' | 'error';
  readonly message: string;
  readonly attributes: LogAttributes;
  /** the request id of the invocation context in force when the line was written, if any */
  readonly requestId?: string;
}

export class RecordingObservability implements Observability {
  readonly lines: LogLine[] = [];
  readonly metrics = new Map<MetricName, number>();
  readonly samples = new Map<MetricName, number[]>();
  /** every context handed in, in order (one per instrumented invocation that had one) */
  readonly contexts: Context[] = [];
  flushes = 0;

  readonly log = {
    debug: (message: string, attributes: LogAttributes = {}) => this.line('debug', message, attributes),
    info: (message: string, attributes: LogAttributes = {}) => this.line('info', message, attributes),
    warn: (message: string, attributes: LogAttributes = {}) => this.line('warn', message, attributes),
    error: (message: string, attributes: LogAttributes = {}) => this.line('error', message, attributes),
  };

  count(name: MetricName, value = 1): void {
    this.metrics.set(name, (this.metrics.get(name) ?? 0) + value);
  }

  seconds(name: MetricName, value: number): void {
    this.samples.set(name, [...(this.samples.get(name) ?? []), value]);
  }

  addContext(context: Context): void {
    this.contexts.push(context);
  }

  flush(): void {
    this.flushes++;
  }

  metric(name: MetricName): number {
    return this.metrics.get(name) ?? 0;
  }

  logged(message: string | RegExp): LogLine[] {
    return this.lines.filter((line) => (typeof message === 'string' ? line.message === message : message.test(line.message)));
  }

  private line(level: LogLine['level'], message: string, attributes: LogAttributes): void {
    const requestId = this.contexts.at(-1)?.awsRequestId;
    this.lines.push({ level, message, attributes, ...(requestId !== undefined ? { requestId } : {}) });
  }
}
