/**
 * What every operator command shares: the options that pick a backend (--stack/--region for a
 * deployed stack; --agent, --config, --state-dir for this host), the output sink, the clock.
 */
import { type Command, Option } from 'commander';
import type { Backend } from './backend';
import { StackBackend } from './stack/backend';
import { type CloudClients, cloudClients } from './stack/clients';
import { CliError, EXIT } from './errors';
import { openLocal } from './local';
import { type Io, processIo } from './output';

export interface CliDeps {
  readonly io: Io;
  readonly now: () => number;
  readonly env: NodeJS.ProcessEnv;
  /** SDK clients for a Region (tests may hand in their own) */
  readonly cloud: (region: string | undefined) => CloudClients;
  /** whether stdin is a terminal to ask on (default: process.stdin.isTTY) */
  readonly isTty?: () => boolean;
  /** asks a yes/no question (default: readline on the terminal) */
  readonly confirm?: (question: string) => Promise<boolean>;
}

export function defaultDeps(overrides: Partial<CliDeps> = {}): CliDeps {
  return { io: processIo, now: Date.now, env: process.env, cloud: cloudClients, ...overrides };
}

export interface BackendOptions {
  readonly stack?: string;
  readonly region?: string;
  readonly agent?: string;
  readonly config?: string;
  readonly stateDir?: string;
  readonly wait?: number;
  readonly json?: boolean;
}

/** Adds the backend-choosing options to a command. */
export function withBackendOptions(command: Command, options: { wait?: boolean } = {}): Command {
  command
    .option('--stack <name>', 'a deployed portsnare stack (CloudFormation stack name) instead of this host')
    .option('--region <region>', 'the stack\'s AWS Region (default: AWS_REGION or the profile\'s)')
    .option('--agent <url>', 'the local agent\'s control API (default http://127.0.0.1:9466, or health.port of the config)')
    .option('--config <file>', 'the local agent\'s config, for its state directory, guard and health port (default /etc/portsnare/agent.yaml when present)')
    .option('--state-dir <dir>', 'read and write this local store directly, without asking a running agent');
  if (options.wait) {
    command.addOption(
      new Option('--wait <seconds>', 'with --stack: wait up to this long until the table shows the change').argParser((value) => {
        const seconds = Number(value);
        if (!Number.isInteger(seconds) || seconds < 0 || seconds > 900) throw new CliError(`--wait: ${JSON.stringify(value)} is not a number of seconds (0-900)`, EXIT.usage);
        return seconds;
      }),
    );
  }
  return command;
}

/** `readOnly`: status, blocks, history — they create nothing (no state directory, no nftables table). */
export async function openBackend(options: BackendOptions, deps: CliDeps, access: { readOnly?: boolean } = {}): Promise<Backend> {
  if (options.stack !== undefined) {
    if (options.stateDir !== undefined || options.agent !== undefined) {
      throw new CliError('--stack reads a deployed stack: do not combine it with --state-dir or --agent', EXIT.usage);
    }
    return StackBackend.open(deps.cloud(options.region), options.stack, { waitSeconds: options.wait ?? 0, now: deps.now });
  }
  if (options.region !== undefined || options.wait !== undefined) {
    throw new CliError(`${options.region !== undefined ? '--region' : '--wait'} needs --stack NAME (without it the command works on this host)`, EXIT.usage);
  }
  return openLocal({
    env: deps.env,
    ...(options.config !== undefined ? { config: options.config } : {}),
    ...(options.stateDir !== undefined ? { stateDir: options.stateDir } : {}),
    ...(options.agent !== undefined ? { agent: options.agent } : {}),
    readOnly: access.readOnly === true,
  });
}

/** Runs a command body with its backend, closing it afterwards. */
export async function withBackend<T>(options: BackendOptions, deps: CliDeps, body: (backend: Backend) => Promise<T>, access: { readOnly?: boolean } = {}): Promise<T> {
  const backend = await openBackend(options, deps, access);
  try {
    return await body(backend);
  } finally {
    await backend.close?.();
  }
}

export function printJson(io: Io, value: unknown): void {
  io.out(JSON.stringify(value, null, 2));
}
