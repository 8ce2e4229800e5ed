/**
 * Scale on paper: what portsnare costs and which limit it meets at a given load, as arithmetic
 * over AWS quotas, AWS prices, the measured work per event (bench/scale.bench.ts feeds it) and
 * stated assumptions. Pure: no I/O, no clock. docs/scale.md explains every term and the code
 * table of `LIMIT_CODES`.
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
  /** https://aws.amazon.com/lambda/pricing/ (x86) */
  readonly lambdaRequestPerMillion: number;
  readonly lambdaGbSecond: number;
  /** https://aws.amazon.com/dynamodb/pricing/on-demand/ */
  readonly ddbWriteUnitPerMillion: number;
  readonly ddbReadUnitPerMillion: number;
  /** https://aws.amazon.com/sqs/pricing/ (FIFO) */
  readonly sqsFifoRequestPerMillion: number;
  /** https://aws.amazon.com/firewall-manager/pricing/ (per policy per Region per month) */
  readonly fmsPolicyRegionMonth: number;
}

export const DEFAULT_PRICES: Prices = {
  eventBridgeCustomEventPerMillion: 1.0,
  eventBridgeCrossAccountDeliveryPerMillion: 0.05,
  lambdaRequestPerMillion: 0.2,
  lambdaGbSecond: 0.0000166667,
  ddbWriteUnitPerMillion: 0.625,
  ddbReadUnitPerMillion: 0.125,
  sqsFifoRequestPerMillion: 0.5,
  fmsPolicyRegionMonth: 100,
};

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
  /** accounts with a CLOUDFRONT scope (its IP sets live in us-east-1, enforced by that plane) */
  readonly cloudFrontAccounts: number;
  readonly aclsPerPlane: number;
  readonly naclQuota: number;
  readonly foreignNaclEntriesPerAcl: number;
  readonly wafSetsPerFamily: number;
  readonly fmsPolicies: number;
  readonly fmsRegions: number;
  readonly burstLimitPerMinute: number;
  // measured (bench/scale.bench.ts) — DynamoDB item sizes per its sizing rules
  readonly recordItemBytes: number;
  readonly historyItemBytes: number;
  readonly burstItemBytes: number;
  readonly eventBytes: number;
  /** in-process decide work per event (validation, guard, policy), ms */
  readonly decideCpuMs: number;
  /** in-process desired-state diff at `activeBlocked`, ms */
  readonly enforcePlanMs: number;
  // assumptions
  /** round trip of one DynamoDB/SQS call from Lambda, ms */
  readonly callMs: number;
  readonly decideMemoryMb: number;
  readonly enforceMemoryMb: number;
  /** the enforce function's timeout (lib/EnumerationBlocker.ts), seconds */
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

export interface ScaleResult {
  readonly planes: number;
  readonly wafScopes: number;
  readonly eventsPerDay: number;
  readonly refreshesPerDay: number;
  readonly decideInvocationsPerDay: number;
  readonly ddbWritesPerDay: number;
  readonly decideReadUnitsPerDay: number;
  readonly wakeSecondsPerDay: number;
  readonly enforceRunSeconds: number;
  readonly enforceRunsPerDayPerPlane: number;
  readonly fullReadUnits: number;
  readonly enforceReadUnitsPerDay: number;
  readonly wafSetsNeededPerScope: number;
  readonly wafOverflow: number;
  readonly naclHeldPerAcl: number;
  readonly fanoutDeliveriesPerDay: number;
  readonly updateIpSetCallsPerSecondPeak: number;
  readonly monthlyCost: Readonly<Record<'eventBridge' | 'lambda' | 'dynamodb' | 'sqs' | 'fms', number>>;
  readonly monthlyCostUsd: number;
  /** the same without the enforce function's full re-read of the `active` index */
  readonly monthlyCostIncrementalUsd: number;
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

/**
 * How long one enforce run takes and how many UpdateIPSet calls it makes, when wake-ups come
 * faster than runs end: a run covers the changes of its interval; its WAF changes touch
 * S(1 − e^(−n/S)) of S sets, each UpdateIPSet paced one a second (the WAF quota); its NACL calls
 * take `naclSecondsPerSecond` for each second of interval. Fixed point, from a 1-second interval.
 */
export function enforceRun(fixedSeconds: number, wafChangesPerSecond: number, sets: number, scopesSharingQuota: number, naclSecondsPerSecond = 0): { seconds: number; callsPerRun: number } {
  if (naclSecondsPerSecond >= 1) throw new Error(`enforceRun: NACL calls alone take ${naclSecondsPerSecond}s per second: runs never catch up`);
  let interval = 1;
  let calls = 0;
  for (let i = 0; i < 100; i++) {
    calls = Math.ceil(distinctSlots(wafChangesPerSecond * interval, sets)) * scopesSharingQuota;
    const next = Math.max(1, fixedSeconds + calls / QUOTAS.wafUpdateCallsPerSecond + naclSecondsPerSecond * interval);
    if (Math.abs(next - interval) < 1e-9) break;
    interval = next;
  }
  return { seconds: interval, callsPerRun: calls };
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
}

export function scaleModel(inputs: ScaleInputs): ScaleResult {
  requirePositive(inputs);
  const p = inputs.prices;
  const planes = inputs.accounts * inputs.regions;
  const wafScopes = planes + inputs.cloudFrontAccounts;
  const eventsPerDay = inputs.probesPerDay / inputs.probesPerEvent;
  const newBlocks = Math.min(inputs.newBlocksPerDay, eventsPerDay);
  const refreshesPerDay = eventsPerDay - newBlocks;
  const liftsPerDay = newBlocks;

  // DynamoDB writes (write request units): a new block = burst counter + record + its copy in the
  // `active` index (projection ALL) + history; a refresh = record + index + history; a lift by
  // expiry = record + removal from the index + history.
  const record = writeUnits(inputs.recordItemBytes);
  const history = writeUnits(inputs.historyItemBytes);
  const burst = writeUnits(inputs.burstItemBytes);
  const ddbWritesPerDay = newBlocks * (burst + 2 * record + history) + (refreshesPerDay + liftsPerDay) * (2 * record + history);
  const decideReadUnitsPerDay = eventsPerDay * strongReadUnits(inputs.recordItemBytes);

  // Wake-ups of each plane's enforce: one per second with a decide write, one per minute with a
  // lift, one per reconcile (every 5 minutes).
  const wakeSecondsPerDay = distinctSlots(eventsPerDay, SECONDS_PER_DAY) + distinctSlots(liftsPerDay, MINUTES_PER_DAY) + MINUTES_PER_DAY / 5;

  // One enforce run re-reads the whole `active` index (eventually consistent Query, 1 MB pages).
  const activeBytes = inputs.activeBlocked * inputs.recordItemBytes;
  const fullReadUnits = Math.ceil(activeBytes / QUOTAS.ddbReadUnitBytes) * 0.5;
  const pages = Math.max(1, Math.ceil(activeBytes / QUOTAS.ddbQueryPageBytes));
  const wafChangesPerSecond = (newBlocks + liftsPerDay) / SECONDS_PER_DAY;
  const sets = Math.max(1, inputs.wafSetsPerFamily);
  const scopesSharingQuota = inputs.cloudFrontAccounts > 0 ? 2 : 1;
  // Fixed work of a run: the Query pages, one DescribeNetworkAcls, one GetIPSet per configured set,
  // the diff; then the UpdateIPSet calls (paced) and one NACL call per ACL per decide write.
  const readCalls = pages + 1 + 2 * inputs.wafSetsPerFamily * scopesSharingQuota;
  const fixedSeconds = (readCalls * inputs.callMs + lambdaCpuMs(inputs.enforcePlanMs, inputs.enforceMemoryMb)) / 1000;
  const naclSecondsPerSecond = (eventsPerDay / SECONDS_PER_DAY) * inputs.aclsPerPlane * (inputs.callMs / 1000);
  const run = enforceRun(fixedSeconds, wafChangesPerSecond, sets, scopesSharingQuota, naclSecondsPerSecond);
  const enforceRunsPerDayPerPlane = Math.min(wakeSecondsPerDay, SECONDS_PER_DAY / run.seconds);
  const enforceReadUnitsPerDay = enforceRunsPerDayPerPlane * planes * fullReadUnits;

  // Fan-out: the decision plane forwards each wake-up second to every plane (coalesced per second).
  const fanoutDeliveriesPerDay = wakeSecondsPerDay * planes;

  // WAF and NACL capacity
  const v6 = Math.round(inputs.activeBlocked * inputs.ipv6Share);
  const v4 = inputs.activeBlocked - v6;
  const perSet = QUOTAS.wafAddressesPerSet;
  const wafSetsNeededPerScope = Math.max(1, Math.ceil(v4 / perSet)) + Math.max(1, Math.ceil(v6 / perSet));
  const familyCapacity = inputs.wafSetsPerFamily * perSet;
  const wafOverflow = Math.max(0, v4 - familyCapacity) + Math.max(0, v6 - familyCapacity);
  const naclCapacity = Math.max(0, inputs.naclQuota - 1 - inputs.foreignNaclEntriesPerAcl);
  const naclHeldPerAcl = Math.min(v4, naclCapacity) + Math.min(v6, naclCapacity);

  const peak = inputs.peakFactor;
  const updateIpSetCallsPerSecondPeak = distinctSlots(wafChangesPerSecond * peak, sets) * scopesSharingQuota;
  const limits: LimitCheck[] = [
    { code: LIMIT_CODES.naclRules, name: `NACL rules per ACL (${inputs.naclQuota} with the default deny)`, utilisation: naclCapacity === 0 ? Infinity : Math.max(v4, v6) / naclCapacity, kind: 'by design' },
    { code: LIMIT_CODES.wafAddresses, name: `WAF addresses per family per scope (${inputs.wafSetsPerFamily} sets × ${perSet})`, utilisation: Math.max(v4, v6) / familyCapacity, kind: 'loses blocks' },
    { code: LIMIT_CODES.wafIpSets, name: `WAF IP sets per account per Region (${QUOTAS.wafIpSetsPerAccountRegion})`, utilisation: (wafSetsNeededPerScope * scopesSharingQuota) / QUOTAS.wafIpSetsPerAccountRegion, kind: 'deploy' },
    { code: LIMIT_CODES.webAclWcu, name: `web ACL capacity (${QUOTAS.wafWebAclWcu} WCU; portsnare's rule group reserves 2 × 10)`, utilisation: (2 * 10 * QUOTAS.wafWcuPerIpSetReference) / QUOTAS.wafWebAclWcu, kind: 'deploy' },
    { code: LIMIT_CODES.updateIpSetRate, name: `UpdateIPSet calls (${QUOTAS.wafUpdateCallsPerSecond}/s per account per Region)`, utilisation: updateIpSetCallsPerSecondPeak / QUOTAS.wafUpdateCallsPerSecond, kind: 'degrades' },
    { code: LIMIT_CODES.putEventsTps, name: `EventBridge PutEvents per account per Region (${QUOTAS.eventBridgePutEventsTpsLowestTier}/s, lowest tier)`, utilisation: ((eventsPerDay / Math.max(1, planes)) / SECONDS_PER_DAY) * peak / QUOTAS.eventBridgePutEventsTpsLowestTier, kind: 'degrades' },
    { code: LIMIT_CODES.invocationsTps, name: `EventBridge invocations in the decision account (${QUOTAS.eventBridgeInvocationsTpsHighestTier}/s)`, utilisation: ((eventsPerDay / SECONDS_PER_DAY) * peak + Math.min(planes, (fanoutDeliveriesPerDay / SECONDS_PER_DAY) * peak)) / QUOTAS.eventBridgeInvocationsTpsHighestTier, kind: 'degrades' },
    { code: LIMIT_CODES.ddbPartitionReads, name: `DynamoDB reads of the one-key \`active\` index (${QUOTAS.ddbPartitionReadUnitsPerSecond} read units/s per partition)`, utilisation: (planes * fullReadUnits * Math.min(1 / run.seconds, (enforceRunsPerDayPerPlane / SECONDS_PER_DAY) * peak)) / QUOTAS.ddbPartitionReadUnitsPerSecond, kind: 'degrades' },
    { code: LIMIT_CODES.burstBreaker, name: `burst breaker (${inputs.burstLimitPerMinute} new blocks a minute)`, utilisation: ((newBlocks / MINUTES_PER_DAY) * peak) / Math.max(1, inputs.burstLimitPerMinute), kind: 'by design' },
    { code: LIMIT_CODES.enforceTimeout, name: `one enforce run against the function timeout (${inputs.enforceTimeoutSeconds} s)`, utilisation: run.seconds / Math.max(1, inputs.enforceTimeoutSeconds), kind: 'loses blocks' },
    { code: LIMIT_CODES.fmsPolicies, name: `Firewall Manager policies per organization per Region (${QUOTAS.fmsPoliciesPerOrgRegion})`, utilisation: inputs.fmsPolicies / QUOTAS.fmsPoliciesPerOrgRegion, kind: 'deploy' },
  ];
  const hit = limits.filter((l) => l.utilisation >= 1).sort((a, b) => b.utilisation - a.utilisation);
  const firstLimit = hit[0];
  const firstHardLimit = hit.find((l) => l.kind !== 'by design');

  // Monthly cost
  const days = inputs.daysPerMonth;
  const chunks = Math.max(1, Math.ceil(inputs.eventBytes / QUOTAS.eventBridgeBilledChunkBytes));
  const eventBridgePerDay =
    ((eventsPerDay * chunks + wakeSecondsPerDay) * p.eventBridgeCustomEventPerMillion + (eventsPerDay * chunks + fanoutDeliveriesPerDay) * p.eventBridgeCrossAccountDeliveryPerMillion) / 1e6;
  // decide: GetItem, PutItem (record), PutItem (history), SendMessage; + UpdateItem (burst) on a new block
  const decideSeconds = (eventsPerDay * (lambdaCpuMs(inputs.decideCpuMs, inputs.decideMemoryMb) + 4 * inputs.callMs) + newBlocks * inputs.callMs) / 1000;
  const lambdaRequests = eventsPerDay + enforceRunsPerDayPerPlane * planes + MINUTES_PER_DAY + (MINUTES_PER_DAY / 5) * planes;
  const gbSeconds = decideSeconds * (inputs.decideMemoryMb / 1024) + enforceRunsPerDayPerPlane * planes * run.seconds * (inputs.enforceMemoryMb / 1024);
  const lambdaPerDay = (lambdaRequests * p.lambdaRequestPerMillion) / 1e6 + gbSeconds * p.lambdaGbSecond;
  const ddbWritePerDay = (ddbWritesPerDay * p.ddbWriteUnitPerMillion) / 1e6;
  const ddbDecideReadPerDay = (decideReadUnitsPerDay * p.ddbReadUnitPerMillion) / 1e6;
  const ddbEnforceReadPerDay = (enforceReadUnitsPerDay * p.ddbReadUnitPerMillion) / 1e6;
  const sqsPerDay = (3 * wakeSecondsPerDay * planes * p.sqsFifoRequestPerMillion) / 1e6;
  const monthlyCost = {
    eventBridge: eventBridgePerDay * days,
    lambda: lambdaPerDay * days,
    dynamodb: (ddbWritePerDay + ddbDecideReadPerDay + ddbEnforceReadPerDay) * days,
    sqs: sqsPerDay * days,
    fms: inputs.fmsPolicies * inputs.fmsRegions * p.fmsPolicyRegionMonth,
  };
  const monthlyCostUsd = Object.values(monthlyCost).reduce((a, b) => a + b, 0);
  return {
    planes,
    wafScopes,
    eventsPerDay,
    refreshesPerDay,
    decideInvocationsPerDay: eventsPerDay,
    ddbWritesPerDay,
    decideReadUnitsPerDay,
    wakeSecondsPerDay,
    enforceRunSeconds: run.seconds,
    enforceRunsPerDayPerPlane,
    fullReadUnits,
    enforceReadUnitsPerDay,
    wafSetsNeededPerScope,
    wafOverflow,
    naclHeldPerAcl,
    fanoutDeliveriesPerDay,
    updateIpSetCallsPerSecondPeak,
    monthlyCost,
    monthlyCostUsd,
    monthlyCostIncrementalUsd: monthlyCostUsd - ddbEnforceReadPerDay * days,
    limits,
    firstLimit,
    firstHardLimit,
  };
}
