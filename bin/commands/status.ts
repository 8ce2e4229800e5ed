/** `portsnare status`: is the agent (or the stack) healthy, what it has seen and blocked, the spool. */
import type { Command } from 'commander';
import { type CliDeps, type BackendOptions, printJson, withBackend, withBackendOptions } from './context';
import { CliError, EXIT } from './errors';
import { keyValues } from './output';

export function registerStatus(program: Command, deps: CliDeps): void {
  withBackendOptions(
    program
      .command('status')
      .summary('agent and pipeline health, detections, active blocks, spool depth')
      .description(
        'Agent and pipeline health, counts of detections and active blocks, and the spool depth (events not yet delivered). ' +
          'On this host it asks the running agent; with no agent it reads the local store and says the agent is not running. ' +
          'With --stack it reads the deployed stack. Exits 0 when healthy, 6 when the agent is not running or not healthy.',
      )
      .option('--json', 'print JSON'),
  ).action(async (options: BackendOptions) => {
    const report = await withBackend(options, deps, (backend) => backend.status(deps.now()), { readOnly: true });
    if (options.json) {
      printJson(deps.io, { where: report.where, healthy: report.healthy, ...report.data });
    } else {
      deps.io.out(`portsnare status — ${report.where}`);
      deps.io.out(keyValues(report.lines));
    }
    if (!report.healthy) throw new CliError('', EXIT.unhealthy);
  });
}
