/**
 * `portsnare export` and `portsnare import`: the active blocks (decisions) as JSON or CSV, out of
 * one host or stack and into another (as `cscli decisions export/import` does). Import goes through
 * the same path as `portsnare block` — the guard, the policy, the history naming who imported —
 * one target at a time; a refused or failed line is reported and the others still land.
 *
 * Formats: JSON, an array of `{target, expiresAt (ISO 8601), reason?, note?, …}` (what
 * `export --format json` and `blocks --json` print); CSV with a header line naming at least
 * `target`, optionally `expiresAt` and `note` (RFC 4180 quoting). A missing or past `expiresAt`
 * leaves the TTL to the policy.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { blockJson } from './blocks';
import { type BackendOptions, type CliDeps, printJson, withBackend, withBackendOptions } from './context';
import { CliError, EXIT } from './errors';
import { requester } from './requester';
import { parseTarget } from './targets';

const CSV_COLUMNS = ['target', 'expiresAt', 'reason', 'offences', 'hitCount', 'note'] as const;

function csvField(value: unknown): string {
  const text = value === undefined || value === null ? '' : String(value);
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** RFC 4180 rows (quoted fields, doubled quotes, CRLF or LF). */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      if (row.some((f) => f !== '')) rows.push(row);
      row = [];
      field = '';
    } else field += c;
  }
  row.push(field);
  if (row.some((f) => f !== '')) rows.push(row);
  return rows;
}

interface Decision {
  readonly line: number;
  readonly target: string;
  readonly expiresAt?: number;
  readonly note?: string;
}

function formatOf(file: string, given: string | undefined): 'json' | 'csv' {
  const format = given ?? (/\.csv$/i.test(file) ? 'csv' : 'json');
  if (format !== 'json' && format !== 'csv') throw new CliError(`--format: ${JSON.stringify(format)} is not json or csv`, EXIT.usage);
  return format;
}

export function readDecisions(text: string, format: 'json' | 'csv'): Decision[] {
  const rows: Array<Record<string, unknown>> = [];
  if (format === 'json') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      throw new CliError(`import: not valid JSON: ${error instanceof Error ? error.message : String(error)}`, EXIT.usage);
    }
    if (!Array.isArray(parsed)) throw new CliError('import: the JSON must be an array of {target, expiresAt?, note?}', EXIT.usage);
    rows.push(...parsed.map((item) => (item && typeof item === 'object' ? (item as Record<string, unknown>) : { target: item })));
  } else {
    const [header, ...body] = parseCsv(text);
    if (!header?.includes('target')) throw new CliError('import: the CSV needs a header line with a target column', EXIT.usage);
    for (const cells of body) rows.push(Object.fromEntries(header.map((name, i) => [name, cells[i] ?? ''])));
  }
  return rows.map((row, i) => {
    const line = format === 'csv' ? i + 2 : i + 1;
    const target = typeof row['target'] === 'string' ? row['target'] : '';
    const expires = typeof row['expiresAt'] === 'string' && row['expiresAt'] !== '' ? Date.parse(row['expiresAt']) : typeof row['expiresAt'] === 'number' ? row['expiresAt'] : undefined;
    if (expires !== undefined && !Number.isFinite(expires)) throw new CliError(`import: ${format === 'csv' ? 'line' : 'item'} ${line}: expiresAt ${JSON.stringify(row['expiresAt'])} is not an ISO 8601 time`, EXIT.usage);
    const note = typeof row['note'] === 'string' && row['note'] !== '' ? row['note'] : undefined;
    return { line, target, ...(expires !== undefined ? { expiresAt: expires } : {}), ...(note !== undefined ? { note: note.slice(0, 200) } : {}) };
  });
}

export function registerDecisions(program: Command, deps: CliDeps): void {
  withBackendOptions(
    program
      .command('export')
      .summary('the active blocks as JSON or CSV')
      .description('Print the active blocks as JSON (default) or CSV, for `portsnare import` elsewhere.')
      .option('--format <format>', 'json or csv', 'json'),
  ).action(async (options: BackendOptions & { format: string }) => {
    if (options.format !== 'json' && options.format !== 'csv') throw new CliError(`--format: ${JSON.stringify(options.format)} is not json or csv`, EXIT.usage);
    const now = deps.now();
    const blocks = await withBackend(options, deps, (backend) => backend.blocks(now), { readOnly: true });
    const rows = blocks.map((block) => blockJson(block, now));
    if (options.format === 'json') return printJson(deps.io, rows);
    deps.io.out([CSV_COLUMNS.join(','), ...rows.map((row) => CSV_COLUMNS.map((column) => csvField(row[column])).join(','))].join('\n'));
  });

  withBackendOptions(
    program
      .command('import')
      .summary('block every address of a JSON or CSV file')
      .description('Block each target of a file `portsnare export` wrote (or any JSON array / CSV with a target column), through the guard and the policy. A refused target is reported and skipped; exit 3 when any was refused, 1 when any failed.')
      .argument('<file>', 'the file (.csv is read as CSV, anything else as JSON, unless --format)')
      .option('--format <format>', 'json or csv')
      .option('--json', 'print JSON'),
    { wait: false },
  ).action(async (file: string, options: BackendOptions & { format?: string }) => {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      throw new CliError(`import: cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, EXIT.failure);
    }
    const decisions = readDecisions(text, formatOf(file, options.format));
    const now = deps.now();
    const by = `${requester()} (import ${file})`;
    const imported: string[] = [];
    const refused: string[] = [];
    const failed: string[] = [];
    const where = await withBackend(options, deps, async (backend) => {
      for (const decision of decisions) {
        let target: string;
        try {
          target = parseTarget(decision.target);
        } catch (error) {
          failed.push(`${decision.line}: ${error instanceof Error ? error.message : String(error)}`);
          continue;
        }
        const seconds = decision.expiresAt !== undefined ? Math.round((decision.expiresAt - now) / 1000) : undefined;
        try {
          await backend.block({ target, requestedBy: by, ...(seconds !== undefined && seconds >= 60 ? { ttlSeconds: Math.min(seconds, 365 * 86400) } : {}), ...(decision.note !== undefined ? { reason: decision.note } : {}) });
          imported.push(target);
        } catch (error) {
          const message = `${decision.line} ${target}: ${error instanceof Error ? error.message : String(error)}`;
          if (error instanceof CliError && error.exitCode === EXIT.refused) refused.push(message);
          else if (error instanceof CliError && error.exitCode === EXIT.permission) throw error;
          else failed.push(message);
        }
      }
      return backend.where;
    });
    if (options.json) printJson(deps.io, { where, imported, refused, failed });
    else {
      deps.io.out(`imported ${imported.length} of ${decisions.length} (${where})`);
      for (const line of refused) deps.io.out(`refused  ${line}`);
      for (const line of failed) deps.io.out(`failed   ${line}`);
    }
    if (failed.length > 0) throw new CliError(`${failed.length} not imported`, EXIT.failure);
    if (refused.length > 0) throw new CliError(`${refused.length} refused by the never-block guard or the policy`, EXIT.refused);
  });
}
