/**
 * Only a block record is desired state, and only within the policy's widest prefix (issue 18).
 * The items are written with the LOW-LEVEL client, attribute by attribute, as something other
 * than portsnare's repository would write them: the forged plane report of the review (a report
 * key carrying `activeKey = ACTIVE`, `target = 32.0.0.0/3` and a one-year `expiresAt`), a block
 * record wider than /16, and a block record whose `target` is not the one its key names. The
 * REAL enforce handler then runs against dynalite and the EC2 and WAFv2 wire fakes; what the
 * ACLs and IP sets hold afterwards is read from the fakes, not from the code under test.
 */
import { GetItemCommand, PutItemCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import type { SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHandler as createEnforce } from '../../lambda/enforce/handler';
import { NaclAdapter } from '../../aws/nacl-adapter';
import { PlaneReports } from '../../aws/plane-reports';
import { BlockRepository } from '../../aws/repository';
import { UpdatePacer, WafAdapter } from '../../aws/waf-adapter';
import { SimClock } from '../fakes/clock';
import { FakeEc2 } from '../fakes/ec2';
import { RecordingObservability } from '../fakes/observability';
import { ACL_A, ACL_B, SET_V4, SET_V6, testSettings } from '../fakes/world';
import { type LocalTable, startDynalite } from './dynalite';
import { Ec2Server } from './ec2-server';
import { WafServer } from './wafv2-server';

const YEAR = 365 * 86400_000;
const clock = new SimClock();
const obs = new RecordingObservability();
// the default policy: nothing wider than /16 (IPv4) or /48 (IPv6)
const settings = testSettings();
const ec2 = new Ec2Server(new FakeEc2(settings.nacl.quotaPerDirection, () => 0.5));
const waf = new WafServer(clock, () => 0.5);
let table: LocalTable;
let enforce: (event: SQSEvent) => Promise<unknown>;
const foreign: Array<{ pk: unknown; sk: unknown }> = [];

const S = (s: string): AttributeValue => ({ S: s });
const N = (n: number): AttributeValue => ({ N: String(n) });

/** An item with every field of a block record, active for a year, under the key given. */
async function put(pk: string, sk: string, target: string): Promise<void> {
  const now = clock.now();
  await table.raw.send(
    new PutItemCommand({
      TableName: table.tableName,
      Item: {
        pk: S(pk),
        sk: S(sk),
        activeKey: S('ACTIVE'),
        expiresAt: N(now + YEAR),
        target: S(target),
        family: S(target.includes(':') ? 'ipv6' : 'ipv4'),
        reason: S('manual'),
        firstSeen: N(now),
        lastSeen: N(now),
        hitCount: N(1),
        offences: N(1),
        blockedAt: N(now),
        active: { BOOL: true },
        eventIds: { L: [] },
        sensors: { L: [] },
        version: N(1),
      },
    }),
  );
}

function reconcile(): Promise<unknown> {
  return enforce({ Records: [{ messageId: 'm-1', receiptHandle: 'h-1', body: JSON.stringify({ kind: 'reconcile' }) }] } as unknown as SQSEvent);
}

/** What the ACLs hold as deny entries in portsnare's rule range, and what the IP sets hold. */
function enforced(): { acls: string[]; v4: string[]; v6: string[] } {
  const acls = [ACL_A, ACL_B].flatMap((aclId) =>
    ec2.ec2
      .entries(aclId)
      .filter((e) => e.RuleAction === 'deny' && e.RuleNumber! >= 10 && e.RuleNumber! <= 60)
      .map((e) => `${aclId} ${e.Egress ? 'egress' : 'ingress'} ${e.CidrBlock ?? e.Ipv6CidrBlock}`),
  );
  return { acls: acls.sort(), v4: [...waf.waf.addresses(SET_V4)].sort(), v6: [...waf.waf.addresses(SET_V6)].sort() };
}

beforeAll(async () => {
  table = await startDynalite();
  for (const aclId of settings.nacl.aclIds) ec2.ec2.addAcl(aclId, { ipv6: true });
  for (const ref of settings.waf.sets) waf.waf.addSet(ref);
  await ec2.start();
  await waf.start();
  const repo = new BlockRepository(table.doc, table.tableName, { onForeignItem: (key) => foreign.push(key) });
  const nacl = new NaclAdapter(ec2.client(2), clock, obs, () => 0.5);
  const wafAdapter = new WafAdapter({ REGIONAL: waf.client(2) }, clock, obs, new UpdatePacer(), () => 0.5);
  enforce = createEnforce({ repo, nacl, waf: wafAdapter, settings, obs, clock }) as (event: SQSEvent) => Promise<unknown>;
});
afterAll(async () => {
  await ec2.stop();
  await waf.stop();
  await table?.stop();
});

describe('enforce takes only block records within the widest prefix as desired state', () => {
  it('ignores a forged plane report on the active index, refuses a /3, ignores a record whose target is not its key\'s, and enforces the one real block', async () => {
    // the review's forged item: a plane's report key, with the fields of an active block
    await put('PLANE#222222222222/eu-west-1', 'REPORT', '32.0.0.0/3');
    // a block record, keyed as one, but wider than the policy allows (/16)
    await put('BLOCK#64.0.0.0/3', 'STATE', '64.0.0.0/3');
    // a block record whose target is not the one its key names
    await put('BLOCK#203.0.113.50', 'STATE', '198.51.100.9');
    // a history row of a target, with an activeKey it should never have
    await put('BLOCK#203.0.113.51', 'HIST#2026-11-21T10:00:00.000Z#block', '203.0.113.51');
    // the one real block (the positive control: the run enforces something)
    await put('BLOCK#203.0.113.7', 'STATE', '203.0.113.7');

    await reconcile();

    expect(enforced()).toEqual({
      acls: [`${ACL_A} ingress 203.0.113.7/32`, `${ACL_B} ingress 203.0.113.7/32`],
      v4: ['203.0.113.7/32'],
      v6: [],
    });
    expect(foreign.map((k) => `${String(k.pk)} ${String(k.sk)}`).sort()).toEqual(
      ['BLOCK#203.0.113.50 STATE', 'BLOCK#203.0.113.51 HIST#2026-11-21T10:00:00.000Z#block', 'PLANE#222222222222/eu-west-1 REPORT'].sort(),
    );
  });

  it('takes a too-wide address out of an IP set it is in (a console edit, or a version that enforced it)', async () => {
    waf.waf.consoleEdit(SET_V4, (list) => [...list, '64.0.0.0/3']);
    await reconcile();
    expect(enforced().v4).toEqual(['203.0.113.7/32']);
  });
});

describe('a plane whose reads of the decision table fail', () => {
  it('reports the run as not converged, naming the desired state as the failed point, rather than staying silent and healthy', async () => {
    const reportsTable = await table.addTable('plane-reports');
    const plane = { id: '222222222222/eu-west-1', reports: new PlaneReports(table.doc, reportsTable) };
    // the decision table cannot be read (deleted, or its policy refuses): the Query fails
    const repo = new BlockRepository(table.doc, 'no-such-table');
    const nacl = new NaclAdapter(ec2.client(2), clock, obs, () => 0.5);
    const wafAdapter = new WafAdapter({ REGIONAL: waf.client(2) }, clock, obs, new UpdatePacer(), () => 0.5);
    const failing = createEnforce({ repo, nacl, waf: wafAdapter, settings, obs, clock, plane }) as (event: SQSEvent) => Promise<unknown>;
    await expect(failing({ Records: [{ messageId: 'm-2', receiptHandle: 'h-2', body: JSON.stringify({ kind: 'reconcile' }) }] } as unknown as SQSEvent)).rejects.toThrow();
    const out = await table.raw.send(new GetItemCommand({ TableName: reportsTable, Key: { pk: S('PLANE#222222222222/eu-west-1'), sk: S('REPORT') }, ConsistentRead: true }));
    expect(out.Item?.converged).toEqual({ BOOL: false });
    expect(out.Item?.failures).toEqual({ L: [{ S: 'table:desired-state' }] });
    expect(out.Item?.lastRunAt).toEqual(N(clock.now()));
  });
});
