/**
 * Convergence of the cloud half on the wire (`npx tsx bench/run.ts convergence`): random
 * schedules (test/wire/convergence-run.ts) through the real decide, enforce, expiry, reconcile
 * and cleanup handlers, DynamoDB on dynalite and the EC2/WAFv2 HTTP fakes with the real SDK
 * clients, each checked against the independent specification test/wire/spec.ts. Every schedule
 * has the scheduler's jitter (ticks ±30 s, deliveries up to 30 s late), decisions in the middle of
 * enforce runs, operator entries and a second stack on the ACL created, updated and deleted at any
 * point; half of them also the faults (stale ACL reads up to 10, lagging reads, the index up to
 * 2 s behind, throttling, lost answers, hung calls, an IP set deleted out of band).
 * - convergence_runs, convergence_failures (goal 0): schedules run, schedules whose end state
 *   differs from the specification (or that flap, or left entries of a deleted stack);
 * - detect_to_enforced_p99_s (with / without faults): 99th percentile of simulated seconds from
 *   a scan's decision to its address in a WAF IP set, over every detection of every schedule;
 * - lift_after_ttl_max_s: the largest simulated time from a block's expiry to its removal from
 *   every ACL and IP set, over all schedules (goal ≤ 60).
 * CONVERGENCE_BENCH_RUNS (default 500, so 1,000 in all) schedules per variant; the seed is fixed for repeatability.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { EC2Client } from '@aws-sdk/client-ec2';
import { App, Duration, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import fc from 'fast-check';
import { Monitoring } from '../lib/Monitoring';
import type { BlockRecord } from '../core/policy';
import { DeadlineHttpHandler } from '../aws/clients/timeouts';
import { enforce } from '../lambda/shared/enforcer';
import { NaclAdapter } from '../aws/nacl-adapter';
import { BlockRepository, PlacementLedger } from '../aws/repository';
import { UpdatePacer, WafAdapter } from '../aws/waf-adapter';
import { SimClock } from '../test/fakes/clock';
import { FakeEc2 } from '../test/fakes/ec2';
import { RecordingObservability } from '../test/fakes/observability';
import { ACL_A, ACL_B, SET_V4, testSettings } from '../test/fakes/world';
import { type LocalTable, startDynalite } from '../test/wire/dynalite';
import { Ec2Server } from '../test/wire/ec2-server';
import { WafServer } from '../test/wire/wafv2-server';
import { isFault, jitterSeedArb, opArb, otherRangeArb, runSchedule } from '../test/wire/convergence-run';
import type { BenchSuite, Figure } from './suite';

const RUNS = Number(process.env['CONVERGENCE_BENCH_RUNS'] ?? 500);
/** interleavings of the NACL ownership model (test/lambda/nacl-model.ts); the goal is ≥ 100,000 */
const MODEL_RUNS = Number(process.env['NACL_MODEL_BENCH_RUNS'] ?? 100_000);
/** interleavings per child process (each leaks ~0.4 MB of mock stubs: bench/nacl-model-chunk.ts) */
const MODEL_CHUNK = 5_000;

/**
 * The failure classes the issue names, written here (not read from core/metrics.ts): each must
 * have an alarm in the synthesized template.
 */
const FAILURE_CLASSES = ['EnforcementFailures', 'WafSetMissing', 'WafCapacityFull', 'NaclQuotaFull', 'NaclShadowed', 'NaclForeignInRange'];

function unalarmedFailureClasses(): string[] {
  const stack = new Stack(new App(), 'Alarms');
  new Monitoring(stack, 'Monitoring', { deadLetterQueues: [], enforcementLagThreshold: Duration.minutes(2) });
  const alarmed = new Set(Object.values(Template.fromStack(stack).findResources('AWS::CloudWatch::Alarm')).map((a) => (a as { Properties: { MetricName?: string } }).Properties.MetricName));
  return FAILURE_CLASSES.filter((name) => !alarmed.has(name));
}

/**
 * Real time (the call timeouts are real timers): one enforce run with a block to add, the first
 * DescribeNetworkAcls and its retry hanging, with the production call budget (clients/timeouts.ts),
 * against the same run without the hang. Returns the added seconds until the address is in WAF.
 */
async function hungCallAddedLag(db: LocalTable): Promise<number> {
  const once = async (hang: boolean, n: number): Promise<number> => {
    const clock = new SimClock();
    const obs = new RecordingObservability();
    const ec2 = new Ec2Server(new FakeEc2(20, () => 0.5));
    for (const acl of [ACL_A, ACL_B]) ec2.ec2.addAcl(acl, { ipv6: true });
    const waf = new WafServer(clock, () => 0.5);
    waf.waf.addSet(SET_V4);
    await ec2.start();
    await waf.start();
    const ec2Client = new EC2Client({ region: 'eu-west-1', endpoint: ec2.endpoint, credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'x' }, maxAttempts: 1, requestHandler: new DeadlineHttpHandler() });
    const wafClient = waf.client(1);
    try {
      const table = await db.addTable(`hung-${n}`);
      const settings = testSettings({ nacl: { aclIds: [ACL_A, ACL_B], ruleRange: [10, 60], quotaPerDirection: 20 }, waf: { sets: [SET_V4] } });
      const repo = new BlockRepository(db.doc, table);
      const now = clock.now();
      const record: BlockRecord = { target: '203.0.113.7', family: 'ipv4', reason: 'manual', firstSeen: now, lastSeen: now, hitCount: 1, offences: 1, blockedAt: now, expiresAt: now + 3600_000, active: true, eventIds: [], sensors: [] };
      await repo.save(record, undefined, now);
      if (hang) ec2.hangNext('DescribeNetworkAcls', 2);
      const started = Date.now();
      await enforce({ repo, nacl: new NaclAdapter(ec2Client, clock, obs, () => 0.5, new PlacementLedger(db.doc, table), [10, 60]), waf: new WafAdapter({ REGIONAL: wafClient }, clock, obs, new UpdatePacer(), () => 0.5), settings, obs, clock }, 'enforce');
      if (!waf.waf.addresses(SET_V4).includes('203.0.113.7/32')) throw new Error('the block never reached WAF');
      return (Date.now() - started) / 1000;
    } finally {
      ec2Client.destroy();
      wafClient.destroy();
      await ec2.stop();
      await waf.stop();
    }
  };
  const base = await once(false, 1);
  return Math.max(0, (await once(true, 2)) - base);
}
const SEED = 20261129;

function p99(values: number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(0.99 * sorted.length) - 1)]!;
}

/** The model's interleavings in chunks, each in a process of its own (bench/nacl-model-chunk.ts says why). */
async function runModel(): Promise<{ interleavings: number; violations: number; orphans: number }> {
  const started = Date.now();
  const total = { interleavings: 0, violations: 0, orphans: 0 };
  for (let chunk = 0; total.interleavings < MODEL_RUNS; chunk++) {
    const count = Math.min(MODEL_CHUNK, MODEL_RUNS - total.interleavings);
    const out = await new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, ['--import', 'tsx', join(__dirname, 'nacl-model-chunk.ts'), String(SEED + 7 + chunk), String(count)], { encoding: 'utf8', maxBuffer: 1 << 26 }, (error, stdout, stderr) =>
        resolve({ status: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });
    const line = out.stdout.trim().split('\n').pop() ?? '';
    if (out.status !== 0 || !line.startsWith('{')) throw new Error(`nacl model chunk ${chunk} failed (exit ${out.status}): ${out.stderr.slice(-2000)}`);
    const result = JSON.parse(line) as { interleavings: number; violations: number; orphans: number; examples: string[] };
    total.interleavings += result.interleavings;
    total.violations += result.violations;
    total.orphans += result.orphans;
    for (const example of result.examples) console.error(`nacl model chunk ${chunk} violated: ${example}`);
  }
  console.log(`nacl model: ${total.interleavings} interleavings, ${total.violations} violations, ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return total;
}

export const suite: BenchSuite = {
  title: 'convergence on the wire (real handlers, dynalite, EC2/WAFv2 HTTP fakes, independent spec)',
  async run(): Promise<Figure[]> {
    // the ownership model runs alongside the wire schedules (its figures are counts, not times)
    const model = runModel();
    model.catch(() => undefined); // awaited below; a failure is reported there
    const db = await startDynalite('convergence-bench');
    const figures: Figure[] = [];
    let totalRuns = 0;
    let totalFailures = 0;
    let wireOrphans = 0;
    const liftLags: number[] = [];
    let liftMaxWithoutFaults = 0;
    try {
      for (const faults of [false, true]) {
        const schedules = fc.sample(fc.tuple(fc.array(opArb(faults), { minLength: 4, maxLength: 30 }), otherRangeArb, jitterSeedArb), { numRuns: RUNS, seed: SEED + Number(faults) });
        const lags: number[] = [];
        let failures = 0;
        const started = Date.now();
        for (const [i, [ops, otherRange, jitterSeed]] of schedules.entries()) {
          const clean = faults ? ops : ops.filter((op) => !isFault(op));
          try {
            const result = await runSchedule(db, `${faults ? 'f' : 'c'}${i}`, clean, otherRange, jitterSeed);
            lags.push(...result.lags);
            liftLags.push(...result.liftLags);
            if (!faults) liftMaxWithoutFaults = Math.max(liftMaxWithoutFaults, ...result.liftLags);
            wireOrphans += result.orphans;
            if (result.failures.length) {
              failures++;
              console.error(`schedule ${i} (faults ${faults}) diverged: ${result.failures.join('; ')}\n  ${JSON.stringify([clean, otherRange, jitterSeed])}`);
            }
          } catch (error) {
            failures++;
            console.error(`schedule ${i} (faults ${faults}) threw: ${String(error)}\n  ${JSON.stringify([clean, otherRange, jitterSeed])}`);
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
          note: `simulated clock; scan decided → address in a WAF IP set; ${lags.length} detections over ${schedules.length} schedules ${faults ? 'with' : 'without'} faults (redelivery after the 360 s visibility timeout), every delivery up to 30 s late (the jitter)`,
        });
      }
    } finally {
      await db.stop();
    }
    // the ownership model: interleavings, violations, orphans left by a deleted stack
    const { interleavings, violations: modelViolations, orphans } = await model;
    const unalarmed = unalarmedFailureClasses();
    const hungLag = await (async () => {
      const db = await startDynalite('hung-call-bench');
      try {
        return await hungCallAddedLag(db);
      } finally {
        await db.stop();
      }
    })();
    figures.push(
      { name: 'nacl_model_interleavings', value: interleavings, unit: 'interleavings', note: 'test/lambda/nacl-model.ts: two stacks on one ACL, stale/lagging reads up to 10, lost answers, throttling, operator entries, Deletes at any point' },
      { name: 'nacl_model_violations', value: modelViolations, unit: 'interleavings', note: 'a foreign entry touched, an own entry forgotten, or the end state not the desired one (goal 0)' },
      { name: 'cleanup_orphans', value: orphans + wireOrphans, unit: 'entries', note: `entries of a deleted stack left in the ACL (or of an updated one outside its range), summed over the model interleavings (${orphans}) and the wire schedules (${wireOrphans}) (goal 0)` },
      {
        name: 'lift_after_ttl_max_s',
        value: Number(Math.max(0, ...liftLags).toFixed(1)),
        unit: 's',
        note: `simulated clock; a block's expiry → gone from every ACL and IP set, the largest over ${liftLags.length} expiries of all ${totalRuns} schedules with the scheduler's jitter (expiry/reconcile ticks ±30 s, deliveries up to 30 s late); without the other faults ${liftMaxWithoutFaults.toFixed(1)} s; p99 ${p99(liftLags).toFixed(1)} s (goal ≤ 60)`,
      },
      { name: 'unalarmed_failure_classes', value: unalarmed.length, unit: 'classes', note: `failure classes without an alarm in the synthesized template${unalarmed.length ? `: ${unalarmed.join(', ')}` : ''} (goal 0)` },
      { name: 'hung_call_added_lag_s', value: Number(hungLag.toFixed(2)), unit: 's', note: 'real time: a new block reaching WAF with the first ACL read and its retry hanging, minus without (production call budget 8 s per attempt; goal ≤ 60)' },
    );
    figures.unshift(
      {
        name: 'convergence_runs',
        value: totalRuns,
        unit: 'schedules',
        note: 'random schedules with jitter, mid-run decisions, operator entries, a second stack (same/overlapping/disjoint range) created/updated/deleted at any point; half also with stale (up to 10) and lagging ACL reads, index lag ≤ 2 s, throttling, lost answers, hung calls, a deleted IP set; each checked against test/wire/spec.ts',
      },
      { name: 'convergence_failures', value: totalFailures, unit: 'schedules', note: 'end state differs from the specification, flapping, or entries left by a deleted stack (goal 0)' },
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
