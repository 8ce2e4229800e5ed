/**
 * The fakes must refuse what AWS refuses; a fake that always says yes tests nothing. Each test
 * pins one documented rule (see the page cited in each fake's header).
 */
import { CreateNetworkAclEntryCommand, DeleteNetworkAclEntryCommand, DescribeNetworkAclsCommand, ReplaceNetworkAclEntryCommand } from '@aws-sdk/client-ec2';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { GetIPSetCommand, UpdateIPSetCommand } from '@aws-sdk/client-wafv2';
import { GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { SimClock } from './clock';
import { FakeDynamoDb } from './dynamodb';
import { FakeEc2 } from './ec2';
import { FakeSqs } from './sqs';
import { FakeWafv2 } from './wafv2';
import { SET_V4 } from './world';

const ACL = 'acl-0123456789abcdef0';
const deny = (RuleNumber: number, CidrBlock: string) =>
  new CreateNetworkAclEntryCommand({ NetworkAclId: ACL, RuleNumber, Egress: false, Protocol: '-1', RuleAction: 'deny', CidrBlock });

describe('FakeEc2 (network ACLs)', () => {
  it('lists the default deny entries of a new ACL', async () => {
    const ec2 = new FakeEc2();
    ec2.addAcl(ACL, { ipv6: true });
    const out = await ec2.client.send(new DescribeNetworkAclsCommand({ NetworkAclIds: [ACL] }));
    expect(out.NetworkAcls?.[0]?.Entries?.filter((e) => !e.Egress).map((e) => [e.RuleNumber, e.CidrBlock ?? e.Ipv6CidrBlock])).toEqual([
      [32767, '0.0.0.0/0'],
      [32768, '::/0'],
    ]);
  });

  it('records when it created each entry: a create, a replace and a changing console edit are new entries; a failed call and an unchanged entry are not', async () => {
    const clock = new SimClock();
    const t0 = clock.now();
    const ec2 = new FakeEc2(20, () => 0.5, () => clock.now());
    ec2.addAcl(ACL);
    clock.advance(1_000);
    await ec2.client.send(deny(10, '192.0.2.1/32'));
    await ec2.client.send(deny(11, '192.0.2.2/32'));
    clock.advance(1_000);
    await ec2.client.send(new ReplaceNetworkAclEntryCommand({ NetworkAclId: ACL, RuleNumber: 10, Egress: false, Protocol: '-1', RuleAction: 'deny', CidrBlock: '192.0.2.3/32' }));
    await expect(ec2.client.send(deny(11, '192.0.2.4/32'))).rejects.toMatchObject({ name: 'NetworkAclEntryAlreadyExists' });
    clock.advance(1_000);
    ec2.consoleEdit(ACL, (entries) => [...entries, { RuleNumber: 12, Egress: false, Protocol: '-1', RuleAction: 'deny', CidrBlock: '192.0.2.5/32' }]);
    expect([10, 11, 12, 32767].map((n) => ec2.createdAt(ACL, n)! - t0)).toEqual([2_000, 1_000, 3_000, 0]);
    await ec2.client.send(new DeleteNetworkAclEntryCommand({ NetworkAclId: ACL, RuleNumber: 11, Egress: false }));
    expect(ec2.createdAt(ACL, 11)).toBeUndefined();
  });

  it('refuses rule numbers outside 1–32766', async () => {
    const ec2 = new FakeEc2();
    ec2.addAcl(ACL);
    await expect(ec2.client.send(deny(0, '192.0.2.1/32'))).rejects.toMatchObject({ name: 'InvalidParameterValue' });
    await expect(ec2.client.send(deny(32767, '192.0.2.1/32'))).rejects.toMatchObject({ name: 'InvalidParameterValue' });
    await expect(ec2.client.send(deny(32766, '192.0.2.1/32'))).resolves.toBeDefined();
  });

  it('refuses a duplicate rule number in the same direction with NetworkAclEntryAlreadyExists', async () => {
    const ec2 = new FakeEc2();
    ec2.addAcl(ACL);
    await ec2.client.send(deny(10, '192.0.2.1/32'));
    await expect(ec2.client.send(deny(10, '192.0.2.2/32'))).rejects.toMatchObject({ name: 'NetworkAclEntryAlreadyExists' });
    await expect(ec2.client.send(new CreateNetworkAclEntryCommand({ NetworkAclId: ACL, RuleNumber: 10, Egress: true, Protocol: '-1', RuleAction: 'deny', CidrBlock: '192.0.2.2/32' }))).resolves.toBeDefined();
  });

  it('counts the default deny in the per-family quota and refuses one more with NetworkAclEntryLimitExceeded', async () => {
    const ec2 = new FakeEc2(3);
    ec2.addAcl(ACL, { ipv6: true });
    await ec2.client.send(deny(1, '192.0.2.1/32'));
    await ec2.client.send(deny(2, '192.0.2.2/32'));
    await expect(ec2.client.send(deny(3, '192.0.2.3/32'))).rejects.toMatchObject({ name: 'NetworkAclEntryLimitExceeded' });
    // IPv6 has its own quota
    await expect(
      ec2.client.send(new CreateNetworkAclEntryCommand({ NetworkAclId: ACL, RuleNumber: 3, Egress: false, Protocol: '-1', RuleAction: 'deny', Ipv6CidrBlock: '2001:db8::1/128' })),
    ).resolves.toBeDefined();
  });

  it('stores CIDRs in canonical form and refuses a CIDR of the wrong family', async () => {
    const ec2 = new FakeEc2();
    ec2.addAcl(ACL);
    await ec2.client.send(new CreateNetworkAclEntryCommand({ NetworkAclId: ACL, RuleNumber: 5, Egress: false, Protocol: '-1', RuleAction: 'deny', Ipv6CidrBlock: '2001:DB8:0::7/128' }));
    expect(ec2.entries(ACL).find((e) => e.RuleNumber === 5)?.Ipv6CidrBlock).toBe('2001:db8::7/128');
    await expect(ec2.client.send(deny(6, '2001:db8::1/128'))).rejects.toMatchObject({ name: 'InvalidParameterValue' });
  });

  it('fails replace and delete of a missing entry, and any call on a missing ACL', async () => {
    const ec2 = new FakeEc2();
    ec2.addAcl(ACL);
    await expect(ec2.client.send(new DeleteNetworkAclEntryCommand({ NetworkAclId: ACL, RuleNumber: 7, Egress: false }))).rejects.toMatchObject({ name: 'InvalidNetworkAclEntry.NotFound' });
    await expect(
      ec2.client.send(new ReplaceNetworkAclEntryCommand({ NetworkAclId: ACL, RuleNumber: 7, Egress: false, Protocol: '-1', RuleAction: 'deny', CidrBlock: '192.0.2.1/32' })),
    ).rejects.toMatchObject({ name: 'InvalidNetworkAclEntry.NotFound' });
    await expect(ec2.client.send(new DescribeNetworkAclsCommand({ NetworkAclIds: ['acl-0000000000000dead'] }))).rejects.toMatchObject({ name: 'InvalidNetworkAclID.NotFound' });
  });

  it('answers a stale DescribeNetworkAcls (the state before the latest change) when asked to', async () => {
    const ec2 = new FakeEc2();
    ec2.addAcl(ACL);
    await ec2.client.send(deny(10, '192.0.2.1/32'));
    ec2.staleNext(1);
    const rules = async () => (await ec2.client.send(new DescribeNetworkAclsCommand({ NetworkAclIds: [ACL] }))).NetworkAcls?.[0]?.Entries?.map((e) => e.RuleNumber);
    expect(await rules()).not.toContain(10);
    expect(await rules()).toContain(10);
  });

  it('filters by network-acl-id and vpc-id, and refuses an unknown filter', async () => {
    const ec2 = new FakeEc2();
    ec2.addAcl(ACL, { vpcId: 'vpc-1' });
    ec2.addAcl('acl-0000000000000beef', { vpcId: 'vpc-2' });
    const ids = async (Filters: Array<{ Name: string; Values: string[] }>) => (await ec2.client.send(new DescribeNetworkAclsCommand({ Filters }))).NetworkAcls?.map((a) => a.NetworkAclId);
    expect(await ids([{ Name: 'vpc-id', Values: ['vpc-2'] }])).toEqual(['acl-0000000000000beef']);
    expect(await ids([{ Name: 'network-acl-id', Values: [ACL] }])).toEqual([ACL]);
    expect(await ids([{ Name: 'network-acl-id', Values: ['acl-00000000000000000'] }])).toEqual([]);
    await expect(ids([{ Name: 'colour', Values: ['red'] }])).rejects.toMatchObject({ name: 'InvalidParameterValue' });
  });

  it('throttles with RequestLimitExceeded when asked to', async () => {
    const ec2 = new FakeEc2(20, () => 0);
    ec2.addAcl(ACL);
    ec2.throttleRate = 1;
    await expect(ec2.client.send(new DescribeNetworkAclsCommand({ NetworkAclIds: [ACL] }))).rejects.toMatchObject({ name: 'RequestLimitExceeded' });
  });
});

describe('FakeWafv2 (IP sets)', () => {
  const setup = () => {
    const clock = new SimClock();
    const waf = new FakeWafv2(clock);
    waf.addSet(SET_V4);
    const id = { Name: SET_V4.name, Scope: SET_V4.scope, Id: SET_V4.id };
    return { clock, waf, id };
  };

  it('replaces the list under the current LockToken and returns the next one', async () => {
    const { waf, id } = setup();
    const got = await waf.client.send(new GetIPSetCommand(id));
    const out = await waf.client.send(new UpdateIPSetCommand({ ...id, Addresses: ['192.0.2.1/32'], LockToken: got.LockToken }));
    expect(out.NextLockToken).not.toBe(got.LockToken);
    expect(waf.addresses(SET_V4)).toEqual(['192.0.2.1/32']);
  });

  it('refuses a stale LockToken with WAFOptimisticLockException', async () => {
    const { clock, waf, id } = setup();
    const got = await waf.client.send(new GetIPSetCommand(id));
    waf.consoleEdit(SET_V4, () => ['192.0.2.9/32']);
    clock.advance(2000);
    await expect(waf.client.send(new UpdateIPSetCommand({ ...id, Addresses: [], LockToken: got.LockToken }))).rejects.toMatchObject({ name: 'WAFOptimisticLockException' });
    expect(waf.addresses(SET_V4)).toEqual(['192.0.2.9/32']);
  });

  it('refuses more than 10,000 addresses with WAFLimitsExceededException', async () => {
    const { waf, id } = setup();
    const got = await waf.client.send(new GetIPSetCommand(id));
    const many = Array.from({ length: 10_001 }, (_, i) => `100.${64 + Math.floor(i / 65536)}.${Math.floor(i / 256) % 256}.${i % 256}/32`);
    await expect(waf.client.send(new UpdateIPSetCommand({ ...id, Addresses: many, LockToken: got.LockToken }))).rejects.toMatchObject({ name: 'WAFLimitsExceededException' });
    await expect(waf.client.send(new UpdateIPSetCommand({ ...id, Addresses: many.slice(0, 10_000), LockToken: got.LockToken }))).resolves.toBeDefined();
  });

  it('refuses /0, bare addresses and the other family with WAFInvalidParameterException', async () => {
    const { waf, id } = setup();
    for (const bad of ['0.0.0.0/0', '192.0.2.1', '2001:db8::1/128']) {
      const got = await waf.client.send(new GetIPSetCommand(id));
      await expect(waf.client.send(new UpdateIPSetCommand({ ...id, Addresses: [bad], LockToken: got.LockToken }))).rejects.toMatchObject({ name: 'WAFInvalidParameterException' });
    }
  });

  it('throttles a second update within one second', async () => {
    const { clock, waf, id } = setup();
    let got = await waf.client.send(new GetIPSetCommand(id));
    await waf.client.send(new UpdateIPSetCommand({ ...id, Addresses: ['192.0.2.1/32'], LockToken: got.LockToken }));
    got = await waf.client.send(new GetIPSetCommand(id));
    clock.advance(999);
    await expect(waf.client.send(new UpdateIPSetCommand({ ...id, Addresses: ['192.0.2.2/32'], LockToken: got.LockToken }))).rejects.toMatchObject({ name: 'ThrottlingException' });
    clock.advance(1);
    await expect(waf.client.send(new UpdateIPSetCommand({ ...id, Addresses: ['192.0.2.2/32'], LockToken: got.LockToken }))).resolves.toBeDefined();
  });

  it('answers a stale GetIPSet (old list, old token) when asked to; an update under that token fails', async () => {
    const { clock, waf, id } = setup();
    const first = await waf.client.send(new GetIPSetCommand(id));
    await waf.client.send(new UpdateIPSetCommand({ ...id, Addresses: ['192.0.2.1/32'], LockToken: first.LockToken }));
    clock.advance(1000);
    waf.staleNext(1);
    const stale = await waf.client.send(new GetIPSetCommand(id));
    expect(stale).toMatchObject({ LockToken: first.LockToken, IPSet: { Addresses: [] } });
    await expect(waf.client.send(new UpdateIPSetCommand({ ...id, Addresses: [], LockToken: stale.LockToken }))).rejects.toMatchObject({ name: 'WAFOptimisticLockException' });
    expect((await waf.client.send(new GetIPSetCommand(id))).IPSet?.Addresses).toEqual(['192.0.2.1/32']);
  });

  it('fails every call on a set deleted out of band', async () => {
    const { waf, id } = setup();
    const got = await waf.client.send(new GetIPSetCommand(id));
    waf.deleteSet(SET_V4);
    await expect(waf.client.send(new GetIPSetCommand(id))).rejects.toMatchObject({ name: 'WAFNonexistentItemException' });
    await expect(waf.client.send(new UpdateIPSetCommand({ ...id, Addresses: [], LockToken: got.LockToken }))).rejects.toMatchObject({ name: 'WAFNonexistentItemException' });
  });

  it('fails on an unknown set with WAFNonexistentItemException', async () => {
    const { waf } = setup();
    await expect(waf.client.send(new GetIPSetCommand({ Name: 'nope', Scope: 'REGIONAL', Id: 'nope' }))).rejects.toMatchObject({ name: 'WAFNonexistentItemException' });
  });
});

describe('FakeDynamoDb', () => {
  it('writes nothing when the condition is false (ConditionalCheckFailedException)', async () => {
    const ddb = new FakeDynamoDb();
    await ddb.client.send(new PutCommand({ TableName: 'portsnare', Item: { pk: 'a', sk: 'b', v: 1 }, ConditionExpression: 'attribute_not_exists(pk)' }));
    await expect(
      ddb.client.send(new PutCommand({ TableName: 'portsnare', Item: { pk: 'a', sk: 'b', v: 2 }, ConditionExpression: 'attribute_not_exists(pk)' })),
    ).rejects.toMatchObject({ name: 'ConditionalCheckFailedException' });
    const got = await ddb.client.send(new GetCommand({ TableName: 'portsnare', Key: { pk: 'a', sk: 'b' } }));
    expect(got.Item?.v).toBe(1);
  });

  it('evaluates AND/OR/NOT, comparisons and ADD/SET/REMOVE', async () => {
    const ddb = new FakeDynamoDb();
    const update = (limit: number) =>
      ddb.client.send(
        new UpdateCommand({
          TableName: 'portsnare',
          Key: { pk: 'BURST', sk: 'M' },
          UpdateExpression: 'ADD #c :one SET #t = :t',
          ConditionExpression: 'attribute_not_exists(#c) OR (#c < :limit AND NOT #c = :never)',
          ExpressionAttributeNames: { '#c': 'count', '#t': 'ttl' },
          ExpressionAttributeValues: { ':one': 1, ':limit': limit, ':t': 5, ':never': -1 },
        }),
      );
    await update(2);
    await update(2);
    await expect(update(2)).rejects.toMatchObject({ name: 'ConditionalCheckFailedException' });
    expect(ddb.item('BURST', 'M')).toEqual({ pk: 'BURST', sk: 'M', count: 2, ttl: 5 });
    await ddb.client.send(new UpdateCommand({ TableName: 'portsnare', Key: { pk: 'BURST', sk: 'M' }, UpdateExpression: 'REMOVE #t', ExpressionAttributeNames: { '#t': 'ttl' } }));
    expect(ddb.item('BURST', 'M')?.ttl).toBeUndefined();
  });

  it('refuses a bare reserved word in an expression, and numbers the Document client cannot marshall', async () => {
    const ddb = new FakeDynamoDb();
    await expect(
      ddb.client.send(new UpdateCommand({ TableName: 'portsnare', Key: { pk: 'a', sk: 'b' }, UpdateExpression: 'ADD count :one', ExpressionAttributeValues: { ':one': 1 } })),
    ).rejects.toMatchObject({ name: 'ValidationException' });
    await expect(ddb.client.send(new PutCommand({ TableName: 'portsnare', Item: { pk: 'a', sk: 'b' }, ConditionExpression: 'attribute_not_exists(ttl)' }))).rejects.toMatchObject({
      name: 'ValidationException',
    });
    await expect(ddb.client.send(new PutCommand({ TableName: 'portsnare', Item: { pk: 'a', sk: 'b', n: 2 ** 53 + 2 } }))).rejects.toThrow(/MAX_SAFE_INTEGER/);
    await expect(ddb.client.send(new PutCommand({ TableName: 'portsnare', Item: { pk: 'a', sk: 'b', n: Number.NaN } }))).rejects.toThrow(/NaN is not allowed/);
  });

  it('indexes only items with the GSI key (sparse), sorted by the sort key, in pages', async () => {
    const ddb = new FakeDynamoDb('portsnare', undefined, 2);
    for (let i = 0; i < 5; i++) await ddb.client.send(new PutCommand({ TableName: 'portsnare', Item: { pk: `p${i}`, sk: 's', activeKey: 'ACTIVE', expiresAt: 10 - i } }));
    await ddb.client.send(new PutCommand({ TableName: 'portsnare', Item: { pk: 'lifted', sk: 's', expiresAt: 0 } }));
    const seen: unknown[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const out = await ddb.client.send(
        new QueryCommand({
          TableName: 'portsnare',
          IndexName: 'active',
          KeyConditionExpression: '#a = :a AND #e <= :by',
          ExpressionAttributeNames: { '#a': 'activeKey', '#e': 'expiresAt' },
          ExpressionAttributeValues: { ':a': 'ACTIVE', ':by': 9 },
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      );
      seen.push(...(out.Items ?? []).map((i) => i.expiresAt));
      start = out.LastEvaluatedKey;
    } while (start);
    expect(seen).toEqual([6, 7, 8, 9]);
  });
});

describe('FakeSqs (FIFO)', () => {
  it('requires a message group id and delivers a deduplicated message once within 5 minutes', async () => {
    const clock = new SimClock();
    const sqs = new FakeSqs(clock);
    const send = (dedup: string, group: string | undefined = 'g') =>
      sqs.client.send(new SendMessageCommand({ QueueUrl: sqs.queueUrl, MessageBody: '{}', MessageDeduplicationId: dedup, ...(group ? { MessageGroupId: group } : {}) }));
    await expect(send('x', '')).rejects.toMatchObject({ name: 'MissingParameter' });
    await send('a');
    await send('a');
    expect(sqs.depth).toBe(1);
    clock.advance(5 * 60_000);
    await send('a');
    expect(sqs.depth).toBe(2);
  });

  it('with content-based deduplication, a message without an id is deduplicated by its body; an explicit id overrides', async () => {
    const clock = new SimClock();
    const plain = new FakeSqs(clock);
    await expect(plain.client.send(new SendMessageCommand({ QueueUrl: plain.queueUrl, MessageBody: '{}', MessageGroupId: 'g' }))).rejects.toMatchObject({ name: 'InvalidParameterValue' });
    const sqs = new FakeSqs(clock, undefined, undefined, { contentBasedDeduplication: true });
    const send = (body: string, dedup?: string) => sqs.client.send(new SendMessageCommand({ QueueUrl: sqs.queueUrl, MessageBody: body, MessageGroupId: 'g', ...(dedup ? { MessageDeduplicationId: dedup } : {}) }));
    await send('{"kind":"expire"}');
    await send('{"kind":"expire"}');
    await send('{"kind":"enforce"}');
    await send('{"kind":"expire"}', 'explicit');
    expect(sqs.depth).toBe(3);
    clock.advance(5 * 60_000);
    await send('{"kind":"expire"}');
    expect(sqs.depth).toBe(4);
  });
});
