/**
 * Benchmarks of the cloud block pipeline (`npx tsx bench/run.ts pipeline`):
 * - decide_events_per_s: Scan Detected events through validation, the never-block guard, the
 *   policy, and the desired-state diff (one diff per 100 events, as one enforce run a second
 *   would), in process, no I/O;
 * - waf_updates_for_10k / attackers_lost: 10,000 new attackers within 60 s through the real
 *   decide and enforce handlers against the stateful fakes (DynamoDB, SQS FIFO with 5-minute
 *   deduplication, WAFV2 with its one-update-a-second throttle and 10,000-address sets, EC2
 *   NACLs) on a simulated clock;
 * - enforce_added_lag_after_failure_s: how much later a new attacker's NACL entry lands when every
 *   UpdateIPSet fails (a WAF failing for good), than when WAF works: attacker A's run fails, B is
 *   decided 2 s later, B's entry is timed; the real handlers on the fakes, SQS with the stack's
 *   360 s visibility timeout and five receives, simulated clock; the worse of a transient error
 *   (WAFInternalErrorException, retried) and a permanent one (AccessDeniedException);
 * - the Lambda bundles' sizes and cold load times are bench/bundles.bench.ts's.
 */
import { type ActualState, applyPlan, planEnforcement } from '../core/diff';
import { NeverBlockGuard } from '../core/guard';
import { interpretEvent } from '../core/intake';
import { type BlockRecord, decide } from '../core/policy';
import { SimClock } from '../test/fakes/clock';
import { ACL_A, ACL_B, SET_V4, SET_V4_2, SET_V6, testSettings, World } from '../test/fakes/world';
import type { BenchSuite, Figure } from './suite';
import { scanDetectedEvent } from '../test/fakes/events';

function scanEvent(i: number, attacker: string, at: number): Record<string, unknown> {
  return scanDetectedEvent({
    id: `bench-${i}`,
    attacker,
    at,
    probes: [
      { protocol: 'tcp', port: 23, kind: 'connect' },
      { protocol: 'tcp', port: 2323, kind: 'syn' },
    ],
    probeCount: 7,
  });
}

function attacker(i: number): string {
  // 10,000+ distinct TEST-NET-3 / 2001:db8:: addresses would not fit in a /24, so spread over
  // 203.0.113.0/24 and 198.51.100.0/24 by index and fall back to documentation IPv6 addresses.
  if (i < 250) return `203.0.113.${i + 1}`;
  if (i < 500) return `198.51.100.${i - 249}`;
  return `2001:db8::${(i - 499).toString(16)}`;
}

function attacker4(i: number): string {
  // IPv4 only, for the WAF figure: 100.x addresses outside every special range
  return `100.${128 + Math.floor(i / 65536)}.${Math.floor(i / 256) % 256}.${i % 256}`;
}

async function decideThroughput(): Promise<Figure> {
  const settings = testSettings();
  const guard = new NeverBlockGuard(settings.guard);
  const N = 20_000;
  const DISTINCT = 2_000;
  const start = Date.parse('2026-11-21T10:00:00Z');
  const events = Array.from({ length: N }, (_, i) => scanEvent(i, attacker(i % DISTINCT), start + i * 5));
  const records = new Map<string, BlockRecord>();
  let actual: ActualState = {
    nacls: [ACL_A, ACL_B].map((aclId) => ({
      aclId,
      entries: [{ ruleNumber: 32767, egress: false, ruleAction: 'deny' as const, protocol: '-1', cidrBlock: '0.0.0.0/0' }],
    })),
    wafSets: [SET_V4, SET_V6].map((ref) => ({ ref, addresses: [] })),
  };
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) {
    const now = start + i * 5;
    const intake = interpretEvent(events[i], now);
    if (intake.kind !== 'sightings') throw new Error(`bench event ${i} not accepted: ${JSON.stringify(intake)}`);
    for (const sighting of intake.sightings) {
      if (!guard.check(sighting.target).blockable) continue;
      const decision = decide(records.get(sighting.target), sighting, now, settings.policy);
      if (decision.action !== 'ignore') records.set(sighting.target, decision.record);
    }
    if (i % 100 === 99) actual = applyPlan(actual, planEnforcement([...records.values()], actual, settings, now));
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  return {
    name: 'decide_events_per_s',
    value: Math.round(N / seconds),
    unit: 'events/s',
    note: `${N} Scan Detected events over ${DISTINCT} attackers: zod validation + guard + policy per event, desired-state diff (WAF + 2 NACLs) per 100 events; one core, no I/O`,
  };
}

/** A simulated clock that lets arrivals happen while a handler sleeps. */
class ArrivalClock extends SimClock {
  onSleep?: (until: number) => Promise<void>;
  override async sleep(ms: number): Promise<void> {
    const until = this.now() + Math.max(0, ms);
    if (this.onSleep) await this.onSleep(until);
    if (this.now() < until) this.set(until);
    this.slept += Math.max(0, ms);
  }
}

async function wafUpdatesFor10k(): Promise<Figure[]> {
  const N = 10_000;
  const WINDOW_MS = 60_000;
  const clock = new ArrivalClock();
  const settings = testSettings({
    policy: { burstLimitPerMinute: 100_000 },
    guard: { blockableSpecialCidrs: ['100.64.0.0/10'] },
    nacl: { aclIds: [ACL_A, ACL_B], ruleRange: [10, 60], quotaPerDirection: 20 },
    waf: { sets: [SET_V4, SET_V4_2, SET_V6] },
  });
  let seed = 42;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const world = new World({ settings, clock, pageSize: 2_000, random });
  const start = clock.now();
  const times = Array.from({ length: N }, (_, i) => start + Math.floor((i * WINDOW_MS) / N));
  let next = 0;
  let inDecide = false;
  const arrive = async (until: number) => {
    if (inDecide) return;
    inDecide = true;
    try {
      while (next < N && (times[next] as number) <= until) {
        if (clock.now() < (times[next] as number)) clock.set(times[next] as number);
        await world.decide(scanEvent(next, attacker4(next), clock.now()));
        next++;
      }
    } finally {
      inDecide = false;
    }
  };
  clock.onSleep = arrive;
  let invocations = 0;
  while (next < N || world.sqs.depth > 0) {
    const batch = world.sqs.receive();
    if (batch) {
      invocations++;
      await world.enforce(batch);
      world.sqs.complete(batch);
    } else {
      await arrive(times[next] as number);
    }
  }
  const held = world.wafAddresses();
  let lost = 0;
  for (let i = 0; i < N; i++) if (!held.has(`${attacker4(i)}/32`)) lost++;
  const elapsed = (clock.now() - start) / 1000;
  return [
    {
      name: 'waf_updates_for_10k',
      value: world.waf.calls.UpdateIPSet,
      unit: 'UpdateIPSet calls',
      note: `10,000 new IPv4 attackers evenly over 60 s through decide → SQS FIFO (per-second dedup) → enforce, simulated clock; ${world.waf.calls.UpdateIPSetAccepted} accepted, ${world.obs.metric('Throttles')} throttled, ${world.obs.metric('LockRetries')} lock retries; ${invocations} enforce runs; all in WAF by t=${elapsed.toFixed(1)} s`,
    },
    { name: 'attackers_lost', value: lost, unit: 'attackers', note: 'of the 10,000: decided but not in any WAF IP set after the queue drained' },
  ];
}

/** When (simulated ms) B's entry lands in the first ACL after B is decided, with UpdateIPSet failing with `error` (or working). */
async function naclLagAfterWafFailure(error: string | undefined): Promise<number> {
  const world = new World({ random: () => 0.5 });
  let landed: number | undefined;
  const original = world.ec2.client.send.bind(world.ec2.client);
  world.ec2.client.send = (async (command: { constructor: { name: string }; input: Record<string, unknown> }, ...rest: unknown[]) => {
    const out = await (original as (...a: unknown[]) => Promise<unknown>)(command, ...rest);
    if (landed === undefined && command.constructor.name === 'CreateNetworkAclEntryCommand' && command.input.CidrBlock === '203.0.113.8/32') landed = world.clock.now();
    return out;
  }) as typeof world.ec2.client.send;
  if (error) world.waf.failNext('UpdateIPSet', error, 1_000_000);
  await world.decide(world.scanEvent('203.0.113.7'));
  const first = world.sqs.receive();
  if (!first) throw new Error('no wake-up for the first attacker');
  try {
    await world.enforce(first);
    world.sqs.complete(first);
  } catch {
    // the failed batch stays in flight, as the event source leaves it
  }
  world.clock.advance(2_000);
  const decided = world.clock.now();
  await world.decide(world.scanEvent('203.0.113.8'));
  await world.drain();
  if (landed === undefined) throw new Error(`the second attacker never reached the NACL (${error ?? 'no failure'})`);
  return landed - decided;
}

async function enforceLagAfterFailure(): Promise<Figure> {
  const base = await naclLagAfterWafFailure(undefined);
  const transient = (await naclLagAfterWafFailure('WAFInternalErrorException')) - base;
  const permanent = (await naclLagAfterWafFailure('AccessDeniedException')) - base;
  return {
    name: 'enforce_added_lag_after_failure_s',
    value: Math.round(Math.max(transient, permanent) / 100) / 10,
    unit: 's',
    note: `extra delay of a new attacker's NACL entry while every UpdateIPSet fails: ${(transient / 1000).toFixed(1)} s for WAFInternalErrorException (batch retried after 30 s), ${(permanent / 1000).toFixed(1)} s for AccessDeniedException (batch succeeds); without failure the entry lands ${(base / 1000).toFixed(1)} s after the decision; SQS visibility timeout 360 s, simulated clock`,
  };
}

export const suite: BenchSuite = {
  title: 'cloud block pipeline: decide throughput, WAF update batching, the lag a failing WAF adds',
  async run() {
    return [await decideThroughput(), ...(await wafUpdatesFor10k()), await enforceLagAfterFailure()];
  },
};
