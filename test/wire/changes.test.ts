/**
 * The change log (issue 20) against a real DynamoDB engine (dynalite) through the real Document
 * client: the `changes` index (sparse, INCLUDE projection), its partitions `A` and `L#<day>`, the
 * repository's changesSince / recentActive / listEnforced, and the backfill of records saved
 * before the stamp existed. Oracles read the table with the low-level client or are literal.
 * https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html#GSI.Projections (INCLUDE: keys and the listed attributes)
 * https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Query.FilterExpression.html (Limit counts before the filter)
 * https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_Query.html (ScanIndexForward)
 */
import { GetItemCommand, PutItemCommand, QueryCommand as RawQueryCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BlockRecord } from '../../core/policy';
import { BACKFILL_SETTLE_MS, BlockRepository } from '../../aws/repository';
import { type LocalTable, startDynalite } from './dynalite';

/** 2026-11-29T12:00:00Z */
const NOW = 1795953600000;
const MINUTE = 60_000;

function record(target: string, overrides: Partial<BlockRecord> = {}): BlockRecord {
  return {
    target,
    family: target.includes(':') ? 'ipv6' : 'ipv4',
    reason: 'sensor',
    firstSeen: NOW - 5000,
    lastSeen: NOW,
    hitCount: 3,
    offences: 1,
    blockedAt: NOW,
    expiresAt: NOW + 3600_000,
    active: true,
    eventIds: ['event-1'],
    sensors: ['sensor-a'],
    ...overrides,
  };
}

let table: LocalTable;
let tables = 0;
/** Query items the engine evaluated, per command, for the tests that count reads */
let scanned = 0;
/** An UpdateItem interceptor: runs once before the next UpdateItem reaches the engine. */
let beforeUpdate: (() => Promise<void>) | undefined;

beforeAll(async () => {
  table = await startDynalite();
  table.raw.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === 'UpdateItemCommand' && beforeUpdate) {
        const hook = beforeUpdate;
        beforeUpdate = undefined;
        await hook();
      }
      const result = await next(args);
      if (context.commandName === 'QueryCommand') scanned += Number((result.output as { ScannedCount?: number }).ScannedCount ?? 0);
      return result;
    },
    { step: 'initialize', name: 'changesTestHooks' },
  );
});
afterAll(async () => {
  await table?.stop();
});

/** A fresh table of the stack's schema, and a repository on it that records foreign items. */
async function fresh() {
  const name = await table.addTable(`changes-${++tables}`);
  const foreign: Array<{ pk: unknown; sk: unknown }> = [];
  return { name, foreign, repo: new BlockRepository(table.doc, name, { onForeignItem: (key) => foreign.push(key) }) };
}

async function rawState(name: string, target: string) {
  return (await table.raw.send(new GetItemCommand({ TableName: name, Key: { pk: { S: `BLOCK#${target}` }, sk: { S: 'STATE' } }, ConsistentRead: true }))).Item;
}

/** Every entry of one `changes` partition, straight from the engine: [chgAt, target]. */
async function rawPartition(name: string, chgKey: string): Promise<string[]> {
  const out = await table.raw.send(
    new RawQueryCommand({ TableName: name, IndexName: 'changes', KeyConditionExpression: 'chgKey = :k', ExpressionAttributeValues: { ':k': { S: chgKey } } }),
  );
  return (out.Items ?? []).map((item) => item.chgAt?.S ?? '?');
}

/** A record as the code before the change log wrote it: no chgKey, no chgAt. */
async function putLegacy(name: string, target: string, version: number, fields: { lastSeen: number; blockedAt: number; expiresAt: number }) {
  await table.raw.send(
    new PutItemCommand({
      TableName: name,
      Item: {
        pk: { S: `BLOCK#${target}` },
        sk: { S: 'STATE' },
        target: { S: target },
        family: { S: target.includes(':') ? 'ipv6' : 'ipv4' },
        reason: { S: 'sensor' },
        firstSeen: { N: String(fields.lastSeen) },
        lastSeen: { N: String(fields.lastSeen) },
        hitCount: { N: '1' },
        offences: { N: '1' },
        blockedAt: { N: String(fields.blockedAt) },
        expiresAt: { N: String(fields.expiresAt) },
        active: { BOOL: true },
        eventIds: { L: [] },
        sensors: { L: [] },
        version: { N: String(version) },
        activeKey: { S: 'ACTIVE' },
      },
    }),
  );
}

describe('every save stamps its last change', () => {
  it('an active record is in partition A, a lifted one in its UTC day, chgAt = 13-digit ms # target, and the index holds only the projection', async () => {
    const { name, repo } = await fresh();
    expect(await repo.save(record('198.51.100.1'), undefined, NOW)).toBe(true);
    expect(await rawState(name, '198.51.100.1')).toMatchObject({ chgKey: { S: 'A' }, chgAt: { S: '1795953600000#198.51.100.1' } });
    expect(await repo.save(record('198.51.100.1', { active: false, liftedBy: 'expiry' }), 1, NOW + 5000)).toBe(true);
    expect(await rawState(name, '198.51.100.1')).toMatchObject({ chgKey: { S: 'L#2026-11-29' }, chgAt: { S: '1795953605000#198.51.100.1' } });
    expect(await rawPartition(name, 'A')).toEqual([]);

    const out = await table.raw.send(
      new RawQueryCommand({ TableName: name, IndexName: 'changes', KeyConditionExpression: 'chgKey = :k', ExpressionAttributeValues: { ':k': { S: 'L#2026-11-29' } } }),
    );
    expect(Object.keys(out.Items?.[0] ?? {}).sort()).toEqual(['active', 'blockedAt', 'chgAt', 'chgKey', 'expiresAt', 'lastSeen', 'pk', 'reason', 'sk', 'target']);
  });

  it('a lastSeen ahead of now (a sensor clock ahead of ours) is the change time: never before the recency', async () => {
    const { name, repo } = await fresh();
    await repo.save(record('198.51.100.2', { lastSeen: NOW + 90_000 }), undefined, NOW);
    expect((await rawState(name, '198.51.100.2'))?.chgAt).toEqual({ S: '1795953690000#198.51.100.2' });
  });

  it('a record field named chgKey or chgAt is not written over the stamp', async () => {
    const { name, repo } = await fresh();
    await repo.save({ ...record('198.51.100.3'), chgKey: 'L#1999-01-01', chgAt: 'x' } as unknown as BlockRecord, undefined, NOW);
    expect(await rawState(name, '198.51.100.3')).toMatchObject({ chgKey: { S: 'A' }, chgAt: { S: '1795953600000#198.51.100.3' } });
  });
});

describe('changesSince', () => {
  it('returns every record changed after since, once, ascending, lifted ones with active false; not one changed at since or before', async () => {
    const { repo } = await fresh();
    await repo.save(record('203.0.113.1'), undefined, NOW - 2000); // before since
    await repo.save(record('203.0.113.2'), undefined, NOW); // at since: not after it
    await repo.save(record('203.0.113.3'), undefined, NOW + 1);
    await repo.save(record('203.0.113.4'), undefined, NOW + 3000);
    await repo.save(record('203.0.113.5'), undefined, NOW - 9000);
    await repo.save(record('203.0.113.5', { active: false, liftedBy: 'expiry' }), 1, NOW + 2000);
    await repo.save(record('2001:db8::7'), undefined, NOW + 2500);
    const changes = await repo.changesSince(NOW, NOW + 10_000);
    expect(changes.map((c) => [c.target, c.changedAt, c.active])).toEqual([
      ['203.0.113.3', NOW + 1, true],
      ['203.0.113.5', NOW + 2000, false],
      ['2001:db8::7', NOW + 2500, true],
      ['203.0.113.4', NOW + 3000, true],
    ]);
    expect(changes[0]).toEqual({ target: '203.0.113.3', lastSeen: NOW, blockedAt: NOW, expiresAt: NOW + 3600_000, active: true, reason: 'sensor', changedAt: NOW + 1 });
  });

  it('across a UTC midnight: the lifts of both days, none of the day before since', async () => {
    const { repo } = await fresh();
    const day1 = Date.UTC(2026, 10, 29, 23, 59, 59); // 1795996799000
    const day2 = Date.UTC(2026, 10, 30, 0, 0, 1); // 1795996801000
    for (const target of ['192.0.2.1', '192.0.2.2', '192.0.2.3', '192.0.2.4']) await repo.save(record(target), undefined, NOW);
    await repo.save(record('192.0.2.1', { active: false }), 1, day1);
    await repo.save(record('192.0.2.2', { active: false }), 1, day2);
    await repo.save(record('192.0.2.3', { active: false }), 1, Date.UTC(2026, 10, 28, 23, 0)); // the day before: long before since
    await repo.save(record('192.0.2.4', { lastSeen: day2 + 500 }), 1, day2 + 1000); // active again in day 2
    const since = Date.UTC(2026, 10, 29, 23, 59, 0);
    const changes = await repo.changesSince(since, Date.UTC(2026, 10, 30, 0, 1, 0));
    expect(changes.map((c) => [c.target, c.changedAt, c.active])).toEqual([
      ['192.0.2.1', 1795996799000, false],
      ['192.0.2.2', 1795996801000, false],
      ['192.0.2.4', 1795996802000, true],
    ]);
  });

  it('a lift stamped by a clock up to a minute ahead, past midnight, is still read before the reader reaches that day', async () => {
    const { repo } = await fresh();
    await repo.save(record('192.0.2.9'), undefined, NOW);
    await repo.save(record('192.0.2.9', { active: false }), 1, Date.UTC(2026, 10, 30, 0, 0, 20));
    const changes = await repo.changesSince(Date.UTC(2026, 10, 29, 23, 58), Date.UTC(2026, 10, 29, 23, 59, 40));
    expect(changes.map((c) => c.target)).toEqual(['192.0.2.9']);
  });

  it('refuses a span of more than a day, and a since or now that is not a time', async () => {
    const { repo } = await fresh();
    await expect(repo.changesSince(NOW - 86_400_001, NOW)).rejects.toThrow(/more than 86400000: do a full run/);
    await expect(repo.changesSince(NaN, NOW)).rejects.toThrow(/since NaN/);
    await expect(repo.changesSince(NOW - 86_400_000, NOW)).resolves.toEqual([]);
  });
});

describe('a record lifted and re-blocked moves between partitions', () => {
  it('one entry at a time: never both, never none; changesSince and listEnforced see it once', async () => {
    const { name, repo } = await fresh();
    const t = '198.51.100.40';
    await repo.save(record(t), undefined, NOW);
    await repo.save(record(t, { active: false, liftedBy: 'manual' }), 1, NOW + 1000);
    expect(await rawPartition(name, 'A')).toEqual([]);
    expect(await rawPartition(name, 'L#2026-11-29')).toEqual(['1795953601000#198.51.100.40']);
    expect(await repo.listEnforced()).toEqual([]);

    const nextDay = Date.UTC(2026, 10, 30, 1, 0, 0); // 1796000400000
    await repo.save(record(t, { lastSeen: nextDay, blockedAt: nextDay, expiresAt: nextDay + 3600_000, offences: 2 }), 2, nextDay);
    expect(await rawPartition(name, 'A')).toEqual(['1796000400000#198.51.100.40']);
    expect(await rawPartition(name, 'L#2026-11-29')).toEqual([]);
    expect(await rawPartition(name, 'L#2026-11-30')).toEqual([]);
    const changes = await repo.changesSince(NOW - 1, nextDay + 1);
    expect(changes).toEqual([{ target: t, lastSeen: nextDay, blockedAt: nextDay, expiresAt: nextDay + 3600_000, active: true, reason: 'sensor', changedAt: nextDay }]);
    expect(await repo.listEnforced()).toEqual([{ target: t, lastSeen: nextDay, blockedAt: nextDay, expiresAt: nextDay + 3600_000, active: true, reason: 'sensor' }]);

    await repo.save(record(t, { active: false, lastSeen: nextDay, blockedAt: nextDay, expiresAt: nextDay + 3600_000, offences: 2 }), 3, nextDay + 3600_000);
    expect(await rawPartition(name, 'A')).toEqual([]);
    expect(await rawPartition(name, 'L#2026-11-30')).toEqual(['1796004000000#198.51.100.40']);
    expect(await repo.listEnforced()).toEqual([]);
  });
});

describe('recentActive', () => {
  it('a hand-made case: the refresh with old activity is the newest change and not among the most recent', async () => {
    const { repo } = await fresh();
    const at = (s: number) => NOW + s * 1000;
    await repo.save(record('203.0.113.10', { lastSeen: at(100), blockedAt: at(100) }), undefined, at(100));
    await repo.save(record('203.0.113.11', { lastSeen: at(200), blockedAt: at(200) }), undefined, at(200));
    await repo.save(record('203.0.113.12', { lastSeen: at(300), blockedAt: at(300) }), undefined, at(300));
    await repo.save(record('203.0.113.13', { lastSeen: at(50), blockedAt: at(50) }), undefined, at(400)); // a manual note on an old block
    await repo.save(record('203.0.113.14', { lastSeen: at(250), blockedAt: at(10) }), undefined, at(450));
    await repo.save(record('2001:db8::1', { lastSeen: at(120), blockedAt: at(120) }), undefined, at(120));
    await repo.save(record('2001:db8::2', { lastSeen: at(20), blockedAt: at(20) }), undefined, at(500));
    await repo.save(record('2001:db8::3', { lastSeen: at(60), blockedAt: at(60) }), undefined, at(60));
    const recent = await repo.recentActive(2);
    expect(recent.map((r) => r.target)).toEqual(['203.0.113.12', '203.0.113.14', '2001:db8::1', '2001:db8::3']);
    // only the eligible count: here, not the IPv4 address .12 (say, expired but not yet lifted)
    expect((await repo.recentActive(2, (r) => r.target !== '203.0.113.12')).map((r) => r.target)).toEqual(['203.0.113.14', '203.0.113.11', '2001:db8::1', '2001:db8::3']);
    expect(await repo.recentActive(0)).toEqual([]);
    await expect(repo.recentActive(-1)).rejects.toThrow(/perFamily -1/);
  });

  it('exactly the N most recent per family on a seeded table (brute force over the inputs), reading far fewer than all', async () => {
    const { repo } = await fresh();
    let seed = 20;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648;
    };
    const inputs: Array<{ target: string; recency: number }> = [];
    for (let i = 0; i < 240; i++) {
      const target = i % 3 === 0 ? `2001:db8::${(i + 1).toString(16)}` : `198.51.100.${i % 250}`;
      if (inputs.some((x) => x.target === target)) continue;
      const lastSeen = NOW + Math.floor(random() * 3600) * 1000;
      const blockedAt = random() < 0.3 ? lastSeen + Math.floor(random() * 600) * 1000 : lastSeen - Math.floor(random() * 600) * 1000;
      // a third are refreshes: changed long after their activity (a note, an extended expiry)
      const changedAt = random() < 0.33 ? Math.max(lastSeen, blockedAt) + Math.floor(random() * 7200) * 1000 : Math.max(lastSeen, blockedAt);
      await repo.save(record(target, { lastSeen, blockedAt }), undefined, changedAt);
      inputs.push({ target, recency: Math.max(lastSeen, blockedAt) });
    }
    const expected = (family: 'v4' | 'v6', n: number) =>
      inputs
        .filter((x) => x.target.includes(':') === (family === 'v6'))
        .sort((a, b) => b.recency - a.recency || (a.target < b.target ? -1 : 1))
        .slice(0, n);
    for (const n of [1, 5, 20]) {
      scanned = 0;
      const recent = await repo.recentActive(n);
      const want = [...expected('v4', n), ...expected('v6', n)].sort((a, b) => b.recency - a.recency || (a.target < b.target ? -1 : 1));
      expect(recent.map((r) => r.target)).toEqual(want.map((x) => x.target));
      expect(scanned).toBeLessThan(inputs.length);
    }
    // with an eligibility rule: the n most recent of the eligible ones
    const eligible = (target: string) => !/[13579]$/.test(target);
    const wantEligible = [...expected('v4', 1000), ...expected('v6', 1000)].filter((x) => eligible(x.target));
    const topEligible = (v6: boolean) => wantEligible.filter((x) => x.target.includes(':') === v6).slice(0, 7);
    expect((await repo.recentActive(7, (r) => eligible(r.target))).map((r) => r.target)).toEqual(
      [...topEligible(false), ...topEligible(true)].sort((a, b) => b.recency - a.recency || (a.target < b.target ? -1 : 1)).map((x) => x.target),
    );
    // more than there are: every active record of each family
    expect((await repo.recentActive(1000)).length).toBe(inputs.length);
  });
});

describe('listEnforced and the backfill of records saved before the change log', () => {
  it('a legacy record is listed until the marker exists; the marker comes only after an empty pass and a settled second one', async () => {
    const { name, repo } = await fresh();
    await putLegacy(name, '203.0.113.50', 4, { lastSeen: NOW - 600_000, blockedAt: NOW - 900_000, expiresAt: NOW + 3600_000 });
    await repo.save(record('203.0.113.51'), undefined, NOW);
    const both = [
      { target: '203.0.113.50', lastSeen: NOW - 600_000, blockedAt: NOW - 900_000, expiresAt: NOW + 3600_000, active: true, reason: 'sensor' },
      { target: '203.0.113.51', lastSeen: NOW, blockedAt: NOW, expiresAt: NOW + 3600_000, active: true, reason: 'sensor' },
    ];
    const sorted = async () => (await repo.listEnforced()).sort((a, b) => (a.target < b.target ? -1 : 1));
    expect(await sorted()).toEqual(both);
    expect(await repo.hasBackfillMarker()).toBe(false);

    // pass 1 stamps it with its recency (it has not changed since), version untouched
    expect(await repo.backfillChanges(NOW)).toEqual({ done: false, found: 1, stamped: 1, passEnded: true });
    expect(await rawState(name, '203.0.113.50')).toMatchObject({ chgKey: { S: 'A' }, chgAt: { S: `${NOW - 600_000}#203.0.113.50` }, version: { N: '4' } });
    expect(await sorted()).toEqual(both);
    // pass 2 finds none: no marker yet, the settle starts
    expect(await repo.backfillChanges(NOW + MINUTE)).toEqual({ done: false, found: 0, stamped: 0, passEnded: true });
    expect(await repo.hasBackfillMarker()).toBe(false);
    // a writer of the old version saves meanwhile: the pass after the settle finds it
    await putLegacy(name, '203.0.113.52', 1, { lastSeen: NOW + 2 * MINUTE, blockedAt: NOW + 2 * MINUTE, expiresAt: NOW + 3600_000 });
    expect(await repo.backfillChanges(NOW + 3 * MINUTE)).toEqual({ done: false, found: 0, stamped: 0, passEnded: false });
    expect((await sorted()).map((r) => r.target)).toEqual(['203.0.113.50', '203.0.113.51', '203.0.113.52']);
    expect(await repo.backfillChanges(NOW + MINUTE + BACKFILL_SETTLE_MS)).toEqual({ done: false, found: 1, stamped: 1, passEnded: true });
    expect(await repo.backfillChanges(NOW + 2 * MINUTE + BACKFILL_SETTLE_MS)).toEqual({ done: false, found: 0, stamped: 0, passEnded: true });
    expect(await repo.hasBackfillMarker()).toBe(false);
    expect(await repo.backfillChanges(NOW + 3 * MINUTE + 2 * BACKFILL_SETTLE_MS)).toEqual({ done: true, found: 0, stamped: 0, passEnded: true });
    expect(await repo.hasBackfillMarker()).toBe(true);
    expect(await repo.backfillChanges(NOW + 3 * MINUTE + 3 * BACKFILL_SETTLE_MS)).toEqual({ done: true, found: 0, stamped: 0, passEnded: false });

    // the marker is on the changes index itself (chgKey M), not on `active`
    expect(await rawPartition(name, 'M')).toEqual(['done']);
    // once it exists, only the change log is read: an unstamped record written now is not seen
    // (the settle is what keeps a writer of the old version from doing this)
    await putLegacy(name, '203.0.113.53', 1, { lastSeen: NOW, blockedAt: NOW, expiresAt: NOW + 3600_000 });
    expect((await sorted()).map((r) => r.target)).toEqual(['203.0.113.50', '203.0.113.51', '203.0.113.52']);
  });

  it('a fresh table: the first run finds none, the marker comes after the settle', async () => {
    const { repo } = await fresh();
    expect(await repo.backfillChanges(NOW)).toEqual({ done: false, found: 0, stamped: 0, passEnded: true });
    expect(await repo.backfillChanges(NOW + BACKFILL_SETTLE_MS - 1)).toEqual({ done: false, found: 0, stamped: 0, passEnded: false });
    expect(await repo.backfillChanges(NOW + BACKFILL_SETTLE_MS)).toEqual({ done: true, found: 0, stamped: 0, passEnded: true });
    expect(await repo.hasBackfillMarker()).toBe(true);
  });

  it('a pass spans runs: the position is kept, the marker waits for the whole pass', async () => {
    const { name, repo } = await fresh();
    for (let i = 0; i < 7; i++) await putLegacy(name, `192.0.2.${60 + i}`, 1, { lastSeen: NOW, blockedAt: NOW, expiresAt: NOW + (i + 1) * MINUTE });
    const steps = [];
    for (let run = 0; run < 4; run++) steps.push(await repo.backfillChanges(NOW + run * MINUTE, 1, 2));
    expect(steps).toEqual([
      { done: false, found: 2, stamped: 2, passEnded: false },
      { done: false, found: 2, stamped: 2, passEnded: false },
      { done: false, found: 2, stamped: 2, passEnded: false },
      { done: false, found: 1, stamped: 1, passEnded: true },
    ]);
    const stamped = await Promise.all([60, 61, 62, 63, 64, 65, 66].map(async (i) => (await rawState(name, `192.0.2.${i}`))?.chgKey?.S));
    expect(stamped).toEqual(['A', 'A', 'A', 'A', 'A', 'A', 'A']);
    // the pass found some: the next pass (4 pages of 2) finds none and starts the settle
    expect(await repo.backfillChanges(NOW + 5 * MINUTE, 4, 2)).toEqual({ done: false, found: 0, stamped: 0, passEnded: true });
    expect(await repo.hasBackfillMarker()).toBe(false);
  });

  it('a save racing the backfill keeps its own, newer stamp; an old-version write racing it is stamped by the next pass with its new recency', async () => {
    const { name, repo } = await fresh();
    const t = '198.51.100.70';
    await putLegacy(name, t, 3, { lastSeen: NOW - 60_000, blockedAt: NOW - 60_000, expiresAt: NOW + 3600_000 });
    // between the backfill's read and its UpdateItem, decide saves a new offence (version 3 → 4)
    beforeUpdate = async () => {
      expect(await repo.save(record(t, { lastSeen: NOW + 30_000, offences: 2 }), 3, NOW + 31_000)).toBe(true);
    };
    expect(await repo.backfillChanges(NOW)).toEqual({ done: false, found: 1, stamped: 0, passEnded: true });
    expect(await rawState(name, t)).toMatchObject({ chgKey: { S: 'A' }, chgAt: { S: `${NOW + 31_000}#${t}` }, version: { N: '4' }, offences: { N: '2' } });

    const u = '198.51.100.71';
    await putLegacy(name, u, 1, { lastSeen: NOW - 60_000, blockedAt: NOW - 60_000, expiresAt: NOW + 3600_000 });
    beforeUpdate = async () => {
      await putLegacy(name, u, 2, { lastSeen: NOW + 45_000, blockedAt: NOW - 60_000, expiresAt: NOW + 7200_000 });
    };
    expect(await repo.backfillChanges(NOW + MINUTE)).toEqual({ done: false, found: 1, stamped: 0, passEnded: true });
    expect((await rawState(name, u))?.chgKey).toBeUndefined();
    expect(await repo.backfillChanges(NOW + 2 * MINUTE)).toEqual({ done: false, found: 1, stamped: 1, passEnded: true });
    expect(await rawState(name, u)).toMatchObject({ chgKey: { S: 'A' }, chgAt: { S: `${NOW + 45_000}#${u}` }, version: { N: '2' } });
  });

  it('a lift racing the backfill is not stamped back into A', async () => {
    const { name, repo } = await fresh();
    const t = '198.51.100.80';
    await putLegacy(name, t, 1, { lastSeen: NOW - 60_000, blockedAt: NOW - 60_000, expiresAt: NOW });
    beforeUpdate = async () => {
      expect(await repo.save(record(t, { lastSeen: NOW - 60_000, blockedAt: NOW - 60_000, expiresAt: NOW, active: false, liftedBy: 'expiry' }), 1, NOW)).toBe(true);
    };
    expect(await repo.backfillChanges(NOW)).toEqual({ done: false, found: 1, stamped: 0, passEnded: true });
    expect(await rawState(name, t)).toMatchObject({ chgKey: { S: 'L#2026-11-29' }, active: { BOOL: false } });
    expect(await rawPartition(name, 'A')).toEqual([]);
  });
});

describe('foreign items on the changes index are skipped', () => {
  it('not a block record, a chgAt naming another target, a projection that is not numbers, a fake marker', async () => {
    const { name, repo, foreign } = await fresh();
    await repo.save(record('203.0.113.90'), undefined, NOW + 10);
    const put = (item: Record<string, { S: string } | { N: string } | { BOOL: boolean }>) => table.raw.send(new PutItemCommand({ TableName: name, Item: item }));
    const fields = { lastSeen: { N: String(NOW) }, blockedAt: { N: String(NOW) }, expiresAt: { N: String(NOW + 3600_000) }, active: { BOOL: true } };
    // another kind of item with the index keys
    await put({ pk: { S: 'OTHER#1' }, sk: { S: 'STATE' }, target: { S: '203.0.113.91' }, chgKey: { S: 'A' }, chgAt: { S: `${NOW + 20}#203.0.113.91` }, ...fields });
    // a block record whose chgAt names another target
    await put({ pk: { S: 'BLOCK#203.0.113.92' }, sk: { S: 'STATE' }, target: { S: '203.0.113.92' }, chgKey: { S: 'A' }, chgAt: { S: `${NOW + 30}#10.0.0.1` }, ...fields });
    // a chgAt that is not 13 digits # target
    await put({ pk: { S: 'BLOCK#203.0.113.93' }, sk: { S: 'STATE' }, target: { S: '203.0.113.93' }, chgKey: { S: 'A' }, chgAt: { S: `zz#203.0.113.93` }, ...fields });
    // a lastSeen that is not a number (expiresAt cannot be anything else: it keys the `active` index)
    await put({ pk: { S: 'BLOCK#203.0.113.94' }, sk: { S: 'STATE' }, target: { S: '203.0.113.94' }, chgKey: { S: 'A' }, chgAt: { S: `${NOW + 40}#203.0.113.94` }, ...fields, lastSeen: { S: 'yesterday' } });
    // an item of another key with the marker's index keys
    await put({ pk: { S: 'BLOCK#x' }, sk: { S: 'NOTE' }, chgKey: { S: 'M' }, chgAt: { S: 'done' } });

    expect((await repo.changesSince(NOW, NOW + 1000)).map((c) => c.target)).toEqual(['203.0.113.90']);
    expect((await repo.recentActive(5)).map((c) => c.target)).toEqual(['203.0.113.90']);
    expect(await repo.hasBackfillMarker()).toBe(false);
    // the legacy read (marker absent) skips foreign items on `active` too: none here have activeKey
    expect((await repo.listEnforced()).map((c) => c.target)).toEqual(['203.0.113.90']);
    expect(foreign.filter((k) => k.pk !== 'BLOCK#203.0.113.90').map((k) => k.pk).sort()).toEqual(
      ['BLOCK#203.0.113.92', 'BLOCK#203.0.113.93', 'BLOCK#203.0.113.94', 'OTHER#1'].flatMap((pk) => [pk, pk, pk]).sort(),
    );
  });
});
