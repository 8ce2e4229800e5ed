/**
 * Scale on paper: what portsnare costs and which limit it meets at a given load, as arithmetic
 * over AWS quotas, AWS prices, the measured work (bench/scale.bench.ts feeds it) and stated
 * assumptions. Pure: no I/O, no clock. docs/scale.md explains every term, every cost line and the
 * code table of `LIMIT_CODES`.
 *
 * It models the incremental design (issue 20): decide and expiry stamp each saved record into the
 * sparse `changes` index (core/table.ts); a plane's enforce wakes once per wake window with a
 * change (decide's and expiry's wake-ups share the window) and reads only the changes since its
 * cursor; it writes at most one IP set per family and scope a run (removals wait for their set's
 * turn, up to `liftDeferSeconds`), changes a NACL only when an entry's residence is over or its
 * source was lifted, reads an ACL only when it changes it, and writes the plane's report once a
 * minute; every `reconcileMinutes` a full run reads the index's active partition and diffs it
 * against the plane's own ACLs and IP sets.
 *
 * Quotas are quoted as the AWS pages state them (read 2026-11-29); each constant names its page.
 * Prices are NOT confirmed on an AWS page (the stored copies of the pricing pages do not show the
 * rates); they are inputs, us-east-1 list prices as known, marked `unverified` in docs/scale.md.
 */
import { NACL_DEFAULT_QUOTA, NACL_MAX_QUOTA, WAF_MAX_ADDRESSES_PER_SET } from '../core/settings';

export const SECONDS_PER_DAY = 86_400;
export const MINUTES_PER_DAY = 1_440;

export const QUOTAS = {
  /** https://docs.aws.amazon.com/waf/latest/developerguide/limits.html — "Maximum number of IP addresses in CIDR notation per IP set: 10,000" */
  wafAddressesPerSet: WAF_MAX_ADDRESSES_PER_SET,
  /** https://docs.aws.amazon.com/waf/latest/developerguide/limits.html — "Maximum number of IP sets: 100" per account per Region */
  wafIpSetsPerAccountRegion: 100,
  /** https://docs.aws.amazon.com/waf/latest/developerguide/limits.html — Create, Put or Update action: "One request per second" per account per Region */
  wafUpdateCallsPerSecond: 1,
  /** https://docs.aws.amazon.com/waf/latest/developerguide/aws-waf-capacity-units.html — 1,500 WCUs per web ACL (default; up to 5,000 with an extra charge per the 2023-04-11 announcement) */
  wafWebAclWcu: 1_500,
  /** https://docs.aws.amazon.com/waf/latest/developerguide/waf-rule-statement-type-ipset-match.html — "WCUs — 1 WCU for most" */
  wafWcuPerIpSetReference: 1,
  /** https://docs.aws.amazon.com/vpc/latest/userguide/amazon-vpc-limits.html — rules per network ACL: 20, "can be increased up to a maximum of 40", default deny included, IPv4 and IPv6 apart */
  naclRulesDefault: NACL_DEFAULT_QUOTA,
  naclRulesMax: NACL_MAX_QUOTA,
  /** https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-quota.html — PutEvents soft limit, lowest tier: "400 requests per second" */
  eventBridgePutEventsTpsLowestTier: 400,
  /** https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-quota.html — invocations soft limit, highest tier (us-east-1, us-west-2, eu-west-1): 18,750 per second */
  eventBridgeInvocationsTpsHighestTier: 18_750,
  /** https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-quota.html — "PutEvents entry size: Maximum 256KB" */
  eventBridgeEntryBytes: 256 * 1024,
  /** https://aws.amazon.com/eventbridge/pricing/ — "Each 64 KB chunk of a payload is billed as one event" */
  eventBridgeBilledChunkBytes: 64 * 1024,
  /** https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-quota.html — "Maximum 5 targets per rule", "Rules: 300 per event bus" */
  eventBridgeTargetsPerRule: 5,
  eventBridgeRulesPerBus: 300,
  /** https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/warm-throughput-scenarios.html — each partition: 3,000 read units and 1,000 write units per second */
  ddbPartitionReadUnitsPerSecond: 3_000,
  ddbPartitionWriteUnitsPerSecond: 1_000,
  /** https://aws.amazon.com/dynamodb/pricing/on-demand/ — a write request unit writes up to 1 KB; a strongly consistent read unit reads up to 4 KB, eventually consistent half a unit */
  ddbWriteUnitBytes: 1024,
  ddbReadUnitBytes: 4096,
  /** https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Query.Other.html — a Query returns at most 1 MB per call */
  ddbQueryPageBytes: 1024 * 1024,
  /** https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html — "At 1,769 MB, a function has the equivalent of one vCPU" */
  lambdaMbPerVcpu: 1_769,
  /** https://docs.aws.amazon.com/waf/latest/developerguide/fms-limits.html — "Firewall Manager policies per organization in AWS Organizations per Region: 20" */
  fmsPoliciesPerOrgRegion: 20,
} as const;

/** USD, us-east-1. Unverified on the AWS pages (see the header); change them here. */
export interface Prices {
  /** https://aws.amazon.com/eventbridge/pricing/ */
  readonly eventBridgeCustomEventPerMillion: number;
  readonly eventBridgeCrossAccountDeliveryPerMillion: number;
  /** https://aws.amazon.com/eventbridge/pricing/ (Pipes: requests) */
  readonly pipesRequestPerMillion: number;
  /** https://aws.amazon.com/lambda/pricing/ (x86) */
  readonly lambdaRequestPerMillion: number;
  readonly lambdaGbSecond: number;
  /** https://aws.amazon.com/dynamodb/pricing/on-demand/ */
  readonly ddbWriteUnitPerMillion: number;
  readonly ddbReadUnitPerMillion: number;
  /** https://aws.amazon.com/sqs/pricing/ (FIFO; standard) */
  readonly sqsFifoRequestPerMillion: number;
  readonly sqsStandardRequestPerMillion: number;
  /** https://aws.amazon.com/firewall-manager/pricing/ (per policy per Region per month) */
  readonly fmsPolicyRegionMonth: number;
}

export const DEFAULT_PRICES: Prices = {
  eventBridgeCustomEventPerMillion: 1.0,
  eventBridgeCrossAccountDeliveryPerMillion: 0.05,
  pipesRequestPerMillion: 0.4,
  lambdaRequestPerMillion: 0.2,
  lambdaGbSecond: 0.0000166667,
  ddbWriteUnitPerMillion: 0.625,
  ddbReadUnitPerMillion: 0.125,
  sqsFifoRequestPerMillion: 0.5,
  sqsStandardRequestPerMillion: 0.4,
  fmsPolicyRegionMonth: 100,
};

/**
 * Calls the code makes, read from it (not assumptions):
 * - one NACL change in an ACL with the placement ledger (aws/nacl-adapter.ts `apply`):
 *   the re-read that proves the number is ours (DescribeNetworkAcls, `safeToOverwrite`), the
 *   claim (`ledger.pending`, PutItem), the retired check (`ledger.isRetired`, strongly consistent
 *   GetItem), the EC2 write, the outcome (`ledger.confirm`/`free`, PutItem): 5 calls, 2 ledger
 *   writes, 1 strongly consistent ledger read. At capacity every change is a replace in place.
 * - the reads an incremental run starts with (design of issue 20, aws/repository.ts):
 *   `changesSince` (the `A` partition, one Query, and each lifted partition `L#day`, one more): 2
 *   Queries of the `changes` index. The NACLs' most recent records come from the container's
 *   cache (lambda/shared/enforcer.ts naclRecentFromCache); `recentActive` reads the index only
 *   when lifts emptied the cache (not modelled: rare at these sizes).
 * - an ACL the run changes: DescribeNetworkAcls and the ledger list (`describe`), the ledger list
 *   again in `apply`; an ACL the run does not change is not read (planned against the container's
 *   last read).
 * - the plane's report (aws/plane-reports.ts, one UpdateItem): on a change of state, every
 *   reconcile, else once a `reportEverySeconds` (ReportThrottle).
 * - expiry timers (lambda/expiry/handler.ts): a run looks `EXPIRY_LOOKAHEAD_SECONDS` ahead and
 *   sends one timer per distinct expiry second, 10 to a SendMessageBatch.
 */
export const CODE = {
  naclCallsPerChange: 5,
  aclReadCallsPerChangedAcl: 3,
  ledgerWritesPerNaclChange: 2,
  ledgerStrongReadsPerNaclChange: 1,
  changeQueriesPerIncrementalRun: 2,
  expiryLookaheadSeconds: 180,
  sqsBatchEntries: 10,
} as const;

export interface ScaleInputs {
  // workload
  readonly probesPerDay: number;
  /** sensors aggregate: one event per attacker per dedupe window (60 s by default) */
  readonly probesPerEvent: number;
  /** sources blocked at once (steady state) */
  readonly activeBlocked: number;
  /** new blocks a day; as many end a day (steady state); every other event refreshes a block */
  readonly newBlocksPerDay: number;
  readonly ipv6Share: number;
  /** peak rate / average rate, for the per-second quotas */
  readonly peakFactor: number;
  // topology D
  readonly accounts: number;
  readonly regions: number;
  /** accounts with a CLOUDFRONT scope (its IP sets live in us-east-1, enforced by that plane: two scopes share one account-Region's UpdateIPSet rate) */
  readonly cloudFrontAccounts: number;
  readonly aclsPerPlane: number;
  readonly naclQuota: number;
  readonly foreignNaclEntriesPerAcl: number;
  readonly wafSetsPerFamily: number;
  readonly fmsPolicies: number;
  readonly fmsRegions: number;
  readonly burstLimitPerMinute: number;
  // design knobs
  /** wake-ups are coalesced per window (lambda/shared/queue.ts WAKE_WINDOW_MS / 1000) */
  readonly wakeWindowSeconds: number;
  /** an incremental run re-reads this much before its cursor (OVERLAP_MS / 1000) */
  readonly overlapSeconds: number;
  /** `portsnare.enforcement.reconcileMinutes`: a full run every this many minutes per plane */
  readonly reconcileMinutes: number;
  /** a removal from an IP set waits at most this long for its set's turn (lambda/shared/enforcer.ts) */
  readonly liftDeferSeconds: number;
  /** a placed NACL entry of a source still blocked stays at least this long (`portsnare.enforcement.naclResidenceSeconds`); 0: the most recent always */
  readonly naclResidenceSeconds: number;
  /** a plane's report is written at most this often while unchanged (aws/plane-reports.ts REPORT_EVERY_MS) */
  readonly reportEverySeconds: number;
  /** while removals wait, a plane that is not busy wakes itself about this often (lambda/enforce/handler.ts wakeForPending: when no self wake-up is on its way) */
  readonly selfWakeEverySeconds: number;
  /** a plane whose runs come at most this far apart is busy and wakes itself not at all (lambda/enforce/handler.ts BUSY_GAP_MS) */
  readonly busyGapSeconds: number;
  // measured (bench/scale.bench.ts) — DynamoDB item sizes per its sizing rules
  readonly recordItemBytes: number;
  readonly historyItemBytes: number;
  readonly burstItemBytes: number;
  /** a record's entry in the `changes` index: keys + the INCLUDE projection */
  readonly changeItemBytes: number;
  /** a row of the NACL placement ledger */
  readonly ledgerRowBytes: number;
  /** a plane report item */
  readonly reportItemBytes: number;
  readonly eventBytes: number;
  /** in-process decide work per event, ms */
  readonly decideCpuMs: number;
  /** in-process work of an incremental run (delta and NACL planning), ms */
  readonly incrementalCpuMs: number;
  /** in-process work of a full run at `activeBlocked` (planEnforcement), ms */
  readonly reconcileCpuMs: number;
  // assumptions
  /** round trip of one DynamoDB/SQS/EC2/WAF call (or one 1 MB Query page) from Lambda, ms */
  readonly callMs: number;
  readonly decideMemoryMb: number;
  readonly enforceMemoryMb: number;
  /** the enforce function's timeout (lib/EnforcementCore.ts), seconds */
  readonly enforceTimeoutSeconds: number;
  readonly daysPerMonth: number;
  readonly prices: Prices;
}

export interface LimitCheck {
  readonly code: number;
  readonly name: string;
  /** demand / capacity at this load; ≥ 1 means hit */
  readonly utilisation: number;
  readonly kind: 'by design' | 'loses blocks' | 'degrades' | 'deploy';
}

/** One kind of enforce run of one plane, per day. */
export interface RunShape {
  readonly runsPerDay: number;
  /** wall time of one run, seconds (calls, CPU and the UpdateIPSet pacing wait) */
  readonly seconds: number;
  /** of which the pacing wait */
  readonly pacingWaitSeconds: number;
  readonly updateIpSetCalls: number;
  /** NACL changes per ACL per run */
  readonly naclChangesPerAcl: number;
  /** eventually consistent read units of the `changes` index per run */
  readonly indexReadUnits: number;
  /** strongly consistent read units of the ledger per run */
  readonly ledgerReadUnits: number;
  /** write units per run (ledger rows and the plane report) */
  readonly ledgerWriteUnits: number;
  readonly reportWriteUnits: number;
}

/** Monthly USD, one named line per thing billed. */
export interface CostLines {
  readonly sqsFifoDecisionQueue: number;
  readonly sqsFifoPlaneQueues: number;
  readonly sqsStandardExpiryTimers: number;
  readonly lambdaRequests: number;
  readonly lambdaDecideGbSeconds: number;
  readonly lambdaExpiryGbSeconds: number;
  readonly lambdaEnforceIncrementalGbSeconds: number;
  /** the part of the incremental runs spent waiting on the UpdateIPSet pacer */
  readonly lambdaEnforcePacingGbSeconds: number;
  readonly lambdaEnforceReconcileGbSeconds: number;
  readonly lambdaReconcileTriggerGbSeconds: number;
  readonly ddbReadsDecide: number;
  readonly ddbReadsIncremental: number;
  readonly ddbReadsReconcile: number;
  readonly ddbReadsExpiry: number;
  readonly ddbReadsLedger: number;
  readonly ddbWritesRecords: number;
  readonly ddbWritesChangeIndex: number;
  readonly ddbWritesLedger: number;
  readonly ddbWritesReports: number;
  readonly eventBridgeEvents: number;
  readonly eventBridgeCrossAccount: number;
  readonly eventBridgePipes: number;
  readonly firewallManager: number;
}

export interface ScaleResult {
  readonly planes: number;
  readonly twoScopePlanes: number;
  readonly wafScopes: number;
  readonly eventsPerDay: number;
  readonly refreshesPerDay: number;
  readonly liftsPerDay: number;
  readonly decideInvocationsPerDay: number;
  /** windows with a change: one wake-up forwarded to every plane each */
  readonly changeWindowsPerDay: number;
  readonly reconcilesPerDayPerPlane: number;
  readonly oneScope: RunShape;
  readonly twoScope: RunShape;
  readonly reconcile: RunShape;
  readonly reconcilePages: number;
  readonly ddbWritesPerDay: Readonly<{ records: number; changeIndex: number; ledger: number; reports: number }>;
  readonly ddbReadsPerDay: Readonly<{ decide: number; incremental: number; reconcile: number; expiry: number; ledger: number }>;
  readonly sqsFifoRequestsPerDay: number;
  readonly sqsStandardRequestsPerDay: number;
  readonly lambdaRequestsPerDay: number;
  readonly fanoutDeliveriesPerDay: number;
  readonly naclWritesPerSecondPerPlane: number;
  readonly wafSetsNeededPerScope: number;
  readonly wafOverflow: number;
  readonly naclHeldPerAcl: number;
  readonly updateIpSetCallsPerSecondPeak: number;
  readonly monthlyCost: CostLines;
  readonly monthlyCostUsd: number;
  /** one-off: stamping the records written before the `changes` index (expiry's backfill) */
  readonly backfillUsd: number;
  readonly limits: readonly LimitCheck[];
  readonly firstLimit: LimitCheck | undefined;
  readonly firstHardLimit: LimitCheck | undefined;
}

export const LIMIT_CODES = {
  none: 0,
  naclRules: 1,
  wafAddresses: 2,
  wafIpSets: 3,
  webAclWcu: 4,
  updateIpSetRate: 5,
  putEventsTps: 6,
  invocationsTps: 7,
  ddbPartitionReads: 8,
  burstBreaker: 9,
  fmsPolicies: 10,
  enforceTimeout: 11,
} as const;

/**
 * Lambda time of in-process work measured on one core of this machine: below 1,769 MB a function
 * has a fraction of a vCPU, so CPU-bound work takes 1,769 / memory times longer (one core taken as
 * one vCPU).
 */
export function lambdaCpuMs(measuredMs: number, memoryMb: number): number {
  return measuredMs * Math.max(1, QUOTAS.lambdaMbPerVcpu / memoryMb);
}

/** Write request units of one write of an item this big. */
export function writeUnits(bytes: number): number {
  return Math.max(1, Math.ceil(bytes / QUOTAS.ddbWriteUnitBytes));
}

/** Read request units of a strongly consistent read of an item this big. */
export function strongReadUnits(bytes: number): number {
  return Math.max(1, Math.ceil(bytes / QUOTAS.ddbReadUnitBytes));
}

/** Expected number of distinct slots hit when `count` events fall uniformly at random in `slots`. */
export function distinctSlots(count: number, slots: number): number {
  if (slots <= 0 || count <= 0) return 0;
  return slots * (1 - Math.exp(-count / slots));
}

/**
 * DynamoDB item size per https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html:
 * name bytes + value; strings UTF-8 bytes; numbers 1 byte per two significant digits + 1;
 * booleans and null 1; lists and maps 3 bytes + 1 per element + the elements.
 */
export function dynamoItemBytes(item: Readonly<Record<string, unknown>>): number {
  let total = 0;
  for (const [name, value] of Object.entries(item)) {
    if (value === undefined) continue;
    total += Buffer.byteLength(name, 'utf8') + valueBytes(value);
  }
  return total;
}

function valueBytes(value: unknown): number {
  if (value === null || typeof value === 'boolean') return 1;
  if (typeof value === 'string') return Buffer.byteLength(value, 'utf8');
  if (typeof value === 'number' || typeof value === 'bigint') {
    const digits = String(value).replace(/^-/, '').replace('.', '').replace(/^0+/, '').replace(/0+$/, '');
    return Math.ceil(Math.max(1, digits.length) / 2) + 1;
  }
  if (Array.isArray(value)) return 3 + value.reduce((sum: number, element) => sum + 1 + valueBytes(element), 0);
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    return 3 + entries.reduce((sum, [name, element]) => sum + 1 + Buffer.byteLength(name, 'utf8') + valueBytes(element), 0);
  }
  throw new Error(`dynamoItemBytes: cannot size a ${typeof value}`);
}

/** Read units of one eventually consistent Query that reads `bytes` of items: the total rounded up to 4 KB, half a unit per 4 KB, never less than half a unit. */
export function eventualQueryReadUnits(bytes: number): number {
  return Math.max(0.5, Math.ceil(bytes / QUOTAS.ddbReadUnitBytes) * 0.5);
}

/**
 * Expected IP sets of one family and scope an incremental run writes (core/waf.ts delta planner,
 * one set a run): a run writes one set when it has an addition or a removal waiting (removals
 * wait up to `deferSeconds` for their set's turn, so a removal of the last `deferSeconds` is
 * still waiting: P(none) = e^(−(additions + liftRate × deferSeconds))), plus the sets whose
 * oldest removal reached its deadline before their turn came. Each of the S sets takes lifts at
 * liftRate / S a second; after it is written its next removal comes 1 / (liftRate / S) later on
 * average and must be written within `deferSeconds`: S / (deferSeconds + S / liftRate) set
 * writes a second are needed; a run every `intervalSeconds` gives one, the rest are extra.
 */
export function wafSetWritesPerRun(liftRatePerSecond: number, additions: number, sets: number, deferSeconds: number, intervalSeconds: number): number {
  if (sets <= 0) return 0;
  const work = 1 - Math.exp(-(additions + liftRatePerSecond * deferSeconds));
  if (liftRatePerSecond <= 0) return work;
  const needed = (sets / (deferSeconds + sets / liftRatePerSecond)) * intervalSeconds;
  // never more than the sets holding a removal: all of them when runs are far apart
  return Math.min(Math.max(work, needed), Math.max(work, distinctSlots(liftRatePerSecond * intervalSeconds, sets)));
}

/** IP sets of one family holding a removal that waits, at a random time: the removals of the last min(deferSeconds, sets × interval) spread over the sets. */
export function wafSetsWaiting(liftRatePerSecond: number, sets: number, deferSeconds: number, intervalSeconds: number): number {
  return distinctSlots(liftRatePerSecond * Math.min(deferSeconds, sets * intervalSeconds), sets);
}

/**
 * NACL entries one ACL changes for one family in a run: a decide write makes a new most recent
 * source (at most `capacity` a run), but a placed entry of a source still blocked stays
 * `residenceSeconds` (core/nacl.ts), so an ACL turns over at most `capacity` entries per
 * residence period: capacity × interval / residence a run.
 */
export function naclChangesPerRun(writes: number, capacity: number, residenceSeconds: number, intervalSeconds: number): number {
  const byWrites = Math.min(capacity, writes);
  return residenceSeconds > 0 ? Math.min(byWrites, (capacity * intervalSeconds) / residenceSeconds) : byWrites;
}

/**
 * Seconds a run waits on the UpdateIPSet pacer (1 call a second per account and Region): with K
 * calls, K − 1 waits of a second; E[max(0, K − 1)] = E[K] − 1 + P(K = 0).
 */
export function pacingWaitSeconds(expectedCalls: number, probabilityOfNone: number): number {
  return Math.max(0, expectedCalls / QUOTAS.wafUpdateCallsPerSecond - 1 + probabilityOfNone);
}

export interface FamilyLoad {
  /** share of the blocked sources and of the changes in this family */
  readonly share: number;
  /** share of the lifted records that sit in WAF (all when the sets hold every active record) */
  readonly wafLiftShare: number;
  /** the family's sets have room for every new block (else a new block fits only where a lift made room) */
  readonly wafHasRoom: boolean;
  /** sets holding addresses */
  readonly sets: number;
  /** NACL entries per ACL for this family */
  readonly naclCapacity: number;
}

export interface IncrementalInputs {
  /** wake windows a day that hold a change (each one wake-up of every plane) */
  readonly windowsPerDay: number;
  readonly decideWritesPerDay: number;
  readonly newBlocksPerDay: number;
  readonly liftsPerDay: number;
  readonly overlapSeconds: number;
  readonly families: readonly FamilyLoad[];
  /** WAF scopes of the plane sharing one account-Region's UpdateIPSet rate (2 in us-east-1 with CLOUDFRONT) */
  readonly scopes: number;
  readonly liftDeferSeconds: number;
  readonly naclResidenceSeconds: number;
  readonly reportEverySeconds: number;
  readonly aclsPerPlane: number;
  readonly changeItemBytes: number;
  readonly ledgerRowBytes: number;
  readonly reportItemBytes: number;
  readonly callMs: number;
  readonly cpuSeconds: number;
}

/**
 * The incremental runs of one plane: one per window with a change, or back to back when a run
 * lasts longer than the time between windows (then a run covers the changes of its own length).
 * Fixed point over the runs a day: fewer runs → more changes a run → longer runs.
 */
export function incrementalRun(x: IncrementalInputs): RunShape {
  const present = x.families.filter((f) => f.share > 0);
  let runs = x.windowsPerDay;
  let shape: RunShape = emptyRun();
  for (let i = 0; i < 200 && runs > 0; i++) {
    const writes = x.decideWritesPerDay / runs;
    const created = x.newBlocksPerDay / runs;
    const lifts = x.liftsPerDay / runs;
    const interval = SECONDS_PER_DAY / runs;
    let setsWritten = 0;
    let none = 1;
    let naclChangesPerAcl = 0;
    for (const f of present) {
      const removals = lifts * f.share * f.wafLiftShare;
      const additions = f.wafHasRoom ? created * f.share : Math.min(created * f.share, removals);
      const written = wafSetWritesPerRun(removals / interval, additions, f.sets, x.liftDeferSeconds, interval);
      setsWritten += written;
      none *= 1 - Math.min(1, written);
      naclChangesPerAcl += naclChangesPerRun(writes * f.share, f.naclCapacity, x.naclResidenceSeconds, interval);
    }
    const updateIpSetCalls = setsWritten * x.scopes;
    const wait = updateIpSetCalls > 0 ? pacingWaitSeconds(updateIpSetCalls, none) : 0;
    const naclChanges = naclChangesPerAcl * x.aclsPerPlane;
    const aclsChanged = x.aclsPerPlane * (1 - Math.exp(-naclChangesPerAcl));
    const reportWrites = Math.min(1, interval / x.reportEverySeconds);
    const calls = CODE.changeQueriesPerIncrementalRun + CODE.aclReadCallsPerChangedAcl * aclsChanged + updateIpSetCalls + naclChanges * CODE.naclCallsPerChange + reportWrites;
    const seconds = (calls * x.callMs) / 1000 + wait + x.cpuSeconds;
    const span = interval + x.overlapSeconds;
    const indexReadUnits = eventualQueryReadUnits((x.decideWritesPerDay / SECONDS_PER_DAY) * span * x.changeItemBytes) + eventualQueryReadUnits((x.liftsPerDay / SECONDS_PER_DAY) * span * x.changeItemBytes);
    const naclCapacity = present.reduce((sum, f) => sum + f.naclCapacity, 0);
    const ledgerRows = 2 * naclCapacity;
    const ledgerReadUnits = 2 * aclsChanged * strongReadUnits(ledgerRows * x.ledgerRowBytes) + naclChanges * CODE.ledgerStrongReadsPerNaclChange;
    shape = {
      runsPerDay: runs,
      seconds,
      pacingWaitSeconds: wait,
      updateIpSetCalls,
      naclChangesPerAcl,
      indexReadUnits,
      ledgerReadUnits,
      ledgerWriteUnits: naclChanges * CODE.ledgerWritesPerNaclChange * writeUnits(x.ledgerRowBytes),
      reportWriteUnits: reportWrites * writeUnits(x.reportItemBytes),
    };
    const next = Math.min(x.windowsPerDay, SECONDS_PER_DAY / seconds);
    if (Math.abs(next - runs) < 1e-9 * runs) break;
    runs = next;
  }
  return shape;
}

function emptyRun(): RunShape {
  return { runsPerDay: 0, seconds: 0, pacingWaitSeconds: 0, updateIpSetCalls: 0, naclChangesPerAcl: 0, indexReadUnits: 0, ledgerReadUnits: 0, ledgerWriteUnits: 0, reportWriteUnits: 0 };
}

function requirePositive(inputs: ScaleInputs): void {
  for (const [key, value] of Object.entries(inputs)) {
    if (key === 'prices') continue;
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
      throw new Error(`scale model: input ${key} must be a finite number ≥ 0, got ${String(value)}`);
    }
  }
  if (inputs.probesPerEvent <= 0) throw new Error(`scale model: input probesPerEvent must be > 0, got ${inputs.probesPerEvent}`);
  if (inputs.ipv6Share > 1) throw new Error(`scale model: input ipv6Share must be within 0..1, got ${inputs.ipv6Share}`);
  if (inputs.wakeWindowSeconds <= 0) throw new Error(`scale model: input wakeWindowSeconds must be > 0, got ${inputs.wakeWindowSeconds}`);
  if (inputs.reconcileMinutes < 1 || inputs.reconcileMinutes > 60) throw new Error(`scale model: input reconcileMinutes must be within 1..60, got ${inputs.reconcileMinutes}`);
}

export function scaleModel(inputs: ScaleInputs): ScaleResult {
  requirePositive(inputs);
  const p = inputs.prices;
  const days = inputs.daysPerMonth;
  const perMonth = (perDay: number, pricePerMillion: number) => ((perDay * pricePerMillion) / 1e6) * days;
  const gbMonth = (seconds: number, memoryMb: number) => seconds * (memoryMb / 1024) * p.lambdaGbSecond * days;

  const planes = inputs.accounts * inputs.regions;
  const twoScopePlanes = Math.min(inputs.cloudFrontAccounts, planes);
  const oneScopePlanes = planes - twoScopePlanes;
  const wafScopes = planes + twoScopePlanes;
  const eventsPerDay = inputs.probesPerDay / inputs.probesPerEvent;
  const newBlocks = Math.min(inputs.newBlocksPerDay, eventsPerDay);
  const refreshesPerDay = eventsPerDay - newBlocks;
  const liftsPerDay = newBlocks;
  // every event saves its record (a new block or a refresh); expiry lifts as many as are created
  const decideWrites = eventsPerDay;

  // Wake windows: one per window holding a decide write or a lift (coalesced), forwarded to every plane.
  const windowSlots = SECONDS_PER_DAY / inputs.wakeWindowSeconds;
  const changeWindowsPerDay = distinctSlots(decideWrites + liftsPerDay, windowSlots);
  const reconcilesPerDayPerPlane = MINUTES_PER_DAY / inputs.reconcileMinutes;

  // WAF and NACL capacity
  const v6 = Math.round(inputs.activeBlocked * inputs.ipv6Share);
  const v4 = inputs.activeBlocked - v6;
  const perSet = QUOTAS.wafAddressesPerSet;
  const wafSetsNeededPerScope = Math.max(1, Math.ceil(v4 / perSet)) + Math.max(1, Math.ceil(v6 / perSet));
  const familyCapacity = inputs.wafSetsPerFamily * perSet;
  const wafOverflow = Math.max(0, v4 - familyCapacity) + Math.max(0, v6 - familyCapacity);
  const naclCapacity = Math.max(0, inputs.naclQuota - 1 - inputs.foreignNaclEntriesPerAcl);
  const naclHeldPerAcl = Math.min(v4, naclCapacity) + Math.min(v6, naclCapacity);
  const family = (active: number, share: number): FamilyLoad => ({
    share,
    wafLiftShare: active <= 0 ? 0 : Math.min(1, familyCapacity / active),
    wafHasRoom: active < familyCapacity,
    sets: Math.min(inputs.wafSetsPerFamily, Math.max(1, Math.ceil(active / perSet))),
    naclCapacity,
  });
  const families = [family(v4, 1 - inputs.ipv6Share), family(v6, inputs.ipv6Share)];

  const incremental = (scopes: number, rates = 1, windows = changeWindowsPerDay): RunShape =>
    incrementalRun({
      windowsPerDay: windows,
      decideWritesPerDay: decideWrites * rates,
      newBlocksPerDay: newBlocks * rates,
      liftsPerDay: liftsPerDay * rates,
      overlapSeconds: inputs.overlapSeconds,
      families,
      scopes,
      liftDeferSeconds: inputs.liftDeferSeconds,
      naclResidenceSeconds: inputs.naclResidenceSeconds,
      reportEverySeconds: inputs.reportEverySeconds,
      aclsPerPlane: inputs.aclsPerPlane,
      changeItemBytes: inputs.changeItemBytes,
      ledgerRowBytes: inputs.ledgerRowBytes,
      reportItemBytes: inputs.reportItemBytes,
      callMs: inputs.callMs,
      cpuSeconds: lambdaCpuMs(inputs.incrementalCpuMs, inputs.enforceMemoryMb) / 1000,
    });
  const oneScope = incremental(1);
  const twoScope = incremental(2);

  // Full run: the `A` partition of `changes` (1 MB pages), the ACLs and ledger, every IP set of
  // each scope (GetIPSet, refreshing the cache); it writes every set holding a removal that waits
  // for its turn (a full run applies everything), and past WAF capacity the most recent set
  // rotates, so every set of a full family is rewritten.
  const activeBytes = inputs.activeBlocked * inputs.changeItemBytes;
  const reconcilePages = Math.max(1, Math.ceil(activeBytes / QUOTAS.ddbQueryPageBytes));
  const interval = SECONDS_PER_DAY / Math.max(1, oneScope.runsPerDay);
  const waiting = families.reduce((sum, f) => sum + (f.share > 0 ? wafSetsWaiting((liftsPerDay * f.share * f.wafLiftShare) / SECONDS_PER_DAY, f.sets, inputs.liftDeferSeconds, interval) : 0), 0);
  const overfullSets = Math.max(waiting, (v4 > familyCapacity ? inputs.wafSetsPerFamily : 0) + (v6 > familyCapacity ? inputs.wafSetsPerFamily : 0));
  const ledgerRows = 2 * naclCapacity * families.filter((f) => f.share > 0).length;
  const reconcileRun = (scopes: number): RunShape => {
    const updateIpSetCalls = overfullSets * scopes;
    const wait = updateIpSetCalls > 0 ? pacingWaitSeconds(updateIpSetCalls, 0) : 0;
    const calls = reconcilePages + 2 * inputs.aclsPerPlane + wafSetsNeededPerScope * scopes + updateIpSetCalls + 1;
    return {
      runsPerDay: reconcilesPerDayPerPlane,
      seconds: (calls * inputs.callMs) / 1000 + wait + lambdaCpuMs(inputs.reconcileCpuMs, inputs.enforceMemoryMb) / 1000,
      pacingWaitSeconds: wait,
      updateIpSetCalls,
      naclChangesPerAcl: 0,
      indexReadUnits: eventualQueryReadUnits(activeBytes),
      ledgerReadUnits: inputs.aclsPerPlane * strongReadUnits(ledgerRows * inputs.ledgerRowBytes),
      ledgerWriteUnits: 0,
      reportWriteUnits: writeUnits(inputs.reportItemBytes),
    };
  };
  const reconcileOne = reconcileRun(1);
  const reconcileTwo = reconcileRun(2);
  const acrossPlanes = (f: (r: RunShape) => number, one: RunShape, two: RunShape) => oneScopePlanes * one.runsPerDay * f(one) + twoScopePlanes * two.runsPerDay * f(two);

  // Expiry (decision plane): a timer run per distinct expiry second, plus the minute schedule.
  const timerRuns = distinctSlots(liftsPerDay, SECONDS_PER_DAY);
  const expiryRuns = timerRuns + MINUTES_PER_DAY;
  const lookaheadLifts = (liftsPerDay * CODE.expiryLookaheadSeconds) / SECONDS_PER_DAY;
  const timerBatches = liftsPerDay > 0 ? Math.ceil(distinctSlots(lookaheadLifts, CODE.expiryLookaheadSeconds) / CODE.sqsBatchEntries) : 0;

  // DynamoDB writes (write request units). A new block: burst counter + record + its `active`
  // index entry (projection ALL) + its `changes` entry + history. A refresh: record + `active`
  // entry + `changes` entry moved (its sort key chgAt changes: two index writes) + history. A lift:
  // record + `active` entry removed + `changes` entry moved to `L#day` (two) + history.
  const record = writeUnits(inputs.recordItemBytes);
  const history = writeUnits(inputs.historyItemBytes);
  const burst = writeUnits(inputs.burstItemBytes);
  const change = writeUnits(inputs.changeItemBytes);
  const ddbWritesPerDay = {
    records: newBlocks * (burst + 2 * record + history) + (refreshesPerDay + liftsPerDay) * (2 * record + history),
    changeIndex: newBlocks * change + (refreshesPerDay + liftsPerDay) * 2 * change,
    ledger: acrossPlanes((r) => r.ledgerWriteUnits, oneScope, twoScope),
    reports: acrossPlanes((r) => r.reportWriteUnits, oneScope, twoScope) + acrossPlanes((r) => r.reportWriteUnits, reconcileOne, reconcileTwo),
  };
  const ddbReadsPerDay = {
    decide: eventsPerDay * strongReadUnits(inputs.recordItemBytes),
    incremental: acrossPlanes((r) => r.indexReadUnits, oneScope, twoScope),
    reconcile: acrossPlanes((r) => r.indexReadUnits, reconcileOne, reconcileTwo),
    expiry: expiryRuns * eventualQueryReadUnits(lookaheadLifts * inputs.recordItemBytes),
    ledger: acrossPlanes((r) => r.ledgerReadUnits, oneScope, twoScope) + acrossPlanes((r) => r.ledgerReadUnits, reconcileOne, reconcileTwo),
  };

  // Queues. Decision plane FIFO: a SendMessage per decide write and per expiry run that lifted,
  // the pipe's receive and delete per window. Each plane's FIFO: send (the bus rule or the
  // reconcile trigger), receive, delete per wake-up; and, while removals wait in a plane that is not
  // busy, the plane's own wake-up for the next window about once a `selfWakeEverySeconds`
  // (deduplicated with the window's wake-up when one comes: one request). Expiry timers: standard queue.
  const sqsFifoDecision = decideWrites + timerRuns + 2 * changeWindowsPerDay;
  const selfWakesPerPlane = waiting > 0 && interval > inputs.busyGapSeconds ? Math.min(oneScope.runsPerDay, SECONDS_PER_DAY / inputs.selfWakeEverySeconds) * Math.min(1, waiting) : 0;
  const sqsFifoPlanes = (3 * (changeWindowsPerDay + reconcilesPerDayPerPlane) + selfWakesPerPlane) * planes;
  const sqsStandardRequestsPerDay = 2 * timerRuns + expiryRuns * timerBatches;

  // Lambda
  const decideSeconds = (eventsPerDay * (lambdaCpuMs(inputs.decideCpuMs, inputs.decideMemoryMb) + 4 * inputs.callMs) + newBlocks * inputs.callMs) / 1000;
  const expirySeconds = (expiryRuns * (2 + timerBatches) * inputs.callMs + liftsPerDay * 2 * inputs.callMs) / 1000;
  const incrementalSeconds = acrossPlanes((r) => r.seconds - r.pacingWaitSeconds, oneScope, twoScope);
  const pacingSeconds = acrossPlanes((r) => r.pacingWaitSeconds, oneScope, twoScope);
  const reconcileSeconds = acrossPlanes((r) => r.seconds, reconcileOne, reconcileTwo);
  const triggerSeconds = (planes * reconcilesPerDayPerPlane * inputs.callMs) / 1000;
  const enforceRuns = acrossPlanes(() => 1, oneScope, twoScope) + planes * reconcilesPerDayPerPlane;
  const lambdaRequestsPerDay = eventsPerDay + expiryRuns + enforceRuns + planes * reconcilesPerDayPerPlane;

  // EventBridge: sensor events (cross-account to the decision bus), the pipe's event per window,
  // its delivery to every plane bus; the pipe's requests.
  const chunks = Math.max(1, Math.ceil(inputs.eventBytes / QUOTAS.eventBridgeBilledChunkBytes));
  const fanoutDeliveriesPerDay = changeWindowsPerDay * planes;

  const monthlyCost: CostLines = {
    sqsFifoDecisionQueue: perMonth(sqsFifoDecision, p.sqsFifoRequestPerMillion),
    sqsFifoPlaneQueues: perMonth(sqsFifoPlanes, p.sqsFifoRequestPerMillion),
    sqsStandardExpiryTimers: perMonth(sqsStandardRequestsPerDay, p.sqsStandardRequestPerMillion),
    lambdaRequests: perMonth(lambdaRequestsPerDay, p.lambdaRequestPerMillion),
    lambdaDecideGbSeconds: gbMonth(decideSeconds, inputs.decideMemoryMb),
    lambdaExpiryGbSeconds: gbMonth(expirySeconds, inputs.decideMemoryMb),
    lambdaEnforceIncrementalGbSeconds: gbMonth(incrementalSeconds, inputs.enforceMemoryMb),
    lambdaEnforcePacingGbSeconds: gbMonth(pacingSeconds, inputs.enforceMemoryMb),
    lambdaEnforceReconcileGbSeconds: gbMonth(reconcileSeconds, inputs.enforceMemoryMb),
    lambdaReconcileTriggerGbSeconds: gbMonth(triggerSeconds, inputs.decideMemoryMb),
    ddbReadsDecide: perMonth(ddbReadsPerDay.decide, p.ddbReadUnitPerMillion),
    ddbReadsIncremental: perMonth(ddbReadsPerDay.incremental, p.ddbReadUnitPerMillion),
    ddbReadsReconcile: perMonth(ddbReadsPerDay.reconcile, p.ddbReadUnitPerMillion),
    ddbReadsExpiry: perMonth(ddbReadsPerDay.expiry, p.ddbReadUnitPerMillion),
    ddbReadsLedger: perMonth(ddbReadsPerDay.ledger, p.ddbReadUnitPerMillion),
    ddbWritesRecords: perMonth(ddbWritesPerDay.records, p.ddbWriteUnitPerMillion),
    ddbWritesChangeIndex: perMonth(ddbWritesPerDay.changeIndex, p.ddbWriteUnitPerMillion),
    ddbWritesLedger: perMonth(ddbWritesPerDay.ledger, p.ddbWriteUnitPerMillion),
    ddbWritesReports: perMonth(ddbWritesPerDay.reports, p.ddbWriteUnitPerMillion),
    eventBridgeEvents: perMonth(eventsPerDay * chunks + changeWindowsPerDay, p.eventBridgeCustomEventPerMillion),
    eventBridgeCrossAccount: perMonth(eventsPerDay * chunks + fanoutDeliveriesPerDay, p.eventBridgeCrossAccountDeliveryPerMillion),
    eventBridgePipes: perMonth(changeWindowsPerDay, p.pipesRequestPerMillion),
    firewallManager: inputs.fmsPolicies * inputs.fmsRegions * p.fmsPolicyRegionMonth,
  };
  const monthlyCostUsd = Object.values(monthlyCost).reduce((a, b) => a + b, 0);
  const backfillUsd =
    (inputs.activeBlocked * (2 * record + change) * p.ddbWriteUnitPerMillion) / 1e6 + (eventualQueryReadUnits(inputs.activeBlocked * inputs.recordItemBytes) * p.ddbReadUnitPerMillion) / 1e6;

  // Limits
  const peak = inputs.peakFactor;
  const scopesSharingQuota = twoScopePlanes > 0 ? 2 : 1;
  // at peak rates, every window holds changes
  const peakRun = incremental(scopesSharingQuota, peak, Math.min(windowSlots, changeWindowsPerDay * peak));
  const updateIpSetCallsPerSecondPeak = peakRun.updateIpSetCalls / Math.max(inputs.wakeWindowSeconds, peakRun.seconds);
  const naclWritesPerSecondPerPlane = (oneScope.runsPerDay * oneScope.naclChangesPerAcl * inputs.aclsPerPlane) / SECONDS_PER_DAY;
  const partitionReadsPerSecond = (ddbReadsPerDay.reconcile + ddbReadsPerDay.incremental * peak) / SECONDS_PER_DAY;
  const longestRun = Math.max(oneScope.seconds, twoScope.seconds, reconcileOne.seconds, reconcileTwo.seconds);
  const limits: LimitCheck[] = [
    { code: LIMIT_CODES.naclRules, name: `NACL rules per ACL (${inputs.naclQuota} with the default deny)`, utilisation: naclCapacity === 0 ? Infinity : Math.max(v4, v6) / naclCapacity, kind: 'by design' },
    { code: LIMIT_CODES.wafAddresses, name: `WAF addresses per family per scope (${inputs.wafSetsPerFamily} sets × ${perSet})`, utilisation: Math.max(v4, v6) / familyCapacity, kind: 'loses blocks' },
    { code: LIMIT_CODES.wafIpSets, name: `WAF IP sets per account per Region (${QUOTAS.wafIpSetsPerAccountRegion})`, utilisation: (wafSetsNeededPerScope * scopesSharingQuota) / QUOTAS.wafIpSetsPerAccountRegion, kind: 'deploy' },
    { code: LIMIT_CODES.webAclWcu, name: `web ACL capacity (${QUOTAS.wafWebAclWcu} WCU; portsnare's rule group reserves 2 × 10)`, utilisation: (2 * 10 * QUOTAS.wafWcuPerIpSetReference) / QUOTAS.wafWebAclWcu, kind: 'deploy' },
    { code: LIMIT_CODES.updateIpSetRate, name: `UpdateIPSet calls (${QUOTAS.wafUpdateCallsPerSecond}/s per account per Region)`, utilisation: updateIpSetCallsPerSecondPeak / QUOTAS.wafUpdateCallsPerSecond, kind: 'degrades' },
    { code: LIMIT_CODES.putEventsTps, name: `EventBridge PutEvents per account per Region (${QUOTAS.eventBridgePutEventsTpsLowestTier}/s, lowest tier)`, utilisation: ((eventsPerDay / Math.max(1, planes)) / SECONDS_PER_DAY) * peak / QUOTAS.eventBridgePutEventsTpsLowestTier, kind: 'degrades' },
    { code: LIMIT_CODES.invocationsTps, name: `EventBridge invocations in the decision account (${QUOTAS.eventBridgeInvocationsTpsHighestTier}/s)`, utilisation: ((eventsPerDay / SECONDS_PER_DAY) * peak + Math.min(planes / inputs.wakeWindowSeconds, (fanoutDeliveriesPerDay / SECONDS_PER_DAY) * peak)) / QUOTAS.eventBridgeInvocationsTpsHighestTier, kind: 'degrades' },
    { code: LIMIT_CODES.ddbPartitionReads, name: `DynamoDB reads of the \`changes\` index's active partition (${QUOTAS.ddbPartitionReadUnitsPerSecond} read units/s per partition)`, utilisation: partitionReadsPerSecond / QUOTAS.ddbPartitionReadUnitsPerSecond, kind: 'degrades' },
    { code: LIMIT_CODES.burstBreaker, name: `burst breaker (${inputs.burstLimitPerMinute} new blocks a minute)`, utilisation: ((newBlocks / MINUTES_PER_DAY) * peak) / Math.max(1, inputs.burstLimitPerMinute), kind: 'by design' },
    { code: LIMIT_CODES.enforceTimeout, name: `the longest enforce run against the function timeout (${inputs.enforceTimeoutSeconds} s)`, utilisation: longestRun / Math.max(1, inputs.enforceTimeoutSeconds), kind: 'loses blocks' },
    { code: LIMIT_CODES.fmsPolicies, name: `Firewall Manager policies per organization per Region (${QUOTAS.fmsPoliciesPerOrgRegion})`, utilisation: inputs.fmsPolicies / QUOTAS.fmsPoliciesPerOrgRegion, kind: 'deploy' },
  ];
  const hit = limits.filter((l) => l.utilisation >= 1).sort((a, b) => b.utilisation - a.utilisation);

  return {
    planes,
    twoScopePlanes,
    wafScopes,
    eventsPerDay,
    refreshesPerDay,
    liftsPerDay,
    decideInvocationsPerDay: eventsPerDay,
    changeWindowsPerDay,
    reconcilesPerDayPerPlane,
    oneScope,
    twoScope,
    reconcile: reconcileTwo,
    reconcilePages,
    ddbWritesPerDay,
    ddbReadsPerDay,
    sqsFifoRequestsPerDay: sqsFifoDecision + sqsFifoPlanes,
    sqsStandardRequestsPerDay,
    lambdaRequestsPerDay,
    fanoutDeliveriesPerDay,
    naclWritesPerSecondPerPlane,
    wafSetsNeededPerScope,
    wafOverflow,
    naclHeldPerAcl,
    updateIpSetCallsPerSecondPeak,
    monthlyCost,
    monthlyCostUsd,
    backfillUsd,
    limits,
    firstLimit: hit[0],
    firstHardLimit: hit.find((l) => l.kind !== 'by design'),
  };
}
