/**
 * `npm run bench [-- NAME…]`: runs the benchmark suites (all, or those named), merges their
 * figures into bench/results.json (flat name → number) and rewrites BENCHMARKS.md with the
 * machine and the date. Suites are modules in bench/ exporting `suite: BenchSuite`.
 */
import { writeFileSync, readFileSync, existsSync } from 'node:fs';
import { cpus, totalmem, platform, release } from 'node:os';
import { join } from 'node:path';
import type { BenchSuite, Figure } from './suite';

const SUITES: Record<string, () => Promise<{ suite: BenchSuite }>> = {
  pipeline: () => import('./pipeline.bench'),
  agent: () => import('./agent.bench'),
  enumeration: () => import('./enumeration.bench'),
  proof: () => import('./proof.bench'),
  scale: () => import('./scale.bench'),
  incremental: () => import('./incremental.bench'),
  store: () => import('./store.bench'),
  cloud: () => import('./cloud.bench'),
  convergence: () => import('./convergence.bench'),
  bundles: () => import('./bundles.bench'),
  org: () => import('./org.bench'),
};

const RESULTS = join(__dirname, 'results.json');
const FIGURES = join(__dirname, 'figures.json');
const MARKDOWN = join(__dirname, '..', 'BENCHMARKS.md');

function readJson<T>(path: string, fallback: T): T {
  return existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as T) : fallback;
}

async function main(): Promise<void> {
  const wanted = process.argv.slice(2);
  const unknown = wanted.filter((name) => !(name in SUITES));
  if (unknown.length) throw new Error(`unknown suite(s) ${unknown.join(', ')}; known: ${Object.keys(SUITES).join(', ')}`);
  const names = wanted.length ? wanted : Object.keys(SUITES);

  const results = readJson<Record<string, number>>(RESULTS, {});
  const figures = readJson<Record<string, Figure & { suite: string; date: string }>>(FIGURES, {});
  const date = new Date().toISOString();
  for (const name of names) {
    const loaded = await SUITES[name]!();
    console.log(`# ${name}: ${loaded.suite.title}`);
    const produced = await loaded.suite.run();
    for (const figure of produced) {
      results[figure.name] = figure.value;
      figures[figure.name] = { ...figure, suite: name, date };
      console.log(`${figure.name} = ${figure.value} ${figure.unit}  (${figure.note ?? ''})`);
    }
  }
  writeFileSync(RESULTS, JSON.stringify(results, null, 2) + '\n');
  writeFileSync(FIGURES, JSON.stringify(figures, null, 2) + '\n');
  writeFileSync(MARKDOWN, render(figures));
}

function render(figures: Record<string, Figure & { suite: string; date: string }>): string {
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  const lines = [
    '# Benchmarks',
    '',
    'Written by `npm run bench` (see bench/). Figures are from one run on the machine below;',
    'compare ratios measured in the same run, not absolute numbers across machines.',
    '',
    `- Machine: ${cpus().length} × ${cpu}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, ${platform()} ${release()}, Node ${process.version}`,
    `- Written: ${new Date().toISOString()}`,
    '',
    '| figure | value | unit | suite | measured | how |',
    '|---|---|---|---|---|---|',
  ];
  for (const [name, f] of Object.entries(figures).sort(([a], [b]) => a.localeCompare(b))) {
    lines.push(`| \`${name}\` | ${f.value} | ${f.unit} | ${f.suite} | ${f.date.slice(0, 16).replace('T', ' ')} | ${(f.note ?? '').replace(/\|/g, '/')} |`);
  }
  return lines.join('\n') + '\n';
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
