/**
 * The `portsnare` program: the agent's commands (sensor/cli.ts) and the operator's (this folder).
 * bin/portsnare.ts runs it; tests call `run()` in-process with captured output.
 */
import type { Command } from 'commander';
import { registerAgentCommands } from '../../sensor/cli';
import { type CliDeps, defaultDeps } from './context';
import { registerOperatorCommands } from './index';
import { emptyProgram, runProgram } from './runner';

export function buildProgram(deps: CliDeps = defaultDeps()): Command {
  const program = emptyProgram(deps.io);
  registerAgentCommands(program);
  registerOperatorCommands(program, deps);
  return program;
}

/**
 * Runs one command line (arguments after the program name) and returns its exit code; errors are
 * printed as one line on stderr. See README.md, "Exit codes".
 */
export async function run(args: readonly string[], deps: CliDeps = defaultDeps()): Promise<number> {
  return runProgram(buildProgram(deps), args, deps.io);
}
