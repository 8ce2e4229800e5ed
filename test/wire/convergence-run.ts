/**
 * One convergence schedule on the wire, shared by test/wire/convergence.test.ts (fast-check) and
 * bench/convergence.bench.ts: the REAL decide, enforce, expiry, reconcile and cleanup handlers,
 * the repository and the NACL placement ledger on dynalite, the NACL and WAF adapters through the
 * REAL EC2Client and WAFV2Client (with aws/clients/timeouts.ts' handler) to the HTTP
 * fakes, the enforce queue as an in-process FIFO whose failed batches come back after the real
 * visibility timeout (360 s) on a simulated clock.
 *
 * What a schedule holds (issue 17, item 4):
 * - scans, duplicates, time passing with the expiry (1 min) and reconcile (5 min) schedules
 *   firing, each tick up to ±30 s off its nominal time, and the queue's deliveries up to 30 s
 *   late (`jitterSeed`);
 * - a decision arriving in the middle of an enforce run (before the k-th EC2 call is answered);
 * - stale ACL reads (up to 10 in a row) and reads lagging several changes behind; stale IP set
 *   reads; the `active` and `changes` indexes lagging up to 2 s behind the table; throttling; lost answers; hung
 *   calls (never answered: the client's deadline ends them, the simulated clock moves on by the
 *   production budget, MAX_CALL_MS); an IP set deleted out of band; a stack update resetting the
 *   IP sets;
 * - a second stack on ACL_A with its own table, its range the same, overlapping or disjoint, whose
 *   Create, Update (its range moved) and Delete run through the REAL cleanup handler at any point,
 *   in the middle of an enforce run too; a failed Delete is retried once the faults stop, a failed
 *   Update rolled back, as CloudFormation does;
 * - an operator's entries inside and outside the range, some of portsnare's exact shape for an
 *   address we block.
 * After the schedule, the faults stop, the cool-down passes, both stacks reconcile, and what AWS
 * holds is compared with test/wire/spec.ts — never with core/'s planning nor with any run's
 * `converged`. With a NACL residence time R > 0 (`residenceSeconds`), every enforce invocation is
 * also checked against the spec's residence rule: an entry of ours that EC2 created less than
 * R − RESIDENCE_SLACK_MS before the invocation (the fake's own record, FakeEc2.createdAt) and whose
 * address is active before and after it still holds its place afterwards, unless the places left
 * by everyone else's entries are fewer than such residents (naclHolders over the residents
 * alone); and, before any fault, an entry whose address was no longer active when the invocation
 * started is gone after it, whatever its age. The end state (quiescence + 11 min > R) is the
 * no-residence holders all the same. Overlapping ranges must be refused at synth (lib/NaclCleanup.ts claimRuleRange),
 * and a foreign entry in our range reported (NaclForeignInRange); a deleted stack must leave none
 * of its entries. Measured: decision → in WAF (`lags`), a block's expiry → gone from every ACL
 * and IP set (`liftLags`).
 */
import { EC2Client, type NetworkAclEntry } from '@aws-sdk/client-ec2';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { WAFV2Client } from '@aws-sdk/client-wafv2';
import { type DynamoDBDocumentClient, QueryCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { App, Stack } from 'aws-cdk-lib';
import type { CloudFormationCustomResourceEvent, SQSEvent } from 'aws-lambda';
import { Construct } from 'constructs';
import fc from 'fast-check';
import type { BlockRecord } from '../../core/policy';
import type { PipelineSettings } from '../../core/settings';
import { ACTIVE_INDEX, ACTIVE_KEY, ACTIVE_KEY_ATTRIBUTE, CHANGE_AT_ATTRIBUTE, CHANGE_KEY_ATTRIBUTE, CHANGES_INDEX, EXPIRES_AT_ATTRIBUTE } from '../../core/table';
import { createHandler as createCleanup } from '../../lambda/cleanup/handler';
import { BurstGate } from '../../lambda/decide/burst';
import { createHandler as createDecide } from '../../lambda/decide/handler';
import { createHandler as createEnforce } from '../../lambda/enforce/handler';
import { createHandler as createExpiry } from '../../lambda/expiry/handler';
import { createHandler as createReconcile } from '../../lambda/reconcile/handler';
import { DeadlineHttpHandler, MAX_CALL_MS } from '../../aws/clients/timeouts';
import { enforce as runEnforcer, type EnforcerDeps } from '../../lambda/shared/enforcer';
import { NaclAdapter } from '../../aws/nacl-adapter';
import { EnforceQueue } from '../../lambda/shared/queue';
import { TimerQueue } from '../../lambda/shared/timer-queue';
import { LOOKAHEAD_MS } from '../../lambda/expiry/handler';
import { BlockRepository, PlacementLedger } from '../../aws/repository';
import { UpdatePacer, WafAdapter } from '../../aws/waf-adapter';
import { claimRuleRange } from '../../lib/NaclCleanup';
import { SimClock } from '../fakes/clock';
import { FakeEc2 } from '../fakes/ec2';
import { RecordingObservability } from '../fakes/observability';
import { deliverFifo, FakeSqs, FakeTimerSqs } from '../fakes/sqs';
import { ACL_A, ACL_B, SET_V4, SET_V6, testSettings } from '../fakes/world';
import type { LocalTable } from './dynalite';
import { Ec2Server } from './ec2-server';
import { type SpecFamily, Spec, familyOfAddress, hostCidrText, naclHolders } from './spec';

/** An address as the spec keeps it (RFC 5952 text). */
function ipaddrText(address: string): string {
  const cidr = hostCidrText(address);
  return cidr.slice(0, cidr.lastIndexOf('/'));
}
import { WafServer } from './wafv2-server';

/** the SQS queue's visibility timeout (lib: 6 × the enforce function's 60 s timeout) */
export const VISIBILITY_TIMEOUT_MS = 360_000;
/** quota per direction: small, so eviction happens in short schedules */
export const QUOTA = 12;
const RANGE: [number, number] = [10, 60];
/**
 * How much earlier than EC2's creation the stack may count an entry's residence from: the ledger's
 * placedAt is the write's answer, or (an answer lost) its claim, made before the call and its
 * throttling backoff (aws/nacl-adapter.ts: up to 6 attempts, 8 s each at most).
 */
export const RESIDENCE_SLACK_MS = 60_000;
/** the schedules of lib (EnumerationBlocker): expiry every minute, reconcile every 5 minutes */
export const EXPIRY_MS = 60_000;
export const RECONCILE_MS = 5 * 60_000;
/** how far a scheduler tick may fire from its nominal time, either way; a delivery, how late */
export const JITTER_MS = 30_000;
/**
 * real time a call is waited for here: short while a hung call is queued, so that it costs little
 * real time (its simulated cost is the production MAX_CALL_MS); otherwise long enough that a
 * loaded machine, or something run in the middle of a call, never times a call out
 */
const HUNG_REAL_MS = 400;
const CALL_REAL_MS = 10_000;
const CREDENTIALS = { accessKeyId: 'AKIDTEST', secretAccessKey: 'test-secret' };

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
/** the second stack's ranges: the same as ours, overlapping, disjoint (two) */
export const OTHER_RANGES: ReadonlyArray<[number, number]> = [
  [10, 60],
  [40, 90],
  [61, 90],
  [70, 100],
];

type HangOp = 'DescribeNetworkAcls' | 'CreateNetworkAclEntry' | 'DeleteNetworkAclEntry' | 'GetIPSet' | 'UpdateIPSet';

export type Op =
  | { kind: 'event'; who: number; handshake: boolean; gapMs: number }
  | { kind: 'duplicate' }
  | { kind: 'advance'; ms: number }
  | { kind: 'drain' }
  /** a decision made while the next enforce run waits for its `call`-th EC2 answer */
  | { kind: 'midRun'; who: number; handshake: boolean; call: number }
  | { kind: 'staleAcl'; n: number }
  | { kind: 'lagAcl'; acl: number; n: number }
  | { kind: 'staleSet'; n: number }
  | { kind: 'indexLag'; ms: number }
  | { kind: 'throttleEc2'; n: number }
  | { kind: 'throttleWaf'; n: number }
  | { kind: 'lostAnswer'; op: 'CreateNetworkAclEntry' | 'ReplaceNetworkAclEntry' | 'DeleteNetworkAclEntry' | 'UpdateIPSet' }
  | { kind: 'hang'; op: HangOp; n: number }
  | { kind: 'operator'; acl: number; ruleNumber: number; variant: number }
  | { kind: 'otherStack' }
  /** the second stack's custom resource: at once (call 0) or before the `call`-th EC2 answer */
  | { kind: 'otherLifecycle'; request: 'Create' | 'Update' | 'Delete'; range: number; call: number }
  | { kind: 'deleteSet' }
  | { kind: 'stackUpdate' };

const FAULTS = new Set<Op['kind']>(['staleAcl', 'lagAcl', 'staleSet', 'indexLag', 'throttleEc2', 'throttleWaf', 'lostAnswer', 'hang', 'deleteSet']);

export function opArb(faults: boolean): fc.Arbitrary<Op> {
  const ops: Array<fc.WeightedArbitrary<Op>> = [
    { weight: 10, arbitrary: fc.record({ kind: fc.constant('event' as const), who: fc.nat(POOL.length - 1), handshake: fc.oneof({ weight: 4, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }), gapMs: fc.integer({ min: 1_000, max: 120_000 }) }) },
    { weight: 2, arbitrary: fc.constant({ kind: 'duplicate' as const }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 1_000, max: 90 * 60_000 }) }) },
    { weight: 4, arbitrary: fc.constant({ kind: 'drain' as const }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('midRun' as const), who: fc.nat(POOL.length - 1), handshake: fc.constant(true), call: fc.integer({ min: 1, max: 6 }) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('operator' as const), acl: fc.nat(1), ruleNumber: fc.integer({ min: 1, max: 100 }), variant: fc.nat(5) }) },
    { weight: 2, arbitrary: fc.constant({ kind: 'otherStack' as const }) },
    {
      weight: 1,
      arbitrary: fc.record({ kind: fc.constant('otherLifecycle' as const), request: fc.constantFrom('Create' as const, 'Update' as const, 'Delete' as const), range: fc.nat(OTHER_RANGES.length - 1), call: fc.integer({ min: 0, max: 6 }) }),
    },
    { weight: 1, arbitrary: fc.constant({ kind: 'stackUpdate' as const }) },
  ];
  if (faults) {
    ops.push(
      { weight: 2, arbitrary: fc.record({ kind: fc.constant('staleAcl' as const), n: fc.integer({ min: 1, max: 10 }) }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('lagAcl' as const), acl: fc.nat(1), n: fc.integer({ min: 1, max: 10 }) }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('staleSet' as const), n: fc.integer({ min: 1, max: 3 }) }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('indexLag' as const), ms: fc.integer({ min: 0, max: 2_000 }) }) },
      { weight: 2, arbitrary: fc.record({ kind: fc.constant('throttleEc2' as const), n: fc.integer({ min: 1, max: 4 }) }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('throttleWaf' as const), n: fc.integer({ min: 1, max: 3 }) }) },
      {
        weight: 2,
        arbitrary: fc.record({
          kind: fc.constant('lostAnswer' as const),
          op: fc.constantFrom('CreateNetworkAclEntry' as const, 'ReplaceNetworkAclEntry' as const, 'DeleteNetworkAclEntry' as const, 'UpdateIPSet' as const),
        }),
      },
      {
        weight: 1,
        arbitrary: fc.record({ kind: fc.constant('hang' as const), op: fc.constantFrom<HangOp>('DescribeNetworkAcls', 'CreateNetworkAclEntry', 'DeleteNetworkAclEntry', 'GetIPSet', 'UpdateIPSet'), n: fc.integer({ min: 1, max: 2 }) }),
      },
      { weight: 1, arbitrary: fc.constant({ kind: 'deleteSet' as const }) },
    );
  }
  return fc.oneof(...ops);
}

export function isFault(op: Op): boolean {
  return FAULTS.has(op.kind);
}

/** The second stack's first range: the same as ours, overlapping, or disjoint. */
export const otherRangeArb = fc.constantFrom<[number, number]>(OTHER_RANGES[0]!, OTHER_RANGES[1]!, OTHER_RANGES[2]!);

/** The seed of a schedule's scheduler jitter. */
export const jitterSeedArb = fc.integer({ min: 1, max: 2 ** 31 - 1 });

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
    case 4:
      return { RuleNumber: ruleNumber, Egress: false, Protocol: '-1', RuleAction: 'deny', Ipv6CidrBlock: '2001:db8::ff/128' };
    default: // portsnare's exact shape for an address this stack blocks: still the operator's, never adopted nor deleted
      return { RuleNumber: ruleNumber, Egress: false, Protocol: '-1', RuleAction: 'deny', CidrBlock: '203.0.113.1/32' };
  }
}

/** Whether synth refuses the two ranges on one ACL (lib/NaclCleanup.ts), asked of lib itself. */
function refusedAtSynth(a: readonly [number, number], b: readonly [number, number]): boolean {
  const stack = new Stack(new App(), 'Ranges');
  try {
    claimRuleRange(new Construct(stack, 'Ours'), [ACL_A], a);
    claimRuleRange(new Construct(stack, 'Theirs'), [ACL_A], b);
    return false;
  } catch {
    return true;
  }
}

/** A small seeded generator (mulberry32) for the scheduler's jitter. */
export function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The `active` and `changes` indexes, eventually consistent: while `lagMs` > 0 a Query of either
 * answers with the index as it was `lagMs` ago (the snapshots the runner takes, through the real
 * SDK, after every write of the table's block records: decide and expiry), in one page; a Query
 * of `changes` keeps its key condition (partition, `chgAt >= :from` or `= :done`) and its order
 * (ScanIndexForward). Everything else goes straight through.
 * https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html ("Reading data from a
 * global secondary index": eventually consistent; a change propagates "within a fraction of a
 * second under normal conditions").
 */
class LaggingIndex {
  lagMs = 0;
  private readonly snapshots: Array<{ at: number; items: Array<Record<string, unknown>>; changes: Array<Record<string, unknown>> }> = [];

  constructor(
    private readonly inner: DynamoDBDocumentClient,
    private readonly tableName: string,
    private readonly clock: SimClock,
  ) {
    this.snapshots.push({ at: clock.now(), items: [], changes: [] });
  }

  /** Records the index as it is now. */
  async snapshot(): Promise<void> {
    const items: Array<Record<string, unknown>> = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const out = await this.inner.send(
        new QueryCommand({
          TableName: this.tableName,
          IndexName: ACTIVE_INDEX,
          KeyConditionExpression: '#k = :v',
          ExpressionAttributeNames: { '#k': ACTIVE_KEY_ATTRIBUTE },
          ExpressionAttributeValues: { ':v': ACTIVE_KEY },
          ...(startKey ? { ExclusiveStartKey: startKey } : {}),
        }),
      );
      items.push(...(out.Items ?? []));
      startKey = out.LastEvaluatedKey;
    } while (startKey);
    // the `changes` index: every item with its partition attribute (sparse index), all partitions
    const changes: Array<Record<string, unknown>> = [];
    do {
      const out: { Items?: Array<Record<string, unknown>>; LastEvaluatedKey?: Record<string, unknown> } = await this.inner.send(
        new ScanCommand({
          TableName: this.tableName,
          FilterExpression: 'attribute_exists(#k)',
          ExpressionAttributeNames: { '#k': CHANGE_KEY_ATTRIBUTE },
          ...(startKey ? { ExclusiveStartKey: startKey } : {}),
        }),
      );
      changes.push(...(out.Items ?? []));
      startKey = out.LastEvaluatedKey;
    } while (startKey);
    this.snapshots.push({ at: this.clock.now(), items, changes });
  }

  /** A Query of the `changes` index answered from a snapshot (key condition and order kept). */
  private changesAsOf(snapshot: Array<Record<string, unknown>>, input: Record<string, unknown>): Array<Record<string, unknown>> {
    const values = (input.ExpressionAttributeValues ?? {}) as Record<string, unknown>;
    const partition = values[':partition'] ?? values[':marker'];
    const from = values[':from'] as string | undefined;
    const exactly = values[':done'] as string | undefined;
    if (partition === undefined) throw new Error(`LaggingIndex: a Query of the changes index it cannot answer: ${JSON.stringify(input)}`);
    const items = snapshot
      .filter((item) => item[CHANGE_KEY_ATTRIBUTE] === partition)
      .filter((item) => from === undefined || String(item[CHANGE_AT_ATTRIBUTE]) >= from)
      .filter((item) => exactly === undefined || item[CHANGE_AT_ATTRIBUTE] === exactly)
      .sort((a, b) => (String(a[CHANGE_AT_ATTRIBUTE]) < String(b[CHANGE_AT_ATTRIBUTE]) ? -1 : 1));
    return input.ScanIndexForward === false ? items.reverse() : items;
  }

  readonly client = {
    send: async (command: { input: Record<string, unknown> }): Promise<unknown> => {
      const out = (await this.inner.send(command as never)) as Record<string, unknown>;
      if (this.lagMs <= 0 || (command.input.IndexName !== ACTIVE_INDEX && command.input.IndexName !== CHANGES_INDEX)) return out;
      const seenAt = this.clock.now() - this.lagMs;
      let at = this.snapshots.length - 1;
      while (at >= 0 && this.snapshots[at]!.at > seenAt) at--;
      if (at < 0 || at === this.snapshots.length - 1) return out; // nothing changed since then
      if (command.input.IndexName === CHANGES_INDEX) {
        const items = this.changesAsOf(this.snapshots[at]!.changes, command.input);
        return { ...out, Items: items, Count: items.length, LastEvaluatedKey: undefined };
      }
      const by = (command.input.ExpressionAttributeValues as Record<string, unknown> | undefined)?.[':by'];
      const items = this.snapshots[at]!.items.filter((item) => by === undefined || Number(item[EXPIRES_AT_ATTRIBUTE]) <= Number(by));
      return { ...out, Items: items, Count: items.length, LastEvaluatedKey: undefined };
    },
  } as unknown as DynamoDBDocumentClient;
}

export interface RunResult {
  readonly failures: string[];
  /** detection → first seen in WAF, seconds of simulated time */
  readonly lags: number[];
  /** a block's expiry → gone from every ACL and IP set, seconds of simulated time */
  readonly liftLags: number[];
  /** entries of the second stack left in the ACL after its Delete, or outside its range after an Update */
  readonly orphans: number;
}

const entryFamily = (e: NetworkAclEntry): SpecFamily => (e.Ipv6CidrBlock !== undefined ? 'ipv6' : 'ipv4');
const entryKey = (e: NetworkAclEntry): string => JSON.stringify([e.RuleNumber, e.Egress, e.Protocol, e.RuleAction, e.CidrBlock, e.Ipv6CidrBlock, e.PortRange, e.IcmpTypeCode]);
const isHostDeny = (e: NetworkAclEntry) => !e.Egress && e.RuleAction === 'deny' && e.Protocol === '-1' && !e.PortRange && !e.IcmpTypeCode;
const overlaps = (a: readonly [number, number], b: readonly [number, number]) => a[0] <= b[1] && b[0] <= a[1];

interface OtherStack {
  range: [number, number];
  deps: EnforcerDeps;
  cleanup: (event: CloudFormationCustomResourceEvent) => Promise<unknown>;
  deleted: boolean;
  /** a Delete the custom resource failed: CloudFormation's DELETE_FAILED, retried by the operator */
  deleteFailed: boolean;
  obs: RecordingObservability;
}

/**
 * Runs one schedule from a fresh world (new servers, new tables) and checks it against the spec.
 * `jitterSeed`: the scheduler's jitter (0: every tick on time, every delivery at once).
 */
export async function runSchedule(
  db: LocalTable,
  runId: string,
  ops: readonly Op[],
  otherRange: [number, number],
  jitterSeed = 0,
  /**
   * the NACL residence time in seconds (default: the production default, core/settings.ts), and
   * the rules per direction (default QUOTA; smaller: the places are contended in short schedules)
   */
  options: { readonly residenceSeconds?: number; readonly quota?: number } = {},
): Promise<RunResult> {
  const quota = options.quota ?? QUOTA;
  const clock = new SimClock();
  const obs = new RecordingObservability();
  const settings: PipelineSettings = testSettings({
    nacl: { aclIds: [ACL_A, ACL_B], ruleRange: RANGE, quotaPerDirection: quota, ...(options.residenceSeconds !== undefined ? { residenceSeconds: options.residenceSeconds } : {}) },
  });
  const ec2 = new Ec2Server(new FakeEc2(quota, () => 0.5, () => clock.now()));
  const waf = new WafServer(clock, () => 0.5);
  for (const aclId of [ACL_A, ACL_B]) ec2.ec2.addAcl(aclId, { ipv6: true });
  for (const ref of settings.waf.sets) waf.waf.addSet(ref);
  await ec2.start();
  await waf.start();
  // the production request handler (a connection timeout, a deadline per attempt), its budget short in real time
  const budget = (server: Ec2Server | WafServer) => () => (server.hangsQueued ? HUNG_REAL_MS : CALL_REAL_MS);
  const ec2Client = new EC2Client({ region: 'eu-west-1', endpoint: ec2.endpoint, credentials: CREDENTIALS, maxAttempts: 2, requestHandler: new DeadlineHttpHandler(budget(ec2)) });
  const wafClient = new WAFV2Client({ region: 'eu-west-1', endpoint: waf.endpoint, credentials: CREDENTIALS, maxAttempts: 2, requestHandler: new DeadlineHttpHandler(budget(waf)) });
  // a hung call costs the caller its whole budget
  ec2.onHang = () => clock.advance(MAX_CALL_MS);
  waf.onHang = () => clock.advance(MAX_CALL_MS);
  try {
    const tableA = await db.addTable(`a-${runId}`);
    const sqs = new FakeSqs(clock);
    const repo = new BlockRepository(db.doc, tableA);
    const index = new LaggingIndex(db.doc, tableA, clock);
    const lagged = new BlockRepository(index.client, tableA);
    const queue = new EnforceQueue(sqs.client, sqs.queueUrl);
    const nacl = new NaclAdapter(ec2Client, clock, obs, () => 0.5, new PlacementLedger(db.doc, tableA), RANGE);
    const wafAdapter = new WafAdapter({ REGIONAL: wafClient }, clock, obs, new UpdatePacer(), () => 0.5);
    const decide = createDecide({ repo, queue, burst: new BurstGate(db.doc, tableA, clock), settings, obs, clock });
    const enforce = createEnforce({ repo: lagged, nacl, waf: wafAdapter, settings, obs, clock, sqs: sqs.client, queueUrl: sqs.queueUrl }) as (event: SQSEvent) => Promise<{ changes: number }>;
    const timerSqs = new FakeTimerSqs(clock);
    const expiry = createExpiry({ repo: lagged, queue, obs, clock, timers: new TimerQueue(timerSqs.client, timerSqs.queueUrl) });
    const reconcileTick = createReconcile({ queue, obs, clock });
    const start = clock.now();
    const failures: string[] = [];

    // the second stack: its own table and ledger, enforcing directly (its own queue is not modelled)
    let stacks = 0;
    const otherRecord = (target: string, at: number): BlockRecord => ({ target, family: 'ipv4', reason: 'manual', firstSeen: at, lastSeen: at, hitCount: 1, offences: 1, blockedAt: at, expiresAt: at + 30 * 86400_000, active: true, eventIds: [], sensors: [] });
    const customResource = (request: 'Create' | 'Update' | 'Delete', range: readonly [number, number], old?: readonly [number, number]): CloudFormationCustomResourceEvent => {
      const props = { ServiceToken: 'x', AclIds: [ACL_A], RuleRange: range.map(String) };
      const common = { ServiceToken: 'x', ResponseURL: 'x', StackId: 'x', RequestId: 'x', LogicalResourceId: 'NaclCleanup', ResourceType: 'Custom::PortsnareNaclCleanup', ResourceProperties: props };
      if (request === 'Create') return { ...common, RequestType: 'Create' };
      if (request === 'Delete') return { ...common, RequestType: 'Delete', PhysicalResourceId: 'p' };
      return { ...common, RequestType: 'Update', PhysicalResourceId: 'p', OldResourceProperties: { ServiceToken: 'x', AclIds: [ACL_A], RuleRange: (old ?? range).map(String) } };
    };
    const otherStack = async (range: [number, number], table: string, existing?: OtherStack): Promise<OtherStack> => {
      const otherObs = existing?.obs ?? new RecordingObservability();
      const otherSettings = testSettings({ nacl: { aclIds: [ACL_A], ruleRange: range, quotaPerDirection: quota }, waf: { sets: [] } });
      const ledger = new PlacementLedger(db.doc, table);
      const otherNacl = new NaclAdapter(ec2Client, clock, otherObs, () => 0.5, ledger, range);
      return {
        range,
        deps: { repo: new BlockRepository(db.doc, table), nacl: otherNacl, waf: new WafAdapter({}, clock, otherObs, new UpdatePacer(), () => 0.5), settings: otherSettings, obs: otherObs, clock },
        cleanup: createCleanup({ nacl: otherNacl, ledger, settings: otherSettings, obs: otherObs, clock }),
        deleted: false,
        deleteFailed: false,
        obs: otherObs,
      };
    };
    let otherTable = await db.addTable(`b-${runId}-${++stacks}`);
    let other = await otherStack(otherRange, otherTable);
    await other.cleanup(customResource('Create', otherRange));
    for (const target of OTHER_STACK_TARGETS) await other.deps.repo.save(otherRecord(target, start), undefined, start);
    const rangesSeen: Array<[number, number]> = [otherRange];
    let orphans = 0;

    const lifecycle = async (request: 'Create' | 'Update' | 'Delete', rangeIndex: number) => {
      if (request === 'Create') {
        if (!other.deleted) return; // one second stack at a time: a new one after a Delete
        const range = OTHER_RANGES[rangeIndex]!;
        otherTable = await db.addTable(`b-${runId}-${++stacks}`);
        other = await otherStack(range, otherTable);
        rangesSeen.push(range);
        await other.cleanup(customResource('Create', range)).catch((error: unknown) => failures.push(`the second stack's Create failed: ${String(error)}`));
        const now = clock.now();
        for (const target of OTHER_STACK_TARGETS) await other.deps.repo.save(otherRecord(target, now), undefined, now);
        return;
      }
      if (other.deleted) return;
      if (request === 'Delete') {
        try {
          await other.cleanup(customResource('Delete', other.range));
          other.deleted = true;
          other.deleteFailed = false;
        } catch {
          other.deleteFailed = true; // DELETE_FAILED: the stack stays, as it was, until the Delete is retried
        }
        return;
      }
      const range = OTHER_RANGES[rangeIndex]!;
      if (range[0] === other.range[0] && range[1] === other.range[1]) return;
      const old = other.range;
      try {
        await other.cleanup(customResource('Update', range, old));
        other = await otherStack(range, otherTable, other);
        rangesSeen.push(range);
      } catch {
        // UPDATE_ROLLBACK: CloudFormation sends the old properties back as an Update; the old range stays
        await other.cleanup(customResource('Update', old, range)).catch(() => undefined);
      }
    };
    const runOther = async () => {
      if (!other.deleted) await runEnforcer(other.deps, 'reconcile').catch(() => undefined);
    };

    const spec = new Spec(settings.policy, settings.guard);
    const operatorEntries = new Map<string, NetworkAclEntry[]>([[ACL_A, []], [ACL_B, []]]);
    const operatorKeys = () => new Set([...operatorEntries.values()].flat().map(entryKey));
    const lags: number[] = [];
    const measured = new Set<string>();
    const liftLags: number[] = [];
    const lifted = new Set<string>();
    let lastEvent: { id: string; attacker: string; handshake: boolean } | undefined;
    let deletedSet = false;
    /** a fault op has been issued (its effects may linger: stale reads, claims of lost answers) */
    let faulted = false;
    let seq = 0;

    /** Where AWS holds an address for this stack now: its IP sets, its entries (not the operator's) in either ACL. */
    const heldAnywhere = (): Set<string> => {
      const held = new Set<string>();
      for (const ref of settings.waf.sets) for (const cidr of waf.waf.addresses(ref)) held.add(cidr);
      const theirs = operatorKeys();
      for (const aclId of [ACL_A, ACL_B]) {
        for (const e of ec2.ec2.entries(aclId)) if (isHostDeny(e) && !theirs.has(entryKey(e))) held.add(e.CidrBlock ?? e.Ipv6CidrBlock ?? '');
      }
      return held;
    };
    /** This stack's entries in one ACL now (not the operator's): address, rule number, when EC2 created it. */
    const poolCidrs = new Map(POOL.map((address) => [hostCidrText(address), ipaddrText(address)]));
    const oursIn = (aclId: string) => {
      const operatorOwn = new Set((operatorEntries.get(aclId) ?? []).map(entryKey));
      return ec2.ec2
        .entries(aclId)
        .filter((e) => isHostDeny(e) && !operatorOwn.has(entryKey(e)) && poolCidrs.has(e.CidrBlock ?? e.Ipv6CidrBlock ?? ''))
        .map((e) => ({ entry: e, address: poolCidrs.get(e.CidrBlock ?? e.Ipv6CidrBlock ?? '')!, createdAt: ec2.ec2.createdAt(aclId, e.RuleNumber!) }));
    };
    const residenceMs = settings.nacl.residenceSeconds * 1000;
    /**
     * One enforce invocation under the spec's residence rule (see the top of this file): the
     * residents before it that must still hold their place after it. Not checked while the
     * index lags (the run then sees records older than the spec's, by design).
     */
    const underResidence = async <T>(invoke: () => Promise<T>): Promise<T> => {
      if (residenceMs <= 0 || index.lagMs > 0) return invoke();
      const t0 = clock.now();
      const active0 = new Set(spec.active(t0).map((a) => a.address));
      const before = new Map([ACL_A, ACL_B].map((aclId) => [aclId, oursIn(aclId).filter((o) => o.createdAt !== undefined && t0 - o.createdAt < residenceMs - RESIDENCE_SLACK_MS && active0.has(o.address))]));
      const gone = faulted ? [] : [ACL_A, ACL_B].map((aclId) => ({ aclId, addresses: oursIn(aclId).filter((o) => !active0.has(o.address)).map((o) => o.address) }));
      const result = await invoke();
      const active1 = spec.active(clock.now());
      // before any fault: an entry whose address was no longer active when the run started (its
      // block expired) is gone after it, whatever its age — unless it was blocked again meanwhile
      const activeNow = new Set(active1.map((a) => a.address));
      for (const { aclId, addresses } of gone) {
        const left = new Set(oursIn(aclId).map((o) => o.address));
        for (const address of addresses) if (left.has(address) && !activeNow.has(address)) failures.push(`${aclId}: ${address} no longer active, yet its entry outlived the run`);
      }
      for (const aclId of [ACL_A, ACL_B]) {
        const residents = new Set(before.get(aclId)!.map((o) => o.address));
        if (!residents.size) continue;
        const mine = oursIn(aclId);
        const others = ec2.ec2.entries(aclId).filter((e) => !e.Egress && !mine.some((m) => m.entry.RuleNumber === e.RuleNumber));
        const count = { ipv4: others.filter((e) => entryFamily(e) === 'ipv4').length, ipv6: others.filter((e) => entryFamily(e) === 'ipv6').length };
        const usedByOthers = new Set(others.map((e) => e.RuleNumber).filter((n) => n! >= RANGE[0] && n! <= RANGE[1]));
        const mustKeep = naclHolders(active1.filter((a) => residents.has(a.address)), count, quota, RANGE[1] - RANGE[0] + 1 - usedByOthers.size);
        const held = new Set(mine.map((m) => m.address));
        for (const address of mustKeep) {
          if (!held.has(address)) failures.push(`${aclId}: ${address} lost its place while it was a resident (created less than ${residenceMs - RESIDENCE_SLACK_MS} ms before the run, still active)`);
        }
      }
      return result;
    };

    /** Observed before and after every invocation: detection → in WAF, and expiry → gone everywhere. */
    const observe = () => {
      const now = clock.now();
      const active = spec.active(now);
      const inWaf = new Set([...waf.waf.addresses(SET_V4), ...waf.waf.addresses(SET_V6)]);
      for (const a of active) {
        const key = `${a.address}@${a.detectedAt}`;
        if (measured.has(key) || !inWaf.has(hostCidrText(a.address))) continue;
        measured.add(key);
        lags.push((now - a.detectedAt) / 1000);
      }
      const stillActive = new Set(active.map((a) => a.address));
      let held: Set<string> | undefined;
      for (const block of spec.blocks()) {
        const key = `${block.address}@${block.blockedAt}`;
        if (block.expiresAt > now || lifted.has(key)) continue;
        if (stillActive.has(block.address)) {
          lifted.add(key); // blocked again before it was lifted: desired, not late
          continue;
        }
        held ??= heldAnywhere();
        if (held.has(hostCidrText(block.address))) continue;
        lifted.add(key);
        liftLags.push((now - block.expiresAt) / 1000);
      }
    };

    /** the earliest expiresAt among the table's active records (a tick before it finds nothing due: it is skipped) */
    let dueFrom = Infinity;
    const snapshotTable = async () => {
      await index.snapshot();
      dueFrom = Math.min(Infinity, ...(await repo.listActive()).map((s) => s.record.expiresAt));
    };
    const send = async (id: string, attacker: string, handshake: boolean) => {
      const at = new Date(clock.now()).toISOString();
      await decide({
        version: '0', id, 'detail-type': 'Scan Detected', source: 'portsnare.sensor', account: '123456789012', time: at, region: 'eu-west-1', resources: [],
        detail: { version: 1, sensorId: 'i-0123456789abcdef0', attacker, probes: [{ protocol: 'tcp', port: 23, kind: 'connect' }], probeCount: 3, handshake, firstSeen: at, lastSeen: at },
      });
      spec.sighting(id, attacker, handshake, clock.now());
      await snapshotTable();
    };

    // What happens in the middle of a run, at the k-th EC2 request from now: a decision is made
    // before that request is answered; a stack operation starts then and goes on alongside the
    // run (a request is never held longer than a client would wait for it).
    const armed: Array<{ calls: number; act: () => Promise<void>; alongside: boolean }> = [];
    const alongside: Array<Promise<void>> = [];
    ec2.beforeServe = async () => {
      const due = armed.filter((a) => --a.calls <= 0);
      for (const a of due) {
        armed.splice(armed.indexOf(a), 1);
        if (a.alongside) alongside.push(a.act());
        else await a.act();
      }
    };
    const joinAlongside = async () => {
      while (alongside.length) await alongside.shift();
    };

    const random = seeded(jitterSeed);
    const jitter = () => (jitterSeed ? Math.round((random() * 2 - 1) * JITTER_MS) : 0);
    const lateness = () => (jitterSeed ? Math.round(random() * JITTER_MS) : 0);

    /**
     * The FIFO event source: one batch at a time, deleted when enforce succeeds; a failed batch
     * comes back when its visibility timeout ends (360 s, or the 30 s enforce sets for a
     * transient failure), and the simulated clock jumps there. The poller is up to 30 s late.
     */
    const drain = async (): Promise<number> => {
      if (sqs.depth === 0) return 0;
      clock.advance(lateness());
      let changes = 0;
      await deliverFifo(
        sqs,
        clock,
        async (event) => {
          observe();
          return underResidence(() => enforce(event));
        },
        {
          maxInvocations: 60,
          after: (result) => {
            changes += (result as { changes: number } | undefined)?.changes ?? 0;
            observe();
          },
        },
      );
      return changes;
    };
    // the scheduler: tick k of a schedule fires at start + k × period, up to JITTER_MS off; the expiry timers (below) in between, at their own times
    let expiryTick = 1;
    let reconcileTickN = 1;
    let nextExpiry = start + EXPIRY_MS + jitter();
    let nextReconcile = start + RECONCILE_MS + jitter();
    /**
     * The expiry timer queue (lambda/shared/timer-queue.ts): a message becomes visible at its sent
     * time + DelaySeconds and is delivered to the expiry function then, plus the same lateness as
     * the enforce queue's deliveries (up to 30 s): both are Lambda SQS event sources, polled the
     * same way, and nothing makes a standard queue's poller more punctual than the FIFO's.
     * `timerDue` is when the next timer is delivered (its lateness drawn once, when it is first
     * the earliest).
     */
    let timerDue: number | undefined;
    let timerFor: number | undefined;
    const nextTimer = (): number | undefined => {
      const visible = timerSqs.nextVisibleAt();
      if (visible === undefined) return (timerDue = timerFor = undefined);
      if (timerFor !== visible || timerDue === undefined) {
        timerFor = visible;
        timerDue = Math.max(clock.now(), visible + lateness());
      }
      return timerDue;
    };
    const runExpiry = async (event: unknown) => {
      observe();
      await expiry(event).catch(() => undefined); // a failed run: the next tick finds the same records due
      await snapshotTable();
      observe();
    };
    const advanceTo = async (target: number) => {
      await drain();
      for (;;) {
        const timerAt = nextTimer() ?? Infinity;
        const at = Math.min(nextExpiry, nextReconcile, timerAt);
        if (at > target) break;
        if (at > clock.now()) clock.set(at);
        if (at === timerAt) {
          timerDue = timerFor = undefined;
          const event = timerSqs.receive();
          if (event) await runExpiry(event);
        } else if (at === nextExpiry) {
          nextExpiry = start + ++expiryTick * EXPIRY_MS + jitter();
          // a tick finds nothing due and sends no timer before the first record is within the lookahead: skipped
          if (clock.now() + LOOKAHEAD_MS < dueFrom) continue;
          await runExpiry({});
        } else {
          nextReconcile = start + ++reconcileTickN * RECONCILE_MS + jitter();
          await reconcileTick({});
        }
        await drain();
      }
      if (clock.now() < target) clock.set(target);
    };

    for (const op of ops) {
      await joinAlongside();
      if (isFault(op)) faulted = true;
      switch (op.kind) {
        case 'event': {
          await advanceTo(clock.now() + op.gapMs);
          const id = `evt-${runId}-${++seq}`;
          lastEvent = { id, attacker: POOL[op.who]!, handshake: op.handshake };
          await send(id, lastEvent.attacker, op.handshake);
          break;
        }
        case 'duplicate':
          if (lastEvent) await send(lastEvent.id, lastEvent.attacker, lastEvent.handshake);
          break;
        case 'advance':
          await advanceTo(clock.now() + op.ms);
          break;
        case 'drain':
          await drain();
          break;
        case 'midRun': {
          const id = `evt-${runId}-${++seq}`;
          armed.push({ calls: op.call, act: () => send(id, POOL[op.who]!, op.handshake), alongside: false });
          break;
        }
        case 'staleAcl':
          ec2.ec2.staleNext(op.n);
          break;
        case 'lagAcl': {
          const aclId = op.acl === 0 ? ACL_A : ACL_B;
          ec2.ec2.lagNext(aclId, ec2.ec2.entries(aclId), op.n);
          break;
        }
        case 'staleSet':
          waf.waf.staleNext(op.n);
          break;
        case 'indexLag':
          index.lagMs = op.ms;
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
        case 'hang':
          (op.op === 'GetIPSet' || op.op === 'UpdateIPSet' ? waf : ec2).hangNext(op.op, op.n);
          break;
        case 'operator': {
          const aclId = op.acl === 0 ? ACL_A : ACL_B;
          const entry = operatorEntry(op.ruleNumber, op.variant);
          const ingress = ec2.ec2.entries(aclId).filter((e) => !e.Egress);
          const mine = operatorEntries.get(aclId)!;
          // what AWS would refuse (a taken number, the quota) the operator cannot do either
          if (mine.length >= 3 || ingress.some((e) => e.RuleNumber === entry.RuleNumber) || ingress.filter((e) => entryFamily(e) === entryFamily(entry)).length >= quota) break;
          ec2.ec2.consoleEdit(aclId, (entries) => [...entries, entry]);
          mine.push(entry);
          break;
        }
        case 'otherStack':
          await runOther();
          break;
        case 'otherLifecycle':
          if (op.call === 0) await lifecycle(op.request, op.range);
          else armed.push({ calls: op.call, act: () => lifecycle(op.request, op.range), alongside: true });
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

    // The faults stop (what was armed happens now); the cool-down of freed rule numbers passes
    // with the schedules running; a failed Delete is retried; both stacks reconcile until quiet.
    ec2.ec2.clearFaults();
    waf.waf.clearFaults();
    ec2.clearDrops();
    waf.clearDrops();
    index.lagMs = 0;
    await joinAlongside();
    for (const a of armed.splice(0)) await a.act();
    await advanceTo(clock.now() + 11 * 60_000);
    await joinAlongside();
    if (other.deleteFailed && !other.deleted) await lifecycle('Delete', 0);
    if (other.deleteFailed && !other.deleted) failures.push('the second stack\'s Delete failed again once the faults stopped');
    let quiet = false;
    for (let round = 0; round < 5 && !quiet; round++) {
      await sqs.client.send(new SendMessageCommand({ QueueUrl: sqs.queueUrl, MessageBody: JSON.stringify({ kind: 'reconcile' }), MessageGroupId: 'enforce', MessageDeduplicationId: `final-${++seq}` }));
      const ours = await drain();
      const theirs = other.deleted ? 0 : (await runEnforcer(other.deps, 'reconcile')).changes;
      quiet = ours === 0 && theirs === 0;
    }
    if (!quiet) failures.push('no quiet state after 5 reconcile rounds (flapping)');
    observe();
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

    // two stacks on one ACL: synth refuses overlapping ranges, and only those (lib/NaclCleanup.ts)
    for (const range of rangesSeen) {
      if (refusedAtSynth(RANGE, range) !== overlaps(RANGE, range)) failures.push(`synth ${overlaps(RANGE, range) ? 'accepts' : 'refuses'} the ranges [${RANGE.join(', ')}] and [${range.join(', ')}] on one ACL`);
    }

    // NACLs: this stack's entries are the spec's holders; the other stack's hold what fits for it; the operator's are untouched
    const ourCidrs = new Map(POOL.map((address) => [hostCidrText(address), address]));
    const otherCidrs = new Set(OTHER_STACK_TARGETS.map(hostCidrText));
    for (const aclId of [ACL_A, ACL_B]) {
      const ingress = ec2.ec2.entries(aclId).filter((e) => !e.Egress);
      const operatorOwn = new Set((operatorEntries.get(aclId) ?? []).map(entryKey));
      for (const entry of operatorEntries.get(aclId) ?? []) {
        if (!ingress.some((e) => entryKey(e) === entryKey(entry))) failures.push(`${aclId}: the operator's entry ${entryKey(entry)} was changed or removed`);
      }
      const ours = ingress.filter((e) => isHostDeny(e) && !operatorOwn.has(entryKey(e)) && ourCidrs.has(e.CidrBlock ?? e.Ipv6CidrBlock ?? ''));
      const theirs = ingress.filter((e) => isHostDeny(e) && otherCidrs.has(e.CidrBlock ?? ''));
      for (const e of ours) if (e.RuleNumber! < RANGE[0] || e.RuleNumber! > RANGE[1]) failures.push(`${aclId}: our entry outside the range: ${entryKey(e)}`);
      // a foreign entry inside our range (the operator's, the other stack's) is reported, never taken
      const foreign = ingress.filter((e) => e.RuleNumber! >= RANGE[0] && e.RuleNumber! <= RANGE[1] && !ours.includes(e));
      if (foreign.length && !obs.metrics.get('NaclForeignInRange')) failures.push(`${aclId}: ${foreign.length} foreign entries in our range, never reported (NaclForeignInRange)`);
      const count = (entries: NetworkAclEntry[]) => ({ ipv4: entries.filter((e) => entryFamily(e) === 'ipv4').length, ipv6: entries.filter((e) => entryFamily(e) === 'ipv6').length });
      const check = (who: string, mine: NetworkAclEntry[], wanted: typeof active, range: [number, number]) => {
        const others = ingress.filter((e) => !mine.includes(e));
        const usedByOthers = new Set(others.map((e) => e.RuleNumber).filter((n) => n! >= range[0] && n! <= range[1]));
        const holders = naclHolders(wanted, count(others), quota, range[1] - range[0] + 1 - usedByOthers.size);
        const want = [...holders].map(hostCidrText).sort();
        const have = mine.map((e) => e.CidrBlock ?? e.Ipv6CidrBlock ?? '').sort();
        if (JSON.stringify(want) !== JSON.stringify(have)) failures.push(`${aclId} ${who}: want ${JSON.stringify(want)} have ${JSON.stringify(have)}`);
      };
      check('this stack', ours, active, RANGE);
      if (aclId === ACL_A && other.deleted) {
        orphans += theirs.length;
        if (theirs.length) failures.push(`${aclId}: the second stack was deleted, yet ${theirs.map(entryKey).join(', ')} remain`);
      } else if (aclId === ACL_A) {
        const outside = theirs.filter((e) => e.RuleNumber! < other.range[0] || e.RuleNumber! > other.range[1]);
        orphans += outside.length;
        if (outside.length) failures.push(`${aclId}: the second stack's entries outside its range [${other.range.join(', ')}]: ${outside.map(entryKey).join(', ')}`);
        const otherActive = OTHER_STACK_TARGETS.map((address) => ({ address, family: familyOfAddress(address), lastSeen: start, detectedAt: start }));
        check('other stack', theirs, otherActive, other.range);
      } else if (theirs.length) failures.push(`${aclId}: the other stack does not use this ACL, yet it holds ${theirs.length} of its entries`);
    }
    return { failures, lags, liftLags, orphans };
  } finally {
    ec2Client.destroy();
    wafClient.destroy();
    await ec2.stop();
    await waf.stop();
  }
}
