/**
 * The `portsnare` command line. Each command lives in its own module and registers itself
 * (bin/commands/program.ts builds the program); bin/portsnare.js runs `main()` through tsx.
 */
import { run } from './commands/program';

export { buildProgram, run } from './commands/program';

export async function main(argv: readonly string[] = process.argv.slice(2)): Promise<void> {
  process.exitCode = await run(argv);
}

if (require.main === module) void main();
