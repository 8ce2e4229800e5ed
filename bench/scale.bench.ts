/**
 * Scale on paper (`npx tsx bench/run.ts scale`, once registered): the cost and limits model of
 * bench/scale-model.ts at 1 million probes a day, 100,000 blocked sources, 50 accounts × 4 Regions
 * (topology D), fed with what this machine measures:
 * - the DynamoDB size (AWS sizing rules) of a block record, a history entry and a burst counter as
 *   aws/repository.ts writes them, built by the real policy from real Scan Detected events;
 * - the size of such an event;
 * - decide's in-process work per event: `decide_events_per_s` from bench/results.json when the
 *   pipeline suite has written it, else measured here (intake + guard + policy per event);
 * - the size of a record's entry in the `changes` index (keys + the INCLUDE projection, issue 20),
 *   of a NACL placement-ledger row and of a plane report, as lambda/shared/ writes them;
 * - the full run's diff (core/diff.ts planEnforcement) at 100,000 active blocks over 10 + 1 WAF
 *   sets and 2 NACLs (the reconcile's CPU), and the NACL planning of an incremental run (the most
 *   recent candidates and the records changed since the cursor).
 * It evaluates the model at 10,000 / 100,000 / 1,000,000 blocked sources (100,000 is the
 * documented scenario) and the sensitivities of docs/scale.md (wake window, reconcileMinutes,
 * enforce memory). docs/scale.md explains the model, the assumptions and `scale_first_limit`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type ActualState, applyPlan, planEnforcement } from '../core/diff';
import { NeverBlockGuard } from '../core/guard';
import { interpretEvent } from '../core/intake';
import { type BlockRecord, decide, type Sighting } from '../core/policy';
import type { WafSetRef } from '../core/settings';
import { planeReportKey } from '../core/org';
import { ACTIVE_KEY, ACTIVE_KEY_ATTRIBUTE, HISTORY_RETENTION_SECONDS, PLACEMENT_ATTRIBUTES, TABLE_TTL_ATTRIBUTE, VERSION_ATTRIBUTE, burstKey, historyKey, naclRuleKey, stateKey } from '../core/table';
import { ACL_A, ACL_B, testSettings } from '../test/fakes/world';
import { DEFAULT_PRICES, dynamoItemBytes, type ScaleInputs, type ScaleResult, scaleModel } from './scale-model';
import type { BenchSuite, Figure } from './suite';
import { scanDetectedEvent } from '../test/fakes/events';

const RESULTS = join(__dirname, 'results.json');
const START = Date.parse('2026-11-29T10:00:00Z');
const ACTIVE_BLOCKED = 100_000;

/** A deterministic UUID-shaped id, as EventBridge gives every event one. */
function uuid(i: number): string {
  const hex = (i * 2654435761 >>> 0).toString(16).padStart(8, '0');
  return `${hex}-0000-4000-8000-${i.toString(16).padStart(12, '0')}`;
}

function scanEvent(i: number, attacker: string, sensor: number, at: number): Record<string, unknown> {
  return scanDetectedEvent({
    id: uuid(i),
    attacker,
    at,
    sensorId: `i-0123456789abcde${sensor.toString(16).padStart(2, '0')}`,
    probes: [
      { protocol: 'tcp', port: 23, kind: 'connect' },
      { protocol: 'tcp', port: 2323, kind: 'syn' },
      { protocol: 'tcp', port: 3389, kind: 'syn' },
      { protocol: 'tcp', port: 5900, kind: 'syn' },
      { protocol: 'tcp', port: 6379, kind: 'syn' },
    ],
    probeCount: 5,
  });
}

function sightingOf(event: Record<string, unknown>, now: number): Sighting {
  const intake = interpretEvent(event, now);
  if (intake.kind !== 'sightings' || !intake.sightings[0]) throw new Error(`scale bench: event not accepted: ${JSON.stringify(intake)}`);
  return intake.sightings[0];
}

/** The items aws/repository.ts writes for a record (save, appendHistory, admitBurst). */
function items(record: BlockRecord, now: number): { record: number; history: number; burst: number; change: number } {
  const state = { ...stateKey(record.target), ...record, [VERSION_ATTRIBUTE]: 21, [ACTIVE_KEY_ATTRIBUTE]: ACTIVE_KEY };
  const history = {
    ...historyKey(record.target, now, 'refresh'),
    action: 'refresh',
    at: now,
    record,
    eventId: record.eventIds[record.eventIds.length - 1],
    [TABLE_TTL_ATTRIBUTE]: Math.floor(now / 1000) + HISTORY_RETENTION_SECONDS,
  };
  const minute = Math.floor(now / 60_000) * 60_000;
  const burst = { ...burstKey(minute), count: 57, [TABLE_TTL_ATTRIBUTE]: Math.floor(minute / 1000) + 86_400 };
  return { record: dynamoItemBytes(state), history: dynamoItemBytes(history), burst: dynamoItemBytes(burst), change: changeItemBytes(record, now) };
}

/**
 * A record's entry in the `changes` index (design of issue 20): the table keys, the index keys
 * (`chgKey` "A", `chgAt` = 13-digit epoch ms # target) and the INCLUDE projection (target,
 * lastSeen, blockedAt, expiresAt, active). https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html#GSI.StorageConsiderations
 */
function changeItemBytes(record: BlockRecord, now: number): number {
  return dynamoItemBytes({
    ...stateKey(record.target),
    chgKey: 'A',
    chgAt: `${String(now).padStart(13, '0')}#${record.target}`,
    target: record.target,
    lastSeen: record.lastSeen,
    blockedAt: record.blockedAt,
    expiresAt: record.expiresAt,
    active: record.active,
  });
}

/** A placement-ledger row as PlacementLedger.pending writes it (with one other CIDR that may be there). */
function ledgerRowBytes(): number {
  return dynamoItemBytes({
    ...naclRuleKey('acl-0123456789abcdef0', 37),
    [PLACEMENT_ATTRIBUTES.cidr]: '203.0.113.77/32',
    [PLACEMENT_ATTRIBUTES.state]: 'pending',
    [PLACEMENT_ATTRIBUTES.maybe]: ['198.51.100.23/32'],
    [PLACEMENT_ATTRIBUTES.ruleNumber]: 37,
  });
}

/** A plane report as PlaneReports.record writes it (converged, no failure). */
function reportItemBytes(now: number): number {
  return dynamoItemBytes({
    ...planeReportKey('123456789012/us-east-1'),
    planeId: '123456789012/us-east-1',
    firstRunAt: now - 86_400_000,
    lastRunAt: now,
    converged: true,
    desired: 100_000,
    failures: [],
    mode: 'enforce',
    lastConvergedAt: now,
  });
}

/**
 * Item sizes after `events` Scan Detected events for one attacker from as many sensors (up to 10):
 * the record grows with its remembered event ids (at most 20) and sensors (at most 10).
 */
function sizesAfter(events: number): { record: number; history: number; burst: number; change: number; event: number } {
  const settings = testSettings();
  const attacker = '203.0.113.77';
  let record: BlockRecord | undefined;
  let event = 0;
  for (let i = 0; i < events; i++) {
    const now = START + i * 61_000;
    const raw = scanEvent(i, attacker, i % 10, now);
    event = Buffer.byteLength(JSON.stringify(raw), 'utf8');
    const decision = decide(record, sightingOf(raw, now), now, settings.policy);
    if (decision.action === 'ignore') throw new Error(`scale bench: event ${i} ignored: ${decision.why}`);
    record = decision.record;
  }
  if (!record) throw new Error('scale bench: no record');
  return { ...items(record, START + events * 61_000), event };
}

function readResults(): Record<string, number> {
  return existsSync(RESULTS) ? (JSON.parse(readFileSync(RESULTS, 'utf8')) as Record<string, number>) : {};
}

/** CPU ms per event of intake + guard + policy (when bench/results.json has no decide_events_per_s). */
function measureDecideCpuMs(): number {
  const settings = testSettings();
  const guard = new NeverBlockGuard(settings.guard);
  const N = 5_000;
  const records = new Map<string, BlockRecord>();
  const events = Array.from({ length: N }, (_, i) => scanEvent(i, `203.0.113.${(i % 250) + 1}`, i % 10, START + i * 5));
  const t0 = process.cpuUsage();
  for (let i = 0; i < N; i++) {
    const now = START + i * 5;
    const sighting = sightingOf(events[i] as Record<string, unknown>, now);
    if (!guard.check(sighting.target).blockable) continue;
    const decision = decide(records.get(sighting.target), sighting, now, settings.policy);
    if (decision.action !== 'ignore') records.set(sighting.target, decision.record);
  }
  const used = process.cpuUsage(t0);
  return (used.user + used.system) / 1000 / N;
}

/** IPv4 addresses outside every special range but 100.64.0.0/10, which the settings make blockable. */
function address(i: number): string {
  return `100.${64 + Math.floor(i / 65536)}.${Math.floor(i / 256) % 256}.${i % 256}`;
}

function setRef(family: 'ipv4' | 'ipv6', i: number): WafSetRef {
  return { scope: 'REGIONAL', family, name: `portsnare-${family === 'ipv4' ? 'v4' : 'v6'}-${i}`, id: `${family === 'ipv4' ? '4' : '6'}${i.toString().padStart(7, '0')}-0000-4000-8000-000000000000` };
}

/**
 * Median CPU ms (user + system, so the wait for a core on a shared machine is not counted) of
 * - `full`: the desired-state diff at ACTIVE_BLOCKED blocks in steady state, 100 blocks replaced
 *   since the last run (a reconcile's in-process work);
 * - `incremental`: the NACL plan of an incremental run — the 100 changed records and the 20 most
 *   recent others against the two ACLs (the WAF delta of an incremental run is O(changes) and
 *   not measured here).
 */
function measurePlanMs(sample: Sighting): { full: number; incremental: number } {
  const settings = testSettings({
    guard: { blockableSpecialCidrs: ['100.64.0.0/10'] },
    nacl: { aclIds: [ACL_A, ACL_B], ruleRange: [10, 60], quotaPerDirection: 20 },
    waf: { sets: [...Array.from({ length: 10 }, (_, i) => setRef('ipv4', i)), setRef('ipv6', 0)] },
  });
  const now = START + 3_600_000;
  const recordAt = (i: number): BlockRecord => {
    const decision = decide(undefined, { ...sample, target: address(i), family: 'ipv4', eventId: uuid(i), lastSeen: START + i, firstSeen: START + i }, START + i, settings.policy);
    if (decision.action === 'ignore') throw new Error(`scale bench: record ${i} ignored: ${decision.why}`);
    return { ...decision.record, expiresAt: now + 86_400_000 };
  };
  const records = Array.from({ length: ACTIVE_BLOCKED }, (_, i) => recordAt(i));
  const deny = { ruleNumber: 32767, egress: false, ruleAction: 'deny' as const, protocol: '-1', cidrBlock: '0.0.0.0/0' };
  let actual: ActualState = {
    nacls: [ACL_A, ACL_B].map((aclId) => ({ aclId, entries: [deny] })),
    wafSets: settings.waf.sets.map((ref) => ({ ref, addresses: [] })),
  };
  actual = applyPlan(actual, planEnforcement(records, actual, settings, now));
  for (let i = 0; i < 100; i++) records[i] = recordAt(ACTIVE_BLOCKED + i);
  const times: number[] = [];
  for (let run = 0; run < 3; run++) {
    const t0 = process.cpuUsage();
    const plan = planEnforcement(records, actual, settings, now);
    const used = process.cpuUsage(t0);
    times.push((used.user + used.system) / 1000);
    if (plan.waf.length === 0) throw new Error('scale bench: the steady-state diff found nothing to change');
  }
  const naclOnly = { ...settings, waf: { ...settings.waf, sets: [] } };
  const candidates = [...records.slice(0, 100), ...records.slice(-20)];
  const small: number[] = [];
  for (let run = 0; run < 21; run++) {
    const t0 = process.cpuUsage();
    const plan = planEnforcement(candidates, { nacls: actual.nacls, wafSets: [] }, naclOnly, now);
    const used = process.cpuUsage(t0);
    small.push((used.user + used.system) / 1000);
    if (plan.nacl.every((acl) => acl.changes.length === 0)) throw new Error('scale bench: the incremental NACL plan found nothing to change');
  }
  return { full: times.sort((a, b) => a - b)[1] as number, incremental: small.sort((a, b) => a - b)[10] as number };
}

type Measured = Pick<ScaleInputs, 'recordItemBytes' | 'historyItemBytes' | 'burstItemBytes' | 'changeItemBytes' | 'ledgerRowBytes' | 'reportItemBytes' | 'eventBytes' | 'decideCpuMs' | 'incrementalCpuMs' | 'reconcileCpuMs'>;

/**
 * The scenario of docs/scale.md at `blocked` sources blocked at once (100,000 is the documented
 * one); `measured` comes from this machine. The workload scales with the blocked population: it
 * turns over once a day (as many new blocks and lifts as blocked), two events per new block,
 * 5 probes an event. The full run's CPU is measured at 100,000 and scaled linearly.
 */
export function scenario(measured: Measured, blocked = ACTIVE_BLOCKED): ScaleInputs {
  return {
    probesPerDay: 10 * blocked,
    probesPerEvent: 5,
    activeBlocked: blocked,
    newBlocksPerDay: blocked,
    ipv6Share: 0,
    peakFactor: 10,
    accounts: 50,
    regions: 4,
    cloudFrontAccounts: 50,
    aclsPerPlane: 2,
    naclQuota: 20,
    foreignNaclEntriesPerAcl: 0,
    wafSetsPerFamily: 10,
    fmsPolicies: 0,
    fmsRegions: 4,
    burstLimitPerMinute: 100,
    wakeWindowSeconds: 2,
    overlapSeconds: 20,
    reconcileMinutes: 10,
    // LIFT_DEFER_MS (45 s, aws/points.ts) less the 7 s a run must leave for the next one (wafWriteBy)
    liftDeferSeconds: 38,
    naclResidenceSeconds: 300,
    reportEverySeconds: 60,
    // a plane that is not busy sends a self wake-up when none is on its way: one per next window
    selfWakeEverySeconds: 4,
    busyGapSeconds: 6,
    callMs: 10,
    decideMemoryMb: 256,
    enforceMemoryMb: 256,
    enforceTimeoutSeconds: 60,
    daysPerMonth: 30,
    prices: DEFAULT_PRICES,
    ...measured,
    reconcileCpuMs: measured.reconcileCpuMs * (blocked / ACTIVE_BLOCKED),
  };
}

const usd = (x: number) => Math.round(x).toLocaleString('en-US');

/** The model's cost lines grouped as docs/scale.md tables them. */
export function costGroups(r: ScaleResult): Record<string, number> {
  const c = r.monthlyCost;
  return {
    'SQS FIFO': c.sqsFifoDecisionQueue + c.sqsFifoPlaneQueues,
    'SQS standard (expiry timers)': c.sqsStandardExpiryTimers,
    'Lambda requests': c.lambdaRequests,
    'Lambda enforce incremental (work)': c.lambdaEnforceIncrementalGbSeconds,
    'Lambda enforce incremental (UpdateIPSet pacing wait)': c.lambdaEnforcePacingGbSeconds,
    'Lambda enforce reconcile': c.lambdaEnforceReconcileGbSeconds,
    'Lambda decide, expiry, reconcile trigger': c.lambdaDecideGbSeconds + c.lambdaExpiryGbSeconds + c.lambdaReconcileTriggerGbSeconds,
    'DynamoDB reads decide': c.ddbReadsDecide,
    'DynamoDB reads incremental': c.ddbReadsIncremental,
    'DynamoDB reads reconcile': c.ddbReadsReconcile,
    'DynamoDB reads expiry': c.ddbReadsExpiry,
    'DynamoDB reads NACL ledger': c.ddbReadsLedger,
    'DynamoDB writes records (+ active index, history, burst)': c.ddbWritesRecords,
    'DynamoDB writes changes index': c.ddbWritesChangeIndex,
    'DynamoDB writes NACL ledger': c.ddbWritesLedger,
    'DynamoDB writes plane reports': c.ddbWritesReports,
    EventBridge: c.eventBridgeEvents + c.eventBridgeCrossAccount + c.eventBridgePipes,
    'Firewall Manager': c.firewallManager,
  };
}

function figures(at: Record<'10k' | '100k' | '1M', ScaleResult>, withFms: ScaleResult, upper: ScaleResult, knobs: Record<string, ScaleResult>, measured: ReturnType<typeof sizesAfter> & { max: number; decideCpuMs: number; decideSource: string; full: number; incremental: number; ledger: number; report: number }): Figure[] {
  const result = at['100k'];
  const limitNote = (limit: ScaleResult['firstLimit']) =>
    limit ? `${limit.name}: demand ${limit.utilisation.toFixed(limit.utilisation < 10 ? 2 : 0)}× capacity (${limit.kind})` : 'no limit reached';
  const hit = result.limits
    .filter((l) => l.utilisation >= 1)
    .sort((a, b) => b.utilisation - a.utilisation)
    .map((l) => `${l.code}=${l.utilisation.toFixed(l.utilisation < 10 ? 2 : 0)}×`)
    .join(', ');
  const groups = Object.entries(costGroups(result))
    .filter(([, v]) => v >= 0.5)
    .sort(([, a], [, b]) => b - a)
    .map(([k, v]) => `${k} ${usd(v)}`)
    .join(', ');
  const reads = result.ddbReadsPerDay;
  const knobNote = Object.entries(knobs)
    .map(([k, r]) => `${k} ${usd(r.monthlyCostUsd)}`)
    .join('; ');
  return [
    { name: 'scale_events_per_day', value: Math.round(result.eventsPerDay), unit: 'events/day', note: `1,000,000 probes a day, 5 probes per Scan Detected event (one event per attacker per 60 s dedupe window; assumption); an event is ${measured.event} B, billed as 1 (64 KB chunks)` },
    { name: 'scale_decide_invocations_per_day', value: Math.round(result.decideInvocationsPerDay), unit: 'invocations/day', note: `one per event; ${Math.round(result.refreshesPerDay)} refreshes + 100,000 new blocks; in-process work ${measured.decideCpuMs.toFixed(3)} ms/event (${measured.decideSource})` },
    { name: 'scale_ddb_writes_per_day', value: Math.round(result.ddbWritesPerDay.records + result.ddbWritesPerDay.changeIndex), unit: 'write request units/day', note: `decide + expiry: record ${measured.record} B after 2 events (${measured.max} B after 20), its active-index copy, its changes-index entry (${measured.change} B; 2 writes when chgAt/chgKey moves), history ${measured.history} B, burst ${measured.burst} B; plus ${Math.round(result.ddbWritesPerDay.ledger)} NACL-ledger and ${Math.round(result.ddbWritesPerDay.reports)} plane-report units in the planes` },
    { name: 'scale_enforce_read_units_per_day', value: Math.round(reads.incremental + reads.reconcile), unit: 'read request units/day', note: `changes index: incremental ${Math.round(reads.incremental)} (${result.planes} planes, ${Math.round(result.oneScope.runsPerDay)} runs/day each, ${result.oneScope.indexReadUnits} units a run) + reconcile ${Math.round(reads.reconcile)} (every 10 min, ${result.reconcile.indexReadUnits} units = 100,000 × ${measured.change} B); ledger ${Math.round(reads.ledger)} strongly consistent` },
    { name: 'scale_enforce_run_seconds', value: Number(result.oneScope.seconds.toFixed(2)), unit: 's', note: `modelled incremental run of a one-scope plane: ${result.oneScope.updateIpSetCalls.toFixed(2)} UpdateIPSet calls (${result.oneScope.pacingWaitSeconds.toFixed(2)} s pacing wait), ${result.oneScope.naclChangesPerAcl.toFixed(2)} NACL changes per ACL; us-east-1 with CLOUDFRONT ${result.twoScope.seconds.toFixed(1)} s (${result.twoScope.pacingWaitSeconds.toFixed(1)} s waiting, runs back to back: ${Math.round(result.twoScope.runsPerDay)} a day); NACL planning ${measured.incremental.toFixed(2)} CPU ms here` },
    { name: 'scale_reconcile_run_seconds', value: Number(result.reconcile.seconds.toFixed(1)), unit: 's', note: `modelled full run at 100,000 (us-east-1, 2 scopes): ${result.reconcilePages} pages of the active partition, diff ${measured.full.toFixed(0)} CPU ms here × 1769/256 (enforce 256 MB)` },
    { name: 'scale_waf_sets_needed_per_scope', value: result.wafSetsNeededPerScope, unit: 'IP sets', note: `100,000 IPv4 + 0 IPv6 at 10,000 addresses a set (IPv6 keeps its one set); overflow ${result.wafOverflow}; ${result.wafScopes} scopes` },
    { name: 'scale_fanout_puts_per_day', value: Math.round(result.fanoutDeliveriesPerDay), unit: 'cross-account deliveries/day', note: `wake-ups coalesced per 2 s window (${Math.round(result.changeWindowsPerDay)} windows a day with a change) × ${result.planes} enforcement planes` },
    { name: 'scale_monthly_cost_usd', value: Math.round(result.monthlyCostUsd), unit: 'USD/month', note: `100,000 blocked, default configuration, 30 days, us-east-1 list prices (unverified, see docs/scale.md): ${groups}; with 1 Firewall Manager policy in 4 Regions +${usd(withFms.monthlyCost.firewallManager)}; every record at its 20-event size ${usd(upper.monthlyCostUsd)}; backfill one-off ${upper.backfillUsd.toFixed(2)}` },
    { name: 'scale_monthly_cost_10k_usd', value: Math.round(at['10k'].monthlyCostUsd), unit: 'USD/month', note: '10,000 blocked, 100,000 probes a day, same topology and configuration' },
    { name: 'scale_monthly_cost_1m_usd', value: Math.round(at['1M'].monthlyCostUsd), unit: 'USD/month', note: `1,000,000 blocked, 10,000,000 probes a day; WAF overflow ${at['1M'].wafOverflow}; full run ${at['1M'].reconcile.seconds.toFixed(0)} s (reconcile CPU scaled linearly from 100,000)` },
    { name: 'scale_monthly_cost_sensitivity_usd', value: Math.round(Math.min(...Object.values(knobs).map((r) => r.monthlyCostUsd))), unit: 'USD/month', note: `lowest of the knob settings at 100,000 blocked (docs/scale.md): ${knobNote}` },
    { name: 'scale_first_limit', value: result.firstLimit?.code ?? 0, unit: 'code', note: `${limitNote(result.firstLimit)}; all hit: ${hit || 'none'}` },
    { name: 'scale_first_hard_limit', value: result.firstHardLimit?.code ?? 0, unit: 'code', note: `first not handled by design: ${limitNote(result.firstHardLimit)}` },
  ];
}

/** The knob settings docs/scale.md tables (one change from the default each, then combinations). */
export const KNOBS: Record<string, Partial<ScaleInputs>> = {
  'wake window 30 s': { wakeWindowSeconds: 30 },
  'wake window 60 s': { wakeWindowSeconds: 60 },
  'wake window 120 s': { wakeWindowSeconds: 120 },
  'reconcileMinutes 5': { reconcileMinutes: 5 },
  'reconcileMinutes 30': { reconcileMinutes: 30 },
  'reconcileMinutes 60': { reconcileMinutes: 60 },
  'enforce memory 512 MB': { enforceMemoryMb: 512 },
  'enforce memory 128 MB': { enforceMemoryMb: 128 },
  'NACL residence 0 (the most recent always)': { naclResidenceSeconds: 0 },
  'NACL residence 60 s': { naclResidenceSeconds: 60 },
  'NACL residence 900 s': { naclResidenceSeconds: 900 },
  'lift deferral 0 (every set written at once)': { liftDeferSeconds: 0 },
  'lift deferral 10 s': { liftDeferSeconds: 10 },
  'report every run': { reportEverySeconds: 1 },
  'wake window 10 s': { wakeWindowSeconds: 10 },
  'reconcileMinutes 15': { reconcileMinutes: 15 },
  'reconcileMinutes 15 + 128 MB': { reconcileMinutes: 15, enforceMemoryMb: 128 },
  'no NACLs (WAF only)': { aclsPerPlane: 0 },
};

export async function measure(): Promise<{ measured: Measured; size: ReturnType<typeof sizesAfter>; max: ReturnType<typeof sizesAfter>; decideSource: string; plan: { full: number; incremental: number } }> {
  // the scenario has 2 events per new block (200,000 events, 100,000 new blocks a day)
  const size = sizesAfter(2);
  const max = sizesAfter(20);
  const known = readResults().decide_events_per_s;
  const decideCpuMs = typeof known === 'number' && known > 0 ? 1000 / known : measureDecideCpuMs();
  const decideSource = typeof known === 'number' && known > 0 ? `bench/results.json decide_events_per_s ${known}` : 'measured here';
  const sample = sightingOf(scanEvent(0, '203.0.113.9', 0, START), START);
  const plan = measurePlanMs(sample);
  const measured: Measured = {
    recordItemBytes: size.record,
    historyItemBytes: size.history,
    burstItemBytes: size.burst,
    changeItemBytes: size.change,
    ledgerRowBytes: ledgerRowBytes(),
    reportItemBytes: reportItemBytes(START),
    eventBytes: size.event,
    decideCpuMs,
    incrementalCpuMs: plan.incremental,
    reconcileCpuMs: plan.full,
  };
  return { measured, size, max, decideSource, plan };
}

export const suite: BenchSuite = {
  title: 'scale on paper: cost and limits of incremental enforcement at 10k / 100k / 1M blocked, 50 accounts × 4 Regions',
  async run(): Promise<Figure[]> {
    const { measured, size, max, decideSource, plan } = await measure();
    const at = {
      '10k': scaleModel(scenario(measured, 10_000)),
      '100k': scaleModel(scenario(measured)),
      '1M': scaleModel(scenario(measured, 1_000_000)),
    };
    const withFms = scaleModel({ ...scenario(measured), fmsPolicies: 1 });
    const upper = scaleModel(scenario({ ...measured, recordItemBytes: max.record, historyItemBytes: max.history }));
    const knobs = Object.fromEntries(Object.entries(KNOBS).map(([name, change]) => [name, scaleModel({ ...scenario(measured), ...change })]));
    return figures(at, withFms, upper, knobs, {
      ...size,
      max: max.record,
      decideCpuMs: measured.decideCpuMs,
      decideSource,
      full: plan.full,
      incremental: plan.incremental,
      ledger: measured.ledgerRowBytes,
      report: measured.reportItemBytes,
    });
  },
};
