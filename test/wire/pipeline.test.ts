/**
 * The cloud half end to end on the wire: the real decide and enforce handlers, the repository on
 * a real DynamoDB engine (dynalite), the NACL and WAF adapters through the REAL EC2Client and
 * WAFV2Client to the HTTP fakes, with AWS's inconveniences switched on (throttling, stale reads,
 * a lost answer, another writer in the IP set). The enforce queue is the in-process FIFO fake.
 * Expected state is literal: which host entries and addresses AWS must hold at the end.
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
const settings = testSettings();
const sqs = new FakeSqs(clock);
const ec2 = new Ec2Server(new FakeEc2(settings.nacl.quotaPerDirection, () => 0.5));
const waf = new WafServer(clock, () => 0.5);
let table: LocalTable;
let decide: (event: unknown) => Promise<unknown>;
let enforce: (event: SQSEvent) => Promise<unknown>;
let seq = 0;

function scanEvent(attacker: string): Record<string, unknown> {
  const at = new Date(clock.now()).toISOString();
  return {
    version: '0',
    id: `wire-evt-${++seq}`,
    'detail-type': 'Scan Detected',
    source: 'portsnare.sensor',
    account: '123456789012',
    time: at,
    region: 'eu-west-1',
    resources: [],
    detail: { version: 1, sensorId: 'i-0123456789abcdef0', attacker, probes: [{ protocol: 'tcp', port: 23, kind: 'connect' }], probeCount: 3, handshake: true, firstSeen: at, lastSeen: at },
  };
}

/** Delivers the queue until empty as the FIFO event source does: a failed batch comes back when its visibility timeout ends. */
async function drain(): Promise<number> {
  return (await deliverFifo(sqs, clock, enforce, { maxInvocations: 50 })).failures;
}

/** portsnare's host entries in an ACL, as "rule cidr", ingress only, literal form AWS holds. */
function hostEntries(aclId: string): string[] {
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
  const repo = new BlockRepository(table.doc, table.tableName);
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

describe('scan → decide → DynamoDB → enforce → NACL and WAF, on the wire', () => {
  it('blocks an IPv4 and an IPv6 scanner in both ACLs and both IP sets', async () => {
    await decide(scanEvent('203.0.113.7'));
    await decide(scanEvent('2001:db8::7'));
    expect(await drain()).toBe(0);
    for (const aclId of [ACL_A, ACL_B]) expect(hostEntries(aclId)).toEqual(['2001:db8::7/128', '203.0.113.7/32']);
    expect(waf.waf.addresses(SET_V4)).toEqual(['203.0.113.7/32']);
    expect(waf.waf.addresses(SET_V6)).toEqual(['2001:db8::7/128']);
  });

  it('converges through throttling, stale reads, lost answers and another writer in the IP set', async () => {
    waf.waf.consoleEdit(SET_V4, (list) => [...list, '192.0.2.200/32']);
    ec2.throttleNext(3);
    ec2.ec2.staleNext(2);
    waf.waf.staleNext(2);
    ec2.dropResponseNext('CreateNetworkAclEntry');
    waf.dropResponseNext('UpdateIPSet');
    for (const attacker of ['203.0.113.8', '203.0.113.9', '2001:db8::9']) await decide(scanEvent(attacker));
    await drain();
    for (const aclId of [ACL_A, ACL_B]) {
      expect(hostEntries(aclId)).toEqual(['2001:db8::7/128', '2001:db8::9/128', '203.0.113.7/32', '203.0.113.8/32', '203.0.113.9/32']);
    }
    // The IP sets are portsnare's own (core/waf.ts planWaf): the other writer's address is gone.
    expect([...waf.waf.addresses(SET_V4)].sort()).toEqual(['203.0.113.7/32', '203.0.113.8/32', '203.0.113.9/32']);
    expect([...waf.waf.addresses(SET_V6)].sort()).toEqual(['2001:db8::7/128', '2001:db8::9/128']);
    // the faults were met on the wire
    expect(ec2.requests.some((r) => r.status === 503)).toBe(true);
    expect(ec2.requests.some((r) => r.dropped)).toBe(true);
    expect(waf.requests.some((r) => r.dropped)).toBe(true);
    expect(obs.metric('LockRetries')).toBeGreaterThan(0);
  });
});
