/**
 * The agent's log: one JSON object per line on stderr (stdout is reserved for the `stdout` sink's
 * events). Every line carries a time, a level and a message; the rest is structured context.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  /** the shape LocalPipeline and KernelDetector take: one structured line */
  line(fields: object): void;
}

export function jsonLogger(
  level: LogLevel = 'info',
  write: (text: string) => void = (text) => void process.stderr.write(text),
): Logger {
  const threshold = ORDER[level];
  const emit = (lvl: LogLevel, msg: string, fields?: Record<string, unknown>): void => {
    if (ORDER[lvl] < threshold) return;
    write(JSON.stringify({ time: new Date().toISOString(), level: lvl, msg, ...fields }) + '\n');
  };
  return {
    debug: (msg, fields) => emit('debug', msg, fields),
    info: (msg, fields) => emit('info', msg, fields),
    warn: (msg, fields) => emit('warn', msg, fields),
    error: (msg, fields) => emit('error', msg, fields),
    line: (fields) => {
      const f = fields as Record<string, unknown>;
      const lvl = typeof f.level === 'string' && f.level in ORDER ? (f.level as LogLevel) : 'info';
      const msg = typeof f.msg === 'string' ? f.msg : typeof f.message === 'string' ? f.message : typeof f.event === 'string' ? f.event : 'local pipeline';
      const rest: Record<string, unknown> = { ...f };
      delete rest.level;
      delete rest.msg;
      delete rest.message;
      emit(lvl, msg, rest);
    },
  };
}

/** A logger that keeps lines in memory (tests, benchmarks). */
export function memoryLogger(): Logger & { lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const base = jsonLogger('debug', (text) => lines.push(JSON.parse(text) as Record<string, unknown>));
  return Object.assign(base, { lines });
}

export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
