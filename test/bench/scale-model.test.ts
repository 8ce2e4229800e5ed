import { describe, expect, it } from 'vitest';
import { distinctSlots, dynamoItemBytes, enforceRun, lambdaCpuMs, LIMIT_CODES, type ScaleInputs, scaleModel, strongReadUnits, writeUnits } from '../../bench/scale-model';

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

describe('enforceRun', () => {
  it('is at least a second, and stretches when UpdateIPSet calls are paced one a second', () => {
    expect(enforceRun(0.5, 0, 10, 1)).toEqual({ seconds: 1, callsPerRun: 0 });
    // 1,000 changes a second touch all 10 sets: 0.5 s + 10 calls at 1/s
    expect(enforceRun(0.5, 1000, 10, 1)).toEqual({ seconds: 10.5, callsPerRun: 10 });
    // a second scope in the same account and Region shares the quota
    expect(enforceRun(0.5, 1000, 10, 2)).toEqual({ seconds: 20.5, callsPerRun: 20 });
  });

  it('refuses NACL work that never catches up', () => {
    expect(() => enforceRun(0, 0, 1, 1, 1)).toThrow(/never catch up/);
  });
});

const SMALL: ScaleInputs = {
  probesPerDay: 8_640,
  probesPerEvent: 2,
  activeBlocked: 10_000,
  newBlocksPerDay: 1_440,
  ipv6Share: 0,
  peakFactor: 2,
  accounts: 2,
  regions: 3,
  cloudFrontAccounts: 0,
  aclsPerPlane: 2,
  naclQuota: 20,
  foreignNaclEntriesPerAcl: 4,
  wafSetsPerFamily: 1,
  fmsPolicies: 1,
  fmsRegions: 2,
  burstLimitPerMinute: 100,
  recordItemBytes: 100,
  historyItemBytes: 1_500,
  burstItemBytes: 40,
  eventBytes: 1_000,
  decideCpuMs: 0.1,
  enforcePlanMs: 60,
  callMs: 10,
  decideMemoryMb: 1_769,
  enforceMemoryMb: 1_769,
  enforceTimeoutSeconds: 60,
  daysPerMonth: 30,
  prices: {
    eventBridgeCustomEventPerMillion: 1,
    eventBridgeCrossAccountDeliveryPerMillion: 1,
    lambdaRequestPerMillion: 1,
    lambdaGbSecond: 0.00001,
    ddbWriteUnitPerMillion: 1,
    ddbReadUnitPerMillion: 1,
    sqsFifoRequestPerMillion: 1,
    fmsPolicyRegionMonth: 100,
  },
};

describe('scaleModel on a small hand-computed scenario', () => {
  const r = scaleModel(SMALL);

  it('turns probes into events, invocations and writes', () => {
    expect(r.planes).toBe(6);
    expect(r.wafScopes).toBe(6);
    expect(r.eventsPerDay).toBe(4_320); // 8,640 / 2
    expect(r.refreshesPerDay).toBe(2_880); // 4,320 − 1,440
    expect(r.decideInvocationsPerDay).toBe(4_320);
    // new: 1 burst + 2 × 1 record + 2 history = 5; refresh and lift: 2 + 2 = 4
    expect(r.ddbWritesPerDay).toBe(24_480); // 1,440 × 5 + (2,880 + 1,440) × 4
    expect(r.decideReadUnitsPerDay).toBe(4_320);
  });

  it('counts wake-ups, enforce runs and their full reads', () => {
    // 86,400 (1 − e^−0.05) + 1,440 (1 − e^−1) + 288
    expect(r.wakeSecondsPerDay).toBeCloseTo(5_412.0313, 3);
    // 1,000,000 B → 245 × 4 KB, eventually consistent
    expect(r.fullReadUnits).toBe(122.5);
    // 0.04 s reads (4 calls) + 0.06 s diff + 1 UpdateIPSet + 0.001 s of NACL calls per second: x = 1.1 + 0.001x
    expect(r.enforceRunSeconds).toBeCloseTo(1.1011011, 6);
    expect(r.enforceRunsPerDayPerPlane).toBeCloseTo(5_412.0313, 3);
    expect(r.enforceReadUnitsPerDay).toBeCloseTo(3_977_843.026, 2);
    expect(r.fanoutDeliveriesPerDay).toBeCloseTo(32_472.188, 2);
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
    expect(byCode.get(LIMIT_CODES.ddbPartitionReads)).toBeCloseTo(0.0306932, 6);
    expect(byCode.get(LIMIT_CODES.updateIpSetRate)).toBeCloseTo(0.064493, 5); // 1 − e^(−2 × 1/30)
    expect(byCode.get(LIMIT_CODES.burstBreaker)).toBeCloseTo(0.02, 10); // 1 a minute × 2 / 100
    expect(byCode.get(LIMIT_CODES.enforceTimeout)).toBeCloseTo(0.0183517, 6);
    expect(byCode.get(LIMIT_CODES.wafIpSets)).toBeCloseTo(0.02, 10);
    expect(byCode.get(LIMIT_CODES.fmsPolicies)).toBeCloseTo(0.05, 10);
    expect(r.firstLimit?.code).toBe(LIMIT_CODES.naclRules);
    expect(r.firstHardLimit?.code).toBe(LIMIT_CODES.wafAddresses);
  });

  it('prices a month', () => {
    expect(r.monthlyCost.eventBridge).toBeCloseTo(1.395727, 5);
    expect(r.monthlyCost.lambda).toBeCloseTo(19.826580, 5);
    expect(r.monthlyCost.dynamodb).toBeCloseTo(120.199291, 5);
    expect(r.monthlyCost.sqs).toBeCloseTo(2.922497, 5);
    expect(r.monthlyCost.fms).toBe(200);
    expect(r.monthlyCostUsd).toBeCloseTo(344.344094, 4);
    expect(r.monthlyCostIncrementalUsd).toBeCloseTo(225.008803, 4);
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
  });
});
