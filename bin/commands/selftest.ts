/**
 * `portsnare selftest --stack NAME [--org]`: the step after `cdk deploy` — a canary blocked and
 * lifted through the deployed pipeline, the alarm topic, the sensors' heartbeats
 * (stack/selftest.ts). Exits 0 when every check passed or was skipped, 6 when one failed.
 */
import { type Command, Option } from 'commander';
import { DEFAULT_SELFTEST_TIMEOUT_SECONDS } from '../../core/selftest';
import { type CliDeps, printJson } from './context';
import { CliError, EXIT } from './errors';
import { requester } from './requester';
import { type Check, runSelftest } from './stack/selftest';

interface SelftestOptions {
  readonly stack?: string;
  readonly region?: string;
  readonly org?: boolean;
  readonly timeout: number;
  readonly pollMs: number;
  readonly json?: boolean;
}

function integer(name: string, min: number, max: number): (value: string) => number {
  return (value) => {
    const number = Number(value);
    if (!Number.isInteger(number) || number < min || number > max) throw new CliError(`${name}: ${JSON.stringify(value)} is not a whole number within ${min}-${max}`, EXIT.usage);
    return number;
  };
}

const MARK: Record<Check['state'], string> = { ok: 'ok', failed: 'FAILED', skipped: 'skipped' };

export function registerSelftest(program: Command, deps: CliDeps): void {
  program
    .command('selftest')
    .summary('prove a deployed stack end to end: canary block and lift, alarm topic, sensor heartbeats')
    .description(
      'After `cdk deploy`: blocks the stack\'s canary address (output PortsnareCanaryAddress, context portsnare.selftest.canaryAddress) ' +
        'with an operator request on its bus, waits until every WAF IP set and network ACL of every plane holds it, lifts it and waits until ' +
        'none does; publishes a test message to the alarm topic; checks that each cloud sensor\'s heartbeat metric exists (CloudWatch ListMetrics). ' +
        'With --org, --stack names the organization\'s decision stack and every plane stack is read. Exits 0 when every check passed (or was skipped, ' +
        'with why), 6 when one failed, naming it.',
    )
    .option('--stack <name>', 'the deployed stack (with --org: the decision stack)')
    .option('--region <region>', 'the stack\'s AWS Region (default: AWS_REGION or the profile\'s)')
    .option('--org', 'the stack is an organization\'s decision stack: check every enforcement plane')
    .addOption(new Option('--timeout <seconds>', 'how long the canary may take to appear in, and leave, every point').argParser(integer('--timeout', 1, 3600)).default(DEFAULT_SELFTEST_TIMEOUT_SECONDS))
    .addOption(new Option('--poll-ms <ms>', 'between two reads of every point').argParser(integer('--poll-ms', 10, 60_000)).default(2000).hideHelp())
    .option('--json', 'print JSON')
    .action(async (options: SelftestOptions) => {
      if (options.stack === undefined) throw new CliError('selftest needs --stack NAME (the deployed stack; with --org the decision stack)', EXIT.usage);
      if (!options.json) deps.io.out(`portsnare selftest — ${options.org ? 'decision stack' : 'stack'} ${options.stack}`);
      const report = await runSelftest(deps.cloud, options.stack, options.region, {
        org: options.org === true,
        timeoutSeconds: options.timeout,
        pollMs: options.pollMs,
        requestedBy: `${requester()} (selftest)`,
        ...(options.json ? {} : { onCheck: (check: Check) => deps.io.out(`${MARK[check.state].padEnd(8)}${check.name.padEnd(15)} ${check.detail}`) }),
      });
      if (options.json) {
        printJson(deps.io, { where: report.where, ok: report.ok, canary: report.canary ?? null, checks: report.checks });
      } else {
        const failed = report.checks.filter((check) => check.state === 'failed');
        deps.io.out(failed.length === 0 ? `selftest passed — ${report.where}` : `selftest FAILED — ${report.where}: ${failed.map((check) => check.name).join(', ')}`);
      }
      if (!report.ok) throw new CliError('', EXIT.unhealthy);
    });
}
