/**
 * `portsnare install` / `uninstall` into a root of their own (--root: files under it, the user and
 * group in its /etc/passwd and /etc/group through useradd --prefix, no systemctl): what install
 * writes, the unit checked by `systemd-analyze verify`, ExecReload sending SIGHUP (the agent's
 * reload, sensor/main.ts) and not SIGTERM, and nothing left after uninstall.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { runCli } from './cli';

const root = process.getuid?.() === 0;
const tools = ['useradd', 'groupadd', 'systemd-analyze'].filter((program) => spawnSync('sh', ['-c', `command -v ${program}`]).status !== 0);
const why = !root ? 'needs root (useradd --prefix, chown)' : tools.length ? `needs ${tools.join(', ')} (Debian packages passwd, systemd)` : undefined;
if (why && process.env.CI) throw new Error(`test/bin/install.test.ts: ${why}`);
if (why) console.warn(`SKIPPED test/bin/install.test.ts: ${why}`);

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'portsnare-install-'));
  mkdirSync(join(dir, 'etc'));
  // a root's user database to add to (useradd --prefix edits DIR/etc/*)
  writeFileSync(join(dir, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  writeFileSync(join(dir, 'etc', 'group'), 'root:x:0:\n');
  writeFileSync(join(dir, 'etc', 'shadow'), 'root:*:19000:0:99999:7:::\n', { mode: 0o600 });
  writeFileSync(join(dir, 'etc', 'gshadow'), 'root:*::\n', { mode: 0o600 });
  // what every root has already
  mkdirSync(join(dir, 'etc', 'systemd', 'system'), { recursive: true });
  mkdirSync(join(dir, 'var', 'lib'), { recursive: true });
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** every file and directory under `path`, relative */
function tree(path: string, base = path): string[] {
  return readdirSync(path, { withFileTypes: true }).flatMap((entry) => {
    const full = join(path, entry.name);
    return entry.isDirectory() ? [full.slice(base.length), ...tree(full, base)] : [full.slice(base.length)];
  });
}

it.skipIf(why !== undefined)('install writes the user, group, config, state directory and a unit systemd-analyze accepts; uninstall leaves nothing', async () => {
  const before = tree(dir).sort();
  const installed = await runCli(['install', '--root', dir]);
  expect(installed.code, installed.stderr).toBe(0);

  expect(readFileSync(join(dir, 'etc/passwd'), 'utf8')).toMatch(/^portsnare:x:\d+:\d+:.*:\/var\/lib\/portsnare:\/usr\/sbin\/nologin$/m);
  expect(readFileSync(join(dir, 'etc/group'), 'utf8')).toMatch(/^portsnare:x:\d+:/m);
  const config = readFileSync(join(dir, 'etc/portsnare/agent.yaml'), 'utf8');
  expect(config).toMatch(/^control: \{ socket: \/run\/portsnare\/control\.sock, group: portsnare \}$/m);
  expect(statSync(join(dir, 'etc/portsnare/agent.yaml')).mode & 0o777).toBe(0o640);
  expect(statSync(join(dir, 'var/lib/portsnare')).mode & 0o777).toBe(0o750);

  const unitPath = join(dir, 'etc/systemd/system/portsnare-agent.service');
  const unit = readFileSync(unitPath, 'utf8');
  expect(unit).toMatch(/^ExecReload=\/bin\/kill -HUP \$MAINPID$/m);
  expect(unit).not.toMatch(/^ExecReload=.*TERM/m);
  expect(unit).toMatch(/^RuntimeDirectory=portsnare$/m);
  expect(unit).toContain(`ExecStart=${process.execPath} `);
  // the example config has stealth and enforcement: the CAP_NET_ADMIN drop-in comes with it
  expect(readFileSync(join(dir, 'etc/systemd/system/portsnare-agent.service.d/net-admin.conf'), 'utf8')).toMatch(/CAP_NET_ADMIN/);

  const verify = spawnSync('systemd-analyze', ['verify', unitPath], { encoding: 'utf8' });
  expect({ status: verify.status, stderr: verify.stderr.trim() }).toEqual({ status: 0, stderr: '' });

  const removed = await runCli(['uninstall', '--root', dir]);
  expect(removed.code, removed.stderr).toBe(0);
  // useradd's backups (passwd-, group-, …) aside, the root is as it was
  expect(tree(dir).filter((path) => !path.endsWith('-')).sort()).toEqual(before);
  expect(readFileSync(join(dir, 'etc/passwd'), 'utf8')).not.toMatch(/^portsnare:/m);
  expect(readFileSync(join(dir, 'etc/group'), 'utf8')).not.toMatch(/^portsnare:/m);
});

it.skipIf(why !== undefined)('systemd-analyze verify rejects a broken unit (the check can fail)', () => {
  const unitPath = join(dir, 'broken.service');
  writeFileSync(unitPath, '[Service]\nExecStart=/nonexistent/portsnare agent\nExecReload=kill -HUP $MAINPID\n');
  expect(spawnSync('systemd-analyze', ['verify', unitPath], { encoding: 'utf8' }).status).not.toBe(0);
});

it('install and uninstall need root', async () => {
  if (root) return; // as root the refusal cannot be seen; the other tests run instead
  expect((await runCli(['install', '--root', dir])).code).toBe(7);
});
