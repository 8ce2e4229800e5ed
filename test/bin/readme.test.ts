/**
 * The README's commands stay true: every `portsnare …` line in its shell blocks names a command
 * the program has, with options that command accepts, and every `npm run`/`npm start` script it
 * names exists in package.json.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../bin/commands/program';
import { REPO } from './cli';

const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
const scripts = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;

/** Lines of ```sh blocks, comments cut. */
function shellLines(): string[] {
  const blocks = [...readme.matchAll(/```sh\n([\s\S]*?)```/g)].map((match) => match[1] ?? '');
  return blocks.flatMap((block) => block.split('\n')).map((line) => line.replace(/\s+#.*$/, '').trim()).filter(Boolean);
}

function portsnareInvocations(): string[][] {
  return shellLines()
    .flatMap((line) => line.split(/&&|;/))
    .map((part) => part.trim())
    .map((part) => /(?:^|\s)(?:npx |sudo npx |\.\/bin\/)?portsnare(?:\.js)? (.*)$/.exec(part)?.[1])
    .filter((rest): rest is string => rest !== undefined)
    .map((rest) => rest.replace(/\s*>.*$/, '').split(/\s+/));
}

describe('README.md', () => {
  it('names only commands and options the program has', () => {
    const program = buildProgram();
    const invocations = portsnareInvocations();
    expect(invocations.length).toBeGreaterThan(8);
    for (const [name, ...args] of invocations) {
      const command = program.commands.find((c: Command) => c.name() === name);
      expect(command, `portsnare ${name}`).toBeDefined();
      const known = new Set((command?.options ?? []).flatMap((option) => [option.long, option.short]).filter(Boolean));
      for (const arg of args.filter((a) => a.startsWith('-'))) expect(known.has(arg.split('=')[0] ?? arg), `portsnare ${name} ${arg}`).toBe(true);
    }
  });

  it('names only npm scripts that exist, and the test command is exactly `npm test`', () => {
    const used = shellLines().flatMap((line) => [...line.matchAll(/npm (?:run (\S+)|(start|test))/g)].map((m) => m[1] ?? m[2] ?? ''));
    expect(used).toEqual(expect.arrayContaining(['start', 'test', 'probe']));
    for (const script of used) expect(scripts[script], `npm run ${script}`).toBeDefined();
    expect(readme).toContain('npm ci && npm start');
    expect(readme).toMatch(/^npm test\s+# run the tests$/m);
  });
});
