/**
 * How the commands print: an injectable sink (tests capture it), fixed-width tables, durations a
 * human reads at 3 a.m. ("1h 59m", "expired 3m ago"), and local times.
 */
export interface Io {
  out(text: string): void;
  err(text: string): void;
}

export const processIo: Io = {
  out: (text) => process.stdout.write(text.endsWith('\n') ? text : `${text}\n`),
  err: (text) => process.stderr.write(text.endsWith('\n') ? text : `${text}\n`),
};

/** A table with a header row; columns as wide as their widest cell, the last one unpadded. */
export function table(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

/** Key/value lines, keys aligned. */
export function keyValues(pairs: ReadonlyArray<readonly [string, string]>): string {
  const width = Math.max(0, ...pairs.map(([key]) => key.length));
  return pairs.map(([key, value]) => `${key.padEnd(width)}  ${value}`).join('\n');
}

/** 7260 → "2h 1m"; 59 → "59s"; 90061 → "1d 1h". The largest unit and the next one, when not zero. */
export function humanDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const counts: Array<[string, number]> = [
    ['d', Math.floor(s / 86400)],
    ['h', Math.floor((s % 86400) / 3600)],
    ['m', Math.floor((s % 3600) / 60)],
    ['s', s % 60],
  ];
  const first = counts.findIndex(([, count]) => count > 0);
  if (first < 0) return '0s';
  const [unit, count] = counts[first] as [string, number];
  const next = counts[first + 1];
  return next && next[1] > 0 ? `${count}${unit} ${next[1]}${next[0]}` : `${count}${unit}`;
}

/** "in 1h 59m" style, for a moment relative to now (epoch ms). */
export function expiresIn(expiresAt: number, now: number): string {
  const seconds = (expiresAt - now) / 1000;
  return seconds > 0 ? humanDuration(seconds) : `expired ${humanDuration(-seconds)} ago`;
}

/** ISO 8601 in UTC, to the second: what logs and AWS consoles show. */
export function isoSeconds(epochMs: number): string {
  return new Date(epochMs).toISOString().replace(/\.\d{3}Z$/, 'Z');
}
