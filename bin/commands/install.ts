/**
 * `portsnare install` / `portsnare uninstall`: the host agent as a systemd service.
 *
 * install: the system group and user `portsnare`, /etc/portsnare/agent.yaml (kept when present;
 * otherwise examples/host-agent.yaml with the control socket in /run/portsnare), the state
 * directory /var/lib/portsnare, the unit packaging/portsnare-agent.service with this
 * installation's node and paths (and the CAP_NET_ADMIN drop-in when the config uses stealth or
 * enforcement), then `systemctl daemon-reload` and `enable --now`.
 * uninstall: stops and disables the service, removes the unit and drop-in, the table
 * `inet portsnare`, the config, the state and runtime directories, the user and the group.
 *
 * `--root DIR` does the same inside DIR (a test, an image being built): files under DIR, the user
 * and group in DIR/etc/passwd and DIR/etc/group (useradd --prefix), no systemctl and no nftables.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Command } from 'commander';
import type { CliDeps } from './context';
import { CliError, EXIT } from './errors';

export const SERVICE = 'portsnare-agent.service';
const USER = 'portsnare';
const UNIT_DIR = '/etc/systemd/system';
const CONFIG_DIR = '/etc/portsnare';
const STATE_DIR = '/var/lib/portsnare';
const RUN_DIR = '/run/portsnare';

/** The installation this command runs from: the directory holding packaging/ and bin/portsnare.js. */
export function installationDirectory(start = __dirname): string {
  for (let dir = start; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'packaging', SERVICE)) && existsSync(join(dir, 'bin', 'portsnare.js'))) return dir;
    if (dirname(dir) === dir) throw new CliError(`cannot find packaging/${SERVICE} above ${start}: run install from a clone or the agent bundle`, EXIT.failure);
  }
}

/** The packaged unit with this installation's node and directory. */
export function renderUnit(home: string, node = process.execPath): string {
  const unit = readFileSync(join(home, 'packaging', SERVICE), 'utf8');
  return unit.replace(/\/usr\/bin\/node\b/g, node).replace(/\/opt\/portsnare\b/g, home);
}

interface Step {
  readonly say: (line: string) => void;
  readonly root: string;
}

function run(program: string, args: string[], what: string, allowFail = false): { ok: boolean; stderr: string } {
  const result = spawnSync(program, args, { encoding: 'utf8', timeout: 60_000 });
  const ok = result.status === 0;
  if (!ok && !allowFail) throw new CliError(`${what}: ${program} ${args.join(' ')} failed: ${(result.stderr || result.error?.message || `exit ${result.status}`).trim().split('\n')[0]}`, EXIT.failure);
  return { ok, stderr: result.stderr ?? '' };
}

function idOf(file: string, name: string): number | undefined {
  try {
    const line = readFileSync(file, 'utf8').split('\n').find((l) => l.split(':')[0] === name);
    return line ? Number(line.split(':')[2]) : undefined;
  } catch {
    return undefined;
  }
}

function needRoot(): void {
  if (process.getuid?.() !== 0) throw new CliError('install and uninstall need root (sudo portsnare install)', EXIT.permission);
}

function install(options: { root?: string; start: boolean; config?: string }, step: Step): void {
  const at = (path: string): string => join(step.root, path);
  const prefix = options.root !== undefined ? ['--prefix', step.root] : [];
  const home = installationDirectory();
  if (idOf(at('/etc/group'), USER) === undefined) {
    run('groupadd', [...prefix, '--system', USER], 'the group');
    step.say(`created group ${USER}`);
  }
  if (idOf(at('/etc/passwd'), USER) === undefined) {
    run('useradd', [...prefix, '--system', '--gid', USER, '--home-dir', STATE_DIR, '--no-create-home', '--shell', '/usr/sbin/nologin', USER], 'the user');
    step.say(`created user ${USER}`);
  }
  const uid = idOf(at('/etc/passwd'), USER)!;
  const gid = idOf(at('/etc/group'), USER)!;

  mkdirSync(at(CONFIG_DIR), { recursive: true, mode: 0o750 });
  chownSync(at(CONFIG_DIR), 0, gid);
  const configPath = at(`${CONFIG_DIR}/agent.yaml`);
  if (existsSync(configPath)) {
    step.say(`kept ${CONFIG_DIR}/agent.yaml`);
  } else {
    const source = options.config ?? join(home, 'examples', 'host-agent.yaml');
    const text = readFileSync(source, 'utf8');
    writeFileSync(configPath, `${text.trimEnd()}\n# portsnare install: the control socket for root and group ${USER} (docs/agent-config.md, "Control")\ncontrol: { socket: ${RUN_DIR}/control.sock, group: ${USER} }\n`, { mode: 0o640 });
    step.say(`wrote ${CONFIG_DIR}/agent.yaml (from ${source})`);
  }
  chownSync(configPath, 0, gid);
  chmodSync(configPath, 0o640);

  mkdirSync(at(STATE_DIR), { recursive: true, mode: 0o750 });
  chownSync(at(STATE_DIR), uid, gid);
  chmodSync(at(STATE_DIR), 0o750);

  mkdirSync(at(UNIT_DIR), { recursive: true, mode: 0o755 });
  writeFileSync(at(`${UNIT_DIR}/${SERVICE}`), renderUnit(home), { mode: 0o644 });
  step.say(`wrote ${UNIT_DIR}/${SERVICE} (ExecStart ${process.execPath} ${home}/bin/portsnare.js)`);
  const config = readFileSync(configPath, 'utf8');
  if (/^\s*stealth:\s*true\b/m.test(config) || /enabled:\s*true/.test(config)) {
    mkdirSync(at(`${UNIT_DIR}/${SERVICE}.d`), { recursive: true, mode: 0o755 });
    writeFileSync(at(`${UNIT_DIR}/${SERVICE}.d/net-admin.conf`), readFileSync(join(home, 'packaging', 'portsnare-agent-net-admin.conf')), { mode: 0o644 });
    step.say(`wrote ${UNIT_DIR}/${SERVICE}.d/net-admin.conf (stealth or enforcement: CAP_NET_ADMIN)`);
  }
  if (options.root !== undefined) return;
  run('systemctl', ['daemon-reload'], 'systemd');
  if (options.start) {
    run('systemctl', ['enable', '--now', SERVICE], 'starting the service');
    step.say(`started ${SERVICE} (systemctl status ${SERVICE}; reload: systemctl reload ${SERVICE})`);
  }
  step.say(`operators: usermod -aG ${USER} NAME lets NAME change blocks through ${RUN_DIR}/control.sock`);
}

function uninstall(options: { root?: string }, step: Step): void {
  const at = (path: string): string => join(step.root, path);
  const prefix = options.root !== undefined ? ['--prefix', step.root] : [];
  if (options.root === undefined) {
    run('systemctl', ['disable', '--now', SERVICE], 'stopping the service', true);
    step.say(`stopped and disabled ${SERVICE}`);
  }
  for (const path of [`${UNIT_DIR}/${SERVICE}.d`, `${UNIT_DIR}/${SERVICE}`, CONFIG_DIR, STATE_DIR, RUN_DIR]) {
    if (!existsSync(at(path))) continue;
    rmSync(at(path), { recursive: true, force: true });
    step.say(`removed ${path}`);
  }
  if (options.root === undefined) {
    run('systemctl', ['daemon-reload'], 'systemd', true);
    // the agent deletes its table when it stops; one left by a crash goes here
    if (run('nft', ['list', 'table', 'inet', 'portsnare'], 'nftables', true).ok) {
      run('nft', ['delete', 'table', 'inet', 'portsnare'], 'nftables');
      step.say('deleted table inet portsnare');
    }
  }
  if (idOf(at('/etc/passwd'), USER) !== undefined) {
    run('userdel', [...prefix, USER], 'the user');
    step.say(`removed user ${USER}`);
  }
  if (idOf(at('/etc/group'), USER) !== undefined) {
    run('groupdel', [...prefix, USER], 'the group');
    step.say(`removed group ${USER}`);
  }
}

export function registerInstall(program: Command, deps: CliDeps): void {
  program
    .command('install')
    .description(`install the host agent as the systemd service ${SERVICE} (user ${USER}, /etc/portsnare/agent.yaml, ${STATE_DIR}); needs root`)
    .option('--root <dir>', 'install into this directory instead of / (no systemctl; the user via useradd --prefix)')
    .option('--config-from <file>', 'the agent config to install when /etc/portsnare/agent.yaml is missing (default examples/host-agent.yaml)')
    .option('--no-start', 'write everything but do not enable and start the service')
    .action((options: { root?: string; configFrom?: string; start: boolean }) => {
      needRoot();
      install({ ...(options.root !== undefined ? { root: options.root } : {}), ...(options.configFrom !== undefined ? { config: options.configFrom } : {}), start: options.start }, { root: options.root ?? '/', say: (line) => deps.io.out(line) });
    });
  program
    .command('uninstall')
    .description(`stop and remove the service, its unit, config, state, table inet portsnare, user and group; needs root`)
    .option('--root <dir>', 'uninstall from this directory instead of / (no systemctl, no nftables)')
    .action((options: { root?: string }) => {
      needRoot();
      uninstall(options.root !== undefined ? { root: options.root } : {}, { root: options.root ?? '/', say: (line) => deps.io.out(line) });
    });
}
