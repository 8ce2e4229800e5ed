/**
 * The native helper's kernel calls Node has no API for (sensor/native/savedsyn.c, built by
 * scripts/build-native.sh at `npm ci`): the peer credentials of a Unix socket connection
 * (SO_PEERCRED) and flock(2). The saved-SYN calls of the same helper are sensor/listeners/saved-syn.ts.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import type * as net from 'node:net';
import { join } from 'node:path';
import { constants } from 'node:os';

interface Addon {
  peer?(fd: number): PeerCredentials | undefined;
  lock?(fd: number, exclusive: boolean, wait: boolean): number;
  unlock?(fd: number): number;
}

/** Who is at the other end of a Unix socket, as the kernel recorded it at connect(2). */
export interface PeerCredentials {
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
}

function load(): Addon | undefined {
  if (process.platform !== 'linux' || process.env['PORTSNARE_NO_NATIVE'] === '1') return undefined;
  const fromEnv = process.env['PORTSNARE_NATIVE_DIR'];
  const path = [...(fromEnv ? [join(fromEnv, 'savedsyn.node')] : []), join(__dirname, '..', 'build', 'savedsyn.node'), join(__dirname, 'build', 'savedsyn.node')].find((candidate) => existsSync(candidate));
  if (!path) return undefined;
  try {
    return createRequire(__filename)(path) as Addon;
  } catch {
    return undefined;
  }
}

const addon = load();

/** Why the helper's calls are unavailable, or undefined when they work. */
export const nativeUnavailable: string | undefined =
  addon?.peer && addon.lock ? undefined : 'the native helper (build/savedsyn.node, built by scripts/build-native.sh: needs cc and Node headers) is not built or is older than this code';

/** The socket's file descriptor (libuv exposes it on POSIX), or undefined. */
function fdOf(socket: net.Socket): number | undefined {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

/** SO_PEERCRED of an accepted Unix socket connection; undefined without the helper. */
export function peerCredentials(socket: net.Socket): PeerCredentials | undefined {
  const fd = fdOf(socket);
  return fd !== undefined && addon?.peer ? addon.peer(fd) : undefined;
}

/**
 * flock(fd, LOCK_EX): true when taken, false when another holder has it (only without `wait`);
 * throws otherwise. Without the helper it takes nothing and answers true (see nativeUnavailable).
 */
export function lockFile(fd: number, wait = false): boolean {
  // without the helper there is no lock: one writer at a time is then the operator's to keep
  // (the store warns once, FileStore's onWarning)
  if (!addon?.lock) return true;
  const code = addon.lock(fd, true, wait);
  if (code === 0) return true;
  if (code === constants.errno.EWOULDBLOCK || code === constants.errno.EAGAIN) return false;
  throw Object.assign(new Error(`flock failed: errno ${code}`), { code: Object.entries(constants.errno).find(([, n]) => n === code)?.[0] ?? `E${code}` });
}

export function unlockFile(fd: number): void {
  addon?.unlock?.(fd);
}
