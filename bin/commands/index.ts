/** The operator's commands: status, blocks, block, unblock, history. */
import type { Command } from 'commander';

export function registerOperatorCommands(_program: Command): void {
  // filled in by the command-line work (issue 5)
}
