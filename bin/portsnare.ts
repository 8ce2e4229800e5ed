/**
 * The `portsnare` command line. Each command lives in its own module and registers itself
 * (bin/commands/program.ts builds the program); bin/portsnare.js runs `main()` through tsx.
 */
import type { run as runFull } from './commands/program';

/**
 * `portsnare agent` is a long-running daemon: it loads the sensor's commands alone, not the
 * operator commands and the AWS SDK clients they carry (about 50 MB of resident memory).
 */
const AGENT_ONLY = new Set(['agent', 'import-portsentry']);

export async function main(argv: readonly string[] = process.argv.slice(2)): Promise<void> {
  /* eslint-disable @typescript-eslint/no-require-imports -- loaded on demand, see AGENT_ONLY */
  if (AGENT_ONLY.has(argv[0] ?? '')) {
    const { emptyProgram, runProgram } = require('./commands/runner') as typeof import('./commands/runner');
    const { registerAgentCommands } = require('../sensor/cli') as typeof import('../sensor/cli');
    const { processIo } = require('./commands/output') as typeof import('./commands/output');
    const program = emptyProgram(processIo);
    registerAgentCommands(program);
    process.exitCode = await runProgram(program, argv, processIo);
    return;
  }
  const { run } = require('./commands/program') as { run: typeof runFull };
  /* eslint-enable @typescript-eslint/no-require-imports */
  process.exitCode = await run(argv);
}

if (require.main === module) void main();
