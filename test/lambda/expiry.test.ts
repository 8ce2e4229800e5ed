import { describe, expect, it } from 'vitest';
import { World } from '../fakes/world';

describe('expiry handler', () => {
  it('lifts exactly the records whose time is up, keeps them as history with a TTL, and wakes enforce when it lifted any', async () => {
    const world = new World();
    await world.decide(world.scanEvent('203.0.113.1'));
    world.clock.advance(30 * 60_000);
    await world.decide(world.scanEvent('203.0.113.2'));
    world.clock.advance(30 * 60_000); // the first is now exactly at its expiry, the second half-way
    await expect(world.expiry()).resolves.toEqual({ lifted: 1 });
    expect(world.ddb.item('BLOCK#203.0.113.1', 'STATE')).toMatchObject({ active: false, liftedBy: 'expiry', ttl: expect.any(Number) });
    expect(world.ddb.item('BLOCK#203.0.113.1', 'STATE')?.activeKey).toBeUndefined();
    expect(world.ddb.item('BLOCK#203.0.113.2', 'STATE')).toMatchObject({ active: true, activeKey: 'ACTIVE' });
    const history = [...world.ddb.items.values()].filter((i) => String(i.pk) === 'BLOCK#203.0.113.1' && String(i.sk).startsWith('HIST#'));
    expect(history.map((h) => h.action)).toEqual(['block', 'expire']);
    const messages = world.sqs.calls.SendMessage;
    await world.expiry(); // nothing more is due: no wake-up
    expect(world.sqs.calls.SendMessage).toBe(messages);
    world.clock.advance(30 * 60_000);
    await expect(world.expiry()).resolves.toEqual({ lifted: 1 });
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
    await expect(world.expiry()).resolves.toEqual({ lifted: 0 });
    expect(world.ddb.item('BLOCK#203.0.113.3', 'STATE')).toMatchObject({ active: true, offences: 2 });
  });
});
