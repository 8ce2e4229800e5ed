/**
 * One organization schedule on the wire (core/org.ts, docs/scale.md), shared by
 * test/wire/org-convergence.test.ts (fast-check) and bench/org.bench.ts.
 *
 * The decision plane: the REAL decide and expiry handlers over the desired-state table (dynalite)
 * and the decision wake-up FIFO queue (visibility timeout 60 s). The fan-out as core/org.ts
 * describes it and lib/org (DecisionPlane, EnforcementPlane) wires it: an EventBridge Pipe turns
 * every wake-up that reaches the decision queue into one `Desired State Changed` event from
 * `portsnare.decision` on the decision bus (its detail the wake-up wrapped as {"wakeUp": …},
 * by the documented Pipes input transformation, pipeTransform below); a rule forwards it to every plane's bus, and the
 * plane's rules put the wake-up on the plane's FIFO enforce queue: {kind, notBefore} when it has
 * a notBefore (one per second), else {kind, at: the event's time}, so that two `expire` wake-ups
 * are two different bodies. An EventBridge
 * rule whose target is a FIFO queue needs the queue to have content-based deduplication ("If you
 * specify an SQS FIFO queue as a target, the queue must have content-based deduplication
 * enabled", EventBridge Target.SqsParameters:
 * https://docs.aws.amazon.com/sdk-for-kotlin/api/latest/eventbridge/aws.sdk.kotlin.services.eventbridge.model/-target/sqs-parameters.html;
 * a rule target sets only MessageGroupId:
 * https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-properties-events-rule-sqsparameters.html),
 * so a body sent again within 5 minutes is accepted and not delivered
 * (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/using-messagededuplicationid-property.html).
 *
 * N enforcement planes (account × Region), each with its OWN EC2 and WAFv2 HTTP fakes (its own
 * ACL, IP sets, faults), the REAL enforce handler (createHandler) with its own NaclAdapter and
 * WafAdapter over real SDK clients to its fakes, its own placement ledger table, its report in the
 * decision table (PlaneReports), its own FIFO queue and its own 5-minute reconcile (the REAL
 * reconcile handler). Planes run in parallel: each delivery round starts every plane at the same
 * simulated time, and the clock then goes on from the latest of them.
 *
 * Faults:
 * - one Region unreachable for OUTAGE_MS: every call from its planes to its own endpoints (EC2,
 *   WAFv2, the ledger table) is refused (ECONNREFUSED, which the SDK retries as transient), and
 *   fan-out deliveries to it are LOST. EventBridge would retry a failed delivery for up to 24 hours
 *   by default (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-retry-policy.html);
 *   losing them is the worst case. The decision table stays reachable (it is in the decision
 *   plane's Region), so the plane's reports say it is behind. Its reconcile schedule keeps firing;
 *   its failed batches go to the dead-letter queue after 5 receives.
 * - a plane added later: its fakes start empty, it gets fan-out from then on, and its first
 *   reconcile (RECONCILE_MS after it is added) catches it up from the table.
 * - per plane: throttling (EC2, WAF), stale ACL reads (up to 10 in a row) and IP set reads, lost answers.
 * - the scheduler (`jitterSeed`, every schedule with faults): each expiry and reconcile tick up to
 *   ±30 s off its nominal time (test/wire/convergence-run.ts JITTER_MS).
 * - the decision plane: duplicate events, a wake-up SendMessage that fails (decide fails; Lambda
 *   retries an asynchronous invocation twice, 1 and 2 minutes later:
 *   https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html), and a
 *   fan-out that fails (the decision message comes back after the queue's visibility timeout).
 *
 * The SDK's own retries are real (its StandardRetryStrategy decides whether and how often); only
 * their waits pass on the simulated clock instead of in real time (`simulatedRetry`).
 *
 * After the schedule the faults stop, the cool-down passes (every plane's schedules still run),
 * then every plane reconciles until quiet, and EVERY plane's AWS state is compared with
 * test/wire/spec.ts (never with core/'s planning); each plane's report must say converged, recently.
 */
import { type NetworkAclEntry, EC2Client } from '@aws-sdk/client-ec2';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { WAFV2Client } from '@aws-sdk/client-wafv2';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { StandardRetryStrategy } from '@smithy/core/retry';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { SQSEvent } from 'aws-lambda';
import fc from 'fast-check';
import { DECISION_SOURCE, DESIRED_STATE_CHANGED, type PlaneStatus, planeId, planeStatus } from '../../core/org';
import { ENFORCE_GROUP_ID } from '../../core/settings';
import type { PipelineSettings } from '../../core/settings';
import { BurstGate } from '../../lambda/decide/burst';
import { createHandler as createDecide } from '../../lambda/decide/handler';
import { createHandler as createEnforce } from '../../lambda/enforce/handler';
import { createHandler as createExpiry } from '../../lambda/expiry/handler';
import { createHandler as createReconcile } from '../../lambda/reconcile/handler';
import { NaclAdapter } from '../../aws/nacl-adapter';
import { PlaneReports } from '../../aws/plane-reports';
import { EnforceQueue } from '../../lambda/shared/queue';
import { TimerQueue } from '../../lambda/shared/timer-queue';
import { BlockRepository, PlacementLedger } from '../../aws/repository';
import { UpdatePacer, WafAdapter } from '../../aws/waf-adapter';
import { SimClock } from '../fakes/clock';
import { FakeEc2 } from '../fakes/ec2';
import { RecordingObservability } from '../fakes/observability';
import { deliverFifo, FakeSqs, FakeTimerSqs } from '../fakes/sqs';
import { SET_V4, SET_V6, testSettings } from '../fakes/world';
import { JITTER_MS, POOL, seeded } from './convergence-run';
import type { LocalTable } from './dynalite';
import { Ec2Server } from './ec2-server';
import { type SpecFamily, Spec, hostCidrText, naclHolders } from './spec';
import { WafServer } from './wafv2-server';

export const ACCOUNTS = ['111111111111', '222222222222', '333333333333'] as const;
export const REGIONS = ['eu-west-1', 'us-east-1'] as const;
/** the decision plane's Region (the security account's); the outage never hits it */
export const DECISION_REGION = REGIONS[0];
export const OUTAGE_REGION = REGIONS[1];
export const OUTAGE_MS = 3600_000;
/** each plane's reconcile schedule (lib: rate(5 minutes)) and the decision plane's expiry (1 minute) */
export const RECONCILE_MS = 5 * 60_000;
export const EXPIRY_MS = 60_000;
/** Lambda's asynchronous retries of a failed decide invocation */
const DECIDE_RETRIES_MS = [60_000, 120_000];
/** quota per direction: small, so eviction happens in short schedules */
export const QUOTA = 10;
const RANGE: [number, number] = [10, 60];
const WAF_SETS = [SET_V4, SET_V6];

export type OrgOp =
  | { kind: 'event'; who: number; handshake: boolean; gapMs: number }
  | { kind: 'duplicate' }
  | { kind: 'advance'; ms: number }
  | { kind: 'throttleEc2'; plane: number; n: number }
  | { kind: 'throttleWaf'; plane: number; n: number }
  | { kind: 'staleAcl'; plane: number; n: number }
  | { kind: 'staleSet'; plane: number; n: number }
  | { kind: 'lostAnswer'; plane: number; op: 'CreateNetworkAclEntry' | 'DeleteNetworkAclEntry' | 'UpdateIPSet' }
  | { kind: 'wakeUpLost' }
  | { kind: 'fanOutFails' }
  /** reads every plane's report and records its status (what `portsnare status --org` shows) */
  | { kind: 'status' }
  /** records what every plane's WAF IP sets hold now, and what the specification wants */
  | { kind: 'probe' };

export interface OrgSchedule {
  /** how many of ACCOUNTS; each has a plane in every one of REGIONS */
  readonly accounts: number;
  /** OUTAGE_REGION unreachable for OUTAGE_MS from this offset (ms after the start) */
  readonly outageAtMs?: number;
  /** plane `plane` (an index into the planes) joins the organization at this offset */
  readonly lateAdd?: { readonly plane: number; readonly atMs: number };
  readonly ops: readonly OrgOp[];
  /** the scheduler's jitter: tick k of the expiry and reconcile schedules fires up to JITTER_MS off k × period (none without it) */
  readonly jitterSeed?: number;
}

const planeFault = (n: number) => fc.nat(n);


/**
 * The decision pipe's target input template, as test/lib/org.test.ts checks lib/org synthesizes
 * it: the SQS body wrapped in an object.
 */
export const PIPE_TEMPLATE = '{"wakeUp": <$.body>}';

/**
 * An EventBridge Pipes input transformation of one SQS record, only as the documentation page
 * describes it (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-pipes-input-transformation.html):
 * the template is JSON with `<$.path>` variables into the event payload (the SQS record; a body
 * that is JSON is reached by path, "Dynamic JSON": `"key2": <$.body.key>`); an unquoted variable
 * that refers to a JSON object or array takes that JSON ("do not put quotes around variables that
 * refer to JSON objects or arrays"). A template that is a variable alone is refused here: that is
 * the form the page warns about, and nothing documented says what it gives.
 */
export function pipeTransform(template: string, record: { readonly body: string }): unknown {
  if (/^\s*<[^>]+>\s*$/.test(template)) throw new Error(`pipe template ${template} is a variable alone: its result is not documented; wrap it in an object`);
  let body: unknown = record.body;
  try {
    body = JSON.parse(record.body);
  } catch {
    // a body that is not JSON stays a string
  }
  const payload: Record<string, unknown> = { ...record, body };
  const at = (path: string): unknown => path.replace(/^\$\.?/, '').split('.').filter(Boolean).reduce<unknown>((v, k) => (v as Record<string, unknown> | undefined)?.[k], payload);
  const text = template.replace(/<(\$[^>]*)>/g, (_, path: string) => {
    const value = at(path);
    if (typeof value !== 'object' || value === null) throw new Error(`pipe variable <${path}> is not an object or array: quote it in the template`);
    return JSON.stringify(value);
  });
  return JSON.parse(text);
}

export function orgOpArb(planes: number, faults: boolean): fc.Arbitrary<OrgOp> {
  const ops: Array<fc.WeightedArbitrary<OrgOp>> = [
    { weight: 10, arbitrary: fc.record({ kind: fc.constant('event' as const), who: fc.nat(POOL.length - 1), handshake: fc.oneof({ weight: 4, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }), gapMs: fc.integer({ min: 1_000, max: 10 * 60_000 }) }) },
    { weight: 2, arbitrary: fc.constant({ kind: 'duplicate' as const }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 1_000, max: 20 * 60_000 }) }) },
  ];
  if (faults) {
    const p = planeFault(planes - 1);
    ops.push(
      { weight: 2, arbitrary: fc.record({ kind: fc.constant('throttleEc2' as const), plane: p, n: fc.integer({ min: 1, max: 4 }) }) },
      { weight: 2, arbitrary: fc.record({ kind: fc.constant('throttleWaf' as const), plane: p, n: fc.integer({ min: 1, max: 3 }) }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('staleAcl' as const), plane: p, n: fc.integer({ min: 1, max: 10 }) }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('staleSet' as const), plane: p, n: fc.integer({ min: 1, max: 3 }) }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('lostAnswer' as const), plane: p, op: fc.constantFrom('CreateNetworkAclEntry' as const, 'DeleteNetworkAclEntry' as const, 'UpdateIPSet' as const) }) },
      { weight: 1, arbitrary: fc.constant({ kind: 'wakeUpLost' as const }) },
      { weight: 1, arbitrary: fc.constant({ kind: 'fanOutFails' as const }) },
    );
  }
  return fc.oneof(...ops);
}

/** A schedule: 2 or 3 accounts × 2 Regions, with or without the Region outage and a late plane. */
export function orgScheduleArb(faults: boolean, maxOps = 20): fc.Arbitrary<OrgSchedule> {
  return fc.integer({ min: 2, max: 3 }).chain((accounts) => {
    const planes = accounts * REGIONS.length;
    return fc.record({
      accounts: fc.constant(accounts),
      outageAtMs: faults ? fc.option(fc.integer({ min: 0, max: 60 * 60_000 }), { nil: undefined }) : fc.constant(undefined),
      lateAdd: faults ? fc.option(fc.record({ plane: fc.nat(planes - 1), atMs: fc.integer({ min: 60_000, max: 90 * 60_000 }) }), { nil: undefined }) : fc.constant(undefined),
      ops: fc.array(orgOpArb(planes, faults), { minLength: 4, maxLength: maxOps }),
      jitterSeed: faults ? fc.integer({ min: 1, max: 2 ** 31 - 1 }) : fc.constant(undefined),
    });
  });
}

const MIN = 60_000;

/** Ops from a timeline of minutes: a number scans POOL[that], anything else is an op at that minute. */
export function timeline(steps: Array<[minute: number, op: number | OrgOp]>): OrgOp[] {
  const ops: OrgOp[] = [];
  let now = 0;
  for (const [minute, what] of steps) {
    const gapMs = minute * MIN - now;
    now = minute * MIN;
    if (typeof what === 'number') ops.push({ kind: 'event', who: what, handshake: true, gapMs });
    else {
      if (gapMs > 0) ops.push({ kind: 'advance', ms: gapMs });
      ops.push(what);
    }
  }
  return ops;
}

const at = (address: string) => POOL.indexOf(address);

/**
 * The named fault schedule (test and benchmark): 3 accounts × 2 Regions; us-east-1 down from
 * minute 10 to 70; 333333333333/eu-west-1 joins at minute 30 and nothing is decided until its
 * first reconcile (35); nothing is decided from the Region's return until minute 80; WAF
 * throttling on one plane; a duplicate event; `status` reads at minutes 60 and 90.
 */
export const ORG_FAULT_SCHEDULE: OrgSchedule = {
  accounts: 3,
  outageAtMs: 10 * MIN,
  lateAdd: { plane: 4, atMs: 30 * MIN },
  ops: timeline([
    [1, 0],
    [3, 1],
    [5, at('2001:db8::1')],
    [7, at('198.51.100.250')], // allowlisted: never blocked anywhere
    [9, at('192.0.2.1')],
    [12, 2],
    [15, 3],
    [15.5, { kind: 'duplicate' }],
    [20, { kind: 'throttleWaf', plane: 0, n: 2 }],
    [21, { kind: 'throttleEc2', plane: 2, n: 3 }],
    [22, 4],
    [40, 5],
    [45, at('2001:db8::2')],
    [60, { kind: 'status' }],
    [80, 6],
    [85, 0], // still blocked: a refresh, not a new block
    [90, { kind: 'status' }],
  ]),
};

export interface OrgRunResult {
  readonly failures: string[];
  readonly planes: number;
  /** planes whose AWS state equals the specification at the end */
  readonly planesConverged: number;
  /** per decision made while every plane was in and reachable: seconds until the LAST plane held it in WAF */
  readonly fanOutLags: number[];
  /** seconds from the Region's return until every plane of it equalled the desired state (before the final reconcile) */
  readonly catchUpDownS?: number;
  /** seconds from the late plane joining until it equalled the desired state */
  readonly catchUpAddedS?: number;
  readonly statuses: Array<{ readonly at: number; readonly offsetMs: number; readonly statuses: PlaneStatus[] }>;
  readonly probes: Array<{ readonly offsetMs: number; readonly want: string[]; readonly held: Record<string, string[]> }>;
  readonly lostDeliveries: number;
  readonly deadLetters: number;
  /** enforce invocations, all planes */
  readonly runs: number;
  /** fan-out deliveries a plane queue accepted and did not deliver (content-based deduplication), by wake-up kind */
  readonly deduplicated: Record<string, number>;
}

/** The SDK's standard retry strategy, its waits moved onto the simulated clock (0 ms of real time). */
function simulatedRetry(clock: SimClock, random: () => number): StandardRetryStrategy {
  let base = 0;
  return new StandardRetryStrategy({
    maxAttempts: 2,
    backoff: {
      setDelayBase(delay: number) {
        base = delay;
      },
      computeNextBackoffDelay(attempt: number) {
        // the same formula as the SDK's DefaultRetryBackoffStrategy: full jitter, capped at 20 s
        clock.advance(Math.floor(random() * Math.min(base * 2 ** attempt, 20_000)));
        return 0;
      },
    },
  });
}

/** The network path from a plane's Lambda to its Region's endpoints: refused while the Region is down. */
class RegionLink extends NodeHttpHandler {
  constructor(private readonly down: () => boolean) {
    super();
  }

  override async handle(...args: Parameters<NodeHttpHandler['handle']>): ReturnType<NodeHttpHandler['handle']> {
    if (this.down()) {
      const [request] = args;
      throw Object.assign(new Error(`connect ECONNREFUSED ${request.hostname}:${request.port ?? ''}`), { code: 'ECONNREFUSED', errno: -111, syscall: 'connect' });
    }
    return super.handle(...args);
  }
}

interface Plane {
  readonly index: number;
  readonly id: string;
  readonly region: string;
  readonly aclId: string;
  readonly ec2: Ec2Server;
  readonly waf: WafServer;
  readonly sqs: FakeSqs;
  readonly clients: Array<{ destroy(): void }>;
  readonly obs: RecordingObservability;
  readonly enforce: (event: SQSEvent) => Promise<unknown>;
  readonly reconcile: () => Promise<unknown>;
  joinedAt: number;
  nextReconcileAt: number;
  reconcileTick: number;
  /** address@detectedAt → when this plane first held it in WAF */
  readonly enforced: Map<string, number>;
  /** set when the plane has something to catch up from (the Region's return, joining late) */
  catchUpFrom?: number;
  caughtUpAt?: number;
  changes: number;
  runs: number;
}

const CREDENTIALS = { accessKeyId: 'AKIDTEST', secretAccessKey: 'test-secret' };
const isHostDeny = (e: NetworkAclEntry) => !e.Egress && e.RuleAction === 'deny' && e.Protocol === '-1' && !e.PortRange && !e.IcmpTypeCode;
const familyOfEntry = (e: NetworkAclEntry): SpecFamily => (e.Ipv6CidrBlock !== undefined ? 'ipv6' : 'ipv4');
const POOL_CIDRS = new Set(POOL.map(hostCidrText));

/** How a plane's AWS state differs from the specification's desired state (empty: equal). */
function planeDiff(plane: Plane, active: ReturnType<Spec['active']>): string[] {
  const failures: string[] = [];
  for (const ref of WAF_SETS) {
    const want = active.filter((a) => a.family === ref.family).map((a) => hostCidrText(a.address)).sort();
    const have = plane.waf.waf.addresses(ref).sort();
    const missing = want.filter((c) => !have.includes(c));
    if (missing.length) failures.push(`${plane.id} ${ref.name}: LOST ${JSON.stringify(missing)}`);
    if (JSON.stringify(want) !== JSON.stringify(have)) failures.push(`${plane.id} ${ref.name}: want ${JSON.stringify(want)} have ${JSON.stringify(have)}`);
  }
  const ingress = plane.ec2.ec2.entries(plane.aclId).filter((e) => !e.Egress);
  const ours = ingress.filter((e) => isHostDeny(e) && POOL_CIDRS.has(e.CidrBlock ?? e.Ipv6CidrBlock ?? ''));
  for (const e of ours) if (e.RuleNumber! < RANGE[0] || e.RuleNumber! > RANGE[1]) failures.push(`${plane.id} ${plane.aclId}: entry outside the range: rule ${e.RuleNumber}`);
  const others = ingress.filter((e) => !ours.includes(e));
  const usedByOthers = new Set(others.map((e) => e.RuleNumber).filter((n) => n! >= RANGE[0] && n! <= RANGE[1]));
  const count = { ipv4: others.filter((e) => familyOfEntry(e) === 'ipv4').length, ipv6: others.filter((e) => familyOfEntry(e) === 'ipv6').length };
  const want = [...naclHolders(active, count, QUOTA, RANGE[1] - RANGE[0] + 1 - usedByOthers.size)].map(hostCidrText).sort();
  const have = ours.map((e) => e.CidrBlock ?? e.Ipv6CidrBlock ?? '').sort();
  if (JSON.stringify(want) !== JSON.stringify(have)) failures.push(`${plane.id} ${plane.aclId}: want ${JSON.stringify(want)} have ${JSON.stringify(have)}`);
  return failures;
}

/** Runs one organization schedule from a fresh world (new servers, new tables) and checks it against the spec. */
export async function runOrgSchedule(
  db: LocalTable,
  runId: string,
  schedule: OrgSchedule,
  /**
   * the planes' NACL residence time in seconds (default: the production default, core/settings.ts);
   * the final comparison comes after quiescence + 11 minutes (> R), where the holders are the
   * spec's without residence; `catchUp*` and the probes compare with those holders at once, so
   * they mean what they say only at 0
   */
  options: { readonly residenceSeconds?: number } = {},
): Promise<OrgRunResult> {
  const clock = new SimClock();
  const random = () => 0.5;
  const start = clock.now();
  const obs = new RecordingObservability();
  const decisionSettings: PipelineSettings = testSettings({ nacl: { aclIds: [], ruleRange: RANGE, quotaPerDirection: QUOTA }, waf: { sets: [] } });
  const decisionTable = await db.addTable(`org-${runId}`);
  const repo = new BlockRepository(db.doc, decisionTable);
  const reports = new PlaneReports(db.doc, decisionTable);
  const decisionSqs = new FakeSqs(clock, 60);
  const decisionQueue = new EnforceQueue(decisionSqs.client, decisionSqs.queueUrl);
  const decide = createDecide({ repo, queue: decisionQueue, burst: new BurstGate(db.doc, decisionTable, clock), settings: decisionSettings, obs, clock });
  // the expiry timer queue (lambda/shared/timer-queue.ts): a timer is delivered to expiry when it
  // becomes visible (sent time + DelaySeconds), as this runner delivers its other queues: on time
  const timerSqs = new FakeTimerSqs(clock);
  const expiry = createExpiry({ repo, queue: decisionQueue, obs, clock, timers: new TimerQueue(timerSqs.client, timerSqs.queueUrl) });
  const outageFrom = schedule.outageAtMs === undefined ? undefined : start + schedule.outageAtMs;
  let outageOver = false;
  const regionDown = (region: string) => region === OUTAGE_REGION && outageFrom !== undefined && !outageOver && clock.now() >= outageFrom && clock.now() < outageFrom + OUTAGE_MS;

  const tickRandom = seeded(schedule.jitterSeed ?? 0);
  const jitter = () => (schedule.jitterSeed ? Math.round((tickRandom() * 2 - 1) * JITTER_MS) : 0);
  const planes: Plane[] = [];
  const planeCount = schedule.accounts * REGIONS.length;
  try {
    for (const account of ACCOUNTS.slice(0, schedule.accounts)) {
      for (const region of REGIONS) {
        const index = planes.length;
        const id = planeId(account, region);
        const aclId = `acl-0a1b2c3d4e5f7${String(index).padStart(4, '0')}`;
        const residence = options.residenceSeconds !== undefined ? { residenceSeconds: options.residenceSeconds } : {};
        const settings = testSettings({ nacl: { aclIds: [aclId], ruleRange: RANGE, quotaPerDirection: QUOTA, ...residence }, waf: { sets: WAF_SETS } });
        const ec2 = new Ec2Server(new FakeEc2(QUOTA, random));
        const waf = new WafServer(clock, random);
        ec2.ec2.addAcl(aclId, { ipv6: true });
        for (const ref of WAF_SETS) waf.waf.addSet(ref);
        await ec2.start();
        await waf.start();
        const down = () => regionDown(region);
        const common = { region, credentials: CREDENTIALS, retryStrategy: simulatedRetry(clock, random), requestHandler: new RegionLink(down) };
        const ec2Client = new EC2Client({ ...common, endpoint: ec2.endpoint });
        const wafClient = new WAFV2Client({ ...common, endpoint: waf.endpoint });
        const ledgerRaw = new DynamoDBClient({ ...common, endpoint: db.endpoint });
        const ledgerDoc = DynamoDBDocumentClient.from(ledgerRaw, { marshallOptions: { removeUndefinedValues: true } });
        const ledgerTable = await db.addTable(`org-${runId}-ledger-${index}`);
        const planeObs = new RecordingObservability();
        const sqs = new FakeSqs(clock, undefined, undefined, { contentBasedDeduplication: true });
        const enforce = createEnforce({
          repo,
          nacl: new NaclAdapter(ec2Client, clock, planeObs, random, new PlacementLedger(ledgerDoc, ledgerTable), RANGE),
          waf: new WafAdapter({ REGIONAL: wafClient }, clock, planeObs, new UpdatePacer(), random),
          settings,
          obs: planeObs,
          clock,
          sqs: sqs.client,
          queueUrl: sqs.queueUrl,
          plane: { id, reports },
        }) as (event: SQSEvent) => Promise<unknown>;
        const reconcile = createReconcile({ queue: new EnforceQueue(sqs.client, sqs.queueUrl), obs: planeObs, clock });
        const joinedAt = schedule.lateAdd && schedule.lateAdd.plane % planeCount === index ? start + schedule.lateAdd.atMs : start;
        planes.push({ index, id, region, aclId, ec2, waf, sqs, clients: [ec2Client, wafClient, ledgerRaw], obs: planeObs, enforce, reconcile, joinedAt, nextReconcileAt: joinedAt + RECONCILE_MS + jitter(), reconcileTick: 1, enforced: new Map(), changes: 0, runs: 0 });
      }
    }
    const late = schedule.lateAdd ? planes.find((p) => p.joinedAt > start) : undefined;
    const joined = (p: Plane) => clock.now() >= p.joinedAt;

    const spec = new Spec(decisionSettings.policy, decisionSettings.guard);
    const failures: string[] = [];
    const statuses: OrgRunResult['statuses'] = [];
    const probes: OrgRunResult['probes'] = [];
    /** decisions made while every plane was in and reachable, for the fan-out lag */
    const healthyDecisions = new Set<string>();
    const pendingDecides: Array<{ at: number; event: Record<string, unknown>; retry: number }> = [];
    let expiryTick = 1;
    let nextExpiryAt = start + EXPIRY_MS + jitter();
    let fanOutFailures = 0;
    let lostDeliveries = 0;
    const deduplicated: Record<string, number> = {};
    let lastEvent: Record<string, unknown> | undefined;
    let seq = 0;
    let downReturnedAt: number | undefined;

    const observe = (plane: Plane) => {
      const now = clock.now();
      const active = spec.active(now);
      const held = new Set(WAF_SETS.flatMap((ref) => plane.waf.waf.addresses(ref)));
      for (const a of active) {
        const key = `${a.address}@${a.detectedAt}`;
        if (!plane.enforced.has(key) && held.has(hostCidrText(a.address))) plane.enforced.set(key, now);
      }
      if (plane.catchUpFrom !== undefined && plane.caughtUpAt === undefined && planeDiff(plane, active).length === 0) plane.caughtUpAt = now;
    };

    const invokeDecide = async (event: Record<string, unknown>, retry: number) => {
      try {
        await decide(event);
      } catch {
        // Lambda retries an asynchronous invocation twice (1 min, then 2 min later)
        const wait = DECIDE_RETRIES_MS[retry];
        if (wait !== undefined) pendingDecides.push({ at: clock.now() + wait, event, retry: retry + 1 });
        else failures.push(`decide gave up on event ${String(event.id)}`);
      }
    };

    const sendScan = async (id: string, attacker: string, handshake: boolean) => {
      const at = new Date(clock.now()).toISOString();
      const event = {
        version: '0', id, 'detail-type': 'Scan Detected', source: 'portsnare.sensor', account: ACCOUNTS[1], time: at, region: REGIONS[1], resources: [],
        detail: { version: 1, sensorId: 'i-0123456789abcdef0', attacker, probes: [{ protocol: 'tcp', port: 23, kind: 'connect' }], probeCount: 3, handshake, firstSeen: at, lastSeen: at },
      };
      lastEvent = event;
      spec.sighting(id, attacker, handshake, clock.now());
      if (planes.every((p) => joined(p) && !regionDown(p.region))) {
        for (const a of spec.active(clock.now())) if (a.detectedAt === clock.now()) healthyDecisions.add(`${a.address}@${a.detectedAt}`);
      }
      await invokeDecide(event, 0);
    };

    /** the decision queue's consumer: each wake-up → one Desired State Changed event → every plane's queue */
    const fanOut = async (event: SQSEvent) => {
      if (fanOutFailures > 0) {
        fanOutFailures--;
        throw new Error('PutEvents to the decision bus failed');
      }
      for (const record of event.Records) {
        // an EventBridge event's time has whole seconds: "2026-11-21T10:00:00Z"
        const time = new Date(Math.floor(clock.now() / 1000) * 1000).toISOString().replace('.000Z', 'Z');
        const busEvent = { source: DECISION_SOURCE, 'detail-type': DESIRED_STATE_CHANGED, time, detail: pipeTransform(PIPE_TEMPLATE, record) as { wakeUp: { kind: string; notBefore?: number } } };
        const wakeUp = busEvent.detail.wakeUp;
        // the plane's two rules (input transformers): with notBefore, or with the event's time
        const body = wakeUp.notBefore !== undefined ? { kind: wakeUp.kind, notBefore: wakeUp.notBefore } : { kind: wakeUp.kind, at: busEvent.time };
        for (const plane of planes) {
          if (!joined(plane)) continue; // not in the organization yet: no rule targets its bus
          if (regionDown(plane.region)) {
            lostDeliveries++;
            continue;
          }
          // the plane's rule target: MessageGroupId "enforce", content-based deduplication
          const before = plane.sqs.calls.deduplicated;
          await plane.sqs.client.send(new SendMessageCommand({ QueueUrl: plane.sqs.queueUrl, MessageBody: JSON.stringify(body), MessageGroupId: ENFORCE_GROUP_ID }));
          if (plane.sqs.calls.deduplicated > before) {
            const kind = wakeUp.kind;
            deduplicated[kind] = (deduplicated[kind] ?? 0) + 1;
          }
        }
      }
    };

    /** Delivers what is visible now: the decision queue, then every plane's queue in parallel. */
    const settle = async () => {
      await deliverFifo(decisionSqs, clock, fanOut, { until: clock.now(), maxInvocations: 50 });
      const t0 = clock.now();
      let end = t0;
      for (const plane of planes) {
        clock.set(t0);
        await deliverFifo(plane.sqs, clock, plane.enforce, {
          until: t0,
          maxInvocations: 50,
          after: (result) => {
            plane.runs++;
            plane.changes += (result as { changes?: number } | undefined)?.changes ?? 0;
            observe(plane);
          },
        });
        end = Math.max(end, clock.now());
      }
      clock.set(end);
    };

    /** The schedules and retries due at or before now. */
    const fireDue = async () => {
      const now = clock.now();
      if (outageFrom !== undefined && downReturnedAt === undefined && !outageOver && now >= outageFrom + OUTAGE_MS) endOutage(outageFrom + OUTAGE_MS);
      for (const pending of pendingDecides.filter((p) => p.at <= now)) {
        pendingDecides.splice(pendingDecides.indexOf(pending), 1);
        await invokeDecide(pending.event, pending.retry);
      }
      if (nextExpiryAt <= now) {
        nextExpiryAt = schedule.jitterSeed ? start + ++expiryTick * EXPIRY_MS + jitter() : now + EXPIRY_MS;
        await expiry({}).catch(() => undefined); // a failed run: the next minute finds the same records due
      }
      for (let timers = timerSqs.receive(); timers; timers = timerSqs.receive()) await expiry(timers).catch(() => undefined);
      for (const plane of planes) {
        if (plane === late && plane.catchUpFrom === undefined && now >= plane.joinedAt) {
          plane.catchUpFrom = plane.joinedAt;
          observe(plane);
        }
        if (joined(plane) && plane.nextReconcileAt <= now) {
          plane.nextReconcileAt = schedule.jitterSeed ? plane.joinedAt + ++plane.reconcileTick * RECONCILE_MS + jitter() : now + RECONCILE_MS;
          await plane.reconcile();
        }
      }
    };

    const endOutage = (at: number) => {
      outageOver = true;
      downReturnedAt = at;
      for (const plane of planes) {
        if (plane.region !== OUTAGE_REGION || !joined(plane)) continue;
        plane.catchUpFrom = at; // a plane that joined during the outage catches up from the return too
        plane.caughtUpAt = undefined;
        observe(plane);
      }
    };

    const nextDue = () =>
      Math.min(
        nextExpiryAt,
        timerSqs.nextVisibleAt() ?? Infinity,
        ...planes.map((p) => p.nextReconcileAt),
        ...pendingDecides.map((p) => p.at),
        ...[decisionSqs, ...planes.map((p) => p.sqs)].map((q) => q.nextVisibleAt() ?? Infinity),
        ...(outageFrom !== undefined && !outageOver ? [outageFrom + OUTAGE_MS] : []),
        ...(late && late.joinedAt > clock.now() ? [late.joinedAt] : []),
      );

    /** Runs the world until `target`: every schedule, retry and redelivery due on the way. */
    const advanceTo = async (target: number) => {
      for (let guard = 0; guard < 20_000; guard++) {
        await fireDue();
        await settle();
        const next = nextDue();
        if (next <= clock.now()) continue; // became due while the planes ran
        if (next > target) {
          if (clock.now() < target) clock.set(target);
          return;
        }
        clock.set(next);
      }
      throw new Error('the simulation does not advance');
    };

    const takeStatus = async () => {
      const now = clock.now();
      const found = await reports.read(planes.map((p) => p.id));
      statuses.push({ at: now, offsetMs: now - start, statuses: [...found.values()].map((r) => planeStatus(r, now)) });
    };

    for (const op of schedule.ops) {
      const plane = 'plane' in op ? planes[op.plane % planes.length]! : undefined;
      switch (op.kind) {
        case 'event':
          await advanceTo(clock.now() + op.gapMs);
          await sendScan(`evt-${runId}-${++seq}`, POOL[op.who]!, op.handshake);
          await advanceTo(clock.now());
          break;
        case 'duplicate':
          if (lastEvent) {
            const detail = lastEvent.detail as { attacker: string; handshake: boolean };
            spec.sighting(String(lastEvent.id), detail.attacker, detail.handshake, clock.now());
            await invokeDecide(lastEvent, 0);
          }
          break;
        case 'advance':
          await advanceTo(clock.now() + op.ms);
          break;
        case 'throttleEc2':
          plane!.ec2.throttleNext(op.n);
          break;
        case 'throttleWaf':
          plane!.waf.throttleNext('UpdateIPSet', op.n);
          break;
        case 'staleAcl':
          plane!.ec2.ec2.staleNext(op.n);
          break;
        case 'staleSet':
          plane!.waf.waf.staleNext(op.n);
          break;
        case 'lostAnswer':
          (op.op === 'UpdateIPSet' ? plane!.waf : plane!.ec2).dropResponseNext(op.op);
          break;
        case 'wakeUpLost':
          decisionSqs.failNext('SendMessage', 'ServiceUnavailable');
          break;
        case 'fanOutFails':
          fanOutFailures++;
          break;
        case 'status':
          await takeStatus();
          break;
        case 'probe':
          probes.push({
            offsetMs: clock.now() - start,
            want: spec.active(clock.now()).map((a) => hostCidrText(a.address)).sort(),
            held: Object.fromEntries(planes.map((p) => [p.id, WAF_SETS.flatMap((ref) => p.waf.waf.addresses(ref)).sort()])),
          });
          break;
      }
    }
    // The schedule covers the whole outage and the late plane's arrival.
    await advanceTo(Math.max(clock.now(), outageFrom !== undefined ? outageFrom + OUTAGE_MS : 0, late ? late.joinedAt : 0));

    // The faults stop; the cool-down of freed rule numbers passes with every schedule running.
    for (const plane of planes) {
      plane.ec2.ec2.clearFaults();
      plane.waf.waf.clearFaults();
      plane.ec2.clearDrops();
      plane.waf.clearDrops();
    }
    fanOutFailures = 0;
    if (outageFrom !== undefined && !outageOver) endOutage(clock.now());
    await advanceTo(clock.now() + 11 * 60_000);
    const catchUp = (which: Plane[]) => {
      if (which.length === 0) return undefined;
      if (which.some((p) => p.caughtUpAt === undefined || p.catchUpFrom === undefined)) return Infinity;
      return Math.max(...which.map((p) => (p.caughtUpAt! - p.catchUpFrom!) / 1000));
    };
    const downPlanes = outageFrom !== undefined ? planes.filter((p) => p.region === OUTAGE_REGION && p !== late) : [];
    const catchUpDownS = catchUp(downPlanes);
    const catchUpAddedS = late ? catchUp([late]) : undefined;

    // Every plane reconciles (its own schedule) until a whole period passes without a change.
    // A round is one period plus twice the jitter: two jittered ticks can be RECONCILE_MS + 2 ×
    // JITTER_MS apart, so a bare period may hold no run of a plane (seen: seed -321520777).
    const finalFrom = clock.now();
    const roundMs = RECONCILE_MS + (schedule.jitterSeed ? 2 * JITTER_MS : 0);
    let quiet = false;
    for (let round = 0; round < 5 && !quiet; round++) {
      const before = planes.map((p) => p.changes);
      const runs = planes.map((p) => p.runs);
      await advanceTo(clock.now() + roundMs);
      quiet = planes.every((p, i) => p.changes === before[i] && p.runs > runs[i]!);
    }
    if (!quiet) failures.push('no quiet state after 5 reconcile periods (flapping)');
    // One last reconcile of every plane, all at the same instant, so that a block expiring
    // between a plane's last run and the comparison is not counted against it.
    for (const plane of planes) {
      await plane.sqs.client.send(new SendMessageCommand({ QueueUrl: plane.sqs.queueUrl, MessageBody: JSON.stringify({ kind: 'reconcile' }), MessageGroupId: ENFORCE_GROUP_ID, MessageDeduplicationId: `final-${runId}` }));
    }
    const checkedAt = clock.now();
    await settle();
    const now = clock.now();
    const active = spec.active(checkedAt);
    let planesConverged = 0;
    for (const plane of planes) {
      const diff = planeDiff(plane, active);
      if (diff.length === 0) planesConverged++;
      failures.push(...diff);
    }
    const found = await reports.read(planes.map((p) => p.id));
    for (const plane of planes) {
      const report = found.get(plane.id);
      if (!report) {
        failures.push(`${plane.id}: no report in the decision table`);
        continue;
      }
      const status = planeStatus(report, now);
      if (!report.converged || status.health !== 'healthy') failures.push(`${plane.id}: report says ${status.health}, converged ${report.converged}, failures ${JSON.stringify(report.failures)}`);
      if (report.lastRunAt < finalFrom) failures.push(`${plane.id}: last report at ${new Date(report.lastRunAt).toISOString()}, before the final reconcile`);
      // `desired` counts the records of the active index, expired ones the expiry has not lifted yet included
      if (report.desired < active.length) failures.push(`${plane.id}: report says ${report.desired} desired, the spec ${active.length}`);
    }
    const fanOutLags: number[] = [];
    for (const key of healthyDecisions) {
      const times = planes.map((p) => p.enforced.get(key));
      if (times.every((t): t is number => t !== undefined)) fanOutLags.push((Math.max(...times) - Number(key.split('@')[1])) / 1000);
    }
    return {
      failures,
      planes: planes.length,
      planesConverged,
      fanOutLags,
      ...(catchUpDownS !== undefined ? { catchUpDownS } : {}),
      ...(catchUpAddedS !== undefined ? { catchUpAddedS } : {}),
      statuses,
      probes,
      lostDeliveries,
      deadLetters: planes.reduce((n, p) => n + p.sqs.deadLetters.length, 0),
      runs: planes.reduce((n, p) => n + p.runs, 0),
      deduplicated,
    };
  } finally {
    for (const plane of planes) {
      for (const client of plane.clients) client.destroy();
      await plane.ec2.stop();
      await plane.waf.stop();
    }
  }
}
