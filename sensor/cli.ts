/** The agent's commands on the `portsnare` command line: `agent`, `import-portsentry`. */
import type { Command } from 'commander';

export function registerAgentCommands(_program: Command): void {
  // filled in by the sensor work (issue 3)
}
