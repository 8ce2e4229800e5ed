/**
 * Convergence of the cloud half on the wire (`npx tsx bench/run.ts convergence` once registered):
 * random schedules (test/wire/convergence-run.ts) through the real decide and enforce handlers,
 * DynamoDB on dynalite and the EC2/WAFv2 HTTP fakes with the real SDK clients, each checked
 * against the independent specification test/wire/spec.ts. Half the schedules without faults,
 * half with them (stale reads, throttling, lost answers, an IP set deleted out of band).
 * - convergence_runs, convergence_failures (goal 0): schedules run, schedules whose end state
 *   differs from the specification (or that flap);
 * - detect_to_enforced_p99_s (with / without faults): 99th percentile of simulated seconds from
 *   a scan's decision to its address in a WAF IP set, over every detection of every schedule.
 * CONVERGENCE_BENCH_RUNS (default 250, so 500 in all) schedules per variant; the seed is fixed for repeatability.
 */
import fc from 'fast-check';
import { startDynalite } from '../test/wire/dynalite';
import { isFault, opArb, otherRangeArb, runSchedule } from '../test/wire/convergence-run';
import type { BenchSuite, Figure } from './suite';

const RUNS = Number(process.env['CONVERGENCE_BENCH_RUNS'] ?? 250);
const SEED = 20261129;

function p99(values: number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(0.99 * sorted.length) - 1)]!;
}

export const suite: BenchSuite = {
  title: 'convergence on the wire (real handlers, dynalite, EC2/WAFv2 HTTP fakes, independent spec)',
  async run(): Promise<Figure[]> {
    const db = await startDynalite('convergence-bench');
    const figures: Figure[] = [];
    let totalRuns = 0;
    let totalFailures = 0;
    try {
      for (const faults of [false, true]) {
        const schedules = fc.sample(fc.tuple(fc.array(opArb(faults), { minLength: 4, maxLength: 30 }), otherRangeArb), { numRuns: RUNS, seed: SEED + Number(faults) });
        const lags: number[] = [];
        let failures = 0;
        const started = Date.now();
        for (const [i, [ops, otherRange]] of schedules.entries()) {
          const clean = faults ? ops : ops.filter((op) => !isFault(op));
          try {
            const result = await runSchedule(db, `${faults ? 'f' : 'c'}${i}`, clean, otherRange);
            lags.push(...result.lags);
            if (result.failures.length) {
              failures++;
              console.error(`schedule ${i} (faults ${faults}) diverged: ${result.failures.join('; ')}\n  ${JSON.stringify([clean, otherRange])}`);
            }
          } catch (error) {
            failures++;
            console.error(`schedule ${i} (faults ${faults}) threw: ${String(error)}\n  ${JSON.stringify([clean, otherRange])}`);
          }
        }
        totalRuns += schedules.length;
        totalFailures += failures;
        const label = faults ? 'with_faults' : 'without_faults';
        console.log(`${label}: ${schedules.length} schedules, ${failures} failures, ${lags.length} detections, ${((Date.now() - started) / 1000).toFixed(1)} s`);
        figures.push({
          name: `detect_to_enforced_p99_s_${label}`,
          value: p99(lags),
          unit: 's',
          note: `simulated clock; scan decided → address in a WAF IP set; ${lags.length} detections over ${schedules.length} schedules ${faults ? 'with' : 'without'} faults (redelivery after the 360 s visibility timeout)`,
        });
      }
    } finally {
      await db.stop();
    }
    figures.unshift(
      { name: 'convergence_runs', value: totalRuns, unit: 'schedules', note: 'random schedules, half with faults, each checked against test/wire/spec.ts' },
      { name: 'convergence_failures', value: totalFailures, unit: 'schedules', note: 'end state differs from the specification, or flapping (goal 0)' },
    );
    return figures;
  },
};

// `npx tsx bench/convergence.bench.ts`: run alone, print the figures
if (process.argv[1]?.endsWith('convergence.bench.ts')) {
  void suite.run().then((figures) => {
    for (const f of figures) console.log(`${f.name} = ${f.value} ${f.unit}`);
  });
}
