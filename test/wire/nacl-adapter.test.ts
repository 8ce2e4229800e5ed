/**
 * NaclAdapter through the REAL EC2Client against test/wire/ec2-server.ts: the Query protocol
 * serializer, the XML parser, the SDK's error mapping and its own retries all run. Expected
 * values are literal (what AWS would hold), never computed by core/nacl.ts.
 */
import { DescribeNetworkAclsCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { naclCapacity, type NaclChange } from '../../core/nacl';
import { NaclAdapter } from '../../aws/nacl-adapter';
import { SimClock } from '../fakes/clock';
import { FakeEc2 } from '../fakes/ec2';
import { RecordingObservability } from '../fakes/observability';
import { Ec2Server } from './ec2-server';

const ACL = 'acl-0a1b2c3d4e5f60001';
const OTHER = 'acl-0a1b2c3d4e5f60002';
const RANGE: [number, number] = [10, 60];

const create = (ruleNumber: number, address: string): NaclChange => {
  const ipv6 = address.includes(':');
  return { op: 'create', ruleNumber, cidr: `${address}/${ipv6 ? 128 : 32}`, family: ipv6 ? 'ipv6' : 'ipv4', target: address };
};

let server: Ec2Server;
let client: EC2Client;
let obs: RecordingObservability;
let adapter: NaclAdapter;

beforeEach(async () => {
  server = new Ec2Server(new FakeEc2(20));
  server.ec2.addAcl(ACL, {
    ipv6: true,
    entries: [
      { RuleNumber: 100, Egress: false, Protocol: '6', RuleAction: 'allow', CidrBlock: '0.0.0.0/0', PortRange: { From: 443, To: 443 } },
      { RuleNumber: 110, Egress: false, Protocol: '58', RuleAction: 'allow', Ipv6CidrBlock: '::/0', IcmpTypeCode: { Type: -1, Code: -1 } },
    ],
  });
  server.ec2.addAcl(OTHER);
  await server.start();
  client = server.client(2);
  obs = new RecordingObservability();
  adapter = new NaclAdapter(client, new SimClock(), obs, () => 0.5);
});
afterEach(async () => {
  client.destroy();
  await server.stop();
});

describe('describe over the wire', () => {
  it('parses entries, ports, ICMP codes and both default denies (32767 IPv4, 32768 IPv6)', async () => {
    const [acl] = await adapter.describe([ACL]);
    expect(acl?.entries.filter((e) => !e.egress)).toEqual([
      { ruleNumber: 100, egress: false, ruleAction: 'allow', protocol: '6', cidrBlock: '0.0.0.0/0', portRange: { from: 443, to: 443 } },
      { ruleNumber: 110, egress: false, ruleAction: 'allow', protocol: '58', ipv6CidrBlock: '::/0', icmpTypeCode: { type: -1, code: -1 } },
      { ruleNumber: 32767, egress: false, ruleAction: 'deny', protocol: '-1', cidrBlock: '0.0.0.0/0' },
      { ruleNumber: 32768, egress: false, ruleAction: 'deny', protocol: '-1', ipv6CidrBlock: '::/0' },
    ]);
    // quota 20 per family: IPv4 loses the allow and its default deny, IPv6 the same (the 32768 deny is the default, not one more)
    expect(naclCapacity(acl!.entries, RANGE, 20)).toEqual({ ipv4: 18, ipv6: 18 });
    expect(server.requests[0]?.body).toBe(`Action=DescribeNetworkAcls&Version=2016-11-15&NetworkAclId.1=${ACL}`);
  });

  it('logs and skips an ACL that does not exist (InvalidNetworkAclID.NotFound), keeps the others', async () => {
    const result = await adapter.describe(['acl-00000000000000dead', OTHER]);
    expect(result.map((r) => r.aclId)).toEqual([OTHER]);
    expect(obs.logged('configured network ACL does not exist; skipped')).toHaveLength(1);
    expect(server.requests[0]?.status).toBe(400);
  });
});

describe('apply over the wire', () => {
  it('creates, replaces and deletes portsnare entries as the SDK serializes them', async () => {
    let result = await adapter.apply(ACL, [create(10, '203.0.113.7'), create(11, '2001:db8::7')]);
    expect(result).toEqual({ applied: [create(10, '203.0.113.7'), create(11, '2001:db8::7')], conflicts: [], quotaFull: false, placedAt: new Map() });
    expect(server.requests.map((r) => r.body).filter((b) => b.startsWith('Action=Create'))).toEqual([
      `Action=CreateNetworkAclEntry&Version=2016-11-15&NetworkAclId=${ACL}&RuleNumber=10&Protocol=-1&RuleAction=deny&Egress=false&CidrBlock=203.0.113.7%2F32`,
      `Action=CreateNetworkAclEntry&Version=2016-11-15&NetworkAclId=${ACL}&RuleNumber=11&Protocol=-1&RuleAction=deny&Egress=false&Ipv6CidrBlock=2001%3Adb8%3A%3A7%2F128`,
    ]);
    result = await adapter.apply(ACL, [
      { op: 'replace', ruleNumber: 10, cidr: '203.0.113.8/32', family: 'ipv4', target: '203.0.113.8', previous: '203.0.113.7/32' },
      { op: 'delete', ruleNumber: 11, cidr: '2001:db8::7/128', family: 'ipv6', target: '2001:db8::7' },
    ]);
    expect(result.conflicts).toEqual([]);
    const ingress = server.ec2.entries(ACL).filter((e) => !e.Egress && e.RuleNumber! < 100);
    expect(ingress).toEqual([{ RuleNumber: 10, Egress: false, Protocol: '-1', RuleAction: 'deny', CidrBlock: '203.0.113.8/32' }]);
  });

  it('creates and deletes an IPv6 /64 entry (the prefix policy), read back as AWS holds it', async () => {
    const prefix: NaclChange = { op: 'create', ruleNumber: 12, cidr: '2001:db8:1:2::/64', family: 'ipv6', target: '2001:db8:1:2::/64' };
    expect(await adapter.apply(ACL, [prefix])).toEqual({ applied: [prefix], conflicts: [], quotaFull: false, placedAt: new Map() });
    expect(server.requests.map((r) => r.body).filter((b) => b.startsWith('Action=Create'))).toEqual([
      `Action=CreateNetworkAclEntry&Version=2016-11-15&NetworkAclId=${ACL}&RuleNumber=12&Protocol=-1&RuleAction=deny&Egress=false&Ipv6CidrBlock=2001%3Adb8%3A1%3A2%3A%3A%2F64`,
    ]);
    const [acl] = await adapter.describe([ACL]);
    expect(acl?.entries.filter((e) => !e.egress && e.ruleNumber === 12)).toEqual([{ ruleNumber: 12, egress: false, ruleAction: 'deny', protocol: '-1', ipv6CidrBlock: '2001:db8:1:2::/64' }]);
    expect((await adapter.apply(ACL, [{ ...prefix, op: 'delete' }])).conflicts).toEqual([]);
    expect(server.ec2.entries(ACL).filter((e) => e.RuleNumber === 12)).toEqual([]);
  });

  it('reports NetworkAclEntryLimitExceeded as a full quota, not an error', async () => {
    const small = new FakeEc2(2);
    small.addAcl(ACL);
    const tight = new Ec2Server(small);
    await tight.start();
    const c = tight.client(2);
    try {
      const result = await new NaclAdapter(c, new SimClock(), obs, () => 0.5).apply(ACL, [create(10, '203.0.113.1'), create(11, '203.0.113.2')]);
      expect(result.applied).toEqual([create(10, '203.0.113.1')]);
      expect(result.quotaFull).toBe(true);
      expect(result.conflicts).toEqual([{ change: create(11, '203.0.113.2'), error: 'NetworkAclEntryLimitExceeded' }]);
    } finally {
      c.destroy();
      await tight.stop();
    }
  });

  it('throws what AWS refuses as invalid (a rule number past 32766), naming the code', async () => {
    await expect(adapter.apply(ACL, [create(32767, '203.0.113.9')])).rejects.toMatchObject({ name: 'InvalidParameterValue' });
  });
});

describe('throttling (RequestLimitExceeded, HTTP 503)', () => {
  it('is retried by the SDK and then by the adapter, and counted', async () => {
    server.throttleNext(3);
    const result = await adapter.apply(ACL, [create(10, '203.0.113.7')]);
    expect(result.applied).toHaveLength(1);
    const creates = server.requests.filter((r) => r.op === 'CreateNetworkAclEntry');
    expect(creates.map((r) => r.status)).toEqual([503, 503, 503, 200]);
    // two SDK attempts per adapter attempt: the adapter saw the SDK give up once
    expect(obs.metric('Throttles')).toBe(1);
  });

  it('gives up with RequestLimitExceeded when the throttling lasts', async () => {
    server.throttleNext(1000);
    await expect(adapter.describe([ACL])).rejects.toMatchObject({ name: 'RequestLimitExceeded', $metadata: { httpStatusCode: 503 } });
    expect(server.count('DescribeNetworkAcls')).toBe(12); // 6 adapter attempts × 2 SDK attempts
  });
});

describe('eventual consistency and lost answers', () => {
  it('a stale DescribeNetworkAcls hides a fresh entry: the create on its number is a conflict, nothing is overwritten', async () => {
    await adapter.apply(ACL, [create(10, '203.0.113.7')]);
    server.ec2.staleNext(1);
    const [stale] = await adapter.describe([ACL]);
    expect(stale?.entries.some((e) => e.ruleNumber === 10)).toBe(false);
    const result = await adapter.apply(ACL, [create(10, '203.0.113.8')]);
    expect(result.applied).toEqual([]);
    expect(result.conflicts).toEqual([{ change: create(10, '203.0.113.8'), error: 'NetworkAclEntryAlreadyExists' }]);
    expect(server.ec2.entries(ACL).find((e) => e.RuleNumber === 10)?.CidrBlock).toBe('203.0.113.7/32');
  });

  it('a create whose answer was lost and that the SDK retried into AlreadyExists is a conflict (re-plan), never a second entry', async () => {
    server.dropResponseNext('CreateNetworkAclEntry');
    const result = await adapter.apply(ACL, [create(10, '203.0.113.7'), create(11, '203.0.113.8')]);
    // the second attempt cannot tell its own first attempt from somebody else's entry: the next read does
    expect(result).toEqual({ applied: [], conflicts: [{ change: create(10, '203.0.113.7'), error: 'NetworkAclEntryAlreadyExists' }], quotaFull: false, placedAt: new Map() });
    expect(server.requests.filter((r) => r.op === 'CreateNetworkAclEntry').map((r) => [r.status, r.dropped])).toEqual([
      [200, true],
      [400, false],
    ]);
    expect(server.ec2.entries(ACL).filter((e) => e.RuleNumber === 10 || e.RuleNumber === 11).map((e) => e.CidrBlock)).toEqual(['203.0.113.7/32']);
  });

  it('a create whose answer was lost on a one-attempt client (production) is a conflict, not a failure of the ACL', async () => {
    const single = server.client(1);
    try {
      const one = new NaclAdapter(single, new SimClock(), obs, () => 0.5);
      server.dropResponseNext('CreateNetworkAclEntry');
      const result = await one.apply(ACL, [create(10, '203.0.113.7')]);
      expect(result.applied).toEqual([]);
      expect(result.conflicts.map((c) => c.change.ruleNumber)).toEqual([10]);
      expect(server.count('CreateNetworkAclEntry')).toBe(1); // a create is never sent twice for one answer
    } finally {
      single.destroy();
    }
  });

  it('a delete whose answer was lost is retried, finds nothing, and counts as applied', async () => {
    await adapter.apply(ACL, [create(10, '203.0.113.7')]);
    server.dropResponseNext('DeleteNetworkAclEntry');
    const result = await adapter.apply(ACL, [{ op: 'delete', ruleNumber: 10, cidr: '203.0.113.7/32', family: 'ipv4', target: '203.0.113.7' }]);
    expect(result.applied).toHaveLength(1);
    expect(server.ec2.entries(ACL).some((e) => e.RuleNumber === 10)).toBe(false);
  });
});

describe('the EC2 front end itself', () => {
  it('parses Filters as the SDK flattens them (Filter.1.Name, Filter.1.Value.1)', async () => {
    server.ec2.addAcl('acl-0000000000000beef', { vpcId: 'vpc-0000000000000beef' });
    const out = await client.send(new DescribeNetworkAclsCommand({ Filters: [{ Name: 'vpc-id', Values: ['vpc-0000000000000beef', 'vpc-00000000000000000'] }] }));
    expect(out.NetworkAcls?.map((a) => [a.NetworkAclId, a.VpcId, a.IsDefault])).toEqual([['acl-0000000000000beef', 'vpc-0000000000000beef', false]]);
    expect(server.requests.at(-1)?.body).toBe('Action=DescribeNetworkAcls&Version=2016-11-15&Filter.1.Name=vpc-id&Filter.1.Value.1=vpc-0000000000000beef&Filter.1.Value.2=vpc-00000000000000000');
  });

  it('refuses an unsigned request with AuthFailure (401) in the EC2 error shape', async () => {
    const post = (body: string) => fetch(server.endpoint, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
    const unsigned = await post('Action=DescribeNetworkAcls&Version=2016-11-15');
    expect(unsigned.status).toBe(401);
    expect(await unsigned.text()).toMatch(/^<\?xml[^>]*>\s*<Response><Errors><Error><Code>AuthFailure<\/Code><Message>[^<]+<\/Message><\/Error><\/Errors><RequestID>[0-9a-f-]{36}<\/RequestID><\/Response>$/);
  });
});
