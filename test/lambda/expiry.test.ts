import type { SQSEvent } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { createHandler, LOOKAHEAD_MS } from '../../lambda/expiry/handler';
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
});
