/**
 * The NACL residence time (core/nacl.ts planNacl `residence`, `portsnare.enforcement.naclResidenceSeconds`)
 * and the incremental run's ACL cache (aws/points.ts NaclCache), attacked on the real engines:
 * dynalite (the decision table, the `changes` index, the placement ledger) and the EC2 and WAF
 * wire fakes behind the real SDK clients. Every count is what the fake EC2 served.
 * - Rules per network ACL, per direction, IPv4 and IPv6 apart, the default deny counted: 20.
 *   https://docs.aws.amazon.com/vpc/latest/userguide/amazon-vpc-limits.html
 * - DescribeNetworkAcls is the read; CreateNetworkAclEntry / ReplaceNetworkAclEntry the writes
 *   that place an entry. https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeNetworkAcls.html
 *   https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ReplaceNetworkAclEntry.html
 */
import { QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import type { BlockRecord } from '../../core/policy';
import { naclRuleKey, PLACEMENT_ATTRIBUTES } from '../../core/table';
import { enforce, type EnforceMode, newEnforcerState } from '../../lambda/shared/enforcer';
import { NaclAdapter } from '../../aws/nacl-adapter';
import { BlockRepository, PlacementLedger } from '../../aws/repository';
import { UpdatePacer, WafAdapter } from '../../aws/waf-adapter';
import { SimClock } from '../fakes/clock';
import { FakeEc2 } from '../fakes/ec2';
import { RecordingObservability } from '../fakes/observability';
import { ACL_A, SET_V4, SET_V6, testSettings } from '../fakes/world';
import { wireSuite } from './suite';
import { Ec2Server } from './ec2-server';
import { WafServer } from './wafv2-server';

const wire = wireSuite('residence');

const HOUR = 3600_000;
const RANGE: [number, number] = [10, 60];

async function plane(options: { residenceSeconds: number; quota?: number }) {
  const clock = new SimClock();
  const obs = new RecordingObservability();
  const quota = options.quota ?? 20;
  const ec2 = new Ec2Server(new FakeEc2(quota, () => 0.5, () => clock.now()));
  ec2.ec2.addAcl(ACL_A, { ipv6: true });
  await ec2.start();
  wire.track(ec2);
  const waf = new WafServer(clock, () => 0.5);
  for (const ref of [SET_V4, SET_V6]) waf.waf.addSet(ref);
  await waf.start();
  wire.track(waf);
  const table = await wire.nextTable('res');
  const repo = new BlockRepository(wire.db.doc, table);
  // the ledger's client counts its Queries (PlacementLedger.list)
  let ledgerLists = 0;
  const ledgerClient = {
    send: (command: unknown) => {
      if (command instanceof QueryCommand) ledgerLists++;
      return wire.db.doc.send(command as never);
    },
  } as unknown as DynamoDBDocumentClient;
  const ledger = new PlacementLedger(ledgerClient, table);
  const settings = testSettings({ nacl: { aclIds: [ACL_A], ruleRange: RANGE, quotaPerDirection: quota, residenceSeconds: options.residenceSeconds } });
  const state = newEnforcerState();
  const deps = {
    repo,
    nacl: new NaclAdapter(ec2.client(1), clock, obs, () => 0.5, ledger, RANGE),
    waf: new WafAdapter({ REGIONAL: waf.client(1) }, clock, obs, new UpdatePacer(), () => 0.5),
    settings,
    obs,
    clock,
    state,
  };
  return {
    clock,
    obs,
    ec2,
    table,
    ledger,
    ledgerLists: () => ledgerLists,
    run: (mode: EnforceMode = 'enforce') => enforce(deps, mode),
    async block(target: string, at = clock.now()): Promise<void> {
      const stored = await repo.get(target);
      const record: BlockRecord = { target, family: target.includes(':') ? 'ipv6' : 'ipv4', reason: 'manual', firstSeen: at, lastSeen: at, hitCount: 1, offences: 1, blockedAt: at, expiresAt: at + HOUR, active: true, eventIds: [], sensors: [] };
      expect(await repo.save(record, stored?.version, at)).toBe(true);
    },
    async lift(target: string, at = clock.now()): Promise<void> {
      const stored = (await repo.get(target))!;
      expect(await repo.save({ ...stored.record, active: false, liftedBy: 'manual' }, stored.version, at)).toBe(true);
    },
    /** our entries (inside the range), "rule cidr", by rule number */
    acl: () =>
      ec2.ec2
        .entries(ACL_A)
        .filter((e) => !e.Egress && e.RuleNumber! >= RANGE[0] && e.RuleNumber! <= RANGE[1])
        .sort((a, b) => a.RuleNumber! - b.RuleNumber!)
        .map((e) => `${e.RuleNumber} ${e.CidrBlock ?? e.Ipv6CidrBlock}`),
    placements: () => ec2.ec2.calls.CreateNetworkAclEntry + ec2.ec2.calls.ReplaceNetworkAclEntry,
    describes: () => ec2.ec2.calls.DescribeNetworkAcls,
  };
}

/** IPv4 (blockable TEST-NET in the test settings) and IPv6 addresses, a new one for each n. */
function source(n: number): string {
  if (n % 2 === 0) {
    const i = n / 2;
    return i < 254 ? `203.0.113.${i + 1}` : `192.0.2.${(i - 254) % 254 + 1}`;
  }
  return `2001:db8::${(n + 1).toString(16)}`;
}

/**
 * A stream of `decisions` new decisions, one every 400 ms (2.5 a second), with an enforce run
 * every 2 s (the wake window) after a cold first run; returns the EC2 calls the runs made and
 * the simulated time it took (a run writing both families' IP sets waits 1 s between them, so a
 * little longer than decisions × 400 ms).
 */
async function stream(p: Awaited<ReturnType<typeof plane>>, decisions: number) {
  await p.run(); // cold: full
  const placements = p.placements();
  const describes = p.describes();
  const start = p.clock.now();
  const gapMs = 400;
  let nextRun = start + 2_000;
  for (let n = 0; n < decisions; n++) {
    await p.block(source(n));
    p.clock.advance(gapMs);
    if (p.clock.now() >= nextRun) {
      const summary = await p.run();
      expect(summary.failures).toEqual([]);
      expect(summary.run).toBe('incremental');
      nextRun = p.clock.now() + 2_000;
    }
  }
  return { seconds: (p.clock.now() - start) / 1000, placements: p.placements() - placements, describes: p.describes() - describes };
}

describe('the residence time stops the churn', () => {
  it('2.5 decisions a second for over 10 minutes, R = 300 s: each family\'s 19 places are filled once and turned over once per R, and most runs read no ACL', async () => {
    const p = await plane({ residenceSeconds: 300 });
    const result = await stream(p, 1500);
    expect(result.seconds).toBe(803); // 1,500 × 400 ms, and 1 s between the two families' UpdateIPSet in each run that writes both
    // capacity: 20 − the default deny = 19 per family; 803 s: the first fill (38) and a turnover at 300 s and at 600 s (38 each)
    expect(result.placements).toBe(3 * 2 * 19);
    // ≈ 270 runs: an ACL is read only by a run that changes it (its plan, and each replace's re-check before it overwrites)
    expect(result.describes).toBeLessThanOrEqual(3 * 2 * 19);
    // the entries are the most recent of each family that were placed: 19 + 19
    expect(p.acl()).toHaveLength(38);
  }, 120_000);

  it('the same stream with R = 0 (today\'s behaviour): every run turns entries over', async () => {
    const p = await plane({ residenceSeconds: 0 });
    const result = await stream(p, 300);
    expect(result.seconds).toBe(180);
    // every new decision is the most recent of its family: it takes a place at the next run
    expect(result.placements).toBe(300);
    expect(result.describes).toBeGreaterThan(300);
    expect(p.acl()).toHaveLength(38);
  }, 120_000);
});

describe('what the residence time never delays', () => {
  it('a lift inside R removes the entry at the next run, and a newer source takes its place', async () => {
    const p = await plane({ residenceSeconds: 300, quota: 3 }); // 2 IPv4 places
    await p.block('203.0.113.1');
    p.clock.advance(1_000);
    await p.block('203.0.113.2'); // more recent than .1
    await p.run();
    expect(p.acl()).toEqual(['10 203.0.113.2/32', '11 203.0.113.1/32']); // the most recent first
    p.clock.advance(5_000);
    await p.block('203.0.113.3'); // newer, but both places are residents
    await p.run();
    expect(p.acl()).toEqual(['10 203.0.113.2/32', '11 203.0.113.1/32']); // the most recent first
    p.clock.advance(5_000);
    await p.lift('203.0.113.1'); // 10 s old: lifted all the same
    p.clock.advance(2_000);
    expect(await p.run()).toMatchObject({ run: 'incremental', converged: true });
    expect(p.acl()).toEqual(['10 203.0.113.2/32', '11 203.0.113.3/32']);
  });

  it('an expiry inside R removes the entry at the next run', async () => {
    const p = await plane({ residenceSeconds: 300 });
    const at = p.clock.now();
    await p.block('203.0.113.1', at - HOUR + 60_000); // expires in a minute
    await p.run();
    expect(p.acl()).toEqual(['10 203.0.113.1/32']);
    p.clock.advance(61_000);
    await p.run();
    expect(p.acl()).toEqual([]);
  });

  it('ledger rows without placedAt (written by an older version) count as placed long ago', async () => {
    const p = await plane({ residenceSeconds: 300, quota: 3 });
    await p.block('203.0.113.1');
    p.clock.advance(1_000);
    await p.block('203.0.113.2'); // more recent than .1
    await p.run();
    expect((await p.ledger.list(ACL_A)).map((row) => [row.ruleNumber, row.cidr, row.state, row.placedAt])).toEqual([
      [10, '203.0.113.2/32', 'confirmed', p.clock.now()],
      [11, '203.0.113.1/32', 'confirmed', p.clock.now()],
    ]);
    // rule 11's row (.1) as an older version wrote it: no placedAt
    await wire.db.doc.send(new UpdateCommand({ TableName: p.table, Key: naclRuleKey(ACL_A, 11), UpdateExpression: 'REMOVE #p', ExpressionAttributeNames: { '#p': PLACEMENT_ATTRIBUTES.placedAt } }));
    expect((await p.ledger.list(ACL_A)).find((row) => row.ruleNumber === 11)?.placedAt).toBeUndefined();
    p.clock.advance(5_000);
    await p.block('203.0.113.3');
    await p.run('reconcile'); // a full run: reads the ledger as it is now
    // .1 (no placedAt) competes on recency and loses to .3; .2 (placed 5 s ago) stays
    expect(p.acl()).toEqual(['10 203.0.113.2/32', '11 203.0.113.3/32']);
  });

  it('R = 0: a newer source takes the least recent place at once', async () => {
    const p = await plane({ residenceSeconds: 0, quota: 3 });
    await p.block('203.0.113.1');
    p.clock.advance(1_000);
    await p.block('203.0.113.2'); // more recent than .1
    await p.run();
    p.clock.advance(5_000);
    await p.block('203.0.113.3');
    await p.run();
    expect(p.acl()).toEqual(['10 203.0.113.2/32', '11 203.0.113.3/32']);
  });

  it('R > 0: an entry older than R competes on recency like everyone', async () => {
    const p = await plane({ residenceSeconds: 300, quota: 3 });
    await p.block('203.0.113.1');
    p.clock.advance(1_000);
    await p.block('203.0.113.2'); // more recent than .1
    await p.run();
    p.clock.advance(5_000);
    await p.block('203.0.113.3');
    await p.run();
    expect(p.acl()).toEqual(['10 203.0.113.2/32', '11 203.0.113.1/32']); // the most recent first
    p.clock.advance(296_000); // .1 and .2 were placed 301 s ago
    await p.run();
    // both are past R: the two most recent hold the places, .1 (the least recent) gives its place to .3
    expect(p.acl()).toEqual(['10 203.0.113.2/32', '11 203.0.113.3/32']);
  });
});

describe('an incremental run skips an ACL it would not change', () => {
  it('no DescribeNetworkAcls and no ledger Query in a run with nothing to change for the ACL', async () => {
    const p = await plane({ residenceSeconds: 300 });
    await p.block('203.0.113.1');
    await p.run(); // full: reads
    const describes = p.describes();
    const lists = p.ledgerLists();
    p.clock.advance(2_000);
    await p.block('2001:db8::1'); // a new source: a new entry → the ACL is read and written
    p.clock.advance(1_000);
    const again = await p.run();
    expect(again).toMatchObject({ run: 'incremental', failures: [] });
    expect(p.describes()).toBeGreaterThan(describes);
    expect(p.acl()).toEqual(['10 203.0.113.1/32', '11 2001:db8::1/128']);
    const d2 = p.describes();
    const l2 = p.ledgerLists();
    p.clock.advance(2_000);
    await p.block('203.0.113.1'); // a new sighting of a source that holds an entry: nothing to change in the ACL

    const quiet = await p.run();
    expect(quiet).toMatchObject({ run: 'incremental', failures: [], changes: 0, converged: true });
    expect(p.describes()).toBe(d2);
    expect(p.ledgerLists()).toBe(l2);
    expect(lists).toBeGreaterThan(0);
  });

  it('an operator\'s console edit under the cache: unseen by the incremental runs, repaired by the reconcile', async () => {
    const p = await plane({ residenceSeconds: 300 });
    await p.block('203.0.113.1');
    p.clock.advance(1_000);
    await p.block('203.0.113.2'); // more recent than .1
    await p.run();
    expect(p.acl()).toEqual(['10 203.0.113.2/32', '11 203.0.113.1/32']); // the most recent first
    // the operator deletes our entry at rule 10 (.2) in the console
    p.ec2.ec2.consoleEdit(ACL_A, (entries) => entries.filter((e) => e.Egress || e.RuleNumber !== 10));
    const describes = p.describes();
    p.clock.advance(2_000);
    expect(await p.run()).toMatchObject({ run: 'incremental', failures: [] });
    expect(p.describes()).toBe(describes); // nothing to change by the cache: not read
    expect(p.acl()).toEqual(['11 203.0.113.1/32']);
    const repair = await p.run('reconcile');
    expect(repair).toMatchObject({ run: 'full', converged: true });
    expect(p.describes()).toBeGreaterThan(describes);
    expect(p.acl()).toEqual(['10 203.0.113.2/32', '11 203.0.113.1/32']);
    expect(p.obs.metric('Repairs')).toBe(1);
  });

  it('a run after a transient failure reads the ACL (a full run)', async () => {
    const p = await plane({ residenceSeconds: 300 });
    await p.block('203.0.113.1');
    await p.run();
    p.clock.advance(2_000);
    await p.block('203.0.113.2');
    p.ec2.ec2.failNext('DescribeNetworkAcls', 'RequestLimitExceeded', 6); // every attempt of the read this run makes
    const failed = await p.run();
    expect(failed.failures.map((f) => f.transient)).toContain(true);
    const describes = p.describes();
    p.clock.advance(2_000);
    expect(await p.run()).toMatchObject({ run: 'full', failures: [] });
    expect(p.describes()).toBeGreaterThan(describes);
    expect(p.acl()).toEqual(['10 203.0.113.1/32', '11 203.0.113.2/32']);
  });
});
