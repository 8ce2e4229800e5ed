/**
 * The operator's commands: status, blocks, block, unblock, history — against this host (the
 * agent's control API, or its store when no agent runs) or, with --stack, a deployed stack —
 * and the local demo (`demo`, `probe`).
 */
import type { Command } from 'commander';
import { registerAllow } from './allow';
import { registerBlock } from './block';
import { registerBlocks } from './blocks';
import { registerCompletion } from './completion';
import { registerDecisions } from './decisions';
import { type CliDeps, defaultDeps } from './context';
import { registerDemo } from './demo';
import { registerDetections } from './detections';
import { registerFindings } from './findings';
import { registerHistory } from './history';
import { registerInstall } from './install';
import { registerProbe } from './probe';
import { registerReload } from './reload';
import { registerSelftest } from './selftest';
import { registerStatus } from './status';
import { registerUnblock } from './unblock';

export { type CliDeps, defaultDeps } from './context';
export { CliError, EXIT } from './errors';

export function registerOperatorCommands(program: Command, deps: CliDeps = defaultDeps()): void {
  registerStatus(program, deps);
  registerBlocks(program, deps);
  registerBlock(program, deps);
  registerUnblock(program, deps);
  registerHistory(program, deps);
  registerDetections(program, deps);
  registerReload(program, deps);
  registerAllow(program, deps);
  registerDemo(program, deps);
  registerProbe(program, deps);
  registerInstall(program, deps);
  registerCompletion(program, deps);
  registerDecisions(program, deps);
  registerSelftest(program, deps);
  registerFindings(program, deps);
}
