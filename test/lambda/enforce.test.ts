import type { NetworkAclEntry } from '@aws-sdk/client-ec2';
import { SETTLE_MS, WAKE_WINDOW_MS } from '../../lambda/shared/queue';
import { describe, expect, it } from 'vitest';
import { ownEntryTarget } from '../../core/nacl';
import { fromSdkEntry } from '../../aws/nacl-adapter';
import { lambdaContext } from './context';
import { ACL_A, ACL_B, SET_V4, SET_V6, testSettings, World } from '../fakes/world';

function ownTargets(world: World, aclId: string): string[] {
  return world.ec2
    .entries(aclId)
    .map((e) => ownEntryTarget(fromSdkEntry(e), world.settings.nacl.ruleRange))
    .filter((t): t is string => t !== undefined)
    .sort();
}

describe('enforce handler', () => {
  it('puts a decided block into every ACL (IPv4 and IPv6 entries) and the WAF set of its family', async () => {
    const world = new World();
    await world.decide(world.scanEvent('203.0.113.7'));
    await world.decide(world.scanEvent('2001:db8::7'));
    await world.drain();
    for (const acl of [ACL_A, ACL_B]) {
      const entries = world.ec2.entries(acl).filter((e) => e.RuleNumber! < 100);
      expect(entries.map((e) => e.RuleNumber).sort()).toEqual([10, 11]);
      expect(entries).toEqual(
        expect.arrayContaining([
          { RuleNumber: expect.any(Number), Egress: false, Protocol: '-1', RuleAction: 'deny', CidrBlock: '203.0.113.7/32' },
          { RuleNumber: expect.any(Number), Egress: false, Protocol: '-1', RuleAction: 'deny', Ipv6CidrBlock: '2001:db8::7/128' },
        ]),
      );
    }
    expect(world.waf.addresses(SET_V4)).toEqual(['203.0.113.7/32']);
    expect(world.waf.addresses(SET_V6)).toEqual(['2001:db8::7/128']);
    expect(world.obs.metric('Blocks')).toBe(2);
  });

  it('waits until the wake-up window is over, so one run covers every write of that window', async () => {
    const world = new World();
    for (let i = 1; i <= 50; i++) await world.decide(world.scanEvent(`203.0.113.${i}`));
    expect(world.sqs.depth).toBe(1); // 50 decisions within one second: one wake-up
    const { invocations } = await world.drain();
    expect(invocations).toBe(1);
    expect(world.waf.calls.UpdateIPSetAccepted).toBe(1);
    expect(world.waf.addresses(SET_V4)).toHaveLength(50);
    // decided within the window, enforced once it closed (+ the settle margin for the index lag)
    const lag = world.obs.samples.get('EnforcementLagSeconds') ?? [];
    expect(lag).toHaveLength(1);
    expect(lag[0]).toBeGreaterThan(0);
    expect(lag[0]).toBeLessThanOrEqual((WAKE_WINDOW_MS + SETTLE_MS) / 1000);
  });

  it('lifts an expired block from WAF and the ACLs on the next minute', async () => {
    const world = new World();
    await world.decide(world.scanEvent('203.0.113.7'));
    await world.drain();
    world.clock.advance(3600_000);
    await expect(world.expiry()).resolves.toEqual({ lifted: 1, timers: 0 });
    await world.drain();
    expect(world.waf.addresses(SET_V4)).toEqual([]);
    expect(ownTargets(world, ACL_A)).toEqual([]);
    expect(world.obs.metric('Unblocks')).toBe(1);
    expect(world.ddb.item('BLOCK#203.0.113.7', 'STATE')).toMatchObject({ active: false, liftedBy: 'expiry' });
  });

  it('retries UpdateIPSet after a WAFOptimisticLockException with a fresh LockToken', async () => {
    const world = new World();
    world.waf.conflictNext(2);
    await world.decide(world.scanEvent('203.0.113.7'));
    await world.drain();
    expect(world.waf.addresses(SET_V4)).toEqual(['203.0.113.7/32']);
    expect(world.obs.metric('LockRetries')).toBe(2);
    expect(world.waf.calls.GetIPSet).toBeGreaterThanOrEqual(3);
  });

  it('backs off on throttling of both APIs and still converges', async () => {
    const world = new World();
    world.waf.failNext('UpdateIPSet', 'ThrottlingException', 2);
    world.ec2.failNext('CreateNetworkAclEntry', 'RequestLimitExceeded', 3);
    await world.decide(world.scanEvent('203.0.113.7'));
    await world.drain();
    expect(world.waf.addresses(SET_V4)).toEqual(['203.0.113.7/32']);
    expect(ownTargets(world, ACL_A)).toEqual(['203.0.113.7']);
    expect(world.obs.metric('Throttles')).toBe(5);
  });

  it('never sends two UpdateIPSet calls within one second', async () => {
    const world = new World();
    const times: number[] = [];
    const original = world.waf.client.send.bind(world.waf.client);
    world.waf.client.send = ((command: { constructor: { name: string } }, ...rest: unknown[]) => {
      if (command.constructor.name === 'UpdateIPSetCommand') times.push(world.clock.now());
      return (original as (...a: unknown[]) => unknown)(command, ...rest);
    }) as typeof world.waf.client.send;
    for (let i = 0; i < 5; i++) {
      await world.decide(world.scanEvent(`203.0.113.${i + 1}`));
      await world.decide(world.scanEvent(`2001:db8::${i + 1}`));
      await world.drain();
      world.clock.advance(100);
    }
    expect(times.length).toBeGreaterThanOrEqual(5);
    for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual(1000);
  });

  it('leaves foreign entries alone and allocates around one inside the reserved range', async () => {
    const world = new World();
    const foreign: NetworkAclEntry[] = [
      { RuleNumber: 10, Egress: false, Protocol: '6', RuleAction: 'deny', CidrBlock: '192.0.2.0/24', PortRange: { From: 22, To: 22 } },
      { RuleNumber: 11, Egress: false, Protocol: '-1', RuleAction: 'allow', CidrBlock: '198.51.100.0/24' },
      { RuleNumber: 12, Egress: true, Protocol: '-1', RuleAction: 'deny', CidrBlock: '203.0.113.99/32' },
      { RuleNumber: 100, Egress: false, Protocol: '-1', RuleAction: 'allow', CidrBlock: '0.0.0.0/0' },
    ];
    world.ec2.consoleEdit(ACL_A, (entries) => [...entries, ...foreign]);
    await world.decide(world.scanEvent('203.0.113.7'));
    await world.drain();
    const entries = world.ec2.entries(ACL_A);
    for (const f of foreign) expect(entries).toContainEqual(f);
    expect(entries).toContainEqual({ RuleNumber: 12, Egress: false, Protocol: '-1', RuleAction: 'deny', CidrBlock: '203.0.113.7/32' });
  });

  it('fills the ACL up to the quota (default deny and foreign entries counted) and evicts the least recently active attacker, who stays in WAF', async () => {
    // residence 0: places go by recency alone (the residence time has its own tests, test/wire/nacl-residence.test.ts)
    const settings = testSettings({ nacl: { aclIds: [ACL_A], ruleRange: [10, 60], quotaPerDirection: 5, residenceSeconds: 0 } });
    const world = new World({ settings });
    world.ec2.consoleEdit(ACL_A, (entries) => [...entries, { RuleNumber: 100, Egress: false, Protocol: '-1', RuleAction: 'allow', CidrBlock: '0.0.0.0/0' }]);
    // quota 5 − default deny − the allow rule = 3 IPv4 entries for portsnare
    for (let i = 1; i <= 4; i++) {
      await world.decide(world.scanEvent(`203.0.113.${i}`));
      world.clock.advance(2_000);
      await world.drain();
    }
    expect(ownTargets(world, ACL_A)).toEqual(['203.0.113.2', '203.0.113.3', '203.0.113.4']);
    expect(world.waf.addresses(SET_V4).sort()).toEqual(['203.0.113.1/32', '203.0.113.2/32', '203.0.113.3/32', '203.0.113.4/32']);
    expect(world.obs.metric('Evictions')).toBe(1);
    expect(world.obs.metric('NaclQuotaFull')).toBeGreaterThanOrEqual(1);
    const ingressV4 = world.ec2.entries(ACL_A).filter((e) => !e.Egress && e.CidrBlock !== undefined);
    expect(ingressV4.length).toBeLessThanOrEqual(5);
    // the evicted attacker comes back: it is the most recent now and takes a slot back
    world.clock.advance(5_000);
    await world.decide(world.scanEvent('203.0.113.1'));
    await world.drain();
    expect(ownTargets(world, ACL_A)).toContain('203.0.113.1');
    expect(ownTargets(world, ACL_A)).not.toContain('203.0.113.2');
  });

  it('re-plans when the quota is lower than configured (NetworkAclEntryLimitExceeded) without exceeding it', async () => {
    const world = new World({ settings: testSettings({ nacl: { aclIds: [ACL_A], ruleRange: [10, 60], quotaPerDirection: 20 } }) });
    world.ec2.quota = 3; // the account's real quota is lower than the setting
    for (let i = 1; i <= 5; i++) await world.decide(world.scanEvent(`203.0.113.${i}`));
    await world.drain();
    const ingressV4 = world.ec2.entries(ACL_A).filter((e) => !e.Egress && e.CidrBlock !== undefined);
    expect(ingressV4).toHaveLength(3);
    expect(world.obs.metric('NaclQuotaFull')).toBeGreaterThanOrEqual(1);
    expect(world.waf.addresses(SET_V4)).toHaveLength(5);
  });

  it('takes a rule number grabbed meanwhile in its stride (NetworkAclEntryAlreadyExists → re-plan)', async () => {
    const world = new World({ settings: testSettings({ nacl: { aclIds: [ACL_A], ruleRange: [10, 60], quotaPerDirection: 20 } }) });
    await world.decide(world.scanEvent('203.0.113.7'));
    // Someone creates rule 10 between our read and our write.
    const original = world.ec2.client.send.bind(world.ec2.client);
    let injected = false;
    world.ec2.client.send = ((command: { constructor: { name: string } }, ...rest: unknown[]) => {
      if (!injected && command.constructor.name === 'CreateNetworkAclEntryCommand') {
        injected = true;
        world.ec2.consoleEdit(ACL_A, (e) => [...e, { RuleNumber: 10, Egress: false, Protocol: '6', RuleAction: 'allow', CidrBlock: '192.0.2.0/24', PortRange: { From: 443, To: 443 } }]);
      }
      return (original as (...a: unknown[]) => unknown)(command, ...rest);
    }) as typeof world.ec2.client.send;
    await world.drain();
    expect(world.ec2.entries(ACL_A)).toContainEqual({ RuleNumber: 11, Egress: false, Protocol: '-1', RuleAction: 'deny', CidrBlock: '203.0.113.7/32' });
    expect(world.ec2.entries(ACL_A)).toContainEqual(expect.objectContaining({ RuleNumber: 10, RuleAction: 'allow' }));
  });

  it('reconcile repairs a manual deletion and a WAF edit, logging and counting each repair', async () => {
    const world = new World();
    await world.decide(world.scanEvent('203.0.113.7'));
    await world.drain();
    world.ec2.consoleEdit(ACL_B, (entries) => entries.filter((e) => e.CidrBlock !== '203.0.113.7/32'));
    world.waf.consoleEdit(SET_V4, () => ['192.0.2.1/32']);
    world.clock.advance(300_000);
    await world.reconcile();
    await world.drain();
    expect(ownTargets(world, ACL_B)).toEqual(['203.0.113.7']);
    expect(world.waf.addresses(SET_V4)).toEqual(['203.0.113.7/32']);
    expect(world.obs.metric('Repairs')).toBe(2);
    expect(world.obs.logged(/^repaired/)).toHaveLength(2);
  });

  it('removes an active record the guard now protects (allowlist changed) from every enforcer', async () => {
    const world = new World();
    await world.decide(world.scanEvent('203.0.113.7'));
    await world.drain();
    world.settings.guard.allowlist.push('203.0.113.0/24');
    await world.reconcile();
    await world.drain();
    expect(world.waf.addresses(SET_V4)).toEqual([]);
    expect(ownTargets(world, ACL_A)).toEqual([]);
  });

  it('a crash between the WAF and the NACL step is finished by the retried batch', async () => {
    const world = new World();
    world.ec2.failNext('CreateNetworkAclEntry', 'InternalError', 5); // both ACLs' creates in passes 1-2, ACL_A's in pass 3: an unknown outcome is re-planned, not failed at once
    await world.decide(world.scanEvent('203.0.113.7'));
    const { failures } = await world.drain();
    expect(failures).toBe(1);
    expect(ownTargets(world, ACL_A)).toEqual(['203.0.113.7']);
    expect(ownTargets(world, ACL_B)).toEqual(['203.0.113.7']);
    expect(world.waf.addresses(SET_V4)).toEqual(['203.0.113.7/32']);
  });

  it('enforces a CIDR block in WAF only', async () => {
    const world = new World();
    await world.decide({
      version: '0', id: 'b1', 'detail-type': 'Block Requested', source: 'portsnare.cli', account: '1', region: 'eu-west-1', resources: [],
      time: new Date(world.clock.now()).toISOString(),
      detail: { version: 1, target: '203.0.113.64/26', requestedBy: 'alice' },
    });
    await world.drain();
    expect(world.waf.addresses(SET_V4)).toEqual(['203.0.113.64/26']);
    expect(ownTargets(world, ACL_A)).toEqual([]);
  });
});

describe('cleanup handler', () => {
  it('on Delete removes exactly portsnare entries and reports how many', async () => {
    const world = new World();
    const foreign: NetworkAclEntry = { RuleNumber: 20, Egress: false, Protocol: '6', RuleAction: 'deny', CidrBlock: '192.0.2.9/32', PortRange: { From: 25, To: 25 } };
    const outside: NetworkAclEntry = { RuleNumber: 200, Egress: false, Protocol: '-1', RuleAction: 'deny', CidrBlock: '192.0.2.10/32' };
    world.ec2.consoleEdit(ACL_A, (e) => [...e, foreign, outside]);
    await world.decide(world.scanEvent('203.0.113.7'));
    await world.decide(world.scanEvent('2001:db8::7'));
    await world.drain();
    const before = world.ec2.entries(ACL_A).length;
    const response = await world.cleanup({
      RequestType: 'Delete', ServiceToken: 'x', ResponseURL: 'x', StackId: 'x', RequestId: 'x', LogicalResourceId: 'Cleanup', ResourceType: 'Custom::PortsnareCleanup',
      PhysicalResourceId: 'portsnare-nacl-cleanup', ResourceProperties: { ServiceToken: 'x' },
    });
    expect(response).toEqual({ PhysicalResourceId: 'portsnare-nacl-cleanup', Data: { Removed: 4 } });
    expect(world.ec2.entries(ACL_A)).toHaveLength(before - 2);
    expect(world.ec2.entries(ACL_A)).toContainEqual(foreign);
    expect(world.ec2.entries(ACL_A)).toContainEqual(outside);
    expect(ownTargets(world, ACL_A)).toEqual([]);
    expect(ownTargets(world, ACL_B)).toEqual([]);
  });

  it('on Create and Update does nothing but name the resource', async () => {
    const world = new World();
    await world.decide(world.scanEvent('203.0.113.7'));
    await world.drain();
    const base = { ServiceToken: 'x', ResponseURL: 'x', StackId: 'x', RequestId: 'x', LogicalResourceId: 'Cleanup', ResourceType: 'Custom::PortsnareCleanup', ResourceProperties: { ServiceToken: 'x' } };
    await expect(world.cleanup({ ...base, RequestType: 'Create' })).resolves.toEqual({ PhysicalResourceId: 'portsnare-nacl-cleanup' });
    await expect(world.cleanup({ ...base, RequestType: 'Update', PhysicalResourceId: 'portsnare-nacl-cleanup', OldResourceProperties: { ServiceToken: 'x' } })).resolves.toEqual({
      PhysicalResourceId: 'portsnare-nacl-cleanup',
    });
    expect(ownTargets(world, ACL_A)).toEqual(['203.0.113.7']);
  });
});

describe('enforce with configuration drift', () => {
  it('skips a configured IP set or ACL that no longer exists and enforces the rest', async () => {
    const settings = testSettings({ nacl: { aclIds: [ACL_A], ruleRange: [10, 60], quotaPerDirection: 20 }, waf: { sets: [SET_V4, SET_V6] } });
    const world = new World({ settings });
    world.settings.nacl.aclIds.push('acl-0fffffffffffffff0');
    world.settings.waf.sets.push({ scope: 'REGIONAL', family: 'ipv4', name: 'deleted-set', id: '99999999-9999-4999-8999-999999999999' });
    await world.decide(world.scanEvent('203.0.113.7'));
    await world.drain();
    expect(world.waf.addresses(SET_V4)).toEqual(['203.0.113.7/32']);
    expect(ownTargets(world, ACL_A)).toEqual(['203.0.113.7']);
    expect(world.obs.logged(/does not exist; skipped/)).toHaveLength(2);
  });
});

describe('enforce messages', () => {
  it('ignores a message that is not an enforce wake-up, and still runs for the others in the batch', async () => {
    const world = new World();
    await world.decide(world.scanEvent('203.0.113.7'));
    const batch = world.sqs.receive()!;
    batch.Records.push({ ...batch.Records[0]!, messageId: 'junk', body: '{"kind":"format-disk"}' });
    await world.enforce(batch);
    expect(world.obs.logged('unknown enforce message ignored')).toHaveLength(1);
    expect(world.waf.addresses(SET_V4)).toEqual(['203.0.113.7/32']);
  });
});

describe('enforce near its timeout', () => {
  it('gives up cleanly before the Lambda deadline when throttling does not stop, flushing its metrics', async () => {
    const { DeadlineClock } = await import('../../aws/clock');
    const { createHandler } = await import('../../lambda/enforce/handler');
    const { NaclAdapter } = await import('../../aws/nacl-adapter');
    const { UpdatePacer, WafAdapter } = await import('../../aws/waf-adapter');
    const world = new World();
    const clock = new DeadlineClock(world.clock);
    const enforce = createHandler({
      repo: world.repo,
      nacl: new NaclAdapter(world.ec2.client, clock, world.obs),
      waf: new WafAdapter({ REGIONAL: world.waf.client }, clock, world.obs, new UpdatePacer()),
      settings: world.settings,
      obs: world.obs,
      clock,
    });
    await world.decide(world.scanEvent('203.0.113.7'));
    world.waf.failNext('UpdateIPSet', 'ThrottlingException', 1000);
    world.ec2.failNext('CreateNetworkAclEntry', 'RequestLimitExceeded', 1000);
    const start = world.clock.now();
    const flushes = world.obs.flushes;
    // 12 s left, 5 s margin: the wake-up's settle and then the retries must stop within 7 s
    const context = lambdaContext({ requestId: 'req-deadline', remainingMs: () => 12_000 });
    await expect(enforce(world.sqs.receive()!, context)).rejects.toThrow(/no time left/);
    expect(world.clock.now() - start).toBeLessThanOrEqual(7_000);
    expect(world.obs.flushes).toBe(flushes + 1);
    expect(world.obs.metric('Throttles')).toBeGreaterThan(0);
    expect(world.obs.contexts).toEqual([context]);
  });
});
