/**
 * Whether the agent can keep its state where the config says (`stateDirectory`, `spool.directory`):
 * checked by `--check` and at start, so an unwritable directory fails loudly instead of leaving
 * blocks in memory only. The check leaves nothing behind: a missing directory is tested by
 * creating and removing a probe directory in its nearest existing ancestor; an existing one by
 * writing, renaming and removing a probe file (what the store and the spool do).
 */
import { mkdtempSync, renameSync, rmdirSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

/** Undefined when `path` is (or can be created as) a writable directory; else why not. */
export function stateDirectoryProblem(path: string): string | undefined {
  let current = resolve(path);
  let missing = false;
  for (;;) {
    let stat;
    try {
      stat = statSync(current);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') return errorCode(error);
      const parent = dirname(current);
      if (parent === current) return 'no existing ancestor directory';
      current = parent;
      missing = true;
      continue;
    }
    if (!stat.isDirectory()) return `${current} is not a directory`;
    break;
  }
  try {
    if (missing) {
      const probe = mkdtempSync(join(current, '.portsnare-check-'));
      rmdirSync(probe);
      // /proc and /sys accept no new directory at all: mkdtemp fails there
    } else {
      const probe = join(current, `.portsnare-check-${process.pid}`);
      writeFileSync(probe, 'x');
      renameSync(probe, `${probe}.renamed`);
      unlinkSync(`${probe}.renamed`);
    }
  } catch (error) {
    return `${missing ? `cannot create a directory in ${current}` : `cannot write in ${current}`}: ${errorCode(error)}`;
  }
  return undefined;
}

function errorCode(error: unknown): string {
  const e = error as NodeJS.ErrnoException;
  return e.code ? `${e.code} (${e.message.replace(/^\w+: /, '').replace(/, \w+ '.*'$/, '')})` : String(error);
}

/** The directories the agent writes with this config: the store with enforcement on, the spool with an eventbridge sink. */
export function writableDirectoriesOf(config: {
  stateDirectory: string;
  enforce: { nftables: { enabled: boolean } };
  sinks: ReadonlyArray<{ type: string }>;
  spool: { directory?: string | undefined };
}): Array<{ key: string; path: string }> {
  const out: Array<{ key: string; path: string }> = [];
  if (config.enforce.nftables.enabled) out.push({ key: 'stateDirectory', path: config.stateDirectory });
  if (config.sinks.some((sink) => sink.type === 'eventbridge')) {
    out.push(config.spool.directory !== undefined ? { key: 'spool.directory', path: config.spool.directory } : { key: 'stateDirectory', path: config.stateDirectory });
  }
  return out.filter((entry, index) => out.findIndex((other) => other.path === entry.path) === index);
}

/** Throws naming the key, the path and the error when one of the directories cannot be written. */
export function assertWritableState(config: Parameters<typeof writableDirectoriesOf>[0]): void {
  for (const { key, path } of writableDirectoriesOf(config)) {
    const problem = stateDirectoryProblem(path);
    if (problem) throw new StateDirectoryError(`${key}: ${JSON.stringify(path)} is not a writable directory: ${problem}`);
  }
}

export class StateDirectoryError extends Error {
  override readonly name = 'StateDirectoryError';
  /** README.md "Exit codes": an I/O error */
  readonly exitCode = 1;
}
