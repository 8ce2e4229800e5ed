/**
 * Regression tests for the ownership defects of issue 17 (an audit replaying interleavings the
 * convergence schedules never produced), each through the REAL enforcer, cleanup handler and
 * EC2Client against test/wire/ec2-server.ts, each stack's ledger on dynalite. Every one of them
 * failed on the code before the ownership redesign (core/nacl.ts "Ownership"). Expected values are
 * literal: what the ACL must hold.
 * https://docs.aws.amazon.com/ec2/latest/devguide/eventual-consistency.html
 */
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { BlockRecord } from '../../core/policy';
import { createHandler as createCleanup } from '../../lambda/cleanup/handler';
import { enforce } from '../../lambda/shared/enforcer';
import { NaclAdapter } from '../../aws/nacl-adapter';
import { BlockRepository, PlacementLedger } from '../../aws/repository';
import { UpdatePacer, WafAdapter } from '../../aws/waf-adapter';
import { SimClock } from '../fakes/clock';
import { FakeEc2 } from '../fakes/ec2';
import { RecordingObservability } from '../fakes/observability';
import { ACL_A, testSettings } from '../fakes/world';
import { type LocalTable, startDynalite } from './dynalite';
import { Ec2Server } from './ec2-server';

const clock = new SimClock();
let ec2: Ec2Server;
let db: LocalTable;
let seq = 0;

beforeAll(async () => {
  db = await startDynalite('ownership-defects');
});
afterAll(async () => {
  await db?.stop();
});
beforeEach(async () => {
  ec2 = new Ec2Server(new FakeEc2(20, () => 0.5));
  ec2.ec2.addAcl(ACL_A, { ipv6: true });
  await ec2.start();
});
afterEach(async () => {
  await ec2.stop();
});

async function stack(range: [number, number]) {
  const table = await db.addTable(`own-${++seq}`);
  const settings = testSettings({ nacl: { aclIds: [ACL_A], ruleRange: range, quotaPerDirection: 20 }, waf: { sets: [] } });
  const obs = new RecordingObservability();
  const ledger = new PlacementLedger(db.doc, table);
  const repo = new BlockRepository(db.doc, table);
  // one attempt per call, as the production client (aws/clients/ec2.ts)
  const nacl = new NaclAdapter(ec2.client(1), clock, obs, () => 0.5, ledger, range);
  const deps = { repo, nacl, waf: new WafAdapter({}, clock, obs, new UpdatePacer(), () => 0.5), settings, obs, clock };
  return {
    obs,
    ledger,
    nacl,
    repo,
    run: (mode: 'enforce' | 'reconcile' = 'enforce') => enforce(deps, mode),
    cleanup: createCleanup({ nacl, ledger, settings, obs, clock }),
    async block(target: string, ttlMs = 3600_000): Promise<void> {
      const now = clock.now();
      const record: BlockRecord = { target, family: 'ipv4', reason: 'manual', firstSeen: now, lastSeen: now, hitCount: 1, offences: 1, blockedAt: now, expiresAt: now + ttlMs, active: true, eventIds: [], sensors: [] };
      const stored = await repo.get(target);
      expect(await repo.save(record, stored?.version, now)).toBe(true);
    },
  };
}

function ingress(): string[] {
  return ec2.ec2
    .entries(ACL_A)
    .filter((e) => !e.Egress && e.RuleNumber! < 32767)
    .sort((a, b) => a.RuleNumber! - b.RuleNumber!)
    .map((e) => `${e.RuleNumber} ${e.RuleAction} ${e.CidrBlock ?? e.Ipv6CidrBlock}`);
}

function cfn(RequestType: 'Update' | 'Delete', range: [number, number], old?: [number, number]): CloudFormationCustomResourceEvent {
  const props = { ServiceToken: 'x', AclIds: [ACL_A], RuleRange: range.map(String) };
  const base = { ServiceToken: 'x', ResponseURL: 'x', StackId: 'x', RequestId: 'x', LogicalResourceId: 'Cleanup', ResourceType: 'Custom::PortsnareNaclCleanup', ResourceProperties: props, PhysicalResourceId: 'portsnare-nacl-cleanup' };
  if (RequestType === 'Delete') return { ...base, RequestType };
  return { ...base, RequestType, OldResourceProperties: { ServiceToken: 'x', AclIds: [ACL_A], RuleRange: (old ?? range).map(String) } };
}

describe('a deny that was never lifted (high)', () => {
  it('A at rule 10, four stale reads, B and C decided meanwhile: A stays ours and is lifted when it expires', async () => {
    const s = await stack([10, 60]);
    await s.block('203.0.113.1', 60_000); // A
    expect((await s.run()).converged).toBe(true);
    expect(ingress()).toEqual(['10 deny 203.0.113.1/32']);
    ec2.ec2.staleNext(4); // the next four reads show the ACL before A
    await s.block('203.0.113.2'); // B
    await s.run().catch(() => undefined);
    await s.block('203.0.113.3'); // C: decided while that run went on
    await s.run().catch(() => undefined);
    // A expires; reads are fresh again
    clock.advance(120_000);
    for (let i = 0; i < 3; i++) await s.run('reconcile');
    expect(ingress()).toEqual(['11 deny 203.0.113.2/32', '12 deny 203.0.113.3/32']);
    expect((await s.run('reconcile')).changes).toBe(0);
  });

  it('the exact audit interleaving: creates of B then C at rule 10 refused while reads are stale; A never leaves the ledger', async () => {
    const s = await stack([10, 60]);
    const create = (address: string) => ({ op: 'create' as const, ruleNumber: 10, cidr: `${address}/32`, family: 'ipv4' as const, target: address });
    expect((await s.nacl.apply(ACL_A, [create('203.0.113.1')])).applied).toHaveLength(1); // A
    ec2.ec2.lagNext(ACL_A, ec2.ec2.entries(ACL_A).filter((e) => e.RuleNumber !== 10), 10);
    expect((await s.nacl.apply(ACL_A, [create('203.0.113.2')])).conflicts.map((c) => c.error)).toEqual(['NetworkAclEntryAlreadyExists']); // B
    expect((await s.nacl.apply(ACL_A, [create('203.0.113.3')])).conflicts.map((c) => c.error)).toEqual(['NetworkAclEntryAlreadyExists']); // C
    ec2.ec2.clearFaults();
    const [acl] = await s.nacl.describe([ACL_A]);
    const entry = acl!.entries.find((e) => e.ruleNumber === 10);
    expect(entry?.cidrBlock).toBe('203.0.113.1/32');
    expect(entry?.foreign).toBeUndefined(); // still ours: it will be lifted
    // the refused creates put the row back as it was, A's placement time included (the clock has not moved)
    expect(await s.ledger.list(ACL_A)).toEqual([{ ruleNumber: 10, cidr: '203.0.113.1/32', state: 'confirmed', placedAt: clock.now() }]);
  });
});

describe('cleanup leaves entries forever (high)', () => {
  it('two stacks on one ACL, stack 2 claimed rule 10 on a stale read: its Delete removes 11 and 12 and reports the rest by name', async () => {
    const one = await stack([10, 60]);
    const two = await stack([10, 60]); // overlapping: what synth refuses when it sees both stacks
    await one.block('203.0.113.1');
    await one.run();
    ec2.ec2.staleNext(1); // stack 2 reads the ACL before stack 1's entry
    await two.block('203.0.113.5');
    await two.block('203.0.113.6');
    await two.block('203.0.113.7');
    for (let i = 0; i < 3; i++) await two.run().catch(() => undefined);
    expect(ingress()).toEqual(['10 deny 203.0.113.1/32', '11 deny 203.0.113.5/32', '12 deny 203.0.113.6/32', '13 deny 203.0.113.7/32']);
    const response = await two.cleanup(cfn('Delete', [10, 60]));
    expect(response.Data?.Removed).toBe(3);
    expect(ingress()).toEqual(['10 deny 203.0.113.1/32']);
  });

  it('a refused delete fails the custom resource, naming the entry; the other entries are still removed', async () => {
    const s = await stack([10, 60]);
    await s.block('203.0.113.1');
    await s.block('203.0.113.2');
    await s.run();
    ec2.ec2.failNext('DeleteNetworkAclEntry', 'UnauthorizedOperation');
    await expect(s.cleanup(cfn('Delete', [10, 60]))).rejects.toThrow(/1 network ACL entry of this stack could not be removed: acl-[0-9a-f]+ rule 10 \(203\.0\.113\.1\/32\): UnauthorizedOperation/);
    expect(ingress()).toEqual(['10 deny 203.0.113.1/32']);
    // the retried Delete (CloudFormation, or the operator) finishes it
    expect((await s.cleanup(cfn('Delete', [10, 60]))).Data?.Removed).toBe(1);
    expect(ingress()).toEqual([]);
  });

  it('an Update that moves the range removes every entry outside it, past a stale read', async () => {
    const s = await stack([10, 60]);
    for (const t of ['203.0.113.1', '203.0.113.2', '203.0.113.3']) await s.block(t);
    await s.run();
    ec2.ec2.staleNext(2);
    const response = await s.cleanup(cfn('Update', [100, 160], [10, 60]));
    expect(response.Data?.Removed).toBe(3);
    expect(ingress()).toEqual([]);
  });
});

describe('medium ownership defects', () => {
  it('a leftover claim on a shared ACL never makes stack 2 delete stack 1’s entry for the same attacker', async () => {
    const one = await stack([10, 60]);
    const two = await stack([10, 60]);
    await one.block('203.0.113.9');
    await one.run();
    ec2.ec2.staleNext(2); // stack 2 sees rule 10 free and tries the same attacker there
    await two.block('203.0.113.9', 60_000);
    await two.run().catch(() => undefined);
    clock.advance(120_000); // stack 2's block expires
    for (let i = 0; i < 3; i++) await two.run('reconcile');
    expect(ingress()).toContain('10 deny 203.0.113.9/32');
    expect(ingress().filter((e) => e.endsWith('203.0.113.9/32'))).toEqual(['10 deny 203.0.113.9/32']);
  });

  it('an operator’s identical deny at our rule number is never adopted, nor deleted when our block expires', async () => {
    const s = await stack([10, 60]);
    ec2.ec2.consoleEdit(ACL_A, (entries) => [...entries, { RuleNumber: 10, Egress: false, Protocol: '-1', RuleAction: 'deny', CidrBlock: '203.0.113.4/32' }]);
    ec2.ec2.lagNext(ACL_A, ec2.ec2.entries(ACL_A).filter((e) => e.RuleNumber !== 10), 3); // reads still show 10 free
    await s.block('203.0.113.4', 60_000);
    for (let i = 0; i < 2; i++) await s.run().catch(() => undefined);
    clock.advance(120_000);
    for (let i = 0; i < 3; i++) await s.run('reconcile');
    expect(ingress()).toEqual(['10 deny 203.0.113.4/32']);
    expect(s.obs.metrics.get('NaclForeignInRange') ?? 0).toBeGreaterThan(0);
  });
});

describe('found by the convergence schedules (issue 17, item 4)', () => {
  it('a run still on the old range writes after the Update’s cleanup: the next run on the new range removes that entry', async () => {
    // The Update (cleanup) runs while an enforce invocation with the old settings is in flight:
    // CloudFormation updates the custom resource and the function's configuration, not the
    // invocations already running. That run places its entry in the old range afterwards.
    const old = await stack([10, 60]);
    const response = await old.cleanup(cfn('Update', [70, 100], [10, 60]));
    expect(response.PhysicalResourceId).toBe('portsnare-nacl-cleanup');
    await old.block('203.0.113.1');
    await old.run(); // the in-flight run, old range
    expect(ingress()).toEqual(['10 deny 203.0.113.1/32']);
    // the same stack (same table and ledger), its functions now on the new range
    const settings = testSettings({ nacl: { aclIds: [ACL_A], ruleRange: [70, 100], quotaPerDirection: 20 }, waf: { sets: [] } });
    const nacl = new NaclAdapter(ec2.client(1), clock, old.obs, () => 0.5, old.ledger, [70, 100]);
    const deps = { repo: old.repo, nacl, waf: new WafAdapter({}, clock, old.obs, new UpdatePacer(), () => 0.5), settings, obs: old.obs, clock };
    await enforce(deps, 'reconcile');
    expect(ingress()).toEqual(['70 deny 203.0.113.1/32']);
    expect((await enforce(deps, 'reconcile')).changes).toBe(0);
    // nothing of ours is left behind for a later Delete to miss
    expect((await old.ledger.list(ACL_A)).filter((p) => p.state !== 'freed').map((p) => p.ruleNumber)).toEqual([70]);
  });
});

describe('a Delete while an enforce run is in flight (found by the convergence schedules)', () => {
  it('the run that read the ACL before the Delete writes nothing after it: no entry is left without an owner', async () => {
    const s = await stack([40, 90]);
    for (const t of ['198.51.100.1', '198.51.100.2']) await s.block(t);
    let deleted = false;
    // CloudFormation deletes the custom resource while an invocation is between its read and its writes
    ec2.beforeServe = async (op) => {
      if (op !== 'DescribeNetworkAcls' || deleted) return;
      deleted = true;
      await s.cleanup(cfn('Delete', [40, 90]));
    };
    await s.run().catch(() => undefined);
    ec2.beforeServe = undefined;
    expect(deleted).toBe(true);
    expect(ingress()).toEqual([]);
    expect((await s.ledger.list(ACL_A)).filter((p) => p.state !== 'freed')).toEqual([]);
  });
});
