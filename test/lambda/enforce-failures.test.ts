/**
 * Failures of one enforcement point must cost the others nothing, and no failure may hold the
 * FIFO queue for its 360 s visibility timeout (the fake models it, and redelivery, and the
 * dead-letter queue after five receives). Times are the simulated clock's.
 */
import { describe, expect, it } from 'vitest';
import { ownEntryTarget } from '../../core/nacl';
import { fromSdkEntry } from '../../aws/nacl-adapter';
import { ACL_A, ACL_B, SET_V4, SET_V6, World } from '../fakes/world';

/** Records the simulated time at which each ingress deny entry was created, per "acl cidr". */
function watchNacl(world: World): { created: Map<string, number[]> } {
  const created = new Map<string, number[]>();
  const original = world.ec2.client.send.bind(world.ec2.client);
  world.ec2.client.send = (async (command: { constructor: { name: string }; input: Record<string, unknown> }, ...rest: unknown[]) => {
    const out = await (original as (...a: unknown[]) => Promise<unknown>)(command, ...rest);
    if (command.constructor.name === 'CreateNetworkAclEntryCommand' || command.constructor.name === 'ReplaceNetworkAclEntryCommand') {
      const key = `${String(command.input.NetworkAclId)} ${String(command.input.CidrBlock ?? command.input.Ipv6CidrBlock)}`;
      created.set(key, [...(created.get(key) ?? []), world.clock.now()]);
    }
    return out;
  }) as typeof world.ec2.client.send;
  return { created };
}

function ownTargets(world: World, aclId: string): string[] {
  return world.ec2
    .entries(aclId)
    .map((e) => ownEntryTarget(fromSdkEntry(e), world.settings.nacl.ruleRange))
    .filter((t): t is string => t !== undefined)
    .sort();
}

describe('a WAF that keeps failing does not hold back the NACL blocks', () => {
  it('permanent (AccessDeniedException): the batch succeeds, NACL entries land at once, each written once, the failure counted', async () => {
    const world = new World();
    const { created } = watchNacl(world);
    world.waf.failNext('UpdateIPSet', 'AccessDeniedException', 1000);
    await world.decide(world.scanEvent('203.0.113.7'));
    const first = await world.drain();
    expect(first.failures).toBe(0);
    expect(ownTargets(world, ACL_A)).toEqual(['203.0.113.7']);
    world.clock.advance(1_000);
    const decidedB = world.clock.now();
    await world.decide(world.scanEvent('203.0.113.8'));
    await world.drain();
    const landed = created.get(`${ACL_A} 203.0.113.8/32`)?.[0];
    expect(landed).toBeDefined();
    expect(landed! - decidedB).toBeLessThanOrEqual(5_000);
    // the first attacker's entries were written once, not again by every retry
    expect(created.get(`${ACL_A} 203.0.113.7/32`)).toHaveLength(1);
    expect(created.get(`${ACL_B} 203.0.113.7/32`)).toHaveLength(1);
    expect(world.waf.addresses(SET_V4)).toEqual([]);
    expect(world.obs.metric('EnforcementFailures')).toBeGreaterThanOrEqual(2);
    expect(world.obs.logged(/enforcement incomplete/).every((l) => l.level === 'error')).toBe(true);
    expect(world.sqs.deadLetters).toHaveLength(0);
  });

  it('transient (WAFInternalErrorException on every call): retried after 30 s, not 360 s; NACL blocks of later attackers land within a minute; the batch ends in the dead-letter queue after five receives', async () => {
    const world = new World();
    const { created } = watchNacl(world);
    world.waf.failNext('UpdateIPSet', 'WAFInternalErrorException', 100_000);
    await world.decide(world.scanEvent('203.0.113.7'));
    const first = world.sqs.receive()!;
    const startedAt = world.clock.now();
    await expect(world.enforce(first)).rejects.toThrow(/enforcement incomplete/);
    expect(ownTargets(world, ACL_A)).toEqual(['203.0.113.7']);
    // the batch comes back 30 s after the run, not after the queue's 360 s visibility timeout
    expect(world.sqs.nextVisibleAt()! - startedAt).toBeLessThanOrEqual(60_000);
    world.clock.advance(2_000);
    const decidedB = world.clock.now();
    await world.decide(world.scanEvent('203.0.113.8'));
    const { failures } = await world.drain();
    expect(failures).toBeGreaterThanOrEqual(4);
    const landed = created.get(`${ACL_A} 203.0.113.8/32`)?.[0];
    expect(landed).toBeDefined();
    expect(landed! - decidedB).toBeLessThanOrEqual(60_000);
    expect(ownTargets(world, ACL_B)).toEqual(['203.0.113.7', '203.0.113.8']);
    expect(world.sqs.deadLetters.length).toBeGreaterThanOrEqual(1);
    expect(world.sqs.depth).toBe(0);
  });
});

describe('one failing network ACL does not hold back the other', () => {
  it('an ACL whose writes fail (InternalError) leaves the other ACL and WAF enforced; the retry finishes it', async () => {
    const world = new World();
    // every pass of the run (an unknown outcome of a create is re-planned, not a failure at once)
    world.ec2.failNext('CreateNetworkAclEntry', 'InternalError', 5); // both ACLs' creates in passes 1-2, ACL_A's in pass 3: an unknown outcome is re-planned, not failed at once
    await world.decide(world.scanEvent('203.0.113.7'));
    const batch = world.sqs.receive()!;
    await expect(world.enforce(batch)).rejects.toThrow(/nacl:acl-/);
    const enforced = [ownTargets(world, ACL_A), ownTargets(world, ACL_B)];
    expect(enforced).toContainEqual(['203.0.113.7']);
    expect(world.waf.addresses(SET_V4)).toEqual(['203.0.113.7/32']);
    const { waitedMs } = await world.drain();
    expect(waitedMs).toBeLessThanOrEqual(30_000);
    expect(ownTargets(world, ACL_A)).toEqual(['203.0.113.7']);
    expect(ownTargets(world, ACL_B)).toEqual(['203.0.113.7']);
  });
});

describe('a WAF IP set deleted out of band', () => {
  it('is an error of its own: WafSetMissing, a log naming the set, not converged, not "full"; the other sets and the ACLs are enforced', async () => {
    const world = new World();
    await world.decide(world.scanEvent('203.0.113.7'));
    await world.decide(world.scanEvent('2001:db8::7'));
    await world.drain();
    world.waf.deleteSet(SET_V4);
    world.clock.advance(2_000);
    await world.decide(world.scanEvent('203.0.113.8'));
    await world.decide(world.scanEvent('2001:db8::8'));
    const summary = await world.enforce(world.sqs.receive()!);
    expect(summary.converged).toBe(false);
    expect(summary.failures).toEqual([expect.objectContaining({ point: 'waf:portsnare-v4-0', error: 'WAFNonexistentItemException', transient: false })]);
    expect(world.obs.metric('WafSetMissing')).toBe(1);
    const line = world.obs.logged(/WAF IP set does not exist/)[0];
    expect(line?.level).toBe('error');
    expect(line?.attributes).toMatchObject({ set: 'portsnare-v4-0', id: SET_V4.id, scope: 'REGIONAL' });
    expect(world.obs.logged(/full/)).toHaveLength(0);
    expect(world.obs.metric('WafCapacityFull')).toBe(0);
    expect(ownTargets(world, ACL_A)).toEqual(['2001:db8::7', '2001:db8::8', '203.0.113.7', '203.0.113.8']);
    expect(world.waf.addresses(SET_V6).sort()).toEqual(['2001:db8::7/128', '2001:db8::8/128']);
  });

  it('deleted between GetIPSet and UpdateIPSet: the same error state', async () => {
    const world = new World();
    const original = world.waf.client.send.bind(world.waf.client);
    world.waf.client.send = ((command: { constructor: { name: string } }, ...rest: unknown[]) => {
      if (command.constructor.name === 'UpdateIPSetCommand') world.waf.deleteSet(SET_V4);
      return (original as (...a: unknown[]) => unknown)(command, ...rest);
    }) as typeof world.waf.client.send;
    await world.decide(world.scanEvent('203.0.113.7'));
    const summary = await world.enforce(world.sqs.receive()!);
    expect(summary.converged).toBe(false);
    expect(world.obs.metric('WafSetMissing')).toBe(1);
    expect(world.obs.logged(/WAF IP set does not exist/)[0]?.attributes).toMatchObject({ set: 'portsnare-v4-0', call: 'UpdateIPSet' });
    expect(ownTargets(world, ACL_A)).toEqual(['203.0.113.7']);
  });
});

describe('a lost wake-up', () => {
  it('decide: the record is saved but SendMessage fails; the retried event (already counted) wakes enforce', async () => {
    const world = new World();
    const event = world.scanEvent('203.0.113.7');
    world.sqs.failNext('SendMessage', 'InternalError');
    await expect(world.decide(event)).rejects.toMatchObject({ name: 'InternalError' });
    expect((await world.repo.get('203.0.113.7'))?.record.active).toBe(true);
    expect(world.sqs.depth).toBe(0);
    world.clock.advance(60_000); // Lambda's first asynchronous retry
    await expect(world.decide(event)).resolves.toEqual(['unchanged']);
    expect(world.sqs.depth).toBe(1);
    await world.drain();
    expect(ownTargets(world, ACL_A)).toEqual(['203.0.113.7']);
    expect((await world.repo.get('203.0.113.7'))?.record.offences).toBe(1);
    expect(world.obs.samples.get('EnforcementLagSeconds')?.[0]).toBeGreaterThanOrEqual(60);
  });

  it('unblock: lifted but SendMessage fails; the retried request wakes enforce, which lifts the block', async () => {
    const world = new World();
    await world.decide(world.scanEvent('203.0.113.7'));
    await world.drain();
    const unblock = { version: '0', id: 'u1', 'detail-type': 'Unblock Requested', source: 'portsnare.cli', account: '1', region: 'eu-west-1', resources: [], time: new Date(world.clock.now()).toISOString(), detail: { version: 1, target: '203.0.113.7', requestedBy: 'bob' } };
    world.sqs.failNext('SendMessage', 'InternalError');
    await expect(world.decide(unblock)).rejects.toThrow();
    world.clock.advance(60_000);
    await expect(world.decide(unblock)).resolves.toEqual(['not-blocked']);
    await world.drain();
    expect(ownTargets(world, ACL_A)).toEqual([]);
    expect(world.waf.addresses(SET_V4)).toEqual([]);
  });

  it('expiry: a wake-up that cannot be sent fails the run before anything is lifted, and the retry wakes and lifts', async () => {
    const world = new World();
    await world.decide(world.scanEvent('203.0.113.7'));
    await world.drain();
    world.clock.advance(3600_000);
    world.sqs.failNext('SendMessage', 'InternalError');
    await expect(world.expiry()).rejects.toThrow();
    world.clock.advance(60_000);
    await expect(world.expiry()).resolves.toEqual({ lifted: 1, timers: 0 });
    expect(world.sqs.depth).toBe(1);
    await world.drain();
    expect(ownTargets(world, ACL_A)).toEqual([]);
    expect(world.waf.addresses(SET_V4)).toEqual([]);
  });
});
