/**
 * The runtime allowlist (`portsnare allow add|remove|list`): addresses and CIDRs added by an
 * operator without editing the config, kept in `allowlist.json` in the state directory (written
 * atomically: a temporary file, then rename) and merged into `guard.allowlist` — so they are
 * never blocked, the kernel's exempt sets hold them, and active blocks they cover are lifted.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { canonicalTarget } from '../core/address';
import type { AgentConfig } from './config';
import type { AllowControl } from './health';

export const ALLOWLIST_FILE = 'allowlist.json';

export interface AllowEntry {
  readonly target: string;
  readonly addedAt: number;
  readonly by: string;
}

export class RuntimeAllowlist {
  readonly path: string;

  constructor(directory: string) {
    this.path = join(directory, ALLOWLIST_FILE);
  }

  /** The entries; none when the file does not exist. A corrupt file is an error naming it. */
  list(): AllowEntry[] {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return []; // no state directory (yet): no entries
      throw error;
    }
    let parsed: { version?: unknown; entries?: unknown };
    try {
      parsed = JSON.parse(text) as typeof parsed;
    } catch (error) {
      throw new Error(`${this.path} is not valid JSON: ${(error as Error).message}`);
    }
    if (parsed.version !== 1 || !Array.isArray(parsed.entries)) throw new Error(`${this.path} has an unknown format`);
    return (parsed.entries as AllowEntry[]).filter((entry) => typeof entry?.target === 'string' && canonicalTarget(entry.target) === entry.target);
  }

  /** Adds `target` (canonical text); false when it was there already. */
  add(target: string, by: string, now = Date.now()): boolean {
    const entries = this.list();
    if (entries.some((entry) => entry.target === target)) return false;
    this.write([...entries, { target, addedAt: now, by }]);
    return true;
  }

  /** Removes `target`; false when it was not there. */
  remove(target: string): boolean {
    const entries = this.list();
    const rest = entries.filter((entry) => entry.target !== target);
    if (rest.length === entries.length) return false;
    this.write(rest);
    return true;
  }

  private write(entries: AllowEntry[]): void {
    mkdirSync(dirname(this.path), { recursive: true, mode: 0o750 });
    const temporary = `${this.path}.${process.pid}.tmp`;
    writeFileSync(temporary, JSON.stringify({ version: 1, entries }, null, 2) + '\n', { mode: 0o640 });
    renameSync(temporary, this.path);
  }
}

/** The config's guard with the runtime allowlist merged in. */
export function guardWith(config: AgentConfig, runtime: readonly AllowEntry[]): AgentConfig['guard'] {
  const allowlist = [...config.guard.allowlist];
  for (const entry of runtime) if (!allowlist.includes(entry.target)) allowlist.push(entry.target);
  return { ...config.guard, allowlist };
}

/**
 * The control API's view of the runtime allowlist (GET/POST/DELETE /allow): each change is
 * written to the file, then `rebuild` merges the file into the guard and applies it (lifting the
 * blocks it now covers); `log` records who changed what.
 */
export function allowlistControl(
  file: () => RuntimeAllowlist,
  rebuild: (by: string) => Promise<string[]>,
  log: (message: string, attributes: Record<string, unknown>) => void,
): AllowControl {
  return {
    list: () => file().list(),
    add: async (target, by) => {
      const added = file().add(target, by);
      const lifted = await rebuild(`allow add by ${by}`);
      log('allowlist: added', { target, by, lifted });
      return { added, lifted };
    },
    remove: async (target, by) => {
      const removed = file().remove(target);
      if (removed) await rebuild(`allow remove by ${by}`);
      log('allowlist: removed', { target, by, removed });
      return removed;
    },
  };
}
