/**
 * NACL ownership on the wire: the REAL EC2Client against test/wire/ec2-server.ts, each stack's
 * placement ledger in its own table on dynalite, the real enforcer and cleanup handler.
 * - two stacks sharing one ACL (overlapping ranges) leave each other's entries alone;
 * - a stale DescribeNetworkAcls never turns an operator's entry into a portsnare deny;
 * - a deny an earlier allow shadows is reported (NaclShadowed), not silently counted as enforced;
 * - the cleanup custom resource: Update removes what left the scope, Delete only the ledger's.
 * Expected values are literal (what the ACL must hold), never computed by core/.
 */
import type { NetworkAclEntry } from '@aws-sdk/client-ec2';
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
import { ACL_A, ACL_B, testSettings } from '../fakes/world';
import { type LocalTable, startDynalite } from './dynalite';
import { Ec2Server } from './ec2-server';

const clock = new SimClock();
let ec2: Ec2Server;
let tables: LocalTable[] = [];
let tableSeq = 0;

beforeAll(async () => {
  tables = [await startDynalite('stack-a'), await startDynalite('stack-b')];
});
afterAll(async () => {
  for (const table of tables) await table.stop();
});
beforeEach(async () => {
  ec2 = new Ec2Server(new FakeEc2(20, () => 0.5));
  ec2.ec2.addAcl(ACL_A, { ipv6: true });
  ec2.ec2.addAcl(ACL_B, { ipv6: true });
  await ec2.start();
});
afterEach(async () => {
  await ec2.stop();
});

/** One deployed stack: its table (a fresh partition set per test), ledger, adapter, enforcer, cleanup. */
function stack(table: LocalTable, range: [number, number], aclIds: string[] = [ACL_A]) {
  const settings = testSettings({ nacl: { aclIds, ruleRange: range, quotaPerDirection: 20 }, waf: { sets: [] } });
  const obs = new RecordingObservability();
  const ledger = new PlacementLedger(table.doc, table.tableName);
  const repo = new BlockRepository(table.doc, table.tableName);
  const nacl = new NaclAdapter(ec2.client(3), clock, obs, () => 0.5, ledger, range);
  const waf = new WafAdapter({}, clock, obs, new UpdatePacer(), () => 0.5);
  const deps = { repo, nacl, waf, settings, obs, clock };
  return {
    obs,
    ledger,
    run: (mode: 'enforce' | 'reconcile' = 'enforce') => enforce(deps, mode),
    cleanup: createCleanup({ nacl, ledger, settings, obs, clock }),
    async block(target: string): Promise<void> {
      const now = clock.now();
      const record: BlockRecord = { target, family: target.includes(':') ? 'ipv6' : 'ipv4', reason: 'manual', firstSeen: now, lastSeen: now, hitCount: 1, offences: 1, blockedAt: now, expiresAt: now + 3600_000, active: true, eventIds: [], sensors: [] };
      const stored = await repo.get(target);
      expect(await repo.save({ ...record }, stored?.version, now)).toBe(true);
    },
    async unblock(target: string): Promise<void> {
      const stored = await repo.get(target);
      if (!stored) throw new Error(`no record for ${target}`);
      expect(await repo.save({ ...stored.record, active: false, liftedBy: 'test' }, stored.version, clock.now())).toBe(true);
    },
  };
}

/** A fresh dynalite table per test: ledgers never leak between tests. */
async function freshTable(): Promise<LocalTable> {
  const table = await startDynalite(`stack-${++tableSeq}`);
  tables.push(table);
  return table;
}

/** The ingress entries below the default denies, as "rule action cidr" (literal AWS form). */
function ingress(aclId: string): string[] {
  return ec2.ec2
    .entries(aclId)
    .filter((e) => !e.Egress && e.RuleNumber! < 32767)
    .sort((a, b) => a.RuleNumber! - b.RuleNumber!)
    .map((e) => `${e.RuleNumber} ${e.RuleAction} ${e.CidrBlock ?? e.Ipv6CidrBlock}${e.Protocol === '-1' ? '' : ` proto ${e.Protocol}`}`);
}

function cfn(RequestType: 'Create' | 'Update' | 'Delete', props: Record<string, unknown>, old?: Record<string, unknown>): CloudFormationCustomResourceEvent {
  const base = { ServiceToken: 'x', ResponseURL: 'x', StackId: 'x', RequestId: 'x', LogicalResourceId: 'Cleanup', ResourceType: 'Custom::PortsnareNaclCleanup', ResourceProperties: { ServiceToken: 'x', ...props } };
  if (RequestType === 'Create') return { ...base, RequestType };
  if (RequestType === 'Delete') return { ...base, RequestType, PhysicalResourceId: 'portsnare-nacl-cleanup' };
  return { ...base, RequestType, PhysicalResourceId: 'portsnare-nacl-cleanup', OldResourceProperties: { ServiceToken: 'x', ...old } };
}

describe('two stacks sharing one ACL', () => {
  it('with overlapping ranges, neither removes the other’s entries, reconcile changes nothing, Delete removes only its own', async () => {
    const a = stack(await freshTable(), [10, 60]);
    const b = stack(await freshTable(), [10, 60]);
    await a.block('203.0.113.1');
    await b.block('203.0.113.2');
    await b.block('203.0.113.1'); // the same attacker in both stacks: each holds its own entry
    const ra = await a.run();
    expect(ra.incomplete).toEqual([]);
    expect(ra.converged).toBe(true);
    expect((await b.run()).converged).toBe(true);
    expect(ingress(ACL_A)).toEqual(['10 deny 203.0.113.1/32', '11 deny 203.0.113.1/32', '12 deny 203.0.113.2/32']);
    // no flapping: every later reconcile of either stack is a no-op
    for (const s of [a, b, a, b]) expect((await s.run('reconcile')).changes).toBe(0);
    expect(a.obs.metrics.get('Repairs') ?? 0).toBe(0);
    expect(b.obs.metrics.get('Repairs') ?? 0).toBe(0);

    expect(await a.cleanup(cfn('Delete', { AclIds: [ACL_A], RuleRange: ['10', '60'] }))).toEqual({ PhysicalResourceId: 'portsnare-nacl-cleanup', Data: { Removed: 1 } });
    expect(ingress(ACL_A)).toEqual(['11 deny 203.0.113.1/32', '12 deny 203.0.113.2/32']);
    expect((await b.run('reconcile')).changes).toBe(0);
  });
});

describe('stale reads never overwrite an operator’s entry', () => {
  it('a number freed moments ago is not reused, even when a lagging read still shows our old entry there', async () => {
    const a = stack(await freshTable(), [10, 60]);
    await a.block('203.0.113.1');
    await a.run();
    const withOurs = ec2.ec2.entries(ACL_A);
    await a.unblock('203.0.113.1');
    await a.run();
    expect(ingress(ACL_A)).toEqual([]);
    // the operator takes the freed number for an allow
    const allow: NetworkAclEntry = { RuleNumber: 10, Egress: false, Protocol: '-1', RuleAction: 'allow', CidrBlock: '192.0.2.0/24' };
    ec2.ec2.consoleEdit(ACL_A, (entries) => [...entries, allow]);
    await a.block('203.0.113.2');
    ec2.ec2.lagNext(ACL_A, withOurs, 2); // DescribeNetworkAcls still shows our deny at 10
    await a.run();
    expect(ingress(ACL_A)).toEqual(['10 allow 192.0.2.0/24', '11 deny 203.0.113.2/32']);
    expect(ec2.count('ReplaceNetworkAclEntry')).toBe(0);
  });

  it('an entry of ours the operator changed is not replaced when the re-read shows it is no longer ours', async () => {
    const a = stack(await freshTable(), [10, 60]);
    await a.block('203.0.113.1');
    await a.run();
    const withOurs = ec2.ec2.entries(ACL_A);
    ec2.ec2.consoleEdit(ACL_A, (entries) => entries.map((e) => (e.RuleNumber === 10 && !e.Egress ? { ...e, RuleAction: 'allow', CidrBlock: '192.0.2.0/24' } : e)));
    await a.unblock('203.0.113.1');
    await a.block('203.0.113.2');
    ec2.ec2.lagNext(ACL_A, withOurs, 1); // the plan's read is stale; the re-read before the replace is not
    await a.run();
    expect(ingress(ACL_A)).toEqual(['10 allow 192.0.2.0/24', '11 deny 203.0.113.2/32']);
    expect(ec2.count('ReplaceNetworkAclEntry')).toBe(0);
  });
});

describe('shadowed denies', () => {
  it('reports a deny an earlier allow lets tcp/443 past (rules are evaluated lowest first)', async () => {
    ec2.ec2.consoleEdit(ACL_A, (entries) => [...entries, { RuleNumber: 5, Egress: false, Protocol: '6', RuleAction: 'allow', CidrBlock: '0.0.0.0/0', PortRange: { From: 443, To: 443 } }]);
    const a = stack(await freshTable(), [10, 60]);
    await a.block('203.0.113.1');
    const summary = await a.run();
    expect(ingress(ACL_A)).toEqual(['5 allow 0.0.0.0/0 proto 6', '10 deny 203.0.113.1/32']);
    // issue 17: counted but reported converged before; a shadowed deny is not the desired state
    expect(summary.converged).toBe(false);
    expect(summary.incomplete).toEqual([`nacl:${ACL_A}: 203.0.113.1 at rule 10 shadowed by rule 5 tcp/443`]);
    expect(a.obs.metrics.get('NaclShadowed')).toBe(1);
    expect(a.obs.lines.map((l) => l.message)).toContain('nacl (shadowed by rule 5 tcp/443)');
  });
});

describe('cleanup custom resource', () => {
  it('on Update removes the entries in an ACL no longer listed and outside a narrowed range, and no one else’s', async () => {
    const a = stack(await freshTable(), [10, 60], [ACL_A, ACL_B]);
    const other = stack(await freshTable(), [10, 60], [ACL_B]);
    await a.block('203.0.113.1');
    await a.block('203.0.113.2');
    await a.run();
    await other.block('203.0.113.9');
    await other.run();
    expect(ingress(ACL_A)).toEqual(['10 deny 203.0.113.1/32', '11 deny 203.0.113.2/32']);
    expect(ingress(ACL_B)).toEqual(['10 deny 203.0.113.1/32', '11 deny 203.0.113.2/32', '12 deny 203.0.113.9/32']);
    const response = await a.cleanup(cfn('Update', { AclIds: [ACL_A], RuleRange: ['10', '10'] }, { AclIds: [ACL_A, ACL_B], RuleRange: ['10', '60'] }));
    expect(response).toEqual({ PhysicalResourceId: 'portsnare-nacl-cleanup', Data: { Removed: 3, Adopted: 0 } });
    expect(ingress(ACL_A)).toEqual(['10 deny 203.0.113.1/32']);
    expect(ingress(ACL_B)).toEqual(['12 deny 203.0.113.9/32']);
  });

  it('adopts a legacy stack’s own-shaped entries once on Update; a new stack (Create) adopts nothing', async () => {
    ec2.ec2.consoleEdit(ACL_A, (entries) => [...entries, { RuleNumber: 15, Egress: false, Protocol: '-1', RuleAction: 'deny', CidrBlock: '203.0.113.15/32' }]);
    const fresh = stack(await freshTable(), [10, 60]);
    expect(await fresh.cleanup(cfn('Create', { AclIds: [ACL_A], RuleRange: ['10', '60'] }))).toEqual({ PhysicalResourceId: 'portsnare-nacl-cleanup' });
    await fresh.cleanup(cfn('Update', { AclIds: [ACL_A], RuleRange: ['10', '60'] }, { AclIds: [ACL_A], RuleRange: ['10', '60'] }));
    await fresh.cleanup(cfn('Delete', { AclIds: [ACL_A], RuleRange: ['10', '60'] }));
    expect(ingress(ACL_A)).toEqual(['15 deny 203.0.113.15/32']);

    const legacy = stack(await freshTable(), [10, 60]);
    expect(await legacy.cleanup(cfn('Update', { AclIds: [ACL_A], RuleRange: ['10', '60'] }, { AclIds: [ACL_A], RuleRange: ['10', '60'] }))).toEqual({
      PhysicalResourceId: 'portsnare-nacl-cleanup',
      Data: { Removed: 0, Adopted: 1 },
    });
    expect(await legacy.cleanup(cfn('Delete', { AclIds: [ACL_A], RuleRange: ['10', '60'] }))).toEqual({ PhysicalResourceId: 'portsnare-nacl-cleanup', Data: { Removed: 1 } });
    expect(ingress(ACL_A)).toEqual([]);
  });

  it('without its table (TABLE_NAME unset) removes nothing and does not hold up the stack', async () => {
    const a = stack(await freshTable(), [10, 60]);
    await a.block('203.0.113.1');
    await a.run();
    const obs = new RecordingObservability();
    const blind = createCleanup({ nacl: new NaclAdapter(ec2.client(2), clock, obs), ledger: undefined, settings: testSettings(), obs, clock });
    expect(await blind(cfn('Delete', { AclIds: [ACL_A], RuleRange: ['10', '60'] }))).toEqual({ PhysicalResourceId: 'portsnare-nacl-cleanup' });
    expect(ingress(ACL_A)).toEqual(['10 deny 203.0.113.1/32']);
    expect(obs.lines.some((l) => l.level === 'error' && l.message.includes('TABLE_NAME'))).toBe(true);
  });

  it('names a bad property and its value', async () => {
    const a = stack(await freshTable(), [10, 60]);
    await expect(a.cleanup(cfn('Delete', { AclIds: [ACL_A], RuleRange: ['60', '10'] }))).rejects.toThrow(/RuleRange .* got \["60","10"\]/);
    await expect(a.cleanup(cfn('Delete', { AclIds: ['sg-1'] }))).rejects.toThrow(/AclIds .* got \["sg-1"\]/);
  });
});
