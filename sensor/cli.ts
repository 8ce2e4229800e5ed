/** The agent's commands on the `portsnare` command line: `agent`, `import-portsentry`. */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { stringify } from 'yaml';
import { loadConfigFile } from './config';
import { runAgent } from './main';
import { assertWritableState } from './state-dir';
import { importPortsentry } from './portsentry';

export function registerAgentCommands(program: Command): void {
  program
    .command('agent')
    .description('run the sensor / host agent: decoy ports, kernel detection, local blocking, publishing')
    .requiredOption('-c, --config <file>', 'agent config (YAML or JSON); see docs/agent-config.md')
    .option('--check', 'validate the config, print it with every default filled in, and exit')
    .option('--stop-deadline <ms>', 'hard deadline for a clean stop on SIGTERM/SIGINT, ms', '10000')
    .action(async (opts: { config: string; check?: boolean; stopDeadline: string }) => {
      if (opts.check) {
        const config = loadConfigFile(opts.config);
        assertWritableState(config); // the store and spool directories, as the start checks them
        process.stdout.write(stringify(config));
        return;
      }
      const deadline = Number(opts.stopDeadline);
      if (!Number.isInteger(deadline) || deadline < 0) throw new Error(`--stop-deadline: "${opts.stopDeadline}" is not a number of milliseconds`);
      await runAgent({ configPath: opts.config, stopDeadlineMs: deadline });
    });

  program
    .command('import-portsentry')
    .description('print the portsnare agent config equivalent to a Portsentry 1.2 or 2.x portsentry.conf (warnings on stderr)')
    .argument('<file>', 'portsentry.conf')
    .option('--advanced', 'map ADVANCED_PORTS_TCP/UDP (Portsentry 1.2 -atcp/-audp) to tcpPorts/udpPorts: all-unused with stealth')
    .action((file: string, opts: { advanced?: boolean }) => {
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch (error) {
        throw new Error(`cannot read ${file}: ${error instanceof Error ? error.message : String(error)}`);
      }
      const result = importPortsentry(text, { advanced: opts.advanced ?? false, source: file });
      for (const warning of result.warnings) process.stderr.write(`warning: ${warning}\n`);
      process.stdout.write(result.yaml);
    });
}
