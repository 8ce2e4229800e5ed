/**
 * The program shell every entry point shares: output, error handling and exit codes. It imports
 * no command, so the agent's entry point can load the sensor alone (bin/portsnare.ts).
 */
import { Command, CommanderError } from 'commander';
import { EXIT } from './errors';
import type { Io } from './output';

/** The bare program: name, description, output and error handling, no commands. */
export function emptyProgram(io: Pick<Io, 'out' | 'err'>): Command {
  return new Command('portsnare')
    .description('Decoy-port enumeration blocker: detect scanners, block them in nftables, NACLs and WAF.')
    .version(packageVersion(), '-V, --version', 'print the portsnare version')
    // a usage mistake is one line (commander's "error: …"), then exit 2; --help prints the usage
    .showHelpAfterError(false)
    .exitOverride()
    .configureOutput({ writeOut: (text) => io.out(text), writeErr: (text) => io.err(text) });
}

/** Runs `program` on `args` and maps its outcome to an exit code (see `run`). */
export async function runProgram(program: Command, args: readonly string[], io: Pick<Io, 'err'>): Promise<number> {
  const before = process.exitCode;
  process.exitCode = undefined;
  try {
    await program.parseAsync([...args], { from: 'user' });
    // a command that finished normally may still have set an exit code (e.g. warnings)
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok;
  } catch (error) {
    if (error instanceof CommanderError) {
      // help and --version exit 0; a usage mistake (unknown option, missing argument) exits 2, and
      // so does a command group without its subcommand (`portsnare`, `portsnare allow`), whose
      // usage commander prints on stderr
      if (error.code === 'commander.help' && error.exitCode !== 0) return EXIT.usage;
      if (error.exitCode === 0 || error.code === 'commander.help' || error.code === 'commander.helpDisplayed') return error.exitCode;
      return EXIT.usage;
    }
    const code = (error as { exitCode?: unknown }).exitCode;
    const message = error instanceof Error ? error.message : String(error);
    if (message) io.err(`portsnare: ${message}`);
    return typeof code === 'number' ? code : EXIT.failure;
  } finally {
    process.exitCode = before;
  }
}

/** The version in package.json (inlined by a bundler). */
function packageVersion(): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- JSON, resolved at build time by esbuild
  return (require('../../package.json') as { version: string }).version;
}
