/** Records logs and metrics instead of publishing them, for assertions. */
import type { LogAttributes, MetricName, Observability } from '../../lambda/shared/observability';

export interface LogLine {
  readonly level: 'debug' | 'info' | 'warn' | 'error';
  readonly message: string;
  readonly attributes: LogAttributes;
}

export class RecordingObservability implements Observability {
  readonly lines: LogLine[] = [];
  readonly metrics = new Map<MetricName, number>();
  readonly samples = new Map<MetricName, number[]>();
  flushes = 0;

  readonly log = {
    debug: (message: string, attributes: LogAttributes = {}) => this.lines.push({ level: 'debug', message, attributes }),
    info: (message: string, attributes: LogAttributes = {}) => this.lines.push({ level: 'info', message, attributes }),
    warn: (message: string, attributes: LogAttributes = {}) => this.lines.push({ level: 'warn', message, attributes }),
    error: (message: string, attributes: LogAttributes = {}) => this.lines.push({ level: 'error', message, attributes }),
  };

  count(name: MetricName, value = 1): void {
    this.metrics.set(name, (this.metrics.get(name) ?? 0) + value);
  }

  seconds(name: MetricName, value: number): void {
    this.samples.set(name, [...(this.samples.get(name) ?? []), value]);
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
}
