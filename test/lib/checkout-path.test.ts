/**
 * A deploy from another checkout path replaces nothing (issue 18): the single-account app (the
 * default context of cdk.json) and the organization example (examples/cdk/organization.json)
 * synthesized with `cdk synth` from two copies of the repository at different paths and depths
 * give byte-identical templates and the same assets (names are their hashes). Each copy has its
 * own node_modules (hard links of this checkout's, so nothing resolves outside the copy), as a
 * clone with `npm ci` would: a path of the checkout anywhere in a bundle, a source map or a
 * template shows up as a difference here.
 */
import { execFile, execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../lib';

const run = promisify(execFile);
const env = { ...process.env, CDK_DISABLE_VERSION_CHECK: '1', CDK_DISABLE_CLI_TELEMETRY: 'true', CDK_VALIDATION: 'false', AWS_EC2_METADATA_DISABLED: 'true' };
const base = mkdtempSync(path.join(tmpdir(), 'portsnare-checkouts-'));
const clones = [path.join(base, 'a'), path.join(base, 'somewhere', 'much', 'deeper', 'b')];

/** A copy of the checkout's files (tracked and new, not ignored) with node_modules hard-linked. */
function copyCheckout(to: string): void {
  const files = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z'], { cwd: PROJECT_ROOT, encoding: 'utf8' }).split('\0').filter(Boolean);
  for (const file of files) {
    mkdirSync(path.dirname(path.join(to, file)), { recursive: true });
    try {
      cpSync(path.join(PROJECT_ROOT, file), path.join(to, file));
    } catch {
      // listed but deleted in the working tree
    }
  }
  execFileSync('cp', ['-al', path.join(PROJECT_ROOT, 'node_modules'), path.join(to, 'node_modules')]);
}

async function synth(root: string, out: string, context?: string): Promise<void> {
  const args = ['synth', '--quiet', '--no-notices', '--output', path.join(root, out), ...(context ? ['-c', `portsnare=${context}`] : [])];
  await run(path.join(root, 'node_modules', '.bin', 'cdk'), args, { cwd: root, env, timeout: 600_000 });
}

/** Every template (by file name) and every asset directory or file name (each a hash). */
function cloudAssembly(dir: string): { templates: Record<string, string>; assets: string[] } {
  const names = readdirSync(dir);
  const templates = Object.fromEntries(names.filter((n) => n.endsWith('.template.json')).map((n) => [n, readFileSync(path.join(dir, n), 'utf8')]));
  return { templates, assets: names.filter((n) => n.startsWith('asset.')).sort() };
}

beforeAll(async () => {
  for (const clone of clones) copyCheckout(clone);
  const organization = readFileSync(path.join(PROJECT_ROOT, 'examples', 'cdk', 'organization.json'), 'utf8').replace(/\n/g, '');
  for (const clone of clones) {
    await synth(clone, 'single.out');
    await synth(clone, 'org.out', organization);
  }
}, 1_500_000);
afterAll(() => rmSync(base, { recursive: true, force: true }));

describe.each([
  ['the single-account app', 'single.out'],
  ['the organization example', 'org.out'],
])('%s synthesized from two checkout paths', (_name, out) => {
  it('gives identical templates and asset hashes, and no template names either path', () => {
    const [a, b] = clones.map((clone) => cloudAssembly(path.join(clone, out))) as [ReturnType<typeof cloudAssembly>, ReturnType<typeof cloudAssembly>];
    expect(Object.keys(a.templates).length).toBeGreaterThan(0);
    expect(a.assets.length).toBeGreaterThan(0);
    expect(b.assets).toEqual(a.assets);
    expect(Object.keys(b.templates).sort()).toEqual(Object.keys(a.templates).sort());
    for (const [file, text] of Object.entries(a.templates)) {
      expect(b.templates[file], file).toBe(text);
      for (const clone of clones) expect(text.includes(clone), `${file} names ${clone}`).toBe(false);
    }
  });

  it('writes neither path into a bundle or its source map', () => {
    for (const clone of clones) {
      const dir = path.join(clone, out);
      const walk = (d: string): string[] => readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(d, e.name)) : [path.join(d, e.name)]));
      const bundles = readdirSync(dir).filter((n) => n.startsWith('asset.')).flatMap((n) => walk(path.join(dir, n))).filter((f) => /\.(js|map)$/.test(f));
      expect(bundles.length).toBeGreaterThan(0);
      for (const file of bundles) {
        const text = readFileSync(file, 'utf8');
        for (const any of clones) expect(text.includes(any), `${path.relative(dir, file)} names ${any}`).toBe(false);
      }
    }
  });
});
