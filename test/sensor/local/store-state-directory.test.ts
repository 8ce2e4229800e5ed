/**
 * An unusable state directory fails loudly and at once: the error names `stateDirectory`, the
 * path and the errno. Real errors only: a path under /proc (where Node's own recursive mkdir
 * spins forever), a regular file in the way, and a read-only directory (as root a read-only
 * tmpfs in a private mount namespace, EROFS; otherwise a chmod 555 directory, EACCES).
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileStore, StateDirectoryError } from '../../../sensor/local/store';
import { tempDir } from '../helpers';

const STORE = join(__dirname, '..', '..', '..', 'sensor', 'local', 'store.ts');

/** Settles within `ms` or fails: the /proc case once spun at 100 % CPU forever. */
async function within<T>(ms: number, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`did not settle within ${ms} ms`)), ms)));
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

describe('FileStore state directory', () => {
  let dir: { path: string; remove: () => void };
  beforeEach(() => {
    dir = tempDir('store-statedir');
  });
  afterEach(() => {
    chmodSync(dir.path, 0o700);
    dir.remove();
  });

  it('a directory under /proc is an error naming stateDirectory, the path and ENOENT, at once', async () => {
    const path = `/proc/portsnare-${process.pid}/state`;
    const error = (await within(5000, new FileStore(path).load().then(() => undefined, (e: unknown) => e))) as Error;
    expect(error).toBeInstanceOf(StateDirectoryError);
    expect(error.message).toBe(`stateDirectory "${path}" is not usable: cannot create directory /proc/portsnare-${process.pid}: ENOENT (no such file or directory)`);
    await expect(within(5000, FileStore.check(path))).rejects.toThrow(`stateDirectory "${path}" is not usable`);
  });

  it('a regular file in the path is ENOTDIR, naming stateDirectory and the path', async () => {
    const file = join(dir.path, 'file');
    writeFileSync(file, 'not a directory');
    await expect(FileStore.open(join(file, 'state'))).rejects.toThrow(`stateDirectory "${join(file, 'state')}" is not usable: cannot create directory ${join(file, 'state')}: ENOTDIR`);
    await expect(FileStore.check(file)).rejects.toThrow(`stateDirectory "${file}" is not usable: cannot use as a directory ${file}: ENOTDIR`);
  });

  it('a read-only directory fails check() and load() with its errno', () => {
    const state = join(dir.path, 'state');
    mkdirSync(state);
    const script = [
      `const { FileStore } = require(${JSON.stringify(STORE)});`,
      'const dir = process.argv[1];',
      'const report = (p) => p.then(() => "ok", (e) => e.message);',
      '(async () => console.log(JSON.stringify({ check: await report(FileStore.check(dir)), load: await report(FileStore.open(dir)) })))();',
    ].join('\n');
    const node = [process.execPath, '--require', 'tsx/cjs', '-e', script, state];
    let expectedCode: string;
    let run: ReturnType<typeof spawnSync>;
    if (process.getuid?.() === 0) {
      // root writes through chmod: mount a read-only tmpfs over the directory, in a private mount namespace
      expectedCode = 'EROFS';
      run = spawnSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', 'mount -t tmpfs -o ro,size=64k tmpfs "$0" && exec "$@"', state, ...node], { encoding: 'utf8', timeout: 30_000 });
    } else {
      expectedCode = 'EACCES';
      chmodSync(state, 0o555);
      run = spawnSync(node[0]!, node.slice(1), { encoding: 'utf8', timeout: 30_000 });
    }
    expect(run.status, String(run.stderr)).toBe(0);
    const result = JSON.parse(String(run.stdout)) as { check: string; load: string };
    expect(result.check).toMatch(new RegExp(`^stateDirectory "${state}" is not usable: cannot write ${state}/blocks\\.json\\.tmp-\\d+-check: ${expectedCode} `));
    // the writers' lock file is the first thing a writer opens (sensor/local/store.ts)
    expect(result.load).toMatch(new RegExp(`^stateDirectory "${state}" is not usable: cannot open ${state}/blocks\\.lock: ${expectedCode} `));
  });

  it('readOnly reads without writing: a missing directory is empty, put() is refused', async () => {
    const missing = join(dir.path, 'missing');
    const store = await FileStore.open(missing, { readOnly: true });
    expect(store.list()).toEqual([]);
    await expect(
      store.put({ target: '198.51.100.1', family: 'ipv4', reason: 'manual', firstSeen: 1, lastSeen: 1, hitCount: 0, offences: 1, blockedAt: 1, expiresAt: 2, active: true, eventIds: [], sensors: [] }, 'block'),
    ).rejects.toThrow(`the store in ${missing} is open read-only`);
  });
});
