import type { SQSEvent } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { createHandler, LOOKAHEAD_MS } from '../../lambda/expiry/handler';
import { BACKFILL_SETTLE_MS } from '../../aws/repository';
import { EnforceQueue } from '../../lambda/shared/queue';
import { TimerQueue } from '../../lambda/shared/timer-queue';
import { FakeTimerSqs } from '../fakes/sqs';
import { World } from '../fakes/world';

/** The expiry function as deployed: a world's repository and enforce queue, and the timer queue (a standard queue fake). */
function withTimers(world: World) {
  const timers = new FakeTimerSqs(world.clock);
  const expiry = createHandler({ repo: world.repo, queue: new EnforceQueue(world.sqs.client, world.sqs.queueUrl), obs: world.obs, clock: world.clock, timers: new TimerQueue(timers.client, timers.queueUrl) });
  return { timers, expiry };
}
const sentBodies = (world: World) => world.sqs.mock.commandCalls(SendMessageCommand).map((c) => JSON.parse(c.args[0].input.MessageBody ?? '{}') as { kind: string; notBefore: number });
const expiresAtOf = (world: World, address: string) => Number(world.ddb.item(`BLOCK#${address}`, 'STATE')?.expiresAt);

describe('expiry handler', () => {
  it('lifts exactly the records whose time is up, keeps them as history with a TTL, and wakes enforce when it lifted any', async () => {
    const world = new World();
    await world.decide(world.scanEvent('203.0.113.1'));
    world.clock.advance(30 * 60_000);
    await world.decide(world.scanEvent('203.0.113.2'));
    world.clock.advance(30 * 60_000); // the first is now exactly at its expiry, the second half-way
    await expect(world.expiry()).resolves.toEqual({ lifted: 1, timers: 0 });
    expect(world.ddb.item('BLOCK#203.0.113.1', 'STATE')).toMatchObject({ active: false, liftedBy: 'expiry', ttl: expect.any(Number) });
    expect(world.ddb.item('BLOCK#203.0.113.1', 'STATE')?.activeKey).toBeUndefined();
    expect(world.ddb.item('BLOCK#203.0.113.2', 'STATE')).toMatchObject({ active: true, activeKey: 'ACTIVE' });
    const history = [...world.ddb.items.values()].filter((i) => String(i.pk) === 'BLOCK#203.0.113.1' && String(i.sk).startsWith('HIST#'));
    expect(history.map((h) => h.action)).toEqual(['block', 'expire']);
    const messages = world.sqs.calls.SendMessage;
    await world.expiry(); // nothing more is due: no wake-up
    expect(world.sqs.calls.SendMessage).toBe(messages);
    world.clock.advance(30 * 60_000);
    await expect(world.expiry()).resolves.toEqual({ lifted: 1, timers: 0 });
    expect(world.sqs.calls.SendMessage).toBe(messages + 1);
  });

  it('does not lift a record that decide renewed meanwhile (the version moved)', async () => {
    const world = new World();
    await world.decide(world.scanEvent('203.0.113.3'));
    world.clock.advance(3600_000);
    const original = world.ddb.client.send.bind(world.ddb.client);
    let renewed = false;
    world.ddb.client.send = (async (command: { constructor: { name: string } }, ...rest: unknown[]) => {
      if (!renewed && command.constructor.name === 'PutCommand') {
        renewed = true;
        world.ddb.client.send = original;
        await world.decide(world.scanEvent('203.0.113.3')); // a new offence between the query and the lift
      }
      return (original as (...a: unknown[]) => Promise<unknown>)(command, ...rest);
    }) as typeof world.ddb.client.send;
    await expect(world.expiry()).resolves.toEqual({ lifted: 0, timers: 0 });
    expect(world.ddb.item('BLOCK#203.0.113.3', 'STATE')).toMatchObject({ active: true, offences: 2 });
  });

  it('a block expiring 100 s after a tick gets a timer of 100 s, and that timer lifts it', async () => {
    const world = new World();
    const { timers, expiry } = withTimers(world);
    await world.decide(world.scanEvent('203.0.113.4'));
    world.clock.set(expiresAtOf(world, '203.0.113.4') - 100_000);
    const wakeUps = world.sqs.calls.SendMessage;
    await expect(expiry({})).resolves.toEqual({ lifted: 0, timers: 1 });
    expect(timers.messages.map((m) => m.delaySeconds)).toEqual([100]);
    expect(world.sqs.calls.SendMessage).toBe(wakeUps); // nothing due yet: no enforce wake-up
    expect(timers.receive()).toBeUndefined(); // invisible until its delay is over
    world.clock.advance(100_000);
    const event = timers.receive();
    expect(event?.Records).toHaveLength(1);
    await expect(expiry(event)).resolves.toEqual({ lifted: 1, timers: 0 });
    expect(world.ddb.item('BLOCK#203.0.113.4', 'STATE')).toMatchObject({ active: false, liftedBy: 'expiry' });
    expect(world.sqs.calls.SendMessage).toBe(wakeUps + 1); // enforce woken to take it out of the ACLs and IP sets
  });

  it('a timer that finds nothing due sends nothing and lifts nothing (a duplicate, or a record lifted or renewed meanwhile)', async () => {
    const world = new World();
    const { timers, expiry } = withTimers(world);
    await world.decide(world.scanEvent('203.0.113.5'));
    world.clock.set(expiresAtOf(world, '203.0.113.5') - 30_000);
    await expiry({});
    world.clock.advance(30_000);
    const timer = timers.receive()!;
    await expect(expiry(timer)).resolves.toEqual({ lifted: 1, timers: 0 });
    const wakeUps = world.sqs.calls.SendMessage;
    const batches = timers.calls.SendMessageBatch;
    await expect(expiry(timer)).resolves.toEqual({ lifted: 0, timers: 0 }); // the same timer again
    expect(world.sqs.calls.SendMessage).toBe(wakeUps);
    expect(timers.calls.SendMessageBatch).toBe(batches);
    expect(world.ddb.item('BLOCK#203.0.113.5', 'STATE')).toMatchObject({ active: false });
  });

  it('one timer per distinct expiry second within the lookahead, ten to a batch; none beyond it', async () => {
    const world = new World();
    const { timers, expiry } = withTimers(world);
    const addresses = Array.from({ length: 12 }, (_, i) => `203.0.113.${20 + i}`);
    for (const address of addresses) {
      await world.decide(world.scanEvent(address));
      world.clock.advance(10_000); // 12 records, 10 s apart
    }
    const first = expiresAtOf(world, addresses[0]!);
    // a tick before the first is within the lookahead sends none: a later tick sends it
    world.clock.set(first - LOOKAHEAD_MS - 1_000);
    await expect(expiry({})).resolves.toEqual({ lifted: 0, timers: 0 });
    expect(timers.calls.SendMessageBatch).toBe(0);
    world.clock.set(first - 1_000);
    await expect(expiry({})).resolves.toEqual({ lifted: 0, timers: 12 });
    expect(timers.messages.map((m) => m.delaySeconds)).toEqual([1, 11, 21, 31, 41, 51, 61, 71, 81, 91, 101, 111]);
    expect(timers.calls.SendMessageBatch).toBe(2);
    await expect(expiry({})).resolves.toEqual({ lifted: 0, timers: 12 }); // a second run at the same time: duplicates, harmless
    world.clock.advance(1_000);
    const event = timers.receive(10)!;
    expect(event.Records).toHaveLength(2); // the two timers for the first second
    await expect(expiry(event)).resolves.toEqual({ lifted: 1, timers: 11 });
  });

  it('a timer that cannot be sent is logged and counted, and the lifts stand', async () => {
    const world = new World();
    const { timers, expiry } = withTimers(world);
    await world.decide(world.scanEvent('203.0.113.6'));
    world.clock.advance(60_000);
    await world.decide(world.scanEvent('203.0.113.7'));
    world.clock.set(expiresAtOf(world, '203.0.113.6'));
    timers.failNext();
    await expect(expiry({})).resolves.toEqual({ lifted: 1, timers: 0 });
    expect(world.ddb.item('BLOCK#203.0.113.6', 'STATE')).toMatchObject({ active: false });
    expect(world.obs.metrics.get('ExpiryTimersUnsent')).toBe(1);
    expect(world.obs.lines.some((l) => l.level === 'error' && l.message === 'expiry timers not sent')).toBe(true);
    await expect(expiry({})).resolves.toEqual({ lifted: 0, timers: 1 }); // the next tick sends it
  });

  it('a malformed timer message is logged and dropped; the run goes on', async () => {
    const world = new World();
    const { expiry } = withTimers(world);
    const event: SQSEvent = { Records: [{ messageId: 'bad-1', body: '{"kind":"nope"}' }, { messageId: 'bad-2', body: 'not json' }] as SQSEvent['Records'] };
    await expect(expiry(event)).resolves.toEqual({ lifted: 0, timers: 0 });
    expect(world.obs.lines.filter((l) => l.level === 'warn' && l.message === 'not an expiry timer: dropped')).toHaveLength(2);
  });

  it('stamps records saved before the change log, and writes the marker only after an empty pass and, after the settle, another', async () => {
    const world = new World();
    await world.decide(world.scanEvent('203.0.113.40'));
    const now = world.clock.now();
    // a record as the code before the change log wrote it: on `active`, no chgKey
    await world.ddb.client.send(
      new PutCommand({
        TableName: world.ddb.tableName,
        Item: { pk: 'BLOCK#203.0.113.41', sk: 'STATE', target: '203.0.113.41', family: 'ipv4', reason: 'sensor', firstSeen: now - 9000, lastSeen: now - 5000, hitCount: 1, offences: 1, blockedAt: now - 7000, expiresAt: now + 3600_000, active: true, eventIds: [], sensors: [], version: 1, activeKey: 'ACTIVE' },
      }),
    );
    expect((await world.repo.listEnforced()).map((r) => r.target).sort()).toEqual(['203.0.113.40', '203.0.113.41']);
    await expect(world.expiry()).resolves.toEqual({ lifted: 0, timers: 0 });
    expect(world.ddb.item('BLOCK#203.0.113.41', 'STATE')).toMatchObject({ chgKey: 'A', chgAt: `${now - 5000}#203.0.113.41`, version: 1 });
    expect(world.ddb.item('META', 'CHANGES_BACKFILL')?.chgKey).toBeUndefined();
    await world.expiry(); // a pass that finds none: the settle starts
    expect(await world.repo.hasBackfillMarker()).toBe(false);
    world.clock.advance(BACKFILL_SETTLE_MS - 60_000);
    await world.expiry(); // still settling
    expect(await world.repo.hasBackfillMarker()).toBe(false);
    world.clock.advance(60_000);
    await world.expiry();
    expect(world.ddb.item('META', 'CHANGES_BACKFILL')).toMatchObject({ chgKey: 'M', chgAt: 'done' });
    expect(await world.repo.hasBackfillMarker()).toBe(true);
    expect(world.obs.lines.some((l) => l.message === 'change log backfill' && l.attributes.done === true)).toBe(true);
    // once the marker is seen, a run of the same container no longer reads the backfill's item
    const gets = world.ddb.calls.Get;
    await world.expiry();
    expect(world.ddb.calls.Get).toBe(gets);
    expect((await world.repo.listEnforced()).map((r) => r.target).sort()).toEqual(['203.0.113.40', '203.0.113.41']);
  });

  it('a backfill step that fails is logged and does not fail the run: the lifts stand, the next run resumes', async () => {
    const world = new World();
    await world.decide(world.scanEvent('203.0.113.42'));
    world.clock.set(expiresAtOf(world, '203.0.113.42'));
    const original = world.ddb.client.send.bind(world.ddb.client);
    world.ddb.client.send = (async (command: { constructor: { name: string } }, ...rest: unknown[]) => {
      if (command.constructor.name === 'GetCommand') {
        world.ddb.client.send = original;
        throw Object.assign(new Error('Rate of requests exceeds the allowed throughput.'), { name: 'ProvisionedThroughputExceededException' });
      }
      return (original as (...a: unknown[]) => Promise<unknown>)(command, ...rest);
    }) as typeof world.ddb.client.send;
    await expect(world.expiry()).resolves.toEqual({ lifted: 1, timers: 0 });
    expect(world.ddb.item('BLOCK#203.0.113.42', 'STATE')).toMatchObject({ active: false });
    expect(world.obs.lines.some((l) => l.level === 'error' && l.message === 'change log backfill step failed: the next run resumes it')).toBe(true);
    expect(world.ddb.item('META', 'CHANGES_BACKFILL')).toBeUndefined();
    await world.expiry();
    expect(world.ddb.item('META', 'CHANGES_BACKFILL')).toMatchObject({ emptySince: world.clock.now() });
  });

  it('backfill false: no step at all', async () => {
    const world = new World();
    const expiry = createHandler({ repo: world.repo, queue: new EnforceQueue(world.sqs.client, world.sqs.queueUrl), obs: world.obs, clock: world.clock, backfill: false });
    await expiry({});
    expect(world.ddb.item('META', 'CHANGES_BACKFILL')).toBeUndefined();
  });

  it('an expiry and the decisions of the same 2-s window are one wake-up (one enforce run), and lifts saved after that window wake the next one', async () => {
    const world = new World();
    await world.decide(world.scanEvent('203.0.113.60'));
    world.clock.set(Math.ceil((expiresAtOf(world, '203.0.113.60') + 1) / 4_000) * 4_000 + 100); // 100 ms into a window
    const sent = world.sqs.calls.SendMessage;
    const deduplicated = world.sqs.calls.deduplicated;
    await world.decide(world.scanEvent('198.51.100.60')); // a new block in the window: decide wakes enforce
    await expect(world.expiry()).resolves.toEqual({ lifted: 1, timers: 0 });
    expect(world.sqs.calls.SendMessage).toBe(sent + 2);
    expect(world.sqs.calls.deduplicated).toBe(deduplicated + 1); // the expiry's is the window's wake-up already sent
    const bodies = sentBodies(world);
    expect(bodies.at(-1)).toEqual({ kind: 'enforce', notBefore: world.clock.now() - 100 + 2_000 + 1_000 });

    // a run whose saves take past the window's end: the next window's wake-up too
    await world.decide(world.scanEvent('203.0.113.61'));
    world.clock.set(Math.ceil((expiresAtOf(world, '203.0.113.61') + 1) / 2_000) * 2_000 + 1_900); // 100 ms before a window ends
    const original = world.ddb.client.send.bind(world.ddb.client);
    world.ddb.client.send = (async (command: { constructor: { name: string } }, ...rest: unknown[]) => {
      if (command.constructor.name === 'PutCommand') world.clock.advance(300); // a slow save
      return (original as (...a: unknown[]) => Promise<unknown>)(command, ...rest);
    }) as typeof world.ddb.client.send;
    const before = world.sqs.calls.SendMessage;
    await expect(world.expiry()).resolves.toEqual({ lifted: 2, timers: 0 }); // 198.51.100.60 is due too
    world.ddb.client.send = original;
    expect(world.sqs.calls.SendMessage).toBe(before + 2);
    const windows = sentBodies(world).slice(-2).map((b) => b.notBefore);
    expect(windows[1]! - windows[0]!).toBe(2_000);
  });
});
