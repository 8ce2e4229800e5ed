/**
 * Simulation (issue 21 item 1; core/policy.ts simulationOf, core/diff.ts desiredCandidates) on
 * the real engines: dynalite (the `changes` index and its projection, which must carry `reason`)
 * and the WAF and EC2 wire fakes behind the real SDK clients, through the real enforce run
 * (lambda/shared/enforcer.ts), its full and incremental paths alike. The expectations are what
 * AWS holds after each run: the IP sets' addresses and the ACL's portsnare entries.
 * - A GSI with projection INCLUDE returns only the projected attributes and the keys:
 *   https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html#GSI.Projections
 * - UpdateIPSet replaces a set's whole address list:
 *   https://docs.aws.amazon.com/waf/latest/APIReference/API_UpdateIPSet.html
 */
import { describe, expect, it } from 'vitest';
import type { BlockReason, BlockRecord } from '../../core/policy';
import type { PipelineSettings } from '../../core/settings';
import { enforce, type EnforceMode, newEnforcerState } from '../../lambda/shared/enforcer';
import { NaclAdapter } from '../../aws/nacl-adapter';
import { BlockRepository, PlacementLedger } from '../../aws/repository';
import { UpdatePacer, WafAdapter } from '../../aws/waf-adapter';
import { SimClock } from '../fakes/clock';
import { FakeEc2 } from '../fakes/ec2';
import { RecordingObservability } from '../fakes/observability';
import { ACL_A, SET_V4, SET_V6, testSettings } from '../fakes/world';
import { wireSuite } from './suite';
import { Ec2Server } from './ec2-server';
import { WafServer } from './wafv2-server';

const wire = wireSuite('simulation');

const HOUR = 3600_000;
type Simulation = { all?: boolean; inputs?: BlockReason[] };

async function plane(simulation: Simulation) {
  const clock = new SimClock();
  const obs = new RecordingObservability();
  const ec2 = new Ec2Server(new FakeEc2(20, () => 0.5));
  ec2.ec2.addAcl(ACL_A, { ipv6: true });
  await ec2.start();
  wire.track(ec2);
  const waf = new WafServer(clock, () => 0.5);
  for (const ref of [SET_V4, SET_V6]) waf.waf.addSet(ref);
  await waf.start();
  wire.track(waf);
  const table = await wire.nextTable('sim');
  const repo = new BlockRepository(wire.db.doc, table);
  const settingsWith = (s: Simulation): PipelineSettings =>
    testSettings({ nacl: { aclIds: [ACL_A], ruleRange: [10, 60], quotaPerDirection: 20 }, waf: { sets: [SET_V4, SET_V6] }, simulation: { all: s.all ?? false, inputs: s.inputs ?? [] } });
  const state = newEnforcerState();
  const deps = {
    repo,
    nacl: new NaclAdapter(ec2.client(1), clock, obs, () => 0.5, new PlacementLedger(wire.db.doc, table), [10, 60]),
    waf: new WafAdapter({ REGIONAL: waf.client(1) }, clock, obs, new UpdatePacer(), () => 0.5),
    settings: settingsWith(simulation),
    obs,
    clock,
    state,
  };
  return {
    clock,
    repo,
    state,
    run: (mode: EnforceMode = 'enforce') => enforce(deps, mode),
    /** the settings a redeploy gives the functions (the container may stay warm in a test) */
    simulate(s: Simulation): void {
      deps.settings = settingsWith(s);
    },
    /** a block decided at `at` from `reason`, lasting `ttl` */
    async block(target: string, reason: BlockReason, at = clock.now(), ttl = HOUR): Promise<void> {
      const stored = await repo.get(target);
      const record: BlockRecord = { target, family: target.includes(':') ? 'ipv6' : 'ipv4', reason, firstSeen: at, lastSeen: at, hitCount: 1, offences: 1, blockedAt: at, expiresAt: at + ttl, active: true, eventIds: [], sensors: [] };
      expect(await repo.save(record, stored?.version, at)).toBe(true);
    },
    v4: () => waf.waf.addresses(SET_V4).sort(),
    v6: () => waf.waf.addresses(SET_V6).sort(),
    acl: () =>
      ec2.ec2
        .entries(ACL_A)
        .filter((e) => !e.Egress && e.RuleNumber! >= 10 && e.RuleNumber! <= 60)
        .map((e) => e.CidrBlock ?? e.Ipv6CidrBlock)
        .sort(),
  };
}

describe('the changes index carries the reason', () => {
  it('listEnforced, changesSince and recentActive return each record with its reason', async () => {
    const p = await plane({});
    await p.block('203.0.113.1', 'sensor');
    await p.block('203.0.113.2', 'guardduty');
    const reasons = (records: ReadonlyArray<{ target: string; reason?: string }>) => Object.fromEntries(records.map((r) => [r.target, r.reason]));
    const expected = { '203.0.113.1': 'sensor', '203.0.113.2': 'guardduty' };
    expect(reasons(await p.repo.listEnforced())).toEqual(expected);
    expect(reasons(await p.repo.changesSince(p.clock.now() - 60_000, p.clock.now() + 1))).toEqual(expected);
    expect(reasons(await p.repo.recentActive(5))).toEqual(expected);
  });
});

describe('simulation of one input (inputs: ["sensor"])', () => {
  it('a sensor block is in no NACL and no IP set; a manual block is in both; full and incremental runs agree', async () => {
    const p = await plane({ inputs: ['sensor'] });
    await p.block('203.0.113.1', 'sensor');
    await p.block('2001:db8::1', 'sensor');
    await p.block('203.0.113.2', 'manual');
    expect(await p.run()).toMatchObject({ run: 'full', converged: true });
    expect(p.v4()).toEqual(['203.0.113.2/32']);
    expect(p.v6()).toEqual([]);
    expect(p.acl()).toEqual(['203.0.113.2/32']);

    p.clock.advance(3_000);
    await p.block('203.0.113.3', 'sensor');
    await p.block('203.0.113.4', 'flowlogs');
    expect(await p.run()).toMatchObject({ run: 'incremental', converged: true });
    expect(p.v4()).toEqual(['203.0.113.2/32', '203.0.113.4/32']);
    expect(p.acl()).toEqual(['203.0.113.2/32', '203.0.113.4/32']);

    // the reconcile (a full run) finds the same state and changes nothing
    p.clock.advance(3_000);
    expect(await p.run('reconcile')).toMatchObject({ run: 'full', changes: 0, converged: true });
    expect(p.v4()).toEqual(['203.0.113.2/32', '203.0.113.4/32']);
    expect(p.acl()).toEqual(['203.0.113.2/32', '203.0.113.4/32']);
  });

  it('a manual block of an address a sensor block simulated replaces it: the latest record decides', async () => {
    const p = await plane({ inputs: ['sensor'] });
    await p.block('203.0.113.1', 'sensor');
    await p.run();
    expect(p.v4()).toEqual([]);
    p.clock.advance(3_000);
    await p.block('203.0.113.1', 'manual');
    expect(await p.run()).toMatchObject({ run: 'incremental' });
    expect(p.v4()).toEqual(['203.0.113.1/32']);
    expect(p.acl()).toEqual(['203.0.113.1/32']);
  });
});

describe('simulation of the whole deployment (all)', () => {
  it('every block is in the IP sets (the rules count there) and in no NACL; full and incremental runs agree', async () => {
    const p = await plane({ all: true });
    await p.block('203.0.113.1', 'sensor');
    await p.block('2001:db8::1', 'manual');
    expect(await p.run()).toMatchObject({ run: 'full', converged: true });
    expect(p.v4()).toEqual(['203.0.113.1/32']);
    expect(p.v6()).toEqual(['2001:db8::1/128']);
    expect(p.acl()).toEqual([]);

    p.clock.advance(3_000);
    await p.block('203.0.113.2', 'guardduty');
    expect(await p.run()).toMatchObject({ run: 'incremental', converged: true });
    expect(p.v4()).toEqual(['203.0.113.1/32', '203.0.113.2/32']);
    expect(p.acl()).toEqual([]);
  });
});

describe('switching simulation off and on', () => {
  for (const path of ['enforce', 'reconcile'] as const) {
    it(`to enforce: the next ${path} run applies what is still active and nothing expired, everywhere`, async () => {
      const p = await plane({ inputs: ['sensor'] });
      await p.block('203.0.113.1', 'sensor'); // active for an hour
      await p.block('203.0.113.5', 'sensor', p.clock.now(), 60_000); // expires in a minute
      await p.block('203.0.113.2', 'manual');
      await p.run();
      expect(p.v4()).toEqual(['203.0.113.2/32']);
      p.clock.advance(120_000); // 203.0.113.5 has expired; the cursor is still young (warm container)

      p.simulate({});
      // a warm container's enforce run would be incremental: the changed settings make it full
      expect(await p.run(path)).toMatchObject({ run: 'full', converged: true, blocked: 1 });
      expect(p.v4()).toEqual(['203.0.113.1/32', '203.0.113.2/32']);
      expect(p.acl()).toEqual(['203.0.113.1/32', '203.0.113.2/32']);

      // and back: the simulated blocks are lifted from the points, the others stay
      p.clock.advance(3_000);
      p.simulate({ inputs: ['sensor'] });
      expect(await p.run(path)).toMatchObject({ run: 'full', converged: true, unblocked: 1 });
      expect(p.v4()).toEqual(['203.0.113.2/32']);
      expect(p.acl()).toEqual(['203.0.113.2/32']);

      // the settings unchanged since: the next enforce run is incremental again
      p.clock.advance(3_000);
      expect(await p.run()).toMatchObject({ run: 'incremental' });
    });
  }

  it('from all to enforce: the NACL entries appear on the next run, the IP sets keep their addresses', async () => {
    const p = await plane({ all: true });
    await p.block('203.0.113.1', 'sensor');
    await p.block('2001:db8::1', 'sensor');
    await p.run();
    expect(p.acl()).toEqual([]);
    p.clock.advance(3_000);
    p.simulate({});
    expect(await p.run()).toMatchObject({ run: 'full', converged: true });
    expect(p.v4()).toEqual(['203.0.113.1/32']);
    expect(p.v6()).toEqual(['2001:db8::1/128']);
    expect(p.acl()).toEqual(['2001:db8::1/128', '203.0.113.1/32']);
  });
});
