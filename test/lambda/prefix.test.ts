/**
 * The IPv6 prefix policy through the cloud handlers on the stateful fakes, with the placement
 * ledger: a /64 block expires out of every ACL and IP set, and the cleanup custom resource
 * removes a /64 entry of ours like a host entry. Expected entries are literal
 * ("CreateNetworkAclEntry", https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateNetworkAclEntry.html).
 */
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { ACL_A, ACL_B, SET_V6, testSettings, World } from '../fakes/world';

const denies = (world: World, aclId: string): string[] =>
  world.ec2
    .entries(aclId)
    .filter((e) => !e.Egress && e.RuleAction === 'deny' && e.RuleNumber! < 100)
    .map((e) => e.CidrBlock ?? e.Ipv6CidrBlock ?? '')
    .sort();

const deleteEvent = (world: World): CloudFormationCustomResourceEvent => ({
  ServiceToken: 'x',
  ResponseURL: 'x',
  StackId: 'x',
  RequestId: 'x',
  LogicalResourceId: 'Cleanup',
  ResourceType: 'Custom::PortsnareNaclCleanup',
  RequestType: 'Delete',
  PhysicalResourceId: 'portsnare-nacl-cleanup',
  ResourceProperties: { ServiceToken: 'x', AclIds: [ACL_A, ACL_B], RuleRange: world.settings.nacl.ruleRange.map(String) },
});

describe('IPv6 prefix blocks, expiry and cleanup', () => {
  it('a /64 block leaves every ACL and the IP set when it expires', async () => {
    const world = new World({ settings: testSettings({ policy: { ipv6BlockPrefix: 64, baseTtlSeconds: 600 } }) });
    await world.decide(world.scanEvent('2001:db8:1:2::5'));
    await world.drain();
    for (const acl of [ACL_A, ACL_B]) expect(denies(world, acl)).toEqual(['2001:db8:1:2::/64']);
    expect(world.waf.addresses(SET_V6)).toEqual(['2001:db8:1:2::/64']);
    world.clock.advance(601_000);
    await world.expiry();
    await world.drain();
    for (const acl of [ACL_A, ACL_B]) expect(denies(world, acl)).toEqual([]);
    expect(world.waf.addresses(SET_V6)).toEqual([]);
  });

  it('the cleanup custom resource removes our /64 entries, and leaves an operator’s /64 deny in the range alone', async () => {
    const world = new World({ settings: testSettings({ policy: { ipv6BlockPrefix: 64 } }) });
    world.ec2.consoleEdit(ACL_A, (entries) => [...entries, { RuleNumber: 40, Egress: false, Protocol: '-1', RuleAction: 'deny', Ipv6CidrBlock: '2001:db8:9:9::/64' }]);
    await world.decide(world.scanEvent('2001:db8:1:2::5'));
    await world.drain();
    expect(denies(world, ACL_A)).toEqual(['2001:db8:1:2::/64', '2001:db8:9:9::/64']);
    await world.cleanup(deleteEvent(world));
    expect(denies(world, ACL_A)).toEqual(['2001:db8:9:9::/64']);
    expect(denies(world, ACL_B)).toEqual([]);
  });
});
