/**
 * The token that allows changes over the loopback TCP API (sensor/health.ts): random, in a file
 * only the agent's user can read (mode 0600), created at the first start and kept afterwards. Who
 * can read the file may change this host's blocks over TCP; everyone else reads only.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, openSync, readFileSync, writeSync, closeSync, fstatSync } from 'node:fs';
import { dirname } from 'node:path';

export function controlToken(path: string): string {
  try {
    const text = readFileSync(path, 'utf8').trim();
    if (/^[0-9a-f]{64}$/.test(text)) {
      chmodSync(path, 0o600); // whatever it was left with
      return text;
    }
    throw new Error(`control.tokenFile: ${path} does not hold a token (64 hex digits); remove it and restart, a new one is made`);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  mkdirSync(dirname(path), { recursive: true, mode: 0o750 });
  const token = randomBytes(32).toString('hex');
  const fd = openSync(path, 'wx', 0o600);
  try {
    writeSync(fd, `${token}\n`);
    if ((fstatSync(fd).mode & 0o077) !== 0) chmodSync(path, 0o600);
  } finally {
    closeSync(fd);
  }
  return token;
}

/** The token when this process may read the file (the agent's user, root), else undefined. */
export function readControlToken(path: string): string | undefined {
  try {
    const text = readFileSync(path, 'utf8').trim();
    return /^[0-9a-f]{64}$/.test(text) ? text : undefined;
  } catch {
    return undefined;
  }
}
