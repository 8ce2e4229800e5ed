/** `portsnare unblock ADDRESS|CIDR`: lift a block early (an operator's mistake, a false positive). */
import type { Command } from 'commander';
import { requester } from './requester';
import { type BackendOptions, type CliDeps, printJson, withBackend, withBackendOptions } from './context';
import { parseTarget } from './targets';

export function registerUnblock(program: Command, deps: CliDeps): void {
  withBackendOptions(
    program
      .command('unblock')
      .summary('lift a block now')
      .description(
        'Lift an active block now; the record stays in the history (lifted by you). Exit code 4 when the target is not blocked. ' +
          'With --stack the request goes as an "Unblock Requested" event on the stack\'s bus. ' +
          'To stop the address from being blocked again, add it to guard.allowlist.',
      )
      .argument('<target>', 'the blocked address or CIDR, as `portsnare blocks` shows it')
      .option('--json', 'print JSON'),
    { wait: true },
  ).action(async (targetText: string, options: BackendOptions) => {
    const target = parseTarget(targetText);
    const { where, outcome } = await withBackend(options, deps, async (backend) => ({
      where: backend.where,
      outcome: await backend.unblock(target, requester()),
    }));
    if (options.json) {
      printJson(deps.io, { result: outcome.kind === 'lifted' ? 'unblocked' : 'requested', where, ...outcome });
      return;
    }
    deps.io.out(
      outcome.kind === 'lifted'
        ? `unblocked ${target} — ${where}`
        : `requested an unblock of ${target} on ${outcome.bus} (event ${outcome.eventId}); the enforce function removes it from WAF and the NACLs within seconds.`,
    );
  });
}
