/**
 * Runs the agent as a daemon: loads and validates the config (failing fast with the key at
 * fault), starts, and maps SIGTERM/SIGINT to `stop()` under a hard deadline — if stopping takes
 * longer, the process exits anyway (the spool keeps what was not delivered). The handlers stay
 * installed until the stop has finished: a second signal (npm forwards Ctrl-C, so a terminal
 * often delivers two) is logged and cannot kill the process half-way through its cleanup.
 * SIGHUP re-reads the config (`Agent.reload`).
 */
import { Agent } from './agent';
import { loadConfigFile } from './config';
import { errorText, jsonLogger } from './log';

export const STOP_DEADLINE_MS = 10_000;

export interface RunOptions {
  readonly configPath: string;
  readonly stopDeadlineMs?: number;
}

/**
 * Installs SIGTERM/SIGINT handlers that call `stop` once, whatever the number of signals, and
 * exit after `deadlineMs` when the stop hangs. Resolves when `stop` has finished; the handlers
 * are removed only then.
 */
export function stopOnSignals(stop: () => Promise<void>, options: { deadlineMs: number; log: (line: string) => void; onDeadline?: () => void }): { stopped: Promise<void>; dispose: () => void } {
  let stopping: Promise<void> | undefined;
  let signals = 0;
  let resolveStopped!: () => void;
  const stopped = new Promise<void>((resolve) => (resolveStopped = resolve));
  const onSignal = (signal: NodeJS.Signals): void => {
    signals++;
    if (stopping) {
      options.log(`${signal} (${signals}) while stopping: the cleanup finishes first (deadline ${options.deadlineMs} ms)`);
      return;
    }
    options.log(`${signal}: stopping (deadline ${options.deadlineMs} ms)`);
    const hard = setTimeout(() => {
      options.log(`did not stop within ${options.deadlineMs} ms: exiting`);
      options.onDeadline?.();
      process.exit(1);
    }, options.deadlineMs);
    hard.unref();
    stopping = stop()
      .catch((error: unknown) => options.log(`stop failed: ${errorText(error)}`))
      .finally(() => {
        clearTimeout(hard);
        dispose();
        resolveStopped();
      });
  };
  const dispose = (): void => {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  return { stopped, dispose };
}

/** Starts the agent; resolves when it has stopped after a signal. */
export async function runAgent(options: RunOptions): Promise<void> {
  const config = loadConfigFile(options.configPath);
  const logger = jsonLogger(config.logLevel);
  const agent = new Agent({ config, logger, configPath: options.configPath });
  const deadline = options.stopDeadlineMs ?? STOP_DEADLINE_MS;
  // installed before start: a signal during start stops what has started so far
  const signals = stopOnSignals(() => agent.stop(deadline), { deadlineMs: deadline + 1000, log: (line) => logger.warn(line) });
  const onHangup = (): void => {
    agent.reload().catch((error: unknown) => logger.error(`reload failed: ${errorText(error)}`));
  };
  process.on('SIGHUP', onHangup);
  try {
    await agent.start();
  } catch (error) {
    signals.dispose();
    process.off('SIGHUP', onHangup);
    logger.error(`agent failed to start: ${errorText(error)}`);
    throw error;
  }
  await signals.stopped;
  process.off('SIGHUP', onHangup);
}
