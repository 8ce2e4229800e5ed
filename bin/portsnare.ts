/**
 * The `portsnare` command line. Each command lives in its own module and registers itself here.
 */
import { Command } from 'commander';
import { registerAgentCommands } from '../sensor/cli';
import { registerOperatorCommands } from './commands';

export function buildProgram(): Command {
  const program = new Command('portsnare')
    .description('Decoy-port enumeration blocker: detect scanners, block them in nftables, NACLs and WAF.')
    .showHelpAfterError()
    .exitOverride();
  registerAgentCommands(program);
  registerOperatorCommands(program);
  return program;
}

if (require.main === module || process.argv[1]?.endsWith('portsnare.js')) {
  buildProgram()
    .parseAsync(process.argv)
    .catch((error: unknown) => {
      const code = (error as { exitCode?: number }).exitCode;
      if (typeof code === 'number') {
        process.exitCode = code;
        return;
      }
      console.error(`portsnare: ${error instanceof Error ? error.message : String(error)}`);
      process.exitCode = 1;
    });
}
