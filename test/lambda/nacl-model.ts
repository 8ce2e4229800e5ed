/**
 * A model-based test of NACL ownership (core/nacl.ts "Ownership"), shared by
 * test/lambda/nacl-model.test.ts and bench/convergence.bench.ts: fast-check commands drive two
 * stacks sharing one ACL (ranges overlapping or disjoint) through the REAL enforcer, NaclAdapter,
 * placement ledger and cleanup handler, over the in-process EC2 and DynamoDB fakes (fast enough
 * for 100,000 interleavings), with faults: stale and lagging reads (up to 10 in a row), lost
 * answers, throttling, operator entries added in the console (inside either range, some of
 * portsnare's exact shape), and a stack's Delete at any point.
 *
 * The reference model is the authoritative ACL with the WRITER of every entry, recorded where
 * the calls reach EC2 (not from anything the code under test reports). Checked after every
 * command:
 * - never touched: a replace or delete reaches an entry written by somebody else (the operator,
 *   the other stack) → violation;
 * - never forgotten: an entry a stack wrote is held by that stack's ledger (a live row naming
 *   its CIDR) → else violation (an orphan nobody would ever lift);
 * and at the end, once the faults stop and the cool-down passes, after a few reconciles: each
 * live stack holds exactly one entry per active target, none for the others; a deleted stack
 * holds none (cleanup orphans).
 */
import {
  CreateNetworkAclEntryCommand,
  DeleteNetworkAclEntryCommand,
  type EC2Client,
  type NetworkAclEntry,
  ReplaceNetworkAclEntryCommand,
} from '@aws-sdk/client-ec2';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import fc from 'fast-check';
import type { BlockRecord } from '../../core/policy';
import { createHandler as createCleanup } from '../../lambda/cleanup/handler';
import { enforce } from '../../lambda/shared/enforcer';
import { NaclAdapter } from '../../aws/nacl-adapter';
import { BlockRepository, PlacementLedger } from '../../aws/repository';
import { UpdatePacer, WafAdapter } from '../../aws/waf-adapter';
import { SimClock } from '../fakes/clock';
import { FakeDynamoDb } from '../fakes/dynamodb';
import { FakeEc2 } from '../fakes/ec2';
import { RecordingObservability } from '../fakes/observability';
import { testSettings } from '../fakes/world';

export const ACL = 'acl-0a1b2c3d4e5f6a0b1';
const QUOTA = 40;
const RANGE_A: [number, number] = [10, 30];
export const RANGES_B: ReadonlyArray<[number, number]> = [
  [20, 40], // overlapping: what synth refuses within one app, possible across apps
  [31, 50], // disjoint
];
const TARGETS: Record<'A' | 'B', string[]> = {
  A: ['203.0.113.1', '203.0.113.2', '203.0.113.3', '203.0.113.4', '203.0.113.5'],
  B: ['203.0.113.3', '203.0.113.4', '198.51.100.6', '198.51.100.7', '198.51.100.8'], // two attackers in both stacks
};
type Who = 'A' | 'B';
type Writer = Who | 'operator';

interface Stack {
  readonly who: Who;
  readonly range: [number, number];
  readonly repo: BlockRepository;
  readonly ledger: PlacementLedger;
  readonly run: () => Promise<unknown>;
  readonly cleanup: (event: CloudFormationCustomResourceEvent) => Promise<unknown>;
  active: Set<string>;
  deleted: boolean;
}

/** The world of one interleaving: the fakes, the two stacks, and the reference model. */
export class World {
  readonly clock = new SimClock();
  readonly ec2 = new FakeEc2(QUOTA, () => 0.5);
  readonly stacks: Record<Who, Stack>;
  /** rule number → who wrote the entry there (the reference model) */
  readonly writer = new Map<number, Writer>();
  readonly violations: string[] = [];
  private lose: Array<'CreateNetworkAclEntry' | 'ReplaceNetworkAclEntry' | 'DeleteNetworkAclEntry'> = [];
  private throttles = 0;

  constructor(rangeB: [number, number]) {
    this.ec2.addAcl(ACL, { ipv6: true });
    this.stacks = { A: this.stack('A', RANGE_A), B: this.stack('B', rangeB) };
  }

  private entryAt(n: number): NetworkAclEntry | undefined {
    return this.ec2.entries(ACL).find((e) => !e.Egress && e.RuleNumber === n);
  }

  /** One stack's EC2 client: every write it sends is checked and recorded here, where it reaches EC2. */
  private clientOf(who: Who): EC2Client {
    const inner = this.ec2.client;
    const send = async (command: { input: Record<string, unknown> }): Promise<unknown> => {
      const write =
        command instanceof CreateNetworkAclEntryCommand ? 'CreateNetworkAclEntry' : command instanceof ReplaceNetworkAclEntryCommand ? 'ReplaceNetworkAclEntry' : command instanceof DeleteNetworkAclEntryCommand ? 'DeleteNetworkAclEntry' : undefined;
      if (write && this.throttles > 0) {
        this.throttles--;
        throw Object.assign(new Error('Request limit exceeded.'), { name: 'RequestLimitExceeded', $metadata: { httpStatusCode: 503, attempts: 1 } });
      }
      const n = Number(command.input.RuleNumber);
      const before = write ? this.entryAt(n) : undefined;
      if (write && write !== 'CreateNetworkAclEntry' && before && this.writer.get(n) !== who) {
        this.violations.push(`stack ${who} sent ${write} at rule ${n}, which holds ${before.RuleAction} ${before.CidrBlock} written by ${this.writer.get(n) ?? 'nobody known'}`);
      }
      const out = await inner.send(command as never);
      if (write === 'DeleteNetworkAclEntry') this.writer.delete(n);
      else if (write) this.writer.set(n, who);
      const lost = write ? this.lose.indexOf(write) : -1;
      if (lost >= 0) {
        this.lose.splice(lost, 1);
        throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
      }
      return out;
    };
    return { send } as unknown as EC2Client;
  }

  private stack(who: Who, range: [number, number]): Stack {
    const obs = new RecordingObservability();
    const ddb = new FakeDynamoDb(`model-${who}`);
    const settings = testSettings({ nacl: { aclIds: [ACL], ruleRange: range, quotaPerDirection: QUOTA }, waf: { sets: [] } });
    const ledger = new PlacementLedger(ddb.client, ddb.tableName);
    const repo = new BlockRepository(ddb.client, ddb.tableName);
    const nacl = new NaclAdapter(this.clientOf(who), this.clock, obs, () => 0.5, ledger, range);
    const deps = { repo, nacl, waf: new WafAdapter({}, this.clock, obs, new UpdatePacer(), () => 0.5), settings, obs, clock: this.clock };
    return {
      who,
      range,
      repo,
      ledger,
      run: () => enforce(deps, 'reconcile'),
      cleanup: createCleanup({ nacl, ledger, settings, obs, clock: this.clock }),
      active: new Set(),
      deleted: false,
    };
  }

  async setActive(who: Who, target: string, active: boolean): Promise<void> {
    const s = this.stacks[who];
    if (s.deleted) return;
    const now = this.clock.now();
    const stored = await s.repo.get(target);
    const record: BlockRecord = stored
      ? { ...stored.record, active, ...(active ? { expiresAt: now + 30 * 86400_000 } : { liftedBy: 'model' }) }
      : { target, family: 'ipv4', reason: 'manual', firstSeen: now, lastSeen: now, hitCount: 1, offences: 1, blockedAt: now, expiresAt: now + 30 * 86400_000, active, eventIds: [], sensors: [] };
    if (!stored && !active) return;
    await s.repo.save(record, stored?.version, now);
    if (active) s.active.add(target);
    else s.active.delete(target);
  }

  async run(who: Who): Promise<void> {
    if (this.stacks[who].deleted) return;
    await this.stacks[who].run().catch(() => undefined); // a failed point is the run's report, not the model's concern
  }

  async remove(who: Who): Promise<void> {
    const s = this.stacks[who];
    if (s.deleted) return;
    s.deleted = true;
    s.active.clear();
    const props = { ServiceToken: 'x', AclIds: [ACL], RuleRange: s.range.map(String) };
    await s
      .cleanup({ ServiceToken: 'x', ResponseURL: 'x', StackId: 'x', RequestId: 'x', LogicalResourceId: 'Cleanup', ResourceType: 'Custom::PortsnareNaclCleanup', ResourceProperties: props, PhysicalResourceId: 'p', RequestType: 'Delete' })
      .catch(() => undefined); // a failed Delete is retried by the end of the run (below)
  }

  /** The operator adds an entry in the console at a number free right now. */
  operator(ruleNumber: number, shape: number): void {
    if (this.entryAt(ruleNumber)) return;
    const entry: NetworkAclEntry =
      shape === 0
        ? { RuleNumber: ruleNumber, Egress: false, Protocol: '-1', RuleAction: 'allow', CidrBlock: '192.0.2.0/24' }
        : { RuleNumber: ruleNumber, Egress: false, Protocol: '-1', RuleAction: 'deny', CidrBlock: `${TARGETS.A[shape % TARGETS.A.length]}/32` }; // portsnare's exact shape
    this.ec2.consoleEdit(ACL, (entries) => [...entries, entry]);
    this.writer.set(ruleNumber, 'operator');
  }

  stale(n: number): void {
    this.ec2.staleNext(n);
  }

  lag(n: number): void {
    this.ec2.lagNext(ACL, this.ec2.entries(ACL), n);
  }

  loseNext(op: 'CreateNetworkAclEntry' | 'ReplaceNetworkAclEntry' | 'DeleteNetworkAclEntry'): void {
    this.lose.push(op);
  }

  throttle(n: number): void {
    this.throttles += n;
  }

  /** Never forgotten: every entry a stack wrote is held by its ledger. */
  async checkLedgers(): Promise<void> {
    for (const who of ['A', 'B'] as const) {
      const rows = await this.stacks[who].ledger.list(ACL);
      for (const [n, writer] of this.writer) {
        if (writer !== who) continue;
        const entry = this.entryAt(n);
        const row = rows.find((r) => r.ruleNumber === n && r.state !== 'freed');
        const held = row && [row.cidr, ...(row.maybe ?? [])].includes(entry?.CidrBlock ?? '');
        if (!held) this.violations.push(`stack ${who}'s entry at rule ${n} (${entry?.CidrBlock}) is not in its ledger: nobody would ever lift it`);
      }
    }
  }

  /** The faults stop; the cool-down passes; each live stack reconciles; a deleted stack's Delete is retried once. */
  async settle(): Promise<void> {
    this.ec2.clearFaults();
    this.lose = [];
    this.throttles = 0;
    this.clock.advance(11 * 60_000);
    for (let round = 0; round < 4; round++) for (const who of ['A', 'B'] as const) await this.run(who);
    for (const who of ['A', 'B'] as const) {
      const s = this.stacks[who];
      if (!s.deleted) continue;
      const props = { ServiceToken: 'x', AclIds: [ACL], RuleRange: s.range.map(String) };
      await s
        .cleanup({ ServiceToken: 'x', ResponseURL: 'x', StackId: 'x', RequestId: 'x', LogicalResourceId: 'Cleanup', ResourceType: 'Custom::PortsnareNaclCleanup', ResourceProperties: props, PhysicalResourceId: 'p', RequestType: 'Delete' })
        .catch(() => undefined);
    }
  }

  /** The end state: exactly one entry per active target per live stack; none of a deleted stack. */
  endState(): { violations: string[]; orphans: number } {
    const violations: string[] = [];
    let orphans = 0;
    for (const who of ['A', 'B'] as const) {
      const s = this.stacks[who];
      const mine = [...this.writer].filter(([, w]) => w === who).map(([n]) => this.entryAt(n)?.CidrBlock ?? '?').sort();
      if (s.deleted) {
        orphans += mine.length;
        if (mine.length) violations.push(`stack ${who} was deleted, yet ${mine.join(', ')} of its entries remain`);
        continue;
      }
      const want = [...s.active].map((t) => `${t}/32`).sort();
      if (JSON.stringify(mine) !== JSON.stringify(want)) violations.push(`stack ${who}: want ${JSON.stringify(want)} have ${JSON.stringify(mine)}`);
    }
    return { violations, orphans };
  }
}

class Step implements fc.AsyncCommand<object, World> {
  constructor(
    private readonly label: string,
    private readonly act: (world: World) => Promise<void> | void,
  ) {}
  check(): boolean {
    return true;
  }
  async run(_model: object, world: World): Promise<void> {
    await this.act(world);
    await world.checkLedgers();
    if (world.violations.length) throw new Error(`after ${this.label}: ${world.violations.join('; ')}`);
  }
  toString(): string {
    return this.label;
  }
}

const who = fc.constantFrom<Who>('A', 'B');

/** The commands of one interleaving. */
export function commandsArb(maxCommands = 30): fc.Arbitrary<Iterable<fc.AsyncCommand<object, World>>> {
  return fc.commands(
    [
      fc.tuple(who, fc.nat(4), fc.boolean()).map(([w, i, active]) => new Step(`${active ? 'block' : 'unblock'} ${w}:${TARGETS[w][i]}`, (world) => world.setActive(w, TARGETS[w][i]!, active))),
      who.map((w) => new Step(`run ${w}`, (world) => world.run(w))),
      who.map((w) => new Step(`run ${w}`, (world) => world.run(w))),
      fc.integer({ min: 1, max: 10 }).map((n) => new Step(`stale ${n}`, (world) => world.stale(n))),
      fc.integer({ min: 1, max: 10 }).map((n) => new Step(`lag ${n}`, (world) => world.lag(n))),
      fc.constantFrom('CreateNetworkAclEntry' as const, 'ReplaceNetworkAclEntry' as const, 'DeleteNetworkAclEntry' as const).map((op) => new Step(`lose ${op}`, (world) => world.loseNext(op))),
      fc.integer({ min: 1, max: 3 }).map((n) => new Step(`throttle ${n}`, (world) => world.throttle(n))),
      fc.tuple(fc.integer({ min: 10, max: 50 }), fc.nat(5)).map(([n, shape]) => new Step(`operator ${n}/${shape}`, (world) => world.operator(n, shape))),
      fc.constant(new Step('delete B', (world) => world.remove('B'))),
      fc.constant(new Step('delete A', (world) => world.remove('A'))),
    ],
    { maxCommands },
  );
}

export interface ModelResult {
  readonly violations: string[];
  readonly orphans: number;
}

/** One interleaving from a fresh world: the commands (checked after each), then the end state. */
export async function runInterleaving(rangeB: [number, number], commands: Iterable<fc.AsyncCommand<object, World>>): Promise<ModelResult> {
  const world = new World(rangeB);
  try {
    await fc.asyncModelRun(() => ({ model: {}, real: world }), commands);
  } catch (error) {
    return { violations: [String(error instanceof Error ? error.message : error)], orphans: 0 };
  }
  await world.settle();
  await world.checkLedgers();
  const end = world.endState();
  return { violations: [...world.violations, ...end.violations], orphans: end.orphans };
}
