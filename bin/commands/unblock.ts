/** `portsnare unblock ADDRESS|CIDR`: lift a block early (an operator's mistake, a false positive). */
import type { Command } from 'commander';
import { requester } from './requester';
import { type BackendOptions, type CliDeps, printJson, withBackend, withBackendOptions } from './context';
import { CliError, EXIT } from './errors';
import { blocksCovering, parseTarget } from './targets';

interface UnblockOptions extends BackendOptions {
  readonly all?: boolean;
  readonly yes?: boolean;
}

/** Asks on the terminal; true for y/yes. */
async function confirm(question: string, deps: CliDeps): Promise<boolean> {
  if (deps.confirm) return deps.confirm(question);
  const { createInterface } = await import('node:readline/promises');
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(`${question} [y/N] `)).trim());
  } finally {
    rl.close();
  }
}

/** `unblock --all`: every active block, after a question on a terminal or with --yes; never silently from a script. */
async function unblockAll(options: UnblockOptions, deps: CliDeps): Promise<void> {
  const interactive = deps.isTty ? deps.isTty() : process.stdin.isTTY === true;
  if (!options.yes && !interactive) throw new CliError('unblock --all lifts every block: stdin is not a terminal to ask on, so pass --yes', EXIT.usage);
  const lifted: string[] = [];
  const failed: string[] = [];
  const where = await withBackend(options, deps, async (backend) => {
    const blocks = await backend.blocks(deps.now());
    if (blocks.length === 0) return backend.where;
    if (!options.yes && !(await confirm(`lift all ${blocks.length} active block${blocks.length === 1 ? '' : 's'} (${backend.where})?`, deps))) {
      throw new CliError('nothing unblocked (not confirmed)', EXIT.failure);
    }
    const by = requester();
    for (const block of blocks) {
      try {
        await backend.unblock(block.target, by);
        lifted.push(block.target);
      } catch (error) {
        failed.push(`${block.target}: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    return backend.where;
  });
  if (options.json) printJson(deps.io, { result: 'unblocked', where, lifted, failed });
  else deps.io.out(lifted.length === 0 && failed.length === 0 ? `no active blocks (${where})` : `unblocked ${lifted.length} block${lifted.length === 1 ? '' : 's'}${lifted.length ? `: ${lifted.join(', ')}` : ''} — ${where}`);
  if (failed.length > 0) throw new CliError(`${failed.length} not unblocked: ${failed.join('; ')}`, EXIT.failure);
}

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
      .argument('[target]', 'the blocked address or CIDR, as `portsnare blocks` shows it')
      .option('--all', 'lift every active block (asks first on a terminal; --yes to skip the question)')
      .option('--yes', 'with --all: do not ask (needed when stdin is not a terminal)')
      .option('--json', 'print JSON'),
    { wait: true },
  ).action(async (targetText: string | undefined, options: UnblockOptions) => {
    if (options.all) {
      if (targetText !== undefined) throw new CliError('give an address or --all, not both', EXIT.usage);
      await unblockAll(options, deps);
      return;
    }
    if (targetText === undefined) throw new CliError('missing the address or CIDR to unblock (or --all)', EXIT.usage);
    const target = parseTarget(targetText);
    const { where, outcome } = await withBackend(options, deps, async (backend) => {
      try {
        return { where: backend.where, outcome: await backend.unblock(target, requester()) };
      } catch (error) {
        if (!(error instanceof CliError) || error.exitCode !== EXIT.notFound) throw error;
        // an address inside a blocked CIDR: say which block holds it (a CIDR is lifted whole)
        const cover = blocksCovering(await backend.blocks(deps.now()), target).find((block) => block.target !== target);
        if (!cover) throw error;
        throw new CliError(`${target} is not blocked itself: it is inside the block of ${cover.target}; \`portsnare unblock ${cover.target}\` lifts that block (a CIDR is lifted whole)`, EXIT.notFound);
      }
    });
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
