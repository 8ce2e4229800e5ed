/**
 * One convergence schedule on the wire, shared by test/wire/convergence.test.ts (fast-check) and
 * bench/convergence.bench.ts: the REAL decide and enforce handlers, the repository and the NACL
 * placement ledger on dynalite, the NACL and WAF adapters through the REAL EC2Client and
 * WAFV2Client to the HTTP fakes, the enforce queue as an in-process FIFO whose failed batches come
 * back after the real visibility timeout (360 s) on a simulated clock. A second stack with its own
 * table shares ACL_A (its range overlapping or not); an operator adds entries inside and outside
 * the range. After the schedule, the faults stop, the cool-down passes, both stacks reconcile, and
 * what AWS holds is compared with test/wire/spec.ts — never with core/'s own planning.
 */
import type { NetworkAclEntry } from '@aws-sdk/client-ec2';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import type { SQSEvent } from 'aws-lambda';
import fc from 'fast-check';
import type { BlockRecord } from '../../core/policy';
import type { PipelineSettings } from '../../core/settings';
import { BurstGate } from '../../lambda/decide/burst';
import { createHandler as createDecide } from '../../lambda/decide/handler';
import { createHandler as createEnforce } from '../../lambda/enforce/handler';
import { enforce as runEnforcer } from '../../lambda/shared/enforcer';
import { NaclAdapter } from '../../lambda/shared/nacl-adapter';
import { EnforceQueue } from '../../lambda/shared/queue';
import { BlockRepository, PlacementLedger } from '../../lambda/shared/repository';
import { UpdatePacer, WafAdapter } from '../../lambda/shared/waf-adapter';
import { SimClock } from '../fakes/clock';
import { FakeEc2 } from '../fakes/ec2';
import { RecordingObservability } from '../fakes/observability';
import { deliverFifo, FakeSqs } from '../fakes/sqs';
import { ACL_A, ACL_B, SET_V4, SET_V6, testSettings } from '../fakes/world';
import type { LocalTable } from './dynalite';
import { Ec2Server } from './ec2-server';
import { type SpecFamily, Spec, familyOfAddress, hostCidrText, naclHolders } from './spec';
import { WafServer } from './wafv2-server';

/** the SQS queue's visibility timeout (lib: 6 × the enforce function's 60 s timeout) */
export const VISIBILITY_TIMEOUT_MS = 360_000;
/** quota per direction: small, so eviction happens in short schedules */
export const QUOTA = 12;
const RANGE: [number, number] = [10, 60];

export const POOL = [
  ...Array.from({ length: 12 }, (_, i) => `203.0.113.${i + 1}`),
  ...Array.from({ length: 4 }, (_, i) => `2001:db8::${(i + 1).toString(16)}`),
  '192.0.2.1', // TEST-NET-1, listed as blockable in the test settings
  '198.51.100.250', // allowlisted
  '10.0.0.5', // protected
  '192.168.7.7', // private (IANA special-purpose)
  '2001:db8:0:0:0:0:0:2', // the same host as 2001:db8::2, written long
];
const OTHER_STACK_TARGETS = ['198.51.100.1', '198.51.100.2', '198.51.100.3'];

export type Op =
  | { kind: 'event'; who: number; handshake: boolean; gapMs: number }
  | { kind: 'duplicate' }
  | { kind: 'advance'; ms: number }
  | { kind: 'drain' }
  | { kind: 'staleAcl'; n: number }
  | { kind: 'staleSet'; n: number }
  | { kind: 'throttleEc2'; n: number }
  | { kind: 'throttleWaf'; n: number }
  | { kind: 'lostAnswer'; op: 'CreateNetworkAclEntry' | 'ReplaceNetworkAclEntry' | 'DeleteNetworkAclEntry' | 'UpdateIPSet' }
  | { kind: 'operator'; acl: number; ruleNumber: number; variant: number }
  | { kind: 'otherStack' }
  | { kind: 'deleteSet' }
  | { kind: 'stackUpdate' };

const FAULTS = new Set<Op['kind']>(['staleAcl', 'staleSet', 'throttleEc2', 'throttleWaf', 'lostAnswer', 'deleteSet']);

export function opArb(faults: boolean): fc.Arbitrary<Op> {
  const ops: Array<fc.WeightedArbitrary<Op>> = [
    { weight: 10, arbitrary: fc.record({ kind: fc.constant('event' as const), who: fc.nat(POOL.length - 1), handshake: fc.oneof({ weight: 4, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }), gapMs: fc.integer({ min: 1_000, max: 120_000 }) }) },
    { weight: 2, arbitrary: fc.constant({ kind: 'duplicate' as const }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 1_000, max: 3 * 3600_000 }) }) },
    { weight: 5, arbitrary: fc.constant({ kind: 'drain' as const }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('operator' as const), acl: fc.nat(1), ruleNumber: fc.integer({ min: 1, max: 100 }), variant: fc.nat(4) }) },
    { weight: 2, arbitrary: fc.constant({ kind: 'otherStack' as const }) },
    { weight: 1, arbitrary: fc.constant({ kind: 'stackUpdate' as const }) },
  ];
  if (faults) {
    ops.push(
      { weight: 2, arbitrary: fc.record({ kind: fc.constant('staleAcl' as const), n: fc.integer({ min: 1, max: 3 }) }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('staleSet' as const), n: fc.integer({ min: 1, max: 3 }) }) },
      { weight: 2, arbitrary: fc.record({ kind: fc.constant('throttleEc2' as const), n: fc.integer({ min: 1, max: 4 }) }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('throttleWaf' as const), n: fc.integer({ min: 1, max: 3 }) }) },
      {
        weight: 2,
        arbitrary: fc.record({
          kind: fc.constant('lostAnswer' as const),
          op: fc.constantFrom('CreateNetworkAclEntry' as const, 'ReplaceNetworkAclEntry' as const, 'DeleteNetworkAclEntry' as const, 'UpdateIPSet' as const),
        }),
      },
      { weight: 1, arbitrary: fc.constant({ kind: 'deleteSet' as const }) },
    );
  }
  return fc.oneof(...ops);
}

export function isFault(op: Op): boolean {
  return FAULTS.has(op.kind);
}

/** The second stack's range: the same as ours, overlapping, or disjoint. */
export const otherRangeArb = fc.constantFrom<[number, number]>([10, 60], [40, 90], [61, 90]);

function operatorEntry(ruleNumber: number, variant: number): NetworkAclEntry {
  switch (variant) {
    case 0:
      return { RuleNumber: ruleNumber, Egress: false, Protocol: '-1', RuleAction: 'allow', CidrBlock: '192.0.2.0/24' };
    case 1:
      return { RuleNumber: ruleNumber, Egress: false, Protocol: '6', RuleAction: 'deny', CidrBlock: '203.0.113.77/32', PortRange: { From: 22, To: 22 } };
    case 2: // portsnare's shape, the operator's own: never ours
      return { RuleNumber: ruleNumber, Egress: false, Protocol: '-1', RuleAction: 'deny', CidrBlock: '203.0.113.200/32' };
    case 3:
      return { RuleNumber: ruleNumber, Egress: false, Protocol: '6', RuleAction: 'allow', CidrBlock: '0.0.0.0/0', PortRange: { From: 443, To: 443 } };
    default:
      return { RuleNumber: ruleNumber, Egress: false, Protocol: '-1', RuleAction: 'deny', Ipv6CidrBlock: '2001:db8::ff/128' };
  }
}

export interface RunResult {
  readonly failures: string[];
  /** detection → first seen in WAF, seconds of simulated time */
  readonly lags: number[];
}

const entryFamily = (e: NetworkAclEntry): SpecFamily => (e.Ipv6CidrBlock !== undefined ? 'ipv6' : 'ipv4');
const entryKey = (e: NetworkAclEntry): string => JSON.stringify([e.RuleNumber, e.Egress, e.Protocol, e.RuleAction, e.CidrBlock, e.Ipv6CidrBlock, e.PortRange, e.IcmpTypeCode]);

/** Runs one schedule from a fresh world (new servers, new tables) and checks it against the spec. */
export async function runSchedule(db: LocalTable, runId: string, ops: readonly Op[], otherRange: [number, number]): Promise<RunResult> {
  const clock = new SimClock();
  const obs = new RecordingObservability();
  const settings: PipelineSettings = testSettings({ nacl: { aclIds: [ACL_A, ACL_B], ruleRange: RANGE, quotaPerDirection: QUOTA } });
  const otherSettings: PipelineSettings = testSettings({ nacl: { aclIds: [ACL_A], ruleRange: otherRange, quotaPerDirection: QUOTA }, waf: { sets: [] } });
  const ec2 = new Ec2Server(new FakeEc2(QUOTA, () => 0.5));
  const waf = new WafServer(clock, () => 0.5);
  for (const aclId of [ACL_A, ACL_B]) ec2.ec2.addAcl(aclId, { ipv6: true });
  for (const ref of settings.waf.sets) waf.waf.addSet(ref);
  await ec2.start();
  await waf.start();
  const ec2Client = ec2.client(2);
  const wafClient = waf.client(2);
  try {
    const tableA = await db.addTable(`a-${runId}`);
    const tableB = await db.addTable(`b-${runId}`);
    const sqs = new FakeSqs(clock);
    const repo = new BlockRepository(db.doc, tableA);
    const nacl = new NaclAdapter(ec2Client, clock, obs, () => 0.5, new PlacementLedger(db.doc, tableA), RANGE);
    const wafAdapter = new WafAdapter({ REGIONAL: wafClient }, clock, obs, new UpdatePacer(), () => 0.5);
    const decide = createDecide({ repo, queue: new EnforceQueue(sqs.client, sqs.queueUrl), burst: new BurstGate(db.doc, tableA, clock), settings, obs, clock });
    const enforce = createEnforce({ repo, nacl, waf: wafAdapter, settings, obs, clock, sqs: sqs.client, queueUrl: sqs.queueUrl }) as (event: SQSEvent) => Promise<{ changes: number }>;
    // the second stack: its own table and ledger, enforcing directly (its own queue is not modelled)
    const otherObs = new RecordingObservability();
    const otherRepo = new BlockRepository(db.doc, tableB);
    const otherDeps = {
      repo: otherRepo,
      nacl: new NaclAdapter(ec2Client, clock, otherObs, () => 0.5, new PlacementLedger(db.doc, tableB), otherRange),
      waf: new WafAdapter({}, clock, otherObs, new UpdatePacer(), () => 0.5),
      settings: otherSettings,
      obs: otherObs,
      clock,
    };
    const start = clock.now();
    for (const target of OTHER_STACK_TARGETS) {
      const record: BlockRecord = { target, family: 'ipv4', reason: 'manual', firstSeen: start, lastSeen: start, hitCount: 1, offences: 1, blockedAt: start, expiresAt: start + 30 * 86400_000, active: true, eventIds: [], sensors: [] };
      await otherRepo.save(record, undefined, start);
    }

    const spec = new Spec(settings.policy, settings.guard);
    const operatorEntries = new Map<string, NetworkAclEntry[]>([[ACL_A, []], [ACL_B, []]]);
    const lags: number[] = [];
    const measured = new Set<string>();
    const failures: string[] = [];
    let lastEvent: { id: string; attacker: string; handshake: boolean } | undefined;
    let deletedSet = false;
    let seq = 0;

    const measure = () => {
      const held = new Set([...waf.waf.addresses(SET_V4), ...waf.waf.addresses(SET_V6)]);
      for (const a of spec.active(clock.now())) {
        const key = `${a.address}@${a.detectedAt}`;
        if (measured.has(key) || !held.has(hostCidrText(a.address))) continue;
        measured.add(key);
        lags.push((clock.now() - a.detectedAt) / 1000);
      }
    };
    const send = async (id: string, attacker: string, handshake: boolean) => {
      const at = new Date(clock.now()).toISOString();
      await decide({
        version: '0', id, 'detail-type': 'Scan Detected', source: 'portsnare.sensor', account: '123456789012', time: at, region: 'eu-west-1', resources: [],
        detail: { version: 1, sensorId: 'i-0123456789abcdef0', attacker, probes: [{ protocol: 'tcp', port: 23, kind: 'connect' }], probeCount: 3, handshake, firstSeen: at, lastSeen: at },
      });
      spec.sighting(id, attacker, handshake, clock.now());
    };
    /**
     * The FIFO event source: one batch at a time, deleted when enforce succeeds; a failed batch
     * comes back when its visibility timeout ends (360 s, or the 30 s enforce sets for a
     * transient failure), and the simulated clock jumps there.
     */
    const drain = async (): Promise<number> => {
      let changes = 0;
      await deliverFifo(sqs, clock, enforce, {
        maxInvocations: 40,
        after: (result) => {
          changes += (result as { changes: number } | undefined)?.changes ?? 0;
          measure();
        },
      });
      return changes;
    };
    const reconcile = async (): Promise<number> => {
      await sqs.client.send(new SendMessageCommand({ QueueUrl: sqs.queueUrl, MessageBody: JSON.stringify({ kind: 'reconcile' }), MessageGroupId: 'enforce', MessageDeduplicationId: `reconcile-${++seq}` }));
      return drain();
    };

    for (const op of ops) {
      // The SQS event source delivers at once: before time moves on, the queue is drained.
      if (op.kind === 'event' || op.kind === 'advance') await drain();
      switch (op.kind) {
        case 'event': {
          clock.advance(op.gapMs);
          const id = `evt-${runId}-${++seq}`;
          lastEvent = { id, attacker: POOL[op.who]!, handshake: op.handshake };
          await send(id, lastEvent.attacker, op.handshake);
          break;
        }
        case 'duplicate':
          if (lastEvent) await send(lastEvent.id, lastEvent.attacker, lastEvent.handshake);
          break;
        case 'advance':
          clock.advance(op.ms);
          break;
        case 'drain':
          await drain();
          break;
        case 'staleAcl':
          ec2.ec2.staleNext(op.n);
          break;
        case 'staleSet':
          waf.waf.staleNext(op.n);
          break;
        case 'throttleEc2':
          ec2.throttleNext(op.n);
          break;
        case 'throttleWaf':
          waf.throttleNext('UpdateIPSet', op.n);
          break;
        case 'lostAnswer':
          (op.op === 'UpdateIPSet' ? waf : ec2).dropResponseNext(op.op);
          break;
        case 'operator': {
          const aclId = op.acl === 0 ? ACL_A : ACL_B;
          const entry = operatorEntry(op.ruleNumber, op.variant);
          const ingress = ec2.ec2.entries(aclId).filter((e) => !e.Egress);
          const mine = operatorEntries.get(aclId)!;
          // what AWS would refuse (a taken number, the quota) the operator cannot do either
          if (mine.length >= 3 || ingress.some((e) => e.RuleNumber === entry.RuleNumber) || ingress.filter((e) => entryFamily(e) === entryFamily(entry)).length >= QUOTA) break;
          ec2.ec2.consoleEdit(aclId, (entries) => [...entries, entry]);
          mine.push(entry);
          break;
        }
        case 'otherStack':
          await runEnforcer(otherDeps, 'reconcile').catch(() => undefined);
          break;
        case 'deleteSet':
          if (!deletedSet) waf.waf.deleteSet(SET_V6);
          deletedSet = true;
          break;
        case 'stackUpdate': // CloudFormation puts the template's Addresses: [] back
          for (const ref of settings.waf.sets) if (!(deletedSet && ref.id === SET_V6.id)) waf.waf.consoleEdit(ref, () => []);
          break;
      }
    }

    // The faults stop; the cool-down of freed rule numbers passes; both stacks reconcile until quiet.
    ec2.ec2.clearFaults();
    waf.waf.clearFaults();
    ec2.clearDrops();
    waf.clearDrops();
    await drain();
    clock.advance(11 * 60_000);
    let quiet = false;
    for (let round = 0; round < 5 && !quiet; round++) {
      const ours = await reconcile();
      const theirs = (await runEnforcer(otherDeps, 'reconcile')).changes;
      quiet = ours === 0 && theirs === 0;
    }
    if (!quiet) failures.push('no quiet state after 5 reconcile rounds (flapping)');
    measure();
    const now = clock.now();
    const active = spec.active(now);

    // WAF: every active address, in the set of its family (capacity 10,000 is never reached here)
    for (const ref of settings.waf.sets) {
      if (deletedSet && ref.id === SET_V6.id) {
        const alarmed = obs.lines.some((l) => l.level === 'error' && JSON.stringify(l).includes(ref.name));
        if (!alarmed) failures.push(`IP set ${ref.name} was deleted out of band and nothing raised an alarm`);
        continue;
      }
      const want = active.filter((a) => a.family === ref.family).map((a) => hostCidrText(a.address)).sort();
      const have = [...waf.waf.addresses(ref)].sort();
      if (JSON.stringify(want) !== JSON.stringify(have)) failures.push(`${ref.name}: want ${JSON.stringify(want)} have ${JSON.stringify(have)}`);
    }

    // NACLs: this stack's entries are the spec's holders; the other stack's hold what fits for it; the operator's are untouched
    const ourCidrs = new Map(POOL.map((address) => [hostCidrText(address), address]));
    const otherCidrs = new Set(OTHER_STACK_TARGETS.map(hostCidrText));
    const isHostDeny = (e: NetworkAclEntry) => !e.Egress && e.RuleAction === 'deny' && e.Protocol === '-1' && !e.PortRange && !e.IcmpTypeCode;
    for (const aclId of [ACL_A, ACL_B]) {
      const ingress = ec2.ec2.entries(aclId).filter((e) => !e.Egress);
      const operatorKeys = new Set((operatorEntries.get(aclId) ?? []).map(entryKey));
      for (const entry of operatorEntries.get(aclId) ?? []) {
        if (!ingress.some((e) => entryKey(e) === entryKey(entry))) failures.push(`${aclId}: the operator's entry ${entryKey(entry)} was changed or removed`);
      }
      const ours = ingress.filter((e) => isHostDeny(e) && !operatorKeys.has(entryKey(e)) && ourCidrs.has(e.CidrBlock ?? e.Ipv6CidrBlock ?? ''));
      const theirs = ingress.filter((e) => isHostDeny(e) && otherCidrs.has(e.CidrBlock ?? ''));
      for (const e of ours) if (e.RuleNumber! < RANGE[0] || e.RuleNumber! > RANGE[1]) failures.push(`${aclId}: our entry outside the range: ${entryKey(e)}`);
      const count = (entries: NetworkAclEntry[]) => ({ ipv4: entries.filter((e) => entryFamily(e) === 'ipv4').length, ipv6: entries.filter((e) => entryFamily(e) === 'ipv6').length });
      const check = (who: string, mine: NetworkAclEntry[], wanted: typeof active, range: [number, number]) => {
        const others = ingress.filter((e) => !mine.includes(e));
        const usedByOthers = new Set(others.map((e) => e.RuleNumber).filter((n) => n! >= range[0] && n! <= range[1]));
        const holders = naclHolders(wanted, count(others), QUOTA, range[1] - range[0] + 1 - usedByOthers.size);
        const want = [...holders].map(hostCidrText).sort();
        const have = mine.map((e) => e.CidrBlock ?? e.Ipv6CidrBlock ?? '').sort();
        if (JSON.stringify(want) !== JSON.stringify(have)) failures.push(`${aclId} ${who}: want ${JSON.stringify(want)} have ${JSON.stringify(have)}`);
      };
      check('this stack', ours, active, RANGE);
      if (aclId === ACL_A) {
        const otherActive = OTHER_STACK_TARGETS.map((address) => ({ address, family: familyOfAddress(address), lastSeen: start, detectedAt: start }));
        check('other stack', theirs, otherActive, otherRange);
      } else if (theirs.length) failures.push(`${aclId}: the other stack does not use this ACL, yet it holds ${theirs.length} of its entries`);
    }
    return { failures, lags };
  } finally {
    ec2Client.destroy();
    wafClient.destroy();
    await ec2.stop();
    await waf.stop();
  }
}
