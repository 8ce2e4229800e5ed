/**
 * Timeouts on every AWS call (aws/clients/timeouts.ts): a call that never answers fails
 * that enforcement point with TimeoutError (transient), the other points are still enforced, and
 * each attempt's budget comes from the invocation's remaining time. The REAL EC2Client and
 * WAFV2Client against the wire fakes, whose `hangNext` accepts a request and never answers.
 */
import { EC2Client } from '@aws-sdk/client-ec2';
import type { Context } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BlockRecord } from '../../core/policy';
import { CALL_MARGIN_MS, callTimeoutMs, DeadlineHttpHandler, MAX_CALL_MS, MIN_CALL_MS } from '../../aws/clients/timeouts';
import { enforce } from '../../lambda/shared/enforcer';
import { instrument } from '../../lambda/shared/handler';
import { NaclAdapter } from '../../aws/nacl-adapter';
import { BlockRepository, PlacementLedger } from '../../aws/repository';
import { UpdatePacer, WafAdapter } from '../../aws/waf-adapter';
import { SimClock } from '../fakes/clock';
import { FakeEc2 } from '../fakes/ec2';
import { RecordingObservability } from '../fakes/observability';
import { ACL_A, ACL_B, SET_V4, testSettings } from '../fakes/world';
import { type LocalTable, startDynalite } from './dynalite';
import { Ec2Server } from './ec2-server';
import { WafServer } from './wafv2-server';

let db: LocalTable;
beforeAll(async () => {
  db = await startDynalite('timeouts');
});
afterAll(async () => {
  await db?.stop();
});

describe('the budget of one call', () => {
  it('is MAX_CALL_MS outside an invocation, and never runs past the deadline less the margin', () => {
    expect(callTimeoutMs(1_000, undefined)).toBe(MAX_CALL_MS);
    expect(callTimeoutMs(0, 60_000)).toBe(MAX_CALL_MS);
    expect(callTimeoutMs(0, CALL_MARGIN_MS + 1_500)).toBe(1_500);
    expect(callTimeoutMs(0, CALL_MARGIN_MS)).toBe(MIN_CALL_MS); // no time left: fail fast
  });

  it('is set by instrument from the Lambda context, and cleared after', async () => {
    const seen: number[] = [];
    const invoke = instrument(new RecordingObservability(), async () => {
      seen.push(callTimeoutMs());
    });
    await invoke({}, { getRemainingTimeInMillis: () => CALL_MARGIN_MS + 2_000 } as unknown as Context);
    expect(seen[0]).toBeGreaterThan(1_500);
    expect(seen[0]).toBeLessThanOrEqual(2_000);
    expect(callTimeoutMs()).toBe(MAX_CALL_MS);
  });
});

describe('a call that never answers', () => {
  it('fails its ACL with TimeoutError (transient); WAF and the other ACL are enforced', async () => {
    const clock = new SimClock();
    const obs = new RecordingObservability();
    const ec2 = new Ec2Server(new FakeEc2(20, () => 0.5));
    for (const acl of [ACL_A, ACL_B]) ec2.ec2.addAcl(acl, { ipv6: true });
    const waf = new WafServer(clock, () => 0.5);
    waf.waf.addSet(SET_V4);
    await ec2.start();
    await waf.start();
    const ec2Client = new EC2Client({ region: 'eu-west-1', endpoint: ec2.endpoint, credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'x' }, maxAttempts: 1, requestHandler: new DeadlineHttpHandler(() => 300) });
    const wafClient = waf.client(1);
    try {
      const table = await db.addTable('hung');
      const settings = testSettings({ nacl: { aclIds: [ACL_A, ACL_B], ruleRange: [10, 60], quotaPerDirection: 20 }, waf: { sets: [SET_V4] } });
      const repo = new BlockRepository(db.doc, table);
      const now = clock.now();
      const record: BlockRecord = { target: '203.0.113.7', family: 'ipv4', reason: 'manual', firstSeen: now, lastSeen: now, hitCount: 1, offences: 1, blockedAt: now, expiresAt: now + 3600_000, active: true, eventIds: [], sensors: [] };
      await repo.save(record, undefined, now);
      ec2.hangNext('DescribeNetworkAcls', 2); // the first read of ACL_A and its one retry
      const summary = await enforce(
        { repo, nacl: new NaclAdapter(ec2Client, clock, obs, () => 0.5, new PlacementLedger(db.doc, table), [10, 60]), waf: new WafAdapter({ REGIONAL: wafClient }, clock, obs, new UpdatePacer(), () => 0.5), settings, obs, clock },
        'enforce',
      );
      expect(summary.failures).toMatchObject([{ point: `nacl:${ACL_A}`, error: 'TimeoutError', transient: true }]);
      expect(summary.converged).toBe(false);
      expect([...waf.waf.addresses(SET_V4)]).toEqual(['203.0.113.7/32']);
      expect(ec2.ec2.entries(ACL_B).filter((e) => e.CidrBlock === '203.0.113.7/32').map((e) => e.RuleNumber)).toEqual([10]);
      expect(ec2.ec2.entries(ACL_A).some((e) => e.CidrBlock === '203.0.113.7/32')).toBe(false);
      expect(obs.metrics.get('CallRetries')).toBe(1);
    } finally {
      ec2Client.destroy();
      wafClient.destroy();
      await ec2.stop();
      await waf.stop();
    }
  });
});
