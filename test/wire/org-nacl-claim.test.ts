/**
 * A defect in aws/nacl-adapter.ts found by the organization property
 * (test/wire/org-convergence.test.ts, a plane back from an outage with stale ACL reads), reduced
 * to the adapter, the REAL EC2Client against test/wire/ec2-server.ts and the placement ledger on
 * dynalite. It failed on the adapter before the fix (now: a refused create puts the row back as it
 * was, and the ledger view shows the number as ours even when the read shows it empty).
 *
 * Our entry for 203.0.113.2 is at rule 10 (ledger: confirmed). Three reads in a row are stale
 * (DescribeNetworkAcls is eventually consistent and still shows the ACL before that entry), so
 * the planner twice asks to create 203.0.113.1 at the "free" rule 10. The first attempt claims
 * the number with `previous` = 203.0.113.2 ("until the create succeeds, either CIDR there is
 * ours") and gets NetworkAclEntryAlreadyExists. The second attempt finds its own pending claim
 * (cidr 203.0.113.1) and re-claims WITHOUT `previous`, because `held.cidr === change.cidr`; the
 * ledger no longer holds 203.0.113.2, so the entry is foreign from then on: never deleted, a block
 * that never expires (seen: the expired address still denied in that plane's ACL after every
 * other plane had lifted it, and every reconcile "quiet").
 * https://docs.aws.amazon.com/ec2/latest/devguide/eventual-consistency.html
 */
import type { EC2Client } from '@aws-sdk/client-ec2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NaclChange } from '../../core/nacl';
import { NaclAdapter } from '../../aws/nacl-adapter';
import { PlacementLedger } from '../../aws/repository';
import { SimClock } from '../fakes/clock';
import { FakeEc2 } from '../fakes/ec2';
import { RecordingObservability } from '../fakes/observability';
import { type LocalTable, startDynalite } from './dynalite';
import { Ec2Server } from './ec2-server';

const ACL = 'acl-0a1b2c3d4e5f60001';
const RANGE: [number, number] = [10, 60];
const create = (ruleNumber: number, address: string): NaclChange => ({ op: 'create', ruleNumber, cidr: `${address}/32`, family: 'ipv4', target: address });

let db: LocalTable;
let server: Ec2Server;
let client: EC2Client;

beforeAll(async () => {
  db = await startDynalite('org-nacl-claim');
  server = new Ec2Server(new FakeEc2(20));
  server.ec2.addAcl(ACL, { ipv6: true });
  await server.start();
  client = server.client(2);
});
afterAll(async () => {
  client.destroy();
  await server.stop();
  await db?.stop();
});

describe('a create refused twice on stale reads', () => {
  it('keeps the claim on the entry already at the number, so that entry stays ours', async () => {
    const ledger = new PlacementLedger(db.doc, db.tableName);
    const adapter = new NaclAdapter(client, new SimClock(), new RecordingObservability(), () => 0.5, ledger, RANGE);
    expect((await adapter.apply(ACL, [create(10, '203.0.113.2')])).applied).toHaveLength(1);

    // the next three reads show the ACL before 203.0.113.2's entry: the planner's read, the
    // adapter's check after NetworkAclEntryAlreadyExists, the re-plan's read
    server.ec2.staleNext(3);
    for (let pass = 0; pass < 2; pass++) {
      const [acl] = await adapter.describe([ACL]);
      // stale: the read shows rule 10 empty, but the ledger is the truth: rule 10 is ours (unseen)
      expect(acl!.entries.filter((e) => e.ruleNumber === 10)).toMatchObject([{ cidrBlock: '203.0.113.2/32', unseen: true }]);
      // an older plan that still asks for rule 10 is refused by EC2, and the ledger forgets nothing
      const result = await adapter.apply(ACL, [create(10, '203.0.113.1')]);
      expect(result.conflicts.map((c) => c.error)).toEqual(['NetworkAclEntryAlreadyExists']);
    }

    // A fresh read: 203.0.113.2 is at rule 10, and it is still this stack's entry.
    const [acl] = await adapter.describe([ACL]);
    const entry = acl!.entries.find((e) => e.ruleNumber === 10);
    expect(entry?.cidrBlock).toBe('203.0.113.2/32');
    expect(entry?.foreign).toBeUndefined();
  });
});
