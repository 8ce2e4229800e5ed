/**
 * `portsnare allow add|remove|list ADDRESS|CIDR`: the runtime allowlist, kept in the state
 * directory (`allowlist.json`, sensor/allowlist.ts) and merged into guard.allowlist. With a
 * running agent it applies at once — the kernel's exempt sets, the guard, and every active block
 * the entry covers is lifted; with no agent the file is written (the agent reads it at start) and
 * the store's covered blocks are lifted.
 */
import type { Command } from 'commander';
import { NeverBlockGuard } from '../../core/guard';
import { RuntimeAllowlist } from '../../sensor/allowlist';
import { AgentBackend, probeAgent } from './agent-client';
import { type CliDeps, printJson } from './context';
import { CliError, EXIT } from './errors';
import { agentUrlOf, localConfig, openLocal } from './local';
import { isoSeconds, table } from './output';
import { requester } from './requester';
import { parseTarget } from './targets';

interface AllowOptions {
  readonly agent?: string;
  readonly config?: string;
  readonly stateDir?: string;
  readonly json?: boolean;
}

/** The running agent, or (none answering, or --state-dir) the allowlist file and store directly. */
async function place(options: AllowOptions, deps: CliDeps): Promise<{ agent: AgentBackend } | { file: RuntimeAllowlist; directory: string; note: string }> {
  const local = { env: deps.env, ...(options.agent !== undefined ? { agent: options.agent } : {}), ...(options.config !== undefined ? { config: options.config } : {}) };
  const { config } = localConfig(local);
  const url = agentUrlOf(local, config);
  if (options.stateDir === undefined) {
    if (await probeAgent(url)) return { agent: new AgentBackend(url) };
    if (options.agent !== undefined) throw new CliError(`no agent answers at ${url}`, EXIT.unhealthy);
  }
  const directory = options.stateDir ?? config.stateDirectory;
  return { file: new RuntimeAllowlist(directory), directory, note: options.stateDir === undefined ? `; no agent answers at ${url}, the agent reads it at start` : '' };
}

function common(command: Command): Command {
  return command
    .option('--agent <url>', 'the local agent\'s control API (default http://127.0.0.1:9466, or health.port of the config)')
    .option('--config <file>', 'the local agent\'s config, for its state directory and health port')
    .option('--state-dir <dir>', 'edit the allowlist file of this state directory directly, without asking a running agent')
    .option('--json', 'print JSON');
}

export function registerAllow(program: Command, deps: CliDeps): void {
  const allow = program
    .command('allow')
    .summary('the runtime allowlist: never block an address or CIDR, without editing the config')
    .description(
      'A runtime allowlist kept in the state directory (allowlist.json) and merged into guard.allowlist. `allow add` applies at once with a running agent: ' +
        'the guard and the kernel\'s exempt sets take it, and every active block it covers is lifted. Addresses and CIDRs as for `block` (host bits must be zero).',
    );

  common(allow.command('add').description('add an address or CIDR; lifts the active blocks it covers').argument('<target>', 'address or CIDR')).action(async (text: string, options: AllowOptions) => {
    const target = parseTarget(text);
    const by = requester();
    const where = await place(options, deps);
    let added: boolean;
    let lifted: string[];
    let label: string;
    if ('agent' in where) {
      ({ added, lifted } = await where.agent.allowAdd(target, by));
      label = where.agent.where;
    } else {
      try {
        added = where.file.add(target, by, deps.now());
      } catch (error) {
        throw new CliError(`cannot write ${where.file.path}: ${error instanceof Error ? error.message : String(error)}`, EXIT.failure);
      }
      lifted = await liftCovered(target, where.directory, options, deps, by);
      label = `${where.file.path}${where.note}`;
    }
    if (options.json) return printJson(deps.io, { target, added, lifted, where: label });
    deps.io.out(`${added ? 'allowed' : 'already allowed'} ${target}${lifted.length ? `; unblocked ${lifted.join(', ')}` : ''} — ${label}`);
  });

  common(allow.command('remove').description('remove an entry of the runtime allowlist (entries of the config file stay)').argument('<target>', 'address or CIDR')).action(async (text: string, options: AllowOptions) => {
    const target = parseTarget(text);
    const where = await place(options, deps);
    if ('agent' in where) await where.agent.allowRemove(target, requester());
    else if (!where.file.remove(target)) throw new CliError(`${target} is not in the runtime allowlist (${where.file.path})`, EXIT.notFound);
    const label = 'agent' in where ? where.agent.where : `${where.file.path}${where.note}`;
    if (options.json) return printJson(deps.io, { target, removed: true, where: label });
    deps.io.out(`removed ${target} from the runtime allowlist — ${label}`);
  });

  common(allow.command('list').description('the runtime allowlist (guard.allowlist of the config comes on top)')).action(async (options: AllowOptions) => {
    const where = await place(options, deps);
    const entries = 'agent' in where ? await where.agent.allowList() : where.file.list();
    const label = 'agent' in where ? where.agent.where : `${where.file.path}${where.note}`;
    if (options.json) return printJson(deps.io, { where: label, entries: entries.map((e) => ({ ...e, addedAt: new Date(e.addedAt).toISOString() })) });
    if (entries.length === 0) return deps.io.out(`the runtime allowlist is empty (${label})`);
    deps.io.out(table(['ADDRESS', 'ADDED', 'BY'], entries.map((e) => [e.target, isoSeconds(e.addedAt), e.by])));
  });
}

/** With no agent: lifts the store's active blocks the new entry covers. */
async function liftCovered(target: string, directory: string, options: AllowOptions, deps: CliDeps, by: string): Promise<string[]> {
  const guard = NeverBlockGuard.from({ allowlist: [target], blockSpecialRanges: true });
  const backend = await openLocal({ env: deps.env, stateDir: directory, ...(options.config !== undefined ? { config: options.config } : {}) });
  try {
    const lifted: string[] = [];
    for (const block of await backend.blocks(deps.now())) {
      if (guard.check(block.target).blockable) continue;
      await backend.unblock(block.target, `allow add by ${by}`);
      lifted.push(block.target);
    }
    return lifted;
  } finally {
    await backend.close?.();
  }
}
