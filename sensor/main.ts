/**
 * Runs the agent as a daemon: loads and validates the config (failing fast with the key at
 * fault), starts, and maps SIGTERM/SIGINT to `stop()` under a hard deadline — if stopping takes
 * longer, the process exits anyway (the spool keeps what was not delivered). A second signal
 * exits at once.
 */
import { Agent } from './agent';
import { loadConfigFile } from './config';
import { errorText, jsonLogger } from './log';

export const STOP_DEADLINE_MS = 10_000;

export interface RunOptions {
  readonly configPath: string;
  readonly stopDeadlineMs?: number;
}

/** Starts the agent; resolves when it has stopped after a signal. */
export async function runAgent(options: RunOptions): Promise<void> {
  const config = loadConfigFile(options.configPath);
  const logger = jsonLogger(config.logLevel);
  const agent = new Agent({ config, logger });
  const deadline = options.stopDeadlineMs ?? STOP_DEADLINE_MS;
  let stopping: Promise<void> | undefined;
  const stopped = new Promise<void>((resolve) => {
    const onSignal = (signal: NodeJS.Signals): void => {
      if (stopping) {
        logger.warn(`second ${signal}: exiting now`);
        process.exit(130);
      }
      logger.info(`${signal}: stopping (deadline ${deadline} ms)`);
      const hard = setTimeout(() => {
        logger.error(`did not stop within ${deadline} ms: exiting`);
        process.exit(1);
      }, deadline + 1000);
      hard.unref();
      stopping = agent.stop(deadline).then(() => {
        clearTimeout(hard);
        process.off('SIGTERM', onSignal);
        process.off('SIGINT', onSignal);
        resolve();
      });
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
  try {
    await agent.start();
  } catch (error) {
    logger.error(`agent failed to start: ${errorText(error)}`);
    throw error;
  }
  await stopped;
}
