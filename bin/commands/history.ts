/** `portsnare history ADDRESS|CIDR`: every block, refresh, expiry and unblock of one target. */
import type { Command } from 'commander';
import { blockJson } from './blocks';
import { type BackendOptions, type CliDeps, printJson, withBackend, withBackendOptions } from './context';
import { CliError, EXIT } from './errors';
import { expiresIn, isoSeconds, table } from './output';
import { parseTarget } from './targets';

export function registerHistory(program: Command, deps: CliDeps): void {
  withBackendOptions(
    program
      .command('history')
      .summary('what happened to one address')
      .description('The current state of one address or CIDR and its history, oldest first. Exit code 4 when portsnare never saw it.')
      .argument('<target>', 'an address or CIDR')
      .option('--json', 'print JSON'),
  ).action(async (targetText: string, options: BackendOptions) => {
    const target = parseTarget(targetText);
    const now = deps.now();
    const { where, current, entries } = await withBackend(options, deps, async (backend) => ({ where: backend.where, ...(await backend.history(target)) }), { readOnly: true });
    if (options.json) {
      printJson(deps.io, {
        target,
        where,
        current: current ? blockJson(current, now) : null,
        entries: entries.map((entry) => ({ at: new Date(entry.at).toISOString(), action: entry.action, detail: entry.detail })),
      });
      if (!current && entries.length === 0) throw new CliError('', EXIT.notFound);
      return;
    }
    if (!current && entries.length === 0) throw new CliError(`no history for ${target} (${where})`, EXIT.notFound);
    if (current) {
      const state =
        current.active && current.expiresAt > now
          ? `blocked for ${expiresIn(current.expiresAt, now)} more (until ${isoSeconds(current.expiresAt)})`
          : `not blocked${current.liftedBy ? ` (lifted by ${current.liftedBy})` : ` (last block ended ${isoSeconds(current.expiresAt)})`}`;
      deps.io.out(`${target}: ${state}; reason ${current.reason}, offence ${current.offences}, ${current.hitCount} hits, first seen ${isoSeconds(current.firstSeen)} — ${where}`);
    } else {
      deps.io.out(`${target}: no current record — ${where}`);
    }
    if (entries.length > 0) {
      deps.io.out(table(['TIME', 'ACTION', 'DETAIL'], entries.map((entry) => [isoSeconds(entry.at), entry.action, entry.detail])));
    }
  });
}
