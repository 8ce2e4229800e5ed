/**
 * Conditional tests that say why they skip, as the labs do (test/lab/netns.ts `labReady`): where
 * a prerequisite is missing the test prints the reason and skips, and in CI (env CI set), where
 * everything must run, it fails instead.
 */
import { spawnSync } from 'node:child_process';

/** True when `why` is undefined; otherwise prints why `what` skips, or throws in CI. */
export function runnable(what: string, why: string | undefined): boolean {
  if (why === undefined) return true;
  if (process.env.CI) throw new Error(`${what}: prerequisites missing in CI (it must run there): ${why}`);
  console.warn(`SKIPPED ${what}: ${why}`);
  return false;
}

export const isRoot = process.getuid?.() === 0;

/** Why a test cannot run as root in a network namespace of its own, with nft; undefined when it can. */
export function namespaceNftUnavailable(): string | undefined {
  if (process.platform !== 'linux') return `needs Linux network namespaces and nftables (this is ${process.platform})`;
  if (!isRoot) return 'needs root (a network namespace of its own and nftables)';
  const unshare = spawnSync('unshare', ['--net', 'true'], { encoding: 'utf8' });
  if (unshare.status !== 0) return `unshare --net fails here: ${(unshare.stderr || unshare.error?.message || `exit ${unshare.status}`).trim()} (Debian package util-linux; a container may forbid it)`;
  if (spawnSync('nft', ['--version']).status !== 0) return 'needs the nft program (Debian package nftables)';
  return undefined;
}
