/**
 * Scale on paper (`npx tsx bench/run.ts scale`, once registered): the cost and limits model of
 * bench/scale-model.ts at 1 million probes a day, 100,000 blocked sources, 50 accounts × 4 Regions
 * (topology D), fed with what this machine measures:
 * - the DynamoDB size (AWS sizing rules) of a block record, a history entry and a burst counter as
 *   lambda/shared/repository.ts writes them, built by the real policy from real Scan Detected events;
 * - the size of such an event;
 * - decide's in-process work per event: `decide_events_per_s` from bench/results.json when the
 *   pipeline suite has written it, else measured here (intake + guard + policy per event);
 * - the desired-state diff (core/diff.ts) at 100,000 active blocks over 10 + 1 WAF sets and 2 NACLs.
 * docs/scale.md explains the model, the assumptions and the code of `scale_first_limit`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type ActualState, applyPlan, planEnforcement } from '../core/diff';
import { NeverBlockGuard } from '../core/guard';
import { interpretEvent } from '../core/intake';
import { type BlockRecord, decide, type Sighting } from '../core/policy';
import type { WafSetRef } from '../core/settings';
import { ACTIVE_KEY, ACTIVE_KEY_ATTRIBUTE, HISTORY_RETENTION_SECONDS, TABLE_TTL_ATTRIBUTE, VERSION_ATTRIBUTE, burstKey, historyKey, stateKey } from '../core/table';
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

/** The items lambda/shared/repository.ts writes for a record (save, appendHistory, admitBurst). */
function items(record: BlockRecord, now: number): { record: number; history: number; burst: number } {
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
  return { record: dynamoItemBytes(state), history: dynamoItemBytes(history), burst: dynamoItemBytes(burst) };
}

/**
 * Item sizes after `events` Scan Detected events for one attacker from as many sensors (up to 10):
 * the record grows with its remembered event ids (at most 20) and sensors (at most 10).
 */
function sizesAfter(events: number): { record: number; history: number; burst: number; event: number } {
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
 * Median CPU ms (user + system, so the wait for a core on a shared machine is not counted) of the
 * desired-state diff at ACTIVE_BLOCKED blocks in steady state: 100 blocks replaced since the last run.
 */
function measurePlanMs(sample: Sighting): number {
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
  return times.sort((a, b) => a - b)[1] as number;
}

/** The scenario of docs/scale.md; `measured` comes from this machine. */
export function scenario(measured: Pick<ScaleInputs, 'recordItemBytes' | 'historyItemBytes' | 'burstItemBytes' | 'eventBytes' | 'decideCpuMs' | 'enforcePlanMs'>): ScaleInputs {
  return {
    probesPerDay: 1_000_000,
    probesPerEvent: 5,
    activeBlocked: ACTIVE_BLOCKED,
    newBlocksPerDay: 100_000,
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
    callMs: 10,
    decideMemoryMb: 256,
    enforceMemoryMb: 512,
    enforceTimeoutSeconds: 60,
    daysPerMonth: 30,
    prices: DEFAULT_PRICES,
    ...measured,
  };
}

function figures(result: ScaleResult, withFms: ScaleResult, upper: ScaleResult, measured: ReturnType<typeof sizesAfter> & { max: number; decideCpuMs: number; decideSource: string; planMs: number }): Figure[] {
  const limitNote = (limit: ScaleResult['firstLimit']) =>
    limit ? `${limit.name}: demand ${limit.utilisation.toFixed(limit.utilisation < 10 ? 2 : 0)}× capacity (${limit.kind})` : 'no limit reached';
  const hit = result.limits
    .filter((l) => l.utilisation >= 1)
    .sort((a, b) => b.utilisation - a.utilisation)
    .map((l) => `${l.code}=${l.utilisation.toFixed(l.utilisation < 10 ? 2 : 0)}×`)
    .join(', ');
  const cost = result.monthlyCost;
  return [
    { name: 'scale_events_per_day', value: Math.round(result.eventsPerDay), unit: 'events/day', note: `1,000,000 probes a day, 5 probes per Scan Detected event (one event per attacker per 60 s dedupe window; assumption); an event is ${measured.event} B, billed as 1 (64 KB chunks)` },
    { name: 'scale_decide_invocations_per_day', value: Math.round(result.decideInvocationsPerDay), unit: 'invocations/day', note: `one per event; ${Math.round(result.refreshesPerDay)} refreshes + 100,000 new blocks; in-process work ${measured.decideCpuMs.toFixed(3)} ms/event (${measured.decideSource})` },
    { name: 'scale_ddb_writes_per_day', value: Math.round(result.ddbWritesPerDay), unit: 'write request units/day', note: `decide + expiry: record ${measured.record} B after 2 events (${measured.max} B after 20, the bound), its copy in the active index, history ${measured.history} B, burst counter ${measured.burst} B (AWS item-size rules)` },
    { name: 'scale_enforce_read_units_per_day', value: Math.round(result.enforceReadUnitsPerDay), unit: 'read request units/day', note: `${result.planes} planes × ${Math.round(result.enforceRunsPerDayPerPlane)} enforce runs a day × ${result.fullReadUnits} units: each run re-reads the whole active index (${result.enforceRunSeconds.toFixed(1)} s a run; diff ${measured.planMs.toFixed(0)} CPU ms here at 100,000 blocks, × 1769/512 in a 512 MB function)` },
    { name: 'scale_waf_sets_needed_per_scope', value: result.wafSetsNeededPerScope, unit: 'IP sets', note: `100,000 IPv4 + 0 IPv6 at 10,000 addresses a set (IPv6 keeps its one set); overflow ${result.wafOverflow}; ${result.wafScopes} scopes` },
    { name: 'scale_fanout_puts_per_day', value: Math.round(result.fanoutDeliveriesPerDay), unit: 'cross-account deliveries/day', note: `wake-ups coalesced per second (${Math.round(result.wakeSecondsPerDay)} seconds a day) × ${result.planes} enforcement planes` },
    { name: 'scale_monthly_cost_usd', value: Math.round(result.monthlyCostUsd), unit: 'USD/month', note: `30 days, us-east-1 list prices (unverified, see docs/scale.md): DynamoDB ${Math.round(cost.dynamodb)}, Lambda ${Math.round(cost.lambda)}, EventBridge ${Math.round(cost.eventBridge)}, SQS ${Math.round(cost.sqs)}; with 1 Firewall Manager policy in 4 Regions +${Math.round(withFms.monthlyCost.fms)}; with every record at its 20-event size ${Math.round(upper.monthlyCostUsd)}` },
    { name: 'scale_monthly_cost_without_full_reads_usd', value: Math.round(result.monthlyCostIncrementalUsd), unit: 'USD/month', note: 'the same less the DynamoDB reads of the whole active index by every enforce run (what reading only the changes would save; not how the code works today)' },
    { name: 'scale_first_limit', value: result.firstLimit?.code ?? 0, unit: 'code', note: `${limitNote(result.firstLimit)}; all hit: ${hit || 'none'}` },
    { name: 'scale_first_hard_limit', value: result.firstHardLimit?.code ?? 0, unit: 'code', note: `first not handled by design: ${limitNote(result.firstHardLimit)}` },
  ];
}

export const suite: BenchSuite = {
  title: 'scale on paper: cost and limits at 1M probes/day, 100k blocked, 50 accounts × 4 Regions',
  async run(): Promise<Figure[]> {
    // the scenario has 2 events per new block (200,000 events, 100,000 new blocks a day)
    const size = sizesAfter(2);
    const max = sizesAfter(20);
    const known = readResults().decide_events_per_s;
    const decideCpuMs = typeof known === 'number' && known > 0 ? 1000 / known : measureDecideCpuMs();
    const decideSource = typeof known === 'number' && known > 0 ? `bench/results.json decide_events_per_s ${known}` : 'measured here';
    const sample = sightingOf(scanEvent(0, '203.0.113.9', 0, START), START);
    const planMs = measurePlanMs(sample);
    const measured = { recordItemBytes: size.record, historyItemBytes: size.history, burstItemBytes: size.burst, eventBytes: size.event, decideCpuMs, enforcePlanMs: planMs };
    const result = scaleModel(scenario(measured));
    const withFms = scaleModel({ ...scenario(measured), fmsPolicies: 1 });
    const upper = scaleModel(scenario({ ...measured, recordItemBytes: max.record, historyItemBytes: max.history }));
    return figures(result, withFms, upper, { ...size, max: max.record, decideCpuMs, decideSource, planMs });
  },
};
