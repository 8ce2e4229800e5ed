/**
 * `portsnare completion`: the bash script run by a real bash (its completion function asked as the
 * shell asks it); the zsh and fish scripts name every command (no zsh or fish on the test machine:
 * they are not run here).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { runCli } from './cli';

const COMMANDS = ['status', 'blocks', 'block', 'unblock', 'history', 'detections', 'reload', 'allow', 'agent', 'install', 'uninstall', 'completion'];

it('bash: completes commands, options and subcommands', async () => {
  const script = await runCli(['completion', 'bash']);
  expect(script.code).toBe(0);
  const dir = mkdtempSync(join(tmpdir(), 'portsnare-completion-'));
  try {
    writeFileSync(join(dir, 'portsnare.bash'), script.stdout);
    const ask = (words: string[]): string[] =>
      spawnSync('bash', ['-c', `source ${join(dir, 'portsnare.bash')}; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _portsnare; printf '%s\\n' "\${COMPREPLY[@]}"`], { encoding: 'utf8' })
        .stdout.split('\n')
        .filter(Boolean)
        .sort();
    expect(ask(['portsnare', 'blo'])).toEqual(['block', 'blocks']);
    expect(ask(['portsnare', 'blocks', '--cont'])).toEqual(['--contains']);
    expect(ask(['portsnare', 'allow', ''])).toEqual(expect.arrayContaining(['add', 'list', 'remove']));
    expect(ask(['portsnare', 'block', '--tt'])).toEqual(['--ttl']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

it('zsh and fish name every command; an unknown shell exits 2', async () => {
  for (const shell of ['zsh', 'fish']) {
    const script = await runCli(['completion', shell]);
    expect(script.code).toBe(0);
    for (const command of COMMANDS) expect(script.stdout, `${shell}: ${command}`).toMatch(new RegExp(`(^|[ '])${command}[: ']`, 'm'));
  }
  expect((await runCli(['completion', 'tcsh'])).code).toBe(2);
});
