/**
 * The `portsnare` program: the agent's commands (sensor/cli.ts) and the operator's (this folder).
 * bin/portsnare.ts runs it; tests call `run()` in-process with captured output.
 */
import { Command, CommanderError } from 'commander';
import { registerAgentCommands } from '../../sensor/cli';
import { type CliDeps, defaultDeps } from './context';
import { EXIT } from './errors';
import { registerOperatorCommands } from './index';

export function buildProgram(deps: CliDeps = defaultDeps()): Command {
  const program = new Command('portsnare')
    .description('Decoy-port enumeration blocker: detect scanners, block them in nftables, NACLs and WAF.')
    .showHelpAfterError()
    .exitOverride()
    .configureOutput({ writeOut: (text) => deps.io.out(text), writeErr: (text) => deps.io.err(text) });
  registerAgentCommands(program);
  registerOperatorCommands(program, deps);
  return program;
}

/**
 * Runs one command line (arguments after the program name) and returns its exit code; errors are
 * printed as one line on stderr. See README.md, "Exit codes".
 */
export async function run(args: readonly string[], deps: CliDeps = defaultDeps()): Promise<number> {
  const before = process.exitCode;
  process.exitCode = undefined;
  try {
    await buildProgram(deps).parseAsync([...args], { from: 'user' });
    // a command that finished normally may still have set an exit code (e.g. warnings)
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok;
  } catch (error) {
    if (error instanceof CommanderError) {
      // help and --version exit 0; a usage mistake (unknown option, missing argument) exits 2
      if (error.exitCode === 0 || error.code === 'commander.help' || error.code === 'commander.helpDisplayed') return error.exitCode;
      return EXIT.usage;
    }
    const code = (error as { exitCode?: unknown }).exitCode;
    const message = error instanceof Error ? error.message : String(error);
    if (message) deps.io.err(`portsnare: ${message}`);
    return typeof code === 'number' ? code : EXIT.failure;
  } finally {
    process.exitCode = before;
  }
}
