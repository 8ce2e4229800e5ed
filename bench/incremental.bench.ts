/**
 * Incremental enforcement on the simulated clock (`npx tsx bench/run.ts incremental`, issue 20):
 * 100,000 active blocks in the decision table (dynalite, in its own process:
 * bench/incremental-dynalite.ts), the REAL decide, expiry and enforce handlers, each plane's
 * EC2 and WAFv2 over HTTP fakes (test/wire/ec2-server.ts, test/wire/wafv2-server.ts) with the
 * real SDK clients, its own placement ledger table, its own FIFO queue (test/fakes/sqs.ts,
 * content-based deduplication as an EventBridge rule target needs).
 *
 * The workload is the documented scenario's (docs/scale.md): 200,000 decisions a day (half new
 * blocks, half refreshes) and 100,000 lifts a day (the seeded records expire uniformly over a day;
 * expiry runs every second, as its timers make it), so ≈ 2.3 decisions and 1.2 lifts a second.
 * Decide and expiry put their wake-up on the decision FIFO queue (one per WAKE_WINDOW_MS window),
 * which delays it by one window (lib/org/DecisionPlane.ts WAKE_UP_DELAY); the fan-out path
 * queue → pipe → decision bus → plane bus → plane queue → enforce has the hop delays of HOPS_MS
 * (stated inputs, docs/scale.md); the enforce handler waits for the window's `notBefore` if it
 * is not over yet (paid, so counted in the run). Every HTTP call of a plane (DynamoDB, EC2, WAF) takes CALL_MS of simulated
 * time (the model's `callMs`); the UpdateIPSet pacer and the SDK's retries sleep on the same
 * clock. A plane runs one enforce at a time (its FIFO group); planes run in parallel: each plane's
 * run starts at its own delivery time.
 *
 * Figures:
 * - enforce_run_p99_s: 99th percentile of incremental runs (from the invocation to its return,
 *   the handler's wait for `notBefore` included), every plane;
 * - detect_to_enforced_p99_s: 99th percentile, over new blocks, of the time from the decision to
 *   its address being in every WAF scope of the LAST plane to get it;
 * - reconcile_one_plane_s: a full run (mode reconcile) of a warm two-scope plane at 100,000
 *   blocks: its simulated time plus the process CPU of the run × 1,769 / ENFORCE_MEMORY_MB (the
 *   enforce function's 256 MB is 256/1,769 of a vCPU: https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html).
 *
 * INCREMENTAL_BENCH_PLANES (default 4: half of them us-east-1 planes with a CLOUDFRONT scope as
 * well) and INCREMENTAL_BENCH_MINUTES (default 4) of simulated traffic, measured from
 * INCREMENTAL_BENCH_SETTLE_S (default 60) after its start. The organization has 200
 * planes; this bench runs fewer real ones (every plane's first full run reads 100,000 records) and
 * takes the last of them: planes do not interact but through the table, see docs/scale.md.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EC2Client } from '@aws-sdk/client-ec2';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { WAFV2Client } from '@aws-sdk/client-wafv2';
import { BatchWriteCommand, DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { SQSEvent } from 'aws-lambda';
import { interpretEvent } from '../core/intake';
import { type BlockRecord, decide as decidePolicy } from '../core/policy';
import type { PipelineSettings, WafSetRef } from '../core/settings';
import { ENFORCE_GROUP_ID } from '../core/settings';
import { ACTIVE_CHANGE_KEY, ACTIVE_KEY, ACTIVE_KEY_ATTRIBUTE, BACKFILL_KEY, BACKFILL_MARKER_CHANGE_AT, BACKFILL_MARKER_CHANGE_KEY, CHANGE_AT_ATTRIBUTE, CHANGE_KEY_ATTRIBUTE, VERSION_ATTRIBUTE, changeSortKey, stateKey } from '../core/table';
import { BurstGate } from '../lambda/decide/burst';
import { createHandler as createDecide } from '../lambda/decide/handler';
import { createHandler as createEnforce } from '../lambda/enforce/handler';
import type { EnforceSummary } from '../lambda/shared/enforcer';
import { createHandler as createExpiry } from '../lambda/expiry/handler';
import { NaclAdapter } from '../aws/nacl-adapter';
import { EnforceQueue, parseEnforceMessage } from '../lambda/shared/queue';
import { BlockRepository, changeStampOf, PlacementLedger } from '../aws/repository';
import { UpdatePacer, WafAdapter } from '../aws/waf-adapter';
import { SimClock } from '../test/fakes/clock';
import { FakeEc2 } from '../test/fakes/ec2';
import { scanDetectedEvent } from '../test/fakes/events';
import { RecordingObservability } from '../test/fakes/observability';
import { FakeSqs } from '../test/fakes/sqs';
import { testSettings } from '../test/fakes/world';
import { Ec2Server } from '../test/wire/ec2-server';
import { WafServer } from '../test/wire/wafv2-server';
import { ENFORCE_MEMORY_MB } from '../lib/EnforcementCore';
import { WAKE_UP_DELAY } from '../lib/org/DecisionPlane';
import type { BenchSuite, Figure } from './suite';

const ACTIVE = Number(process.env['INCREMENTAL_BENCH_ACTIVE'] ?? 100_000);
const PLANES = Number(process.env['INCREMENTAL_BENCH_PLANES'] ?? 4);
const MINUTES = Number(process.env['INCREMENTAL_BENCH_MINUTES'] ?? 4);
/**
 * The first seconds of traffic are not in the figures: the planes' first full runs are made one
 * after another before the traffic (≈ 60 s of simulated time), and the expiries of that time all
 * fall due at its start, so the first incremental runs write every set (a cold start's backlog,
 * reported apart in the notes). The figures are those of the steady state that follows.
 */
const SETTLE_SECONDS = Number(process.env['INCREMENTAL_BENCH_SETTLE_S'] ?? 60);
/** one HTTP call of a plane (DynamoDB, EC2, WAF), simulated ms: the model's `callMs` (docs/scale.md) */
export const CALL_MS = 10;
/**
 * The wake-up path's hops after decide's SendMessage, simulated ms (stated inputs, docs/scale.md):
 * the pipe's poll of the decision queue and its PutEvents; the fan-out rule's cross-account
 * delivery to the plane bus; the plane rule's SendMessage to the plane's FIFO queue; the event
 * source mapping's poll and the invocation of a warm enforce.
 */
export const HOPS_MS = { queueToPipe: 500, pipeToDecisionBus: 100, decisionBusToPlaneBus: 500, planeBusToPlaneQueue: 200, planeQueueToEnforce: 300 } as const;
const HOPS_TOTAL_MS = Object.values(HOPS_MS).reduce((a, b) => a + b, 0);
/** the decision plane's wake-up queue delays every message by one window (lib/org/DecisionPlane.ts) */
const WAKE_UP_DELAY_MS = WAKE_UP_DELAY.toMilliseconds();
const DECISIONS_PER_SECOND = 200_000 / 86_400;
const START = Date.parse('2026-12-01T10:00:00Z');
const CREDENTIALS = { accessKeyId: 'AKIDTEST', secretAccessKey: 'test-secret' };
const RANGE: [number, number] = [10, 60];
const GUARD = { blockableSpecialCidrs: ['100.64.0.0/10'] };

/** Every HTTP call takes CALL_MS of simulated time. */
class SimulatedLatency extends NodeHttpHandler {
  constructor(private readonly clock: SimClock) {
    super();
  }

  override async handle(...args: Parameters<NodeHttpHandler['handle']>): ReturnType<NodeHttpHandler['handle']> {
    this.clock.advance(CALL_MS);
    return super.handle(...args);
  }
}

/** IPv4 addresses outside every special range but 100.64.0.0/10, which the settings make blockable. */
function address(i: number): string {
  return `100.${64 + Math.floor(i / 65536)}.${Math.floor(i / 256) % 256}.${i % 256}`;
}

function uuid(i: number): string {
  const hex = ((i * 2654435761) >>> 0).toString(16).padStart(8, '0');
  return `${hex}-0000-4000-8000-${i.toString(16).padStart(12, '0')}`;
}

function scan(i: number, attacker: string, at: number): Record<string, unknown> {
  return scanDetectedEvent({
    id: uuid(i),
    attacker,
    at,
    sensorId: `i-0123456789abcde${(i % 10).toString(16).padStart(2, '0')}`,
    probes: [
      { protocol: 'tcp', port: 23, kind: 'connect' },
      { protocol: 'tcp', port: 3389, kind: 'syn' },
      { protocol: 'tcp', port: 6379, kind: 'syn' },
    ],
    probeCount: 3,
  });
}

function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

async function startDb(tables: readonly string[]): Promise<{ endpoint: string; child: ChildProcess }> {
  const child = spawn(process.execPath, [...process.execArgv, join(__dirname, 'incremental-dynalite.ts'), ...tables], { stdio: ['pipe', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`dynalite child exited with ${code}`)));
  });
  return { endpoint: (JSON.parse(line) as { endpoint: string }).endpoint, child };
}

/** The 100,000 seeded records as BlockRepository.save writes them, through BatchWriteItem. */
async function seed(doc: DynamoDBDocumentClient, table: string, settings: PipelineSettings): Promise<void> {
  const sample = interpretEvent(scan(0, address(0), START), START);
  if (sample.kind !== 'sightings' || !sample.sightings[0]) throw new Error('incremental bench: sample event not accepted');
  const base = sample.sightings[0];
  const items: Record<string, unknown>[] = [];
  for (let i = 0; i < ACTIVE; i++) {
    const seen = START - 86_400_000 + Math.floor((i * 86_400_000) / ACTIVE);
    const decision = decidePolicy(undefined, { ...base, target: address(i), family: 'ipv4', eventId: uuid(i), lastSeen: seen, firstSeen: seen }, seen, settings.policy);
    if (decision.action === 'ignore') throw new Error(`incremental bench: seed ${i} ignored: ${decision.why}`);
    // expiries spread uniformly over the next day: ≈ 1.16 lifts a second, the scenario's
    const record: BlockRecord = { ...decision.record, expiresAt: START + 1 + (((i * 7919) % ACTIVE) * 86_400_000) / ACTIVE };
    const item: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(record)) if (v !== undefined) item[k] = v;
    items.push({
      ...item,
      ...stateKey(record.target),
      [VERSION_ATTRIBUTE]: 1,
      [ACTIVE_KEY_ATTRIBUTE]: ACTIVE_KEY,
      [CHANGE_KEY_ATTRIBUTE]: ACTIVE_CHANGE_KEY,
      [CHANGE_AT_ATTRIBUTE]: changeSortKey(changeStampOf(record, seen), record.target),
    });
  }
  items.push({ ...BACKFILL_KEY, [CHANGE_KEY_ATTRIBUTE]: BACKFILL_MARKER_CHANGE_KEY, [CHANGE_AT_ATTRIBUTE]: BACKFILL_MARKER_CHANGE_AT });
  const batches: Record<string, unknown>[][] = [];
  for (let i = 0; i < items.length; i += 25) batches.push(items.slice(i, i + 25));
  let next = 0;
  const worker = async () => {
    for (let b = next++; b < batches.length; b = next++) {
      let pending: Record<string, unknown>[] = (batches[b] as Record<string, unknown>[]).map((Item) => ({ PutRequest: { Item } }));
      while (pending.length) {
        const out = await doc.send(new BatchWriteCommand({ RequestItems: { [table]: pending } }));
        pending = (out.UnprocessedItems?.[table] ?? []) as Record<string, unknown>[];
      }
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
}

interface Plane {
  readonly index: number;
  readonly scopes: readonly WafSetRef['scope'][];
  readonly sets: readonly WafSetRef[];
  readonly sqs: FakeSqs;
  readonly waf: WafServer;
  readonly enforce: (event: SQSEvent) => Promise<EnforceSummary>;
  busyUntil: number;
  /** new block → decision time, until it is in every WAF scope of this plane */
  readonly waiting: Map<string, number>;
  /** new block → ms from its decision to being in every WAF scope of this plane */
  readonly held: Map<string, number>;
}

function setsOf(plane: number, scope: WafSetRef['scope']): WafSetRef[] {
  const ref = (family: 'ipv4' | 'ipv6', i: number): WafSetRef => ({
    scope,
    family,
    name: `p${plane}-${scope === 'REGIONAL' ? 'r' : 'c'}-${family === 'ipv4' ? 'v4' : 'v6'}-${i}`,
    id: `${String(plane).padStart(3, '0')}${scope === 'REGIONAL' ? '1' : '2'}${family === 'ipv4' ? '4' : '6'}${i.toString().padStart(3, '0')}-0000-4000-8000-000000000000`,
  });
  return [...Array.from({ length: 10 }, (_, i) => ref('ipv4', i)), ref('ipv6', 0)];
}

export const suite: BenchSuite = {
  title: `incremental enforcement on the simulated clock: 100,000 active blocks, ${PLANES} real planes, ${MINUTES} min of the scenario's traffic`,
  async run(): Promise<Figure[]> {
    const wall0 = Date.now();
    const decisionTable = 'decision';
    const ledgerTables = Array.from({ length: PLANES }, (_, i) => `ledger-${i}`);
    const { endpoint, child } = await startDb([decisionTable, ...ledgerTables]);
    const ec2 = new Ec2Server(new FakeEc2(20, () => 0.5));
    const clock = new SimClock(START);
    // one WAF endpoint per plane: each plane is its own account and Region (the UpdateIPSet rate is per account and Region)
    const wafs: WafServer[] = [];
    await ec2.start();
    try {
      const plain = new DynamoDBClient({ region: 'eu-west-1', endpoint, credentials: CREDENTIALS, maxAttempts: 3 });
      const doc = DynamoDBDocumentClient.from(plain, { marshallOptions: { removeUndefinedValues: true } });
      const decisionSettings = testSettings({ guard: GUARD, nacl: { aclIds: [], ruleRange: RANGE, quotaPerDirection: 20 }, waf: { sets: [] }, policy: { burstLimitPerMinute: 100_000 } });
      const seedStart = Date.now();
      await seed(doc, decisionTable, decisionSettings);
      const seedSeconds = (Date.now() - seedStart) / 1000;

      const obs = new RecordingObservability();
      const repo = new BlockRepository(doc, decisionTable);
      const decisionSqs = new FakeSqs(clock, 60);
      const decisionQueue = new EnforceQueue(decisionSqs.client, decisionSqs.queueUrl);
      const decide = createDecide({ repo, queue: decisionQueue, burst: new BurstGate(doc, decisionTable, clock), settings: decisionSettings, obs, clock });
      const expiry = createExpiry({ repo, queue: decisionQueue, obs, clock });

      const planes: Plane[] = [];
      for (let index = 0; index < PLANES; index++) {
        const scopes: WafSetRef['scope'][] = index % 2 === 1 ? ['REGIONAL', 'CLOUDFRONT'] : ['REGIONAL'];
        const sets = scopes.flatMap((scope) => setsOf(index, scope));
        const aclIds = [0, 1].map((a) => `acl-0b1c2d3e4f5a${String(index).padStart(3, '0')}${a}`);
        for (const aclId of aclIds) ec2.ec2.addAcl(aclId, { ipv6: true });
        const waf = new WafServer(clock, () => 0.5);
        await waf.start();
        wafs.push(waf);
        for (const ref of sets) waf.waf.addSet(ref);
        const common = { region: 'us-east-1', credentials: CREDENTIALS, requestHandler: new SimulatedLatency(clock), maxAttempts: 3 };
        const wafClient = new WAFV2Client({ ...common, endpoint: waf.endpoint });
        const ddb = DynamoDBDocumentClient.from(new DynamoDBClient({ ...common, endpoint }), { marshallOptions: { removeUndefinedValues: true } });
        const settings = testSettings({ guard: GUARD, nacl: { aclIds, ruleRange: RANGE, quotaPerDirection: 20 }, waf: { sets } });
        const planeObs = new RecordingObservability();
        const sqs = new FakeSqs(clock, undefined, undefined, { contentBasedDeduplication: true });
        const enforce = createEnforce({
          repo: new BlockRepository(ddb, decisionTable),
          nacl: new NaclAdapter(new EC2Client({ ...common, endpoint: ec2.endpoint }), clock, planeObs, () => 0.5, new PlacementLedger(ddb, ledgerTables[index] as string), RANGE),
          waf: new WafAdapter(Object.fromEntries(scopes.map((s) => [s, wafClient])), clock, planeObs, new UpdatePacer(), () => 0.5),
          settings,
          obs: planeObs,
          clock,
          sqs: sqs.client,
          queueUrl: sqs.queueUrl,
        }) as unknown as (event: SQSEvent) => Promise<EnforceSummary>;
        planes.push({ index, scopes, sets, sqs, waf, enforce, busyUntil: START, waiting: new Map(), held: new Map() });
      }

      const cpuScale = 1769 / ENFORCE_MEMORY_MB;
      const failedRuns: string[] = [];
      const runPlane = async (plane: Plane, at: number): Promise<{ summary: EnforceSummary; seconds: number; cpuSeconds: number; kinds: string[]; sleptSeconds: number; waitedSeconds: number; wafCalls: number; ec2Calls: number } | undefined> => {
        clock.set(Math.max(at, plane.busyUntil));
        const event = plane.sqs.receive(10);
        if (!event) return undefined;
        const kinds = event.Records.map((r) => parseEnforceMessage(r.body)?.kind ?? 'unknown');
        const notBefore = Math.max(0, ...event.Records.map((r) => parseEnforceMessage(r.body)?.notBefore ?? 0));
        // the handler sleeps until notBefore (at most 5 s) when the wake-up arrives before it: paid, counted
        const begin = clock.now();
        const waited = Math.max(0, Math.min(notBefore, begin + 5_000) - begin);
        const cpu0 = process.cpuUsage();
        const slept0 = clock.slept;
        const wafCalls0 = plane.waf.waf.calls.UpdateIPSet + plane.waf.waf.calls.GetIPSet;
        const ec2Calls0 = Object.values(ec2.ec2.calls).reduce((a, b) => a + b, 0);
        let summary: EnforceSummary;
        try {
          summary = await plane.enforce(event);
        } catch (error) {
          // the handler asked SQS to deliver the batch again in 30 s (retrySoon): it stays in the queue
          plane.busyUntil = clock.now();
          failedRuns.push(`plane ${plane.index}: ${String(error).slice(0, 160)}`);
          return undefined;
        }
        const cpu = process.cpuUsage(cpu0);
        plane.sqs.complete(event);
        plane.busyUntil = clock.now();
        return {
          summary,
          seconds: (clock.now() - begin) / 1000,
          cpuSeconds: (cpu.user + cpu.system) / 1e6,
          kinds,
          sleptSeconds: (clock.slept - slept0) / 1000,
          waitedSeconds: waited / 1000,
          wafCalls: plane.waf.waf.calls.UpdateIPSet + plane.waf.waf.calls.GetIPSet - wafCalls0,
          ec2Calls: Object.values(ec2.ec2.calls).reduce((a, b) => a + b, 0) - ec2Calls0,
        };
      };
      const send = async (plane: Plane, body: string, at: number) => {
        clock.set(at);
        await plane.sqs.client.send(new SendMessageCommand({ QueueUrl: plane.sqs.queueUrl, MessageBody: body, MessageGroupId: ENFORCE_GROUP_ID }));
      };

      // warm-up: every plane's first full run (a cold container), then its first steady reconcile
      const warm: number[] = [];
      for (const plane of planes) {
        await send(plane, JSON.stringify({ kind: 'reconcile' }), START);
        let run: Awaited<ReturnType<typeof runPlane>>;
        for (let attempt = 0; attempt < 5 && !run; attempt++) run = await runPlane(plane, plane.busyUntil + (attempt ? 30_000 : 0));
        if (!run || run.summary.run !== 'full' || run.summary.failures.length > 0) throw new Error(`incremental bench: plane ${plane.index}'s first full run failed: ${JSON.stringify(run?.summary)} ${failedRuns.join('; ')}`);
        warm.push(run.seconds);
      }
      const first = planes.find((p) => p.scopes.length === 2) ?? (planes[0] as Plane);
      await send(first, JSON.stringify({ kind: 'reconcile', at: 'steady' }), first.busyUntil);
      const steady = await runPlane(first, first.busyUntil);
      if (!steady || steady.summary.run !== 'full') throw new Error('incremental bench: the steady reconcile did not run');
      const reconcileSeconds = steady.seconds + steady.cpuSeconds * cpuScale;

      // traffic
      const t0 = Math.max(...planes.map((p) => p.busyUntil)) + 10_000;
      for (const plane of planes) plane.busyUntil = t0;
      const random = seeded(20);
      const decisions: Array<{ at: number; i: number; attacker: string; fresh: boolean }> = [];
      let nextNew = ACTIVE;
      for (let t = t0, i = 0; t < t0 + MINUTES * 60_000; i++) {
        t += Math.max(1, Math.round((-Math.log(1 - random()) / DECISIONS_PER_SECOND) * 1000));
        const fresh = random() < 0.5;
        decisions.push({ at: t, i: ACTIVE + i, attacker: fresh ? address(nextNew++) : address(Math.floor(random() * ACTIVE)), fresh });
      }
      const end = t0 + MINUTES * 60_000;
      const deliveries: Array<{ at: number; body: string }> = [];
      const incrementalRuns: number[] = [];
      const incrementalRunsAll: number[] = [];
      const incrementalCpu: number[] = [];
      const incrementalSlept: number[] = [];
      const incrementalWaited: number[] = [];
      const incrementalWaf: number[] = [];
      const incrementalEc2: number[] = [];
      const fullRuns: string[] = [];
      const newBlocks = new Map<string, number>();
      let nextExpiry = t0;
      let d = 0;
      for (let t = t0; t <= end + 30_000; t += 100) {
        for (; d < decisions.length && (decisions[d] as (typeof decisions)[number]).at <= t; d++) {
          const decision = decisions[d] as (typeof decisions)[number];
          clock.set(decision.at);
          const outcomes = (await decide(scan(decision.i, decision.attacker, decision.at))) as unknown as string[];
          if (decision.fresh && Array.isArray(outcomes) && outcomes.includes('blocked')) newBlocks.set(decision.attacker, decision.at);
        }
        if (t >= nextExpiry) {
          clock.set(nextExpiry);
          await expiry({});
          nextExpiry += 1000;
        }
        // the pipe: every wake-up that reached the decision queue, to every plane after the hops
        clock.set(t);
        for (let batch = decisionSqs.receive(10); batch; batch = decisionSqs.receive(10)) {
          for (const record of batch.Records) deliveries.push({ at: Number(record.attributes.SentTimestamp) + WAKE_UP_DELAY_MS + HOPS_TOTAL_MS - HOPS_MS.planeQueueToEnforce, body: record.body });
          decisionSqs.complete(batch);
        }
        for (let k = deliveries.length - 1; k >= 0; k--) {
          const delivery = deliveries[k] as (typeof deliveries)[number];
          if (delivery.at > t) continue;
          deliveries.splice(k, 1);
          for (const plane of planes) await send(plane, delivery.body, delivery.at);
        }
        for (const plane of planes) {
          if (plane.busyUntil > t) continue;
          for (const [target, at] of newBlocks) if (at <= t && !plane.waiting.has(target) && !plane.held.has(target)) plane.waiting.set(target, at);
          const run = await runPlane(plane, t + HOPS_MS.planeQueueToEnforce);
          if (!run) {
            plane.busyUntil = t;
            continue;
          }
          if (run.summary.run === 'incremental') {
            incrementalRunsAll.push(run.seconds);
            if (clock.now() >= t0 + SETTLE_SECONDS * 1000) incrementalRuns.push(run.seconds);
            incrementalCpu.push(run.cpuSeconds);
            incrementalSlept.push(run.sleptSeconds);
            incrementalWaited.push(run.waitedSeconds);
            incrementalWaf.push(run.wafCalls);
            incrementalEc2.push(run.ec2Calls);
          } else fullRuns.push(`plane ${plane.index} at +${((clock.now() - t0) / 1000).toFixed(0)} s (${run.kinds.join(',')}; failures ${run.summary.failures.map((f) => f.error).join(',')})`);
          if (plane.waiting.size === 0) continue;
          const held = plane.scopes.map((scope) => new Set(plane.sets.filter((s) => s.scope === scope).flatMap((s) => plane.waf.waf.addresses(s))));
          for (const [target, at] of plane.waiting) {
            if (held.every((set) => set.has(`${target}/32`))) {
              plane.held.set(target, clock.now() - at);
              plane.waiting.delete(target);
            }
          }
        }
      }
      // per new block decided early enough to be enforced by the end: the LAST plane to hold it in
      // every scope; a block some plane never held counts as not enforced (Infinity)
      const lagOf = (target: string) => Math.max(...planes.map((p) => p.held.get(target) ?? Number.POSITIVE_INFINITY)) / 1000;
      const counted = [...newBlocks].filter(([, at]) => at >= t0 + SETTLE_SECONDS * 1000 && at <= end - 90_000);
      const lags = counted.map(([target]) => lagOf(target));
      const settling = [...newBlocks].filter(([, at]) => at < t0 + SETTLE_SECONDS * 1000).map(([target]) => lagOf(target));
      const notEnforced = lags.filter((lag) => !Number.isFinite(lag)).length;
      const perPlaneHeld = planes.map((p) => counted.filter(([target]) => p.held.has(target)).length);
      const wallSeconds = (Date.now() - wall0) / 1000;
      const note = `${PLANES} real planes (${planes.filter((p) => p.scopes.length === 2).length} with a CLOUDFRONT scope), ${MINUTES} simulated min, ${decisions.length} decisions (${newBlocks.size} new blocks), CALL_MS ${CALL_MS}, hops ${HOPS_TOTAL_MS} ms; seeding ${seedSeconds.toFixed(0)} s, bench ${wallSeconds.toFixed(0)} s of real time`;
      return [
        { name: 'enforce_run_p99_s', value: Number(percentile(incrementalRuns, 99).toFixed(2)), unit: 's', note: `${incrementalRuns.length} incremental runs after the first ${SETTLE_SECONDS} s of traffic (all ${incrementalRunsAll.length} runs: p99 ${percentile(incrementalRunsAll, 99).toFixed(2)} s, max ${Math.max(...incrementalRunsAll).toFixed(2)} s), median ${percentile(incrementalRuns, 50).toFixed(2)} s, max ${Math.max(...incrementalRuns).toFixed(2)} s, per run (median) ${percentile(incrementalSlept, 50).toFixed(1)} s asleep (notBefore ${percentile(incrementalWaited, 50).toFixed(2)} s, p99 ${percentile(incrementalWaited, 99).toFixed(2)} s; pacer, retries), ${percentile(incrementalWaf, 50)} WAF calls, ${percentile(incrementalEc2, 50)} EC2 calls; CPU median ${(percentile(incrementalCpu, 50) * 1000).toFixed(0)} ms, p99 ${(percentile(incrementalCpu, 99) * 1000).toFixed(0)} ms (not in the figure); full runs during traffic: ${fullRuns.length ? fullRuns.join('; ') : 'none'}; failed runs ${failedRuns.length}${failedRuns.length ? ` (${failedRuns.slice(0, 3).join('; ')})` : ''}; ${note}` },
        { name: 'detect_to_enforced_p99_s', value: Number.isFinite(percentile(lags, 99)) ? Number(percentile(lags, 99).toFixed(2)) : -1, unit: 's (-1: some block never reached every plane)', note: `decision → in every WAF scope of the last of the ${PLANES} planes, p99 over the ${lags.length} new blocks decided from ${SETTLE_SECONDS} s after the start of the traffic to 90 s before its end (the ${settling.length} of the first ${SETTLE_SECONDS} s, the cold start's backlog: p99 ${percentile(settling, 99).toFixed(2)} s), median ${percentile(lags, 50).toFixed(2)} s, largest finite ${Math.max(...lags.filter(Number.isFinite)).toFixed(2)} s; ${notEnforced} not in every plane 30 s after the traffic (counted as infinite; per plane, of ${counted.length}, seen held: ${perPlaneHeld.join('/')}; still waiting: ${planes.map((p) => p.waiting.size).join('/')}); ${note}` },
        { name: 'reconcile_one_plane_s', value: Number(reconcileSeconds.toFixed(1)), unit: 's', note: `steady full run of a two-scope plane at 100,000: ${steady.seconds.toFixed(1)} s simulated (calls, pacing) + ${steady.cpuSeconds.toFixed(2)} s CPU × 1769/${ENFORCE_MEMORY_MB}; first full runs (empty sets, every set written) ${warm.map((w) => w.toFixed(1)).join(' / ')} s simulated` },
      ];
    } finally {
      await ec2.stop();
      for (const waf of wafs) await waf.stop();
      child.stdin?.end();
    }
  },
};
