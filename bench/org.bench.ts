/**
 * An organization on the wire (`npx tsx bench/run.ts org`): one decision plane and N enforcement
 * planes, each with its own EC2/WAFv2 HTTP fakes, ledger, FIFO queue and reconcile schedule, the
 * real decide, expiry, reconcile and enforce handlers (test/wire/org-convergence-run.ts), every
 * plane checked against the independent specification test/wire/spec.ts at the end.
 * - org_planes_converged / org_planes_total: planes equal to the desired state at the end, over
 *   the named fault schedule (ORG_FAULT_SCHEDULE: 3 accounts × 2 Regions, us-east-1 unreachable
 *   for an hour with its fan-out lost, a plane joining after 30 minutes, throttling) and
 *   ORG_BENCH_RUNS random fault schedules;
 * - org_fanout_p99_s: simulated seconds from a decision to its address in a WAF IP set of the LAST
 *   plane, p99 over every decision of ORG_BENCH_RUNS random schedules with every plane healthy;
 * - org_catchup_s: simulated seconds from the Region's return until every plane of it equals the
 *   desired state, worst over the fault schedules with an outage (and the late plane's, from joining);
 * - org_catchup_missed: catch-ups that had not happened when the final reconcile began.
 * The seed is fixed for repeatability. scale_first_limit (bench/scale.bench.ts) is the scale model's.
 */
import fc from 'fast-check';
import { startDynalite } from '../test/wire/dynalite';
import { ORG_FAULT_SCHEDULE, type OrgRunResult, orgScheduleArb, runOrgSchedule } from '../test/wire/org-convergence-run';
import type { BenchSuite, Figure } from './suite';

const RUNS = Number(process.env['ORG_BENCH_RUNS'] ?? 20);
const SEED = 20261129;

function p99(values: number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(0.99 * sorted.length) - 1)]!;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length ? sorted[Math.floor((sorted.length - 1) / 2)]! : 0;
}

export const suite: BenchSuite = {
  title: 'an organization on the wire (decision plane + N enforcement planes, each with its own fakes; independent spec)',
  async run(): Promise<Figure[]> {
    const db = await startDynalite('org-bench');
    const started = Date.now();
    const faulty: OrgRunResult[] = [];
    const healthy: OrgRunResult[] = [];
    let threw = 0;
    const attempt = async (label: string, schedule: Parameters<typeof runOrgSchedule>[2], into: OrgRunResult[]) => {
      try {
        const result = await runOrgSchedule(db, label, schedule);
        into.push(result);
        if (result.failures.length) console.error(`${label} diverged: ${result.failures.join('; ')}\n  ${JSON.stringify(schedule)}`);
      } catch (error) {
        threw++;
        console.error(`${label} threw: ${String(error)}\n  ${JSON.stringify(schedule)}`);
      }
    };
    try {
      await attempt('named', ORG_FAULT_SCHEDULE, faulty);
      const named = faulty[0];
      for (const [i, schedule] of fc.sample(orgScheduleArb(true, 16), { numRuns: RUNS, seed: SEED }).entries()) await attempt(`f${i}`, schedule, faulty);
      for (const [i, schedule] of fc.sample(orgScheduleArb(false, 16), { numRuns: RUNS, seed: SEED + 1 }).entries()) await attempt(`h${i}`, schedule, healthy);
      const total = faulty.reduce((n, r) => n + r.planes, 0);
      const converged = faulty.reduce((n, r) => n + r.planesConverged, 0);
      const lags = healthy.flatMap((r) => r.fanOutLags);
      const measured = (values: Array<number | undefined>) => values.filter((s): s is number => s !== undefined);
      const downAll = measured(faulty.map((r) => r.catchUpDownS));
      const addedAll = measured(faulty.map((r) => r.catchUpAddedS));
      // Infinity: not caught up before the final reconcile (counted apart, not averaged in)
      const downCatchUps = downAll.filter(Number.isFinite);
      const addedCatchUps = addedAll.filter(Number.isFinite);
      const missed = downAll.length - downCatchUps.length + addedAll.length - addedCatchUps.length;
      const seconds = ((Date.now() - started) / 1000).toFixed(0);
      console.log(`${faulty.length} fault schedules, ${healthy.length} healthy, ${threw} threw, ${seconds} s`);
      return [
        {
          name: 'org_planes_converged',
          value: converged,
          unit: 'planes',
          note: `equal to test/wire/spec.ts after the faults stop and every plane reconciles: the named schedule (3 accounts × 2 Regions, us-east-1 unreachable 60 min with its fan-out lost, a plane joining at 30 min, throttling: ${named?.planesConverged ?? 0}/${named?.planes ?? 6}) + ${RUNS} random fault schedules of 4 or 6 planes; ${threw} schedules threw`,
        },
        { name: 'org_planes_total', value: total + threw * 6, unit: 'planes', note: 'planes in those schedules (a schedule that threw counts 6)' },
        {
          name: 'org_fanout_p99_s',
          value: p99(lags),
          unit: 's',
          note: `simulated clock; decision → address in a WAF IP set of the LAST plane, every plane healthy; ${lags.length} decisions over ${healthy.length} schedules of 4 or 6 planes; median ${median(lags)} s (a wake-up waits for its second to close, then every plane runs at once)`,
        },
        {
          name: 'org_catchup_s',
          value: downCatchUps.length ? Math.max(...downCatchUps) : 0,
          unit: 's',
          note: `simulated clock; the unreachable Region's return → every plane of it equal to the desired state again, worst of ${downCatchUps.length} outages (named schedule ${named?.catchUpDownS ?? '-'} s; median ${median(downCatchUps)} s); a plane joining late caught up in at most ${addedCatchUps.length ? Math.max(...addedCatchUps) : '-'} s (${addedCatchUps.length} joins; from the Region's return when it joined during the outage); its fan-out was lost, so the next run — a 30 s retry or the 5-minute reconcile — reads the table`,
        },
        {
          name: 'org_catchup_missed',
          value: missed,
          unit: 'catch-ups',
          note: `outages and late joins (of ${downAll.length + addedAll.length}) after which a plane was still not equal to the desired state when the final reconcile began (goal 0; see test/wire/org-nacl-claim.test.ts)`,
        },
      ];
    } finally {
      await db.stop();
    }
  },
};

// `npx tsx bench/org.bench.ts`: run alone, print the figures
if (process.argv[1]?.endsWith('org.bench.ts')) {
  void suite.run().then((figures) => {
    for (const f of figures) console.log(`${f.name} = ${f.value} ${f.unit}`);
  });
}
