/**
 * The IPv6 prefix policy in the cloud, end to end on the wire: the real decide and enforce
 * handlers, the repository on dynalite, the NACL and WAF adapters through the REAL EC2Client and
 * WAFV2Client to the HTTP fakes. Expected state is literal, from the AWS pages:
 * - an IP set holds CIDRs of its IP version, every prefix /1–/128 for IPv6
 *   ("IPSet", AWS WAF API Reference, https://docs.aws.amazon.com/waf/latest/APIReference/API_IPSet.html);
 * - a network ACL entry has one CidrBlock or one Ipv6CidrBlock, any prefix
 *   ("CreateNetworkAclEntry", Amazon EC2 API Reference,
 *   https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateNetworkAclEntry.html).
 * The /64 of 2001:db8:1:2::5 is 2001:db8:1:2::/64 (RFC 4291 section 2.3), written here by hand.
 */
import type { SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BurstGate } from '../../lambda/decide/burst';
import { createHandler as createDecide } from '../../lambda/decide/handler';
import { createHandler as createEnforce } from '../../lambda/enforce/handler';
import { NaclAdapter } from '../../aws/nacl-adapter';
import { EnforceQueue } from '../../lambda/shared/queue';
import { BlockRepository } from '../../aws/repository';
import { UpdatePacer, WafAdapter } from '../../aws/waf-adapter';
import { SimClock } from '../fakes/clock';
import { FakeEc2 } from '../fakes/ec2';
import { RecordingObservability } from '../fakes/observability';
import { deliverFifo, FakeSqs } from '../fakes/sqs';
import { ACL_A, ACL_B, SET_V4, SET_V6, testSettings } from '../fakes/world';
import { type LocalTable, startDynalite } from './dynalite';
import { Ec2Server } from './ec2-server';
import { WafServer } from './wafv2-server';

const clock = new SimClock();
const obs = new RecordingObservability();
const settings = testSettings({
  policy: { ipv6BlockPrefix: 64 },
  guard: {
    allowlist: ['2001:db8:a:b::77'],
    protectedCidrs: ['10.0.0.0/16'],
    blockableSpecialCidrs: ['203.0.113.0/24', '2001:db8::/32'],
  },
});
const sqs = new FakeSqs(clock);
const ec2 = new Ec2Server(new FakeEc2(settings.nacl.quotaPerDirection, () => 0.5));
const waf = new WafServer(clock, () => 0.5);
let table: LocalTable;
let repo: BlockRepository;
let decide: (event: unknown) => Promise<unknown>;
let enforce: (event: SQSEvent) => Promise<unknown>;
let seq = 0;

function envelope(detailType: string, source: string, detail: Record<string, unknown>): Record<string, unknown> {
  const at = new Date(clock.now()).toISOString();
  return { version: '0', id: `prefix-evt-${++seq}`, 'detail-type': detailType, source, account: '123456789012', time: at, region: 'eu-west-1', resources: [], detail };
}

function scanEvent(attacker: string): Record<string, unknown> {
  const at = new Date(clock.now()).toISOString();
  return envelope('Scan Detected', 'portsnare.sensor', {
    version: 1,
    sensorId: 'i-0123456789abcdef0',
    attacker,
    probes: [{ protocol: 'tcp', port: 23, kind: 'connect' }],
    probeCount: 3,
    handshake: true,
    firstSeen: at,
    lastSeen: at,
  });
}

async function drain(): Promise<number> {
  return (await deliverFifo(sqs, clock, enforce, { maxInvocations: 50 })).failures;
}

/** portsnare's deny entries in an ACL's reserved range, ingress, as AWS holds them. */
function denies(aclId: string): string[] {
  return ec2.ec2
    .entries(aclId)
    .filter((e) => !e.Egress && e.RuleAction === 'deny' && e.RuleNumber! >= 10 && e.RuleNumber! <= 60)
    .map((e) => e.CidrBlock ?? e.Ipv6CidrBlock ?? '')
    .sort();
}

beforeAll(async () => {
  table = await startDynalite();
  for (const aclId of settings.nacl.aclIds) ec2.ec2.addAcl(aclId, { ipv6: true });
  for (const ref of settings.waf.sets) waf.waf.addSet(ref);
  await ec2.start();
  await waf.start();
  repo = new BlockRepository(table.doc, table.tableName);
  const queue = new EnforceQueue(sqs.client, sqs.queueUrl);
  const nacl = new NaclAdapter(ec2.client(2), clock, obs, () => 0.5);
  const wafAdapter = new WafAdapter({ REGIONAL: waf.client(2) }, clock, obs, new UpdatePacer(), () => 0.5);
  decide = createDecide({ repo, queue, burst: new BurstGate(table.doc, table.tableName, clock), settings, obs, clock });
  enforce = createEnforce({ repo, nacl, waf: wafAdapter, settings, obs, clock }) as (event: SQSEvent) => Promise<unknown>;
});
afterAll(async () => {
  await ec2.stop();
  await waf.stop();
  await table?.stop();
});

describe('policy.ipv6BlockPrefix 64, on the wire', () => {
  it('an IPv6 scanner’s /64 lands in both ACLs (an Ipv6CidrBlock entry) and in the IPv6 IP set', async () => {
    await decide(scanEvent('2001:db8:1:2::5'));
    expect(await drain()).toBe(0);
    for (const aclId of [ACL_A, ACL_B]) expect(denies(aclId)).toEqual(['2001:db8:1:2::/64']);
    expect(waf.waf.addresses(SET_V6)).toEqual(['2001:db8:1:2::/64']);
    expect(waf.waf.addresses(SET_V4)).toEqual([]);
    const stored = await repo.get('2001:db8:1:2::/64');
    expect(stored?.record).toMatchObject({ target: '2001:db8:1:2::/64', family: 'ipv6', reason: 'sensor', active: true, note: 'prefix of 2001:db8:1:2::5 (policy.ipv6BlockPrefix 64)' });
    expect(await repo.get('2001:db8:1:2::5')).toBeUndefined();
    // the request EC2 received names the prefix, as the SDK serialized it
    expect(ec2.requests.some((r) => r.body.includes('Action=CreateNetworkAclEntry') && r.body.includes('Ipv6CidrBlock=2001%3Adb8%3A1%3A2%3A%3A%2F64'))).toBe(true);
  });

  it('another address of the same /64 is the same block (refreshed, no new entry); another /64 is another', async () => {
    const before = ec2.requests.length;
    await decide(scanEvent('2001:db8:1:2:ffff:ffff:ffff:fffe'));
    expect(await drain()).toBe(0);
    expect(ec2.requests.slice(before).some((r) => r.body.startsWith('Action=CreateNetworkAclEntry'))).toBe(false);
    expect((await repo.get('2001:db8:1:2::/64'))?.record.hitCount).toBe(6);
    await decide(scanEvent('2001:db8:1:3::5'));
    expect(await drain()).toBe(0);
    for (const aclId of [ACL_A, ACL_B]) expect(denies(aclId)).toEqual(['2001:db8:1:2::/64', '2001:db8:1:3::/64']);
    expect([...waf.waf.addresses(SET_V6)].sort()).toEqual(['2001:db8:1:2::/64', '2001:db8:1:3::/64']);
  });

  it('a /64 holding an allowlisted address: the scanner is blocked alone (/128), the reason recorded; the allowlisted address never', async () => {
    await decide(scanEvent('2001:db8:a:b::5'));
    await decide(scanEvent('2001:db8:a:b::77'));
    expect(await drain()).toBe(0);
    for (const aclId of [ACL_A, ACL_B]) expect(denies(aclId)).toEqual(['2001:db8:1:2::/64', '2001:db8:1:3::/64', '2001:db8:a:b::5/128']);
    expect([...waf.waf.addresses(SET_V6)].sort()).toEqual(['2001:db8:1:2::/64', '2001:db8:1:3::/64', '2001:db8:a:b::5/128']);
    const narrowed = await repo.get('2001:db8:a:b::5');
    expect(narrowed?.record.note).toBe('blocked alone: its /64 2001:db8:a:b::/64 holds a protected address (allowlist 2001:db8:a:b::77/128)');
    expect(await repo.get('2001:db8:a:b::/64')).toBeUndefined();
    expect(await repo.get('2001:db8:a:b::77')).toBeUndefined();
    expect(obs.logged('refused: never-block rule').some((line) => line.attributes['attacker'] === '2001:db8:a:b::77')).toBe(true);
  });

  it('an operator unblock of the /64 removes its entries and its IP set address, nothing else', async () => {
    await decide(envelope('Unblock Requested', 'portsnare.cli', { version: 1, target: '2001:db8:1:2::/64', requestedBy: 'ops' }));
    expect(await drain()).toBe(0);
    for (const aclId of [ACL_A, ACL_B]) expect(denies(aclId)).toEqual(['2001:db8:1:3::/64', '2001:db8:a:b::5/128']);
    expect([...waf.waf.addresses(SET_V6)].sort()).toEqual(['2001:db8:1:3::/64', '2001:db8:a:b::5/128']);
  });
});
