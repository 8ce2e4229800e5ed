import { describe, expect, it } from 'vitest';
import { distinctSlots, dynamoItemBytes, eventualQueryReadUnits, incrementalRun, lambdaCpuMs, LIMIT_CODES, naclChangesPerRun, pacingWaitSeconds, type ScaleInputs, scaleModel, strongReadUnits, wafSetsWaiting, wafSetWritesPerRun, writeUnits } from '../../bench/scale-model';

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

describe('wafSetWritesPerRun (one set a run, removals deferred)', () => {
  it('is one set when anything waits or arrives, more only when deadlines come faster than runs', () => {
    expect(wafSetWritesPerRun(0, 0, 10, 30, 2)).toBe(0);
    expect(wafSetWritesPerRun(0, 3, 10, 30, 2)).toBeCloseTo(0.950213, 6); // 1 − e^−3
    // 1.2 lifts/s over 10 sets, 30 s deferral, a run every 2 s: 1 − e^−(0 + 36) ≈ 1; needed 10 / (30 + 8.33) × 2 = 0.5217
    expect(wafSetWritesPerRun(1.2, 0, 10, 30, 2)).toBeCloseTo(1, 6);
    // no deferral: 10 / (0 + 8.33) × 2 = 2.4 sets a run, at most the 10 (1 − e^−0.24) = 2.1337 holding one
    expect(wafSetWritesPerRun(1.2, 0, 10, 0, 2)).toBeCloseTo(2.133721, 6);
    // runs 120 s apart: nearly every set holds a removal, 10 (1 − e^−14.4) = 9.999994
    expect(wafSetWritesPerRun(1.2, 0, 10, 30, 120)).toBeCloseTo(9.999994, 6);
    expect(wafSetWritesPerRun(5, 5, 0, 30, 2)).toBe(0);
  });

  it('counts the sets holding a waiting removal at a random time', () => {
    expect(wafSetsWaiting(1.2, 10, 30, 2)).toBeCloseTo(9.092820, 6); // 10 (1 − e^−(1.2 × 20 / 10))
    expect(wafSetsWaiting(1.2, 10, 0, 2)).toBe(0);
  });
});

describe('naclChangesPerRun (residence)', () => {
  it('is the writes, at most the capacity, at most capacity × interval / residence', () => {
    expect(naclChangesPerRun(2.3, 19, 0, 2)).toBe(2.3);
    expect(naclChangesPerRun(30, 19, 0, 2)).toBe(19);
    expect(naclChangesPerRun(2.3, 19, 300, 2)).toBeCloseTo(0.126667, 6); // 19 × 2 / 300
    expect(naclChangesPerRun(0.05, 19, 300, 2)).toBe(0.05);
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
    liftDeferSeconds: 30,
    naclResidenceSeconds: 300,
    reportEverySeconds: 1,
    aclsPerPlane: 0,
    changeItemBytes: 150,
    ledgerRowBytes: 100,
    reportItemBytes: 200,
    callMs: 10,
    cpuSeconds: 0,
  };

  it('with nothing changed: two index Queries and the report, one run a window', () => {
    const run = incrementalRun(quiet);
    expect(run.runsPerDay).toBe(86_400);
    expect(run.seconds).toBeCloseTo(0.03, 10); // (2 + 1) calls × 10 ms
    expect(run.indexReadUnits).toBe(1); // 2 × 0.5
    expect(run.updateIpSetCalls).toBe(0);
    expect(run.reportWriteUnits).toBe(1);
  });

  it('runs back to back when two scopes wait on the pacer longer than a window', () => {
    // lifts so many that every run writes the one set in both scopes: 2 calls, 1 s waiting;
    // (2 + 2 + 1) calls × 10 ms + 1 s = 1.05 s; 86,400 / 1.05 runs
    const run = incrementalRun({ ...quiet, liftsPerDay: 1e9, scopes: 2 });
    expect(run.updateIpSetCalls).toBeCloseTo(2, 10);
    expect(run.pacingWaitSeconds).toBeCloseTo(1, 10);
    expect(run.seconds).toBeCloseTo(1.05, 10);
    expect(run.runsPerDay).toBeCloseTo(82_285.71429, 4);
  });
});

// Expected values of the small scenario: worked on a calculator from the formulas of
// docs/scale.md (an independent re-computation, not the model's helpers).
// Per run (10 s windows, 4,204.08 runs a day, a run every T = 20.5515 s): 1.0276 decide writes,
// 0.3425 new blocks and as many lifts (the one set is full, so additions only where lifts made
// room); lift rate 1/60 a second; one set written when anything waits or arrives:
// 1 − e^−(0.3425 + 30/60) = 0.569378; NACL changes per ACL: min(1.0276, 15 × T / 600) = 0.513787;
// ACLs changed 2 (1 − e^−0.5138) = 0.803548; report writes T / 60 = 0.342525.
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
  liftDeferSeconds: 30,
  naclResidenceSeconds: 600,
  reportEverySeconds: 60,
  selfWakeEverySeconds: 10,
  busyGapSeconds: 6,
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
    expect(r.oneScope.runsPerDay).toBeCloseTo(4_204.07609, 4);
    expect(r.oneScope.naclChangesPerAcl).toBeCloseTo(0.513787, 6);
    expect(r.oneScope.updateIpSetCalls).toBeCloseTo(0.569378, 6);
    expect(r.oneScope.pacingWaitSeconds).toBeCloseTo(0, 10); // one set a run: never two calls
    // (2 + 3 × 0.8035 + 0.5694 + 2 × 0.5138 × 5 + 0.3425) × 10 ms
    expect(r.oneScope.seconds).toBeCloseTo(0.104604, 6);
    expect(r.twoScope.pacingWaitSeconds).toBeCloseTo(0.569378, 6); // 2 × 0.5694 − 1 + e^−0.8425
    expect(r.twoScope.seconds).toBeCloseTo(0.679676, 6);
    // 20.55 s + 30 s overlap of writes (253 B) and lifts (84 B): 2 × 0.5
    expect(r.oneScope.indexReadUnits).toBe(1);
    // the changed ACLs' two ledger lists (2 × 0.8035 × 1 unit) + 2 × 0.5138 GetItems
    expect(r.oneScope.ledgerReadUnits).toBeCloseTo(2.634671, 6);
    expect(r.oneScope.ledgerWriteUnits).toBeCloseTo(2.055148, 6); // 2 ACLs × 0.5138 × 2 rows
    expect(r.oneScope.reportWriteUnits).toBeCloseTo(0.342525, 6);
  });

  it('shapes the full run', () => {
    // 1 page (1 MB of 10,000 × 100 B), 2 ACLs × 2 reads, 2 sets per scope × 2 scopes, the set
    // holding a waiting removal in each scope (1 − e^−(20.55/60) = 0.2900 each), report; 60 ms CPU
    expect(r.reconcile.seconds).toBeCloseTo(0.165800, 6);
    expect(r.reconcile.indexReadUnits).toBe(122.5); // 1,000,000 B → 245 × 4 KB × 0.5
    expect(r.reconcilePages).toBe(1);
  });

  it('counts reads by kind, queue requests and Lambda requests', () => {
    expect(r.ddbReadsPerDay.decide).toBe(4_320);
    expect(r.ddbReadsPerDay.incremental).toBeCloseTo(25_224.4565, 3); // 6 planes × 4,204.08 × 1
    expect(r.ddbReadsPerDay.reconcile).toBe(105_840); // 6 × 144 × 122.5
    expect(r.ddbReadsPerDay.ledger).toBeCloseTo(68_186.1483, 3); // 6 × (4,204.08 × 2.6347 + 144 × 2)
    expect(r.ddbWritesPerDay.ledger).toBeCloseTo(51_840, 3); // 6 × 4,204.08 × 2.0551
    expect(r.ddbWritesPerDay.reports).toBeCloseTo(9_504, 3); // 6 × (4,204.08 × 0.3425 + 144)
    // decision FIFO: 4,320 sends + 1,428.04 expiry wakes + 2 × 4,204.08; planes: (3 × (4,204.08 + 144)
    // + 4,204.08 × 0.2900 self wake-ups: runs 20.55 s apart, not busy) × 6
    expect(r.sqsFifoRequestsPerDay).toBeCloseTo(14_156.2186 + 85_581.0784, 3);
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
    expect(byCode.get(LIMIT_CODES.enforceTimeout)).toBeCloseTo(0.679676 / 60, 6);
    expect(byCode.get(LIMIT_CODES.wafIpSets)).toBeCloseTo(0.04, 10); // 2 sets × 2 scopes / 100
    expect(byCode.get(LIMIT_CODES.fmsPolicies)).toBeCloseTo(0.05, 10);
    // (105,840 + 2 × 25,224.46) / 86,400 / 3,000
    expect(byCode.get(LIMIT_CODES.ddbPartitionReads)).toBeCloseTo(0.000602966, 8);
    expect(r.firstLimit?.code).toBe(LIMIT_CODES.naclRules);
    expect(r.firstHardLimit?.code).toBe(LIMIT_CODES.wafAddresses);
  });

  it('prices a month line by line', () => {
    const c = r.monthlyCost;
    expect(c.sqsFifoDecisionQueue + c.sqsFifoPlaneQueues).toBeCloseTo(2.992119, 5);
    expect(c.sqsStandardExpiryTimers).toBeCloseTo(0.171726, 5);
    expect(c.lambdaRequests).toBeCloseTo(1.024216, 5);
    expect(c.lambdaEnforcePacingGbSeconds).toBeCloseTo(1.240568, 5); // 4,204.08 × 0.5694 s × 1,769/1,024 GB × 1e-5 × 30
    const gb = c.lambdaDecideGbSeconds + c.lambdaExpiryGbSeconds + c.lambdaEnforceIncrementalGbSeconds + c.lambdaEnforcePacingGbSeconds + c.lambdaEnforceReconcileGbSeconds + c.lambdaReconcileTriggerGbSeconds;
    expect(gb).toBeCloseTo(2.847385, 5);
    const reads = c.ddbReadsDecide + c.ddbReadsIncremental + c.ddbReadsReconcile + c.ddbReadsExpiry + c.ddbReadsLedger;
    expect(reads).toBeCloseTo(6.150139, 5);
    expect(c.ddbWritesRecords + c.ddbWritesChangeIndex + c.ddbWritesLedger + c.ddbWritesReports).toBeCloseTo(2.87712, 5);
    expect(c.eventBridgeEvents + c.eventBridgeCrossAccount + c.eventBridgePipes).toBeCloseTo(1.268178, 5);
    expect(c.firewallManager).toBe(200);
    expect(r.monthlyCostUsd).toBeCloseTo(217.330883, 4);
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
