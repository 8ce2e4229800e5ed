/** `portsnare status`: is the agent (or the stack) healthy, what it has seen and blocked, the spool. */
import type { Command } from 'commander';
import { type CliDeps, type BackendOptions, printJson, withBackend, withBackendOptions } from './context';
import { CliError, EXIT } from './errors';
import { orgStatusJson, orgStatusText } from './org-status';
import { keyValues } from './output';
import { readOrgStatus } from './stack/org';

interface StatusOptions extends BackendOptions {
  readonly org?: boolean;
}

export function registerStatus(program: Command, deps: CliDeps): void {
  withBackendOptions(
    program
      .command('status')
      .summary('agent and pipeline health, detections, active blocks, spool depth')
      .description(
        'Agent and pipeline health, counts of detections and active blocks, and the spool depth (events not yet delivered). ' +
          'On this host it asks the running agent; with no agent it reads the local store and says the agent is not running. ' +
          'With --stack it reads the deployed stack, each cloud sensor\'s last heartbeat and heartbeat alarm included (CloudWatch); with --org --stack DECISION_STACK each enforcement plane of the organization (health, lag, last run) from the planes\' reports. ' +
          'Exits 0 when healthy, 6 when the agent is not running or not healthy (with --stack: also when a sensor\'s alarm is in ALARM or it sent no heartbeat in 24 h; with --org: when any plane is lagging, silent or has never reported).',
      )
      .option('--org', 'with --stack DECISION_STACK: every enforcement plane of the organization, from the reports in the decision table')
      .option('--json', 'print JSON'),
  ).action(async (options: StatusOptions) => {
    if (options.org) return orgStatus(options, deps);
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

async function orgStatus(options: StatusOptions, deps: CliDeps): Promise<void> {
  if (options.stack === undefined) throw new CliError('--org needs --stack DECISION_STACK (the organization\'s decision stack)', EXIT.usage);
  const local = (['agent', 'config', 'stateDir'] as const).find((key) => options[key] !== undefined);
  if (local) throw new CliError(`--org reads the decision stack: do not combine it with --${local === 'stateDir' ? 'state-dir' : local}`, EXIT.usage);
  const view = await readOrgStatus(deps.cloud(options.region), options.stack, deps.now());
  if (options.json) {
    printJson(deps.io, orgStatusJson(view));
  } else {
    deps.io.out(`portsnare status --org — ${view.where}`);
    deps.io.out(orgStatusText(view));
  }
  if (!view.healthy) throw new CliError('', EXIT.unhealthy);
}
