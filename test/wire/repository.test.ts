/**
 * BlockRepository against a real DynamoDB engine (dynalite) through the real Document client:
 * condition expressions, reserved words, the sparse index and its 1 MB pages, number limits and
 * the item size limit are DynamoDB's own here, not a model of them. Oracles read the table with
 * the low-level client (raw attribute values), never through the repository.
 * https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html (400 KB item, 1 MB query page)
 * https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ReservedWords.html
 */
import { GetItemCommand, PutItemCommand, QueryCommand as RawQueryCommand } from '@aws-sdk/client-dynamodb';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BlockRecord } from '../../core/policy';
import { BlockRepository, PlacementLedger } from '../../aws/repository';
import { type LocalTable, startDynalite } from './dynalite';

const NOW = Date.UTC(2026, 10, 29, 12, 0, 0);
const MAX = Number.MAX_SAFE_INTEGER;

function record(target: string, overrides: Partial<BlockRecord> = {}): BlockRecord {
  return {
    target,
    family: target.includes(':') ? 'ipv6' : 'ipv4',
    reason: 'scan',
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
  } as BlockRecord;
}

let table: LocalTable;
let repo: BlockRepository;
/** every expression sent to the engine, and the operations, as they went on the wire */
const sent: Array<{ command: string; expressions: string[] }> = [];

beforeAll(async () => {
  table = await startDynalite();
  repo = new BlockRepository(table.doc, table.tableName);
  table.raw.middlewareStack.add(
    (next, context) => async (args) => {
      const input = args.input as Record<string, unknown>;
      const expressions = ['ConditionExpression', 'KeyConditionExpression', 'UpdateExpression', 'FilterExpression', 'ProjectionExpression']
        .map((k) => input[k])
        .filter((v): v is string => typeof v === 'string');
      sent.push({ command: context.commandName ?? '?', expressions });
      return next(args);
    },
    { step: 'initialize', name: 'recordExpressions' },
  );
});
afterAll(async () => {
  await table?.stop();
});

async function rawState(target: string) {
  const out = await table.raw.send(new GetItemCommand({ TableName: table.tableName, Key: { pk: { S: `BLOCK#${target}` }, sk: { S: 'STATE' } }, ConsistentRead: true }));
  return out.Item;
}

describe('get and save with version conditions', () => {
  it('creates only when absent, then writes only over the version read', async () => {
    const target = '198.51.100.1';
    expect(await repo.get(target)).toBeUndefined();
    expect(await repo.save(record(target), undefined, NOW)).toBe(true);
    expect(await repo.save(record(target, { hitCount: 99 }), undefined, NOW)).toBe(false);

    const stored = await repo.get(target);
    expect(stored?.version).toBe(1);
    expect(stored?.record).toEqual(record(target));
    const raw = await rawState(target);
    expect(raw?.version).toEqual({ N: '1' });
    expect(raw?.activeKey).toEqual({ S: 'ACTIVE' });
    expect(raw?.ttl).toBeUndefined();

    expect(await repo.save(record(target, { hitCount: 4 }), 1, NOW)).toBe(true);
    expect(await repo.save(record(target, { hitCount: 5 }), 1, NOW)).toBe(false); // stale read
    expect((await rawState(target))?.hitCount).toEqual({ N: '4' });
  });

  it('keeps the decoy ports a record remembers (what the digest ranks ports by), and reads back none when none were written', async () => {
    const target = '198.51.100.9';
    await repo.save({ ...record(target), ports: [23, 445, 3389] }, undefined, NOW);
    expect((await rawState(target))?.ports).toEqual({ L: [{ N: '23' }, { N: '445' }, { N: '3389' }] });
    expect((await repo.get(target))?.record.ports).toEqual([23, 445, 3389]);
    await repo.save(record('198.51.100.99'), undefined, NOW);
    expect((await repo.get('198.51.100.99'))?.record).not.toHaveProperty('ports');
  });

  it('a lifted record leaves the index and gets a time to live; reactivating brings it back', async () => {
    const target = '198.51.100.2';
    await repo.save(record(target), undefined, NOW);
    expect(await repo.save(record(target, { active: false, liftedBy: 'operator' }), 1, NOW)).toBe(true);
    let raw = await rawState(target);
    expect(raw?.activeKey).toBeUndefined();
    expect(raw?.ttl).toEqual({ N: String(Math.floor(NOW / 1000) + 90 * 86400) });
    expect(raw?.liftedBy).toEqual({ S: 'operator' });
    expect(await repo.save(record(target), 2, NOW)).toBe(true);
    raw = await rawState(target);
    expect(raw?.activeKey).toEqual({ S: 'ACTIVE' });
    expect(raw?.ttl).toBeUndefined();
  });

  it('writes no undefined field and lets no stray property overwrite the key, version or index key', async () => {
    const target = '198.51.100.3';
    const sneaky = { ...record(target), note: undefined, pk: 'BLOCK#203.0.113.250', version: 77, activeKey: 'NOPE', ttl: 1 } as unknown as BlockRecord;
    expect(await repo.save(sneaky, undefined, NOW)).toBe(true);
    const raw = await rawState(target);
    expect(raw?.pk).toEqual({ S: `BLOCK#${target}` });
    expect(raw?.version).toEqual({ N: '1' });
    expect(raw?.activeKey).toEqual({ S: 'ACTIVE' });
    expect(raw && 'note' in raw).toBe(false);
    expect(raw && 'ttl' in raw).toBe(false);
    // lifted: no stray index key keeps it on the `active` index
    expect(await repo.save({ ...sneaky, active: false }, 1, NOW)).toBe(true);
    expect((await rawState(target))?.activeKey).toBeUndefined();
  });
});

describe('concurrent saves', () => {
  it('of a new record: exactly one creates it', async () => {
    const target = '198.51.100.10';
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => repo.save(record(target, { hitCount: i + 1 }), undefined, NOW)));
    expect(results.filter(Boolean)).toHaveLength(1);
    const winner = results.indexOf(true) + 1;
    expect((await rawState(target))?.hitCount).toEqual({ N: String(winner) });
  });

  it('over the same version: exactly one wins, and the winner’s write is the one stored', async () => {
    const target = '198.51.100.11';
    await repo.save(record(target), undefined, NOW);
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => repo.save(record(target, { hitCount: 100 + i }), 1, NOW)));
    expect(results.filter(Boolean)).toHaveLength(1);
    const raw = await rawState(target);
    expect(raw?.version).toEqual({ N: '2' });
    expect(raw?.hitCount).toEqual({ N: String(100 + results.indexOf(true)) });
  });
});

describe('history', () => {
  it('appends entries under the target’s partition, with the record and the detail, kept 90 days', async () => {
    const target = '2001:db8::42';
    await repo.appendHistory(record(target), 'block', NOW, { eventId: 'event-1' });
    await repo.appendHistory(record(target, { active: false }), 'expire', NOW + 1000);
    const out = await table.raw.send(
      new RawQueryCommand({
        TableName: table.tableName,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :hist)',
        ExpressionAttributeValues: { ':pk': { S: `BLOCK#${target}` }, ':hist': { S: 'HIST#' } },
      }),
    );
    expect(out.Items?.map((i) => [i.sk?.S, i.action?.S])).toEqual([
      [`HIST#${new Date(NOW).toISOString()}#block`, 'block'],
      [`HIST#${new Date(NOW + 1000).toISOString()}#expire`, 'expire'],
    ]);
    expect(out.Items?.[0]?.eventId).toEqual({ S: 'event-1' });
    expect(out.Items?.[0]?.record?.M?.target).toEqual({ S: target });
    expect(out.Items?.[1]?.ttl).toEqual({ N: String(Math.floor((NOW + 1000) / 1000) + 90 * 86400) });
  });
});

describe('admitBurst', () => {
  it('admits `limit` blocks a minute, then refuses; the next minute starts over', async () => {
    const minute = Date.UTC(2026, 10, 29, 13, 0, 0);
    const results: boolean[] = [];
    for (let i = 0; i < 5; i++) results.push(await repo.admitBurst(minute + i * 1000, 3));
    expect(results).toEqual([true, true, true, false, false]);
    expect(await repo.admitBurst(minute + 60_000, 3)).toBe(true);
    const raw = await table.raw.send(new GetItemCommand({ TableName: table.tableName, Key: { pk: { S: 'BURST' }, sk: { S: `MINUTE#${minute}` } } }));
    expect(raw.Item?.count).toEqual({ N: '3' });
    expect(raw.Item?.ttl).toEqual({ N: String(minute / 1000 + 86400) });
  });

  it('admits exactly `limit` of many concurrent callers', async () => {
    const minute = Date.UTC(2026, 10, 29, 14, 0, 0);
    const results = await Promise.all(Array.from({ length: 20 }, () => repo.admitBurst(minute + 5, 7)));
    expect(results.filter(Boolean)).toHaveLength(7);
  });
});

describe('listActive', () => {
  it('follows LastEvaluatedKey across the index’s 1 MB pages, and skips lifted records', async () => {
    // ~6 KB each (20 event ids and 10 sensors of 256 characters): 300 of them span two pages.
    const long = (prefix: string, i: number) => `${prefix}-${i}-`.padEnd(256, 'x');
    const targets: string[] = [];
    for (let i = 0; i < 300; i++) targets.push(`2001:db8:1::${i.toString(16)}`);
    for (const [i, target] of targets.entries()) {
      const r = record(target, {
        expiresAt: NOW + 1000 * (i + 1),
        eventIds: Array.from({ length: 20 }, (_, k) => long(`e${i}`, k)),
        sensors: Array.from({ length: 10 }, (_, k) => long(`s${i}`, k)),
      });
      expect(await repo.save(r, undefined, NOW)).toBe(true);
    }
    await repo.save(record('2001:db8:2::1', { active: false }), undefined, NOW);
    const queriesBefore = sent.filter((s) => s.command === 'QueryCommand').length;
    const all = await repo.listActive();
    const pages = sent.filter((s) => s.command === 'QueryCommand').length - queriesBefore;
    expect(pages).toBeGreaterThanOrEqual(2);
    const listed = new Set(all.map((s) => s.record.target));
    for (const target of targets) expect(listed.has(target)).toBe(true);
    expect(listed.has('2001:db8:2::1')).toBe(false);
    // sorted by expiresAt (the index sort key)
    const mine = all.filter((s) => s.record.target.startsWith('2001:db8:1::')).map((s) => s.record.expiresAt);
    expect(mine).toEqual([...mine].sort((a, b) => a - b));

    const soon = await repo.listActive(NOW + 1000 * 150);
    const soonMine = soon.filter((s) => s.record.target.startsWith('2001:db8:1::'));
    expect(soonMine).toHaveLength(150);
    expect(soon.every((s) => s.record.expiresAt <= NOW + 1000 * 150)).toBe(true);
  });
});

describe('numbers past 2^53', () => {
  it('clamps counters to Number.MAX_SAFE_INTEGER when writing, so the record stays writable', async () => {
    const target = '192.0.2.53';
    expect(await repo.save(record(target, { hitCount: 2 ** 53 + 10, offences: Number.POSITIVE_INFINITY }), undefined, NOW)).toBe(true);
    const raw = await rawState(target);
    expect(raw?.hitCount).toEqual({ N: String(MAX) });
    expect(raw?.offences).toEqual({ N: String(MAX) });
    // one more hit on a saturated counter is still writable
    const stored = await repo.get(target);
    expect(await repo.save({ ...stored!.record, hitCount: stored!.record.hitCount + 1 }, stored!.version, NOW)).toBe(true);
    expect((await rawState(target))?.hitCount).toEqual({ N: String(MAX) });
    await repo.appendHistory({ ...stored!.record, hitCount: 2 ** 60 }, 'block', NOW);
  });

  it('reads a count written past 2^53 by something else as a plain, clamped number', async () => {
    const target = '192.0.2.54';
    await table.doc.send(new PutCommand({ TableName: table.tableName, Item: { pk: `BLOCK#${target}`, sk: 'STATE', ...record(target), version: 3, activeKey: 'ACTIVE' } }));
    await table.raw.send(
      new PutItemCommand({
        TableName: table.tableName,
        Item: { ...(await rawState(target))!, hitCount: { N: '123456789012345678901234567890' } },
      }),
    );
    const stored = await repo.get(target);
    expect(typeof stored?.record.hitCount).toBe('number');
    expect(stored?.record.hitCount).toBe(MAX);
    expect(stored?.version).toBe(3);
    expect(await repo.save({ ...stored!.record, hitCount: stored!.record.hitCount + 1 }, stored!.version, NOW)).toBe(true);
    const listed = (await repo.listActive()).find((s) => s.record.target === target);
    expect(listed?.record.hitCount).toBe(MAX);
  });

  it('refuses NaN with an error naming the field and the target', async () => {
    await expect(repo.save(record('192.0.2.55', { hitCount: Number.NaN }), undefined, NOW)).rejects.toThrow(/192\.0\.2\.55: hitCount is NaN/);
  });
});

describe('item size', () => {
  it('the largest record the pipeline makes (bounded event ids, sensors, note) fits, in state and in history', async () => {
    const long = (prefix: string, i: number) => `${prefix}-${i}-`.padEnd(256, 'x');
    const target = '2001:db8:ffff:ffff:ffff:ffff:ffff:fffe';
    const big = record(target, {
      eventIds: Array.from({ length: 20 }, (_, k) => long('event', k)),
      sensors: Array.from({ length: 10 }, (_, k) => long('sensor', k)),
      note: 'n'.repeat(256),
      liftedBy: 'l'.repeat(256),
    });
    expect(await repo.save(big, undefined, NOW)).toBe(true);
    await repo.appendHistory(big, 'block', NOW, { eventId: long('event', 0) });
    expect((await repo.get(target))?.record).toEqual(big);
  });

  it('DynamoDB itself refuses an item over 400 KB: the engine enforces the limit the bounds protect', async () => {
    await expect(repo.save(record('192.0.2.99', { note: 'x'.repeat(410 * 1024) }), undefined, NOW)).rejects.toMatchObject({ name: 'ValidationException' });
  });
});

describe('reserved words', () => {
  it('every attribute in every expression sent went through ExpressionAttributeNames', () => {
    const keywords = new Set(['AND', 'OR', 'NOT', 'BETWEEN', 'IN', 'SET', 'ADD', 'REMOVE', 'DELETE', 'attribute_exists', 'attribute_not_exists', 'attribute_type', 'begins_with', 'contains', 'size', 'if_not_exists', 'list_append']);
    const fromRepository = sent.filter((s) => s.command !== 'QueryCommand' || s.expressions.some((e) => e.includes('#activeKey')));
    expect(fromRepository.length).toBeGreaterThan(10);
    for (const { expressions } of fromRepository) {
      for (const expression of expressions) {
        const bare = expression.replace(/[#:][A-Za-z0-9_]+/g, '').match(/[A-Za-z_][A-Za-z0-9_]*/g) ?? [];
        for (const word of bare) expect(keywords.has(word), `bare attribute "${word}" in ${expression}`).toBe(true);
      }
    }
  });
});

describe('the NACL placement ledger on a real engine', () => {
  it('claims, confirms, frees, restores and withdraws rows; reads them back strongly consistent, in rule order', async () => {
    const ledger = new PlacementLedger(table.doc, table.tableName);
    const acl = 'acl-0a1b2c3d4e5f6a0b1';
    expect(await ledger.list(acl)).toEqual([]);
    expect(await ledger.isSetUp(acl)).toBe(false);
    await ledger.pending(acl, 12, '203.0.113.2/32');
    await ledger.pending(acl, 9, '203.0.113.9/32', ['203.0.113.8/32', '203.0.113.9/32', '203.0.113.7/32']);
    await ledger.confirm(acl, 12, '203.0.113.2/32');
    await ledger.free(acl, 100, '2001:db8::1/128', NOW + 600_000);
    expect(await ledger.list(acl)).toEqual([
      { ruleNumber: 9, cidr: '203.0.113.9/32', state: 'pending', maybe: ['203.0.113.8/32', '203.0.113.7/32'] },
      { ruleNumber: 12, cidr: '203.0.113.2/32', state: 'confirmed' },
      { ruleNumber: 100, cidr: '2001:db8::1/128', state: 'freed', heldUntil: NOW + 600_000 },
    ]);
    // withdraw only removes the pending claim it names
    await ledger.withdraw(acl, 12, '203.0.113.2/32');
    await ledger.withdraw(acl, 9, '203.0.113.7/32');
    expect((await ledger.list(acl)).map((p) => p.ruleNumber)).toEqual([9, 12, 100]);
    await ledger.withdraw(acl, 9, '203.0.113.9/32');
    await ledger.restore(acl, { ruleNumber: 12, cidr: '203.0.113.5/32', state: 'confirmed' });
    expect(await ledger.list(acl)).toEqual([
      { ruleNumber: 12, cidr: '203.0.113.5/32', state: 'confirmed' },
      { ruleNumber: 100, cidr: '2001:db8::1/128', state: 'freed', heldUntil: NOW + 600_000 },
    ]);
    await ledger.markSetUp(acl, NOW);
    expect(await ledger.isSetUp(acl)).toBe(true);
    // the rows never appear as block records
    expect((await repo.listActive()).some((r) => r.record.target.includes('acl-'))).toBe(false);
  });
});
