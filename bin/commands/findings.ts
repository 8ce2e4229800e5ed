/**
 * `portsnare findings --stack NAME [--since DURATION] [--asff]`: the blocks as the findings the
 * Security Hub export sends, one JSON object per line: OCSF Detection Findings (class 2004,
 * core/ocsf.ts; the default, what a Security Lake custom source takes) or ASFF (core/findings.ts,
 * what BatchImportFindings takes). Without --since: the active blocks; with it: every block
 * changed since (lifted ones included, archived / closed), at most a day back.
 */
import type { Command } from 'commander';
import { parseDuration } from '../../core/commands';
import { asffFinding } from '../../core/findings';
import { ocsfDetectionFinding } from '../../core/ocsf';
import { type BackendOptions, type CliDeps, withBackend, withBackendOptions } from './context';
import { CliError, EXIT } from './errors';

interface FindingsOptions extends BackendOptions {
  readonly since?: string;
  readonly asff?: boolean;
  readonly ocsf?: boolean;
}

export function registerFindings(program: Command, deps: CliDeps): void {
  withBackendOptions(
    program
      .command('findings')
      .summary('the blocks as OCSF or ASFF findings (a deployed stack)')
      .description('Prints one finding per blocked source, one JSON object per line: OCSF Detection Findings (class 2004, for an Amazon Security Lake custom source) by default, or ASFF (--asff, what the Security Hub export imports). Only with --stack.')
      .option('--ocsf', 'OCSF Detection Findings (the default)')
      .option('--asff', 'AWS Security Finding Format')
      .option('--since <duration>', 'every block changed in this last duration ("15m", "2h", "1d" at most), lifted ones included; default: the active blocks'),
  ).action(async (options: FindingsOptions) => {
    if (options.asff && options.ocsf) throw new CliError('findings: --ocsf and --asff exclude each other', EXIT.usage);
    if (options.stack === undefined) throw new CliError('findings: only a deployed stack has them: give --stack NAME', EXIT.usage);
    const now = deps.now();
    let since: number | undefined;
    if (options.since !== undefined) {
      const seconds = parseDuration(options.since);
      if (seconds === undefined) throw new CliError(`--since: ${JSON.stringify(options.since)} is not a duration ("90s", "30m", "2h", "1d")`, EXIT.usage);
      since = now - seconds * 1000;
    }
    const { target, items } = await withBackend(
      options,
      deps,
      async (backend) => {
        if (!backend.findingRecords) throw new CliError(`findings: ${backend.where} has no findings: only a deployed stack (--stack)`, EXIT.usage);
        return backend.findingRecords(now, since);
      },
      { readOnly: true },
    );
    for (const { record, changedAt } of items) {
      deps.io.out(JSON.stringify(options.asff ? asffFinding(record, changedAt, target) : ocsfDetectionFinding(record, changedAt, target)));
    }
  });
}
