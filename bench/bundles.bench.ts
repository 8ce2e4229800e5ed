/**
 * Lambda bundles (`npx tsx bench/run.ts bundles`): each handler bundled exactly as
 * lib/PortsnareFunction.ts bundles it at synth (scripts/bundle-lambda.ts: esbuild, node22, cjs,
 * minified, ES module builds preferred, the AWS SDK bundled so a function runs the SDK version the
 * repository was tested with, zod's English messages only, the SDK's unused schemas dropped), then
 * - bundle_kb_<function>: the bundle's size;
 * - load_ms_<function>: the median of 5 cold require() of that bundle, each in a fresh node
 *   process (nothing resolved from node_modules: the bundle is all the function has).
 * Goal: load_ms ≤ 150 each on the benchmark machine.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildLambdaBundle, LAMBDA_BUNDLE_FILE } from '../scripts/bundle-lambda';
import type { BenchSuite, Figure } from './suite';

const ROOT = join(__dirname, '..');
const SAMPLES = 5;

function medianOf(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

/** The functions: every lambda/<name>/handler.ts. */
export function functionNames(): string[] {
  return readdirSync(join(ROOT, 'lambda'))
    .filter((name) => name !== 'shared' && existsSync(join(ROOT, 'lambda', name, 'handler.ts')))
    .sort();
}

/** Median milliseconds of a cold require() of `file` in fresh node processes with no node_modules to fall back on. */
export function coldRequireMs(file: string, samples = SAMPLES): number {
  const times: number[] = [];
  for (let i = 0; i < samples; i++) {
    const script = `const t=process.hrtime.bigint();require(${JSON.stringify(file)});process.stdout.write(String(Number(process.hrtime.bigint()-t)/1e6))`;
    const output = execFileSync(process.execPath, ['-e', script], {
      cwd: tmpdir(),
      env: { PATH: process.env.PATH ?? '', NODE_NO_WARNINGS: '1', AWS_REGION: 'eu-west-1' },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    times.push(Number(output));
  }
  return medianOf(times);
}

async function bundles(): Promise<Figure[]> {
  const figures: Figure[] = [];
  const out = mkdtempSync(join(tmpdir(), 'portsnare-bundle-'));
  try {
    for (const fn of functionNames()) {
      const dir = join(out, fn);
      await buildLambdaBundle(ROOT, fn, dir);
      const outfile = join(dir, LAMBDA_BUNDLE_FILE);
      figures.push({
        name: `bundle_kb_${fn}`,
        value: Math.round((statSync(outfile).size / 1024) * 10) / 10,
        unit: 'KiB',
        note: 'scripts/bundle-lambda.ts, as PortsnareFunction bundles it: node22, minified, cjs, the AWS SDK bundled, zod English only, unused SDK schemas dropped',
      });
      figures.push({
        name: `load_ms_${fn}`,
        value: Math.round(coldRequireMs(outfile) * 10) / 10,
        unit: 'ms',
        note: `median of ${SAMPLES} cold require() of the bundle in a fresh node process, nothing from node_modules`,
      });
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
  return figures;
}

export const suite: BenchSuite = {
  title: 'Lambda bundles: size and cold load time of each function, SDK bundled',
  run: bundles,
};
