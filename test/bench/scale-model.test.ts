import { describe, expect, it } from 'vitest';
import { distinctSlots, dynamoItemBytes, eventualQueryReadUnits, incrementalRun, lambdaCpuMs, LIMIT_CODES, pacingWaitSeconds, type ScaleInputs, scaleModel, strongReadUnits, wafSetsWritten, writeUnits } from '../../bench/scale-model';

// Every expected value below was worked out by hand (or on a calculator) from the rules the
// model states, not by calling the model.

describe('capacity units', () => {
  it('rounds item sizes up to 1 KB per write and 4 KB per strongly consistent read', () => {
    expect(writeUnits(1)).toBe(1);
    expect(writeUnits(1024)).toBe(1);
    expect(writeUnits(1025)).toBe(2);
    expect(writeUnits(2500)).toBe(3);
    expect(strongReadUnits(4096)).toBe(1);
    expect(strongReadUnits(4097)).toBe(2);
  });
});

describe('dynamoItemBytes (DynamoDB item-size rules)', () => {
  it('counts names, strings, numbers, booleans, null, lists and maps', () => {
    expect(dynamoItemBytes({ a: 'abc' })).toBe(4); // 1 + 3
    expect(dynamoItemBytes({ count: 57 })).toBe(7); // 5 + (1 byte per 2 digits + 1)
    expect(dynamoItemBytes({ n: 100 })).toBe(3); // trailing zeros trimmed: 1 + (1 + 1)
    expect(dynamoItemBytes({ n: 123456 })).toBe(5); // 1 + (3 + 1)
    expect(dynamoItemBytes({ ok: true, z: null })).toBe(5); // 2 + 1 + 1 + 1
    expect(dynamoItemBytes({ l: ['ab', 'c'] })).toBe(9); // 1 + 3 + (1 + 2) + (1 + 1)
    expect(dynamoItemBytes({ m: { x: true } })).toBe(7); // 1 + 3 + (1 + 1 + 1)
    expect(dynamoItemBytes({ s: 'é' })).toBe(3); // UTF-8: 2 bytes
    expect(dynamoItemBytes({ skip: undefined })).toBe(0);
  });
});

describe('distinctSlots', () => {
  it('is the expected number of occupied slots', () => {
    expect(distinctSlots(0, 10)).toBe(0);
    expect(distinctSlots(5, 0)).toBe(0);
    expect(distinctSlots(86_400, 86_400)).toBeCloseTo(54_615.216, 2); // 86,400 × (1 − 1/e)
  });
});

describe('lambdaCpuMs', () => {
  it('scales CPU-bound work by 1,769 MB per vCPU', () => {
    expect(lambdaCpuMs(10, 512)).toBeCloseTo(34.55078125, 8); // 10 × 1769 / 512
    expect(lambdaCpuMs(10, 1769)).toBe(10);
    expect(lambdaCpuMs(10, 3538)).toBe(10); // never faster than one core
  });
});

describe('eventualQueryReadUnits', () => {
  it('rounds a Query up to 4 KB, half a unit each, half a unit at least', () => {
    expect(eventualQueryReadUnits(0)).toBe(0.5);
    expect(eventualQueryReadUnits(4096)).toBe(0.5);
    expect(eventualQueryReadUnits(4097)).toBe(1);
    expect(eventualQueryReadUnits(15_000_000)).toBe(1831.5); // ceil(3,662.1) = 3,663 × 0.5
  });
});

describe('wafSetsWritten', () => {
  it('counts the sets removals touch, and one more only for additions in a run with no removal', () => {
    expect(wafSetsWritten(0, 0, 10)).toBe(0);
    expect(wafSetsWritten(0, 3, 10)).toBeCloseTo(0.950213, 6); // 1 − e^−3
    expect(wafSetsWritten(10, 0, 10)).toBeCloseTo(6.321206, 6); // 10 (1 − e^−1)
    // one set: it is written when anything happens, 1 − e^−(2+1)
    expect(wafSetsWritten(2, 1, 1)).toBeCloseTo(0.950213, 6);
    expect(wafSetsWritten(5, 5, 0)).toBe(0);
  });
});

describe('pacingWaitSeconds', () => {
  it('is E[K] − 1 + P(K = 0) seconds at one UpdateIPSet a second, never negative', () => {
    expect(pacingWaitSeconds(3, 0)).toBe(2);
    expect(pacingWaitSeconds(0.5, 0.6)).toBeCloseTo(0.1, 10);
    expect(pacingWaitSeconds(0.2, 0.5)).toBe(0);
  });
});

describe('incrementalRun', () => {
  const quiet = {
    windowsPerDay: 86_400,
    decideWritesPerDay: 0,
    newBlocksPerDay: 0,
    liftsPerDay: 0,
    overlapSeconds: 30,
    families: [{ share: 1, wafLiftShare: 1, wafHasRoom: true, sets: 1, naclCapacity: 0 }],
    scopes: 1,
    aclsPerPlane: 0,
    changeItemBytes: 150,
    ledgerRowBytes: 100,
    reportItemBytes: 200,
    callMs: 10,
    cpuSeconds: 0,
  };

  it('with nothing changed: three index Queries and the report, one run a window', () => {
    const run = incrementalRun(quiet);
    expect(run.runsPerDay).toBe(86_400);
    expect(run.seconds).toBeCloseTo(0.04, 10); // (3 + 1) calls × 10 ms
    expect(run.indexReadUnits).toBe(1.5); // 3 × 0.5
    expect(run.updateIpSetCalls).toBe(0);
    expect(run.reportWriteUnits).toBe(1);
  });

  it('runs back to back when two scopes wait on the pacer longer than a window', () => {
    // lifts so many that every run writes the one set in both scopes: 2 calls, 1 s waiting;
    // (3 + 2 + 1) calls × 10 ms + 1 s = 1.06 s; 86,400 / 1.06 runs
    const run = incrementalRun({ ...quiet, liftsPerDay: 1e9, scopes: 2 });
    expect(run.updateIpSetCalls).toBeCloseTo(2, 10);
    expect(run.pacingWaitSeconds).toBeCloseTo(1, 10);
    expect(run.seconds).toBeCloseTo(1.06, 10);
    expect(run.runsPerDay).toBeCloseTo(81_509.43396, 4);
  });
});

// Expected values of the small scenario: worked on a calculator from the formulas of
// docs/scale.md (an independent re-computation, not the model's helpers).
const SMALL: ScaleInputs = {
  probesPerDay: 8_640,
  probesPerEvent: 2,
  activeBlocked: 10_000,
  newBlocksPerDay: 1_440,
  ipv6Share: 0,
  peakFactor: 2,
  accounts: 2,
  regions: 3,
  cloudFrontAccounts: 1,
  aclsPerPlane: 2,
  naclQuota: 20,
  foreignNaclEntriesPerAcl: 4,
  wafSetsPerFamily: 1,
  fmsPolicies: 1,
  fmsRegions: 2,
  burstLimitPerMinute: 100,
  wakeWindowSeconds: 10,
  overlapSeconds: 30,
  reconcileMinutes: 10,
  recordItemBytes: 100,
  historyItemBytes: 1_500,
  burstItemBytes: 40,
  changeItemBytes: 100,
  ledgerRowBytes: 100,
  reportItemBytes: 200,
  eventBytes: 1_000,
  decideCpuMs: 0.1,
  incrementalCpuMs: 0,
  reconcileCpuMs: 60,
  callMs: 10,
  decideMemoryMb: 1_769,
  enforceMemoryMb: 1_769,
  enforceTimeoutSeconds: 60,
  daysPerMonth: 30,
  prices: {
    eventBridgeCustomEventPerMillion: 1,
    eventBridgeCrossAccountDeliveryPerMillion: 1,
    pipesRequestPerMillion: 1,
    lambdaRequestPerMillion: 1,
    lambdaGbSecond: 0.00001,
    ddbWriteUnitPerMillion: 1,
    ddbReadUnitPerMillion: 1,
    sqsFifoRequestPerMillion: 1,
    sqsStandardRequestPerMillion: 1,
    fmsPolicyRegionMonth: 100,
  },
};

describe('scaleModel on a small hand-computed scenario', () => {
  const r = scaleModel(SMALL);

  it('turns probes into events, invocations, wake windows and writes', () => {
    expect(r.planes).toBe(6);
    expect(r.twoScopePlanes).toBe(1);
    expect(r.wafScopes).toBe(7);
    expect(r.eventsPerDay).toBe(4_320); // 8,640 / 2
    expect(r.refreshesPerDay).toBe(2_880); // 4,320 − 1,440
    expect(r.liftsPerDay).toBe(1_440);
    // 5,760 changes in 8,640 windows of 10 s: 8,640 (1 − e^(−2/3))
    expect(r.changeWindowsPerDay).toBeCloseTo(4_204.07609, 4);
    expect(r.reconcilesPerDayPerPlane).toBe(144);
    // new: burst 1 + record 1 + active index 1 + history 2 = 5; refresh and lift: 1 + 1 + 2 = 4
    expect(r.ddbWritesPerDay.records).toBe(24_480); // 1,440 × 5 + 4,320 × 4
    // changes index: a new entry 1; a refresh or lift moves it (2)
    expect(r.ddbWritesPerDay.changeIndex).toBe(10_080); // 1,440 + 4,320 × 2
  });

  it('shapes an incremental run per plane kind', () => {
    // per run 1.0276 decide writes, 0.3425 lifts and as many additions (the one set is full)
    expect(r.oneScope.runsPerDay).toBeCloseTo(4_204.07609, 4);
    expect(r.oneScope.naclChangesPerAcl).toBeCloseTo(1.027574, 6); // 4,320 / 4,204.08
    expect(r.oneScope.updateIpSetCalls).toBeCloseTo(0.495935, 6); // 1 − e^(−0.6851)
    expect(r.oneScope.pacingWaitSeconds).toBeCloseTo(0, 10); // one set: never two calls
    // (3 + 4 + 2(1 − e^−1.0276) + 0.4959 + 2 × 1.0276 × 5 + 1) × 10 ms
    expect(r.oneScope.seconds).toBeCloseTo(0.200559, 6);
    expect(r.twoScope.pacingWaitSeconds).toBeCloseTo(0.495935, 6); // 2 × 0.4959 − 1 + e^−0.6851
    expect(r.twoScope.seconds).toBeCloseTo(0.701453, 6);
    // 10 s + 30 s overlap of writes (2 KB) and lifts (0.7 KB), 16 recent entries: 3 × 0.5
    expect(r.oneScope.indexReadUnits).toBe(1.5);
    // ledger lists (2 + 2(1 − e^−1.0276)) × 1 unit + 2 × 1.0276 GetItems
    expect(r.oneScope.ledgerReadUnits).toBeCloseTo(5.339400, 6);
    expect(r.oneScope.ledgerWriteUnits).toBeCloseTo(4.110297, 6); // 2 ACLs × 1.0276 × 2 rows
  });

  it('shapes the full run', () => {
    // 1 page (1 MB of 10,000 × 100 B), 2 ACLs × 2 reads, 2 sets per scope × 2 scopes, report; 60 ms CPU
    expect(r.reconcile.seconds).toBeCloseTo(0.16, 10);
    expect(r.reconcile.indexReadUnits).toBe(122.5); // 1,000,000 B → 245 × 4 KB × 0.5
    expect(r.reconcilePages).toBe(1);
  });

  it('counts reads by kind, queue requests and Lambda requests', () => {
    expect(r.ddbReadsPerDay.decide).toBe(4_320);
    expect(r.ddbReadsPerDay.incremental).toBeCloseTo(37_836.6848, 3); // 6 planes × 4,204.08 × 1.5
    expect(r.ddbReadsPerDay.reconcile).toBe(105_840); // 6 × 144 × 122.5
    expect(r.ddbReadsPerDay.ledger).toBeCloseTo(136_411.4693, 3);
    expect(r.ddbWritesPerDay.ledger).toBeCloseTo(103_680, 3); // 6 × 4,204.08 × 4.1103
    expect(r.ddbWritesPerDay.reports).toBeCloseTo(26_088.4565, 3); // 6 × (4,204.08 + 144)
    // decision FIFO: 4,320 sends + 1,428.04 expiry wakes + 2 × 4,204.08; planes: 3 × (4,204.08 + 144) × 6
    expect(r.sqsFifoRequestsPerDay).toBeCloseTo(14_156.2186 + 78_265.3696, 3);
    // timers: 2 × 1,428.04 + (1,428.04 + 1,440) × 1 batch
    expect(r.sqsStandardRequestsPerDay).toBeCloseTo(5_724.1992, 3);
    expect(r.lambdaRequestsPerDay).toBeCloseTo(34_140.5229, 3);
    expect(r.fanoutDeliveriesPerDay).toBeCloseTo(25_224.4566, 3);
  });

  it('places addresses in WAF sets and NACL entries', () => {
    expect(r.wafSetsNeededPerScope).toBe(2); // one IPv4 set full, the IPv6 set kept
    expect(r.wafOverflow).toBe(0);
    expect(r.naclHeldPerAcl).toBe(15); // 20 − default deny − 4 foreign, IPv4 only
  });

  it('names the first limit and the first limit not handled by design', () => {
    const byCode = new Map(r.limits.map((l) => [l.code, l.utilisation]));
    expect(byCode.get(LIMIT_CODES.naclRules)).toBeCloseTo(666.667, 3); // 10,000 / 15
    expect(byCode.get(LIMIT_CODES.wafAddresses)).toBe(1); // 10,000 / (1 × 10,000)
    expect(byCode.get(LIMIT_CODES.burstBreaker)).toBeCloseTo(0.02, 10); // 1 a minute × 2 / 100
    expect(byCode.get(LIMIT_CODES.enforceTimeout)).toBeCloseTo(0.701453 / 60, 6);
    expect(byCode.get(LIMIT_CODES.wafIpSets)).toBeCloseTo(0.04, 10); // 2 sets × 2 scopes / 100
    expect(byCode.get(LIMIT_CODES.fmsPolicies)).toBeCloseTo(0.05, 10);
    // (105,840 + 2 × 37,836.68) / 86,400 / 3,000
    expect(byCode.get(LIMIT_CODES.ddbPartitionReads)).toBeCloseTo(0.000700283, 8);
    expect(r.firstLimit?.code).toBe(LIMIT_CODES.naclRules);
    expect(r.firstHardLimit?.code).toBe(LIMIT_CODES.wafAddresses);
  });

  it('prices a month line by line', () => {
    const c = r.monthlyCost;
    expect(c.sqsFifoDecisionQueue + c.sqsFifoPlaneQueues).toBeCloseTo(2.772648, 5);
    expect(c.sqsStandardExpiryTimers).toBeCloseTo(0.171726, 5);
    expect(c.lambdaRequests).toBeCloseTo(1.024216, 5);
    expect(c.lambdaEnforcePacingGbSeconds).toBeCloseTo(1.080548, 5); // 2,084.95 s × 1,769/1,024 GB × 1e-5 × 30
    const gb = c.lambdaDecideGbSeconds + c.lambdaExpiryGbSeconds + c.lambdaEnforceIncrementalGbSeconds + c.lambdaEnforcePacingGbSeconds + c.lambdaEnforceReconcileGbSeconds + c.lambdaReconcileTriggerGbSeconds;
    expect(gb).toBeCloseTo(3.938659, 5);
    const reads = c.ddbReadsDecide + c.ddbReadsIncremental + c.ddbReadsReconcile + c.ddbReadsExpiry + c.ddbReadsLedger;
    expect(reads).toBeCloseTo(8.575266, 5);
    expect(c.ddbWritesRecords + c.ddbWritesChangeIndex + c.ddbWritesLedger + c.ddbWritesReports).toBeCloseTo(4.929854, 5);
    expect(c.eventBridgeEvents + c.eventBridgeCrossAccount + c.eventBridgePipes).toBeCloseTo(1.268178, 5);
    expect(c.firewallManager).toBe(200);
    expect(r.monthlyCostUsd).toBeCloseTo(222.680546, 4);
  });

  it('overflows WAF one address past 10 sets × 10,000', () => {
    const edge = scaleModel({ ...SMALL, activeBlocked: 100_000, wafSetsPerFamily: 10 });
    expect(edge.wafOverflow).toBe(0);
    expect(edge.wafSetsNeededPerScope).toBe(11);
    const past = scaleModel({ ...SMALL, activeBlocked: 100_001, wafSetsPerFamily: 10 });
    expect(past.wafOverflow).toBe(1);
  });

  it('refuses bad input naming the key and the value', () => {
    expect(() => scaleModel({ ...SMALL, probesPerEvent: 0 })).toThrow(/probesPerEvent.*0/);
    expect(() => scaleModel({ ...SMALL, accounts: -1 })).toThrow(/accounts.*-1/);
    expect(() => scaleModel({ ...SMALL, ipv6Share: 2 })).toThrow(/ipv6Share.*2/);
    expect(() => scaleModel({ ...SMALL, callMs: Number.NaN })).toThrow(/callMs.*NaN/);
    expect(() => scaleModel({ ...SMALL, reconcileMinutes: 0 })).toThrow(/reconcileMinutes.*0/);
    expect(() => scaleModel({ ...SMALL, reconcileMinutes: 61 })).toThrow(/reconcileMinutes.*61/);
    expect(() => scaleModel({ ...SMALL, wakeWindowSeconds: 0 })).toThrow(/wakeWindowSeconds.*0/);
  });
});
