/**
 * `portsnare reload`: the running agent re-reads its config file (POST /reload; `kill -HUP` does
 * the same) without dropping a block. `ignore` and `guard` apply at once — active blocks the new
 * guard protects are lifted — and the command lists the changed keys that need a restart.
 */
import type { Command } from 'commander';
import { type CliDeps, printJson } from './context';
import { requireAgent } from './local';

export function registerReload(program: Command, deps: CliDeps): void {
  program
    .command('reload')
    .summary('the running agent re-reads its config file (as SIGHUP does); blocks stay')
    .description(
      'Asks the running agent to re-read its config file. ignore and guard apply at once (the kernel\'s exempt sets too; active blocks the new guard protects are lifted); ' +
        'other changed keys are listed as needing a restart. An invalid file changes nothing: the error names the key (exit 2). Exit code 6 when no agent answers.',
    )
    .option('--json', 'print JSON')
    .option('--agent <url>', 'the local agent\'s control API (default http://127.0.0.1:9466, or health.port of the config)')
    .option('--config <file>', 'the local agent\'s config, for its health port')
    .action(async (options: { json?: boolean; agent?: string; config?: string }) => {
      const agent = await requireAgent({ env: deps.env, ...(options.agent !== undefined ? { agent: options.agent } : {}), ...(options.config !== undefined ? { config: options.config } : {}) });
      const result = await agent.reload();
      if (options.json) {
        printJson(deps.io, { where: agent.where, ...result });
        return;
      }
      deps.io.out(`reloaded — ${agent.where}`);
      deps.io.out(`  applied          ${result.applied.join(', ') || 'nothing changed that applies at run time'}`);
      if (result.lifted.length > 0) deps.io.out(`  unblocked        ${result.lifted.join(', ')} (now protected by the guard)`);
      if (result.restartNeeded.length > 0) deps.io.out(`  needs a restart  ${result.restartNeeded.join(', ')}`);
    });
}
