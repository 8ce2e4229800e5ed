/**
 * The optional saved-SYN helper (sensor/native/savedsyn.c): the source address of a connection
 * reset before it was accepted — what `nmap -sT` does to every port. Without the helper (not
 * built, not Linux) `available` is false and the listeners work as before.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import type * as net from 'node:net';
import { join } from 'node:path';

interface SavedSynAddon {
  enable(fd: number): boolean;
  source(fd: number): string | undefined;
  /** absent from a helper built before it was added */
  originalPort?(fd: number): number | undefined;
}

/** Where `npm ci` builds it (a clone), or PORTSNARE_NATIVE_DIR (a bundle that ships it elsewhere). */
function candidates(): string[] {
  const fromEnv = process.env['PORTSNARE_NATIVE_DIR'];
  return [...(fromEnv ? [join(fromEnv, 'savedsyn.node')] : []), join(__dirname, '..', '..', 'build', 'savedsyn.node'), join(__dirname, '..', 'build', 'savedsyn.node')];
}

function load(): SavedSynAddon | undefined {
  if (process.platform !== 'linux' || process.env['PORTSNARE_NO_NATIVE'] === '1') return undefined;
  const path = candidates().find((candidate) => existsSync(candidate));
  if (!path) return undefined;
  try {
    return createRequire(__filename)(path) as SavedSynAddon;
  } catch {
    return undefined;
  }
}

const addon = load();

/** The libuv handle's file descriptor (Node exposes it on POSIX), or undefined. */
function fdOf(owner: net.Server | net.Socket): number | undefined {
  const fd = (owner as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

export const savedSyn = {
  available: addon !== undefined,

  /** Asks the kernel to keep the SYN of each connection `server` accepts; false when it cannot. */
  enable(server: net.Server): boolean {
    const fd = fdOf(server);
    return addon !== undefined && fd !== undefined && addon.enable(fd);
  },

  /** The source address in the SYN of an accepted connection, even after a reset. */
  source(socket: net.Socket): string | undefined {
    const fd = fdOf(socket);
    return addon !== undefined && fd !== undefined ? addon.source(fd) : undefined;
  },

  /** The port a redirected connection's client asked for (SO_ORIGINAL_DST), or undefined. */
  originalPort(socket: net.Socket): number | undefined {
    const fd = fdOf(socket);
    return addon?.originalPort !== undefined && fd !== undefined ? addon.originalPort(fd) : undefined;
  },
};
