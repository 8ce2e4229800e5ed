/**
 * WafAdapter through the REAL WAFV2Client against test/wire/wafv2-server.ts: AWS JSON 1.1 on the
 * wire, the SDK's error classes and its own retries. The fake and the adapter share one simulated
 * clock, so the one-update-a-second rate and the pacer meet in simulated time. Expected lists are
 * literal.
 */
import type { WAFV2Client } from '@aws-sdk/client-wafv2';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { WafSetRef } from '../../core/settings';
import type { WafSetUpdate } from '../../core/waf';
import { UpdatePacer, WafAdapter } from '../../aws/waf-adapter';
import { SimClock } from '../fakes/clock';
import { RecordingObservability } from '../fakes/observability';
import { WafServer } from './wafv2-server';

const SET: WafSetRef = { scope: 'REGIONAL', family: 'ipv4', name: 'portsnare-v4-0', id: '11111111-1111-4111-8111-111111111111' };
const SET6: WafSetRef = { scope: 'REGIONAL', family: 'ipv6', name: 'portsnare-v6-0', id: '66666666-6666-4666-8666-666666666666' };

const update = (addresses: string[], added: string[], removed: string[] = [], ref: WafSetRef = SET): WafSetUpdate => ({ ref, addresses, added, removed });
const sorted = (list: string[]) => [...list].sort();

let clock: SimClock;
let server: WafServer;
let client: WAFV2Client;
let obs: RecordingObservability;
let adapter: WafAdapter;

beforeEach(async () => {
  clock = new SimClock();
  server = new WafServer(clock, () => 0.5);
  server.waf.addSet(SET, ['198.51.100.1/32']);
  server.waf.addSet(SET6);
  await server.start();
  client = server.client(2);
  obs = new RecordingObservability();
  adapter = new WafAdapter({ REGIONAL: client }, clock, obs, new UpdatePacer(), () => 0.5);
});
afterEach(async () => {
  client.destroy();
  await server.stop();
});

/** Reads the set, then writes `addresses` computed from what was read (as the enforcer does). */
async function readThenWrite(add: string[], remove: string[] = []): Promise<void> {
  const [read] = await adapter.read([SET]);
  const next = [...read!.addresses.filter((a) => !remove.includes(a)), ...add];
  await adapter.write(update(next, add, remove), read!.lockToken);
}

describe('read and write over the wire', () => {
  it('reads the list and its LockToken, writes the whole list under it', async () => {
    const [read] = await adapter.read([SET]);
    expect(read?.addresses).toEqual(['198.51.100.1/32']);
    expect(read?.lockToken).toMatch(/^token-/);
    await adapter.write(update(['198.51.100.1/32', '203.0.113.7/32'], ['203.0.113.7/32']), read!.lockToken);
    expect(server.waf.addresses(SET)).toEqual(['198.51.100.1/32', '203.0.113.7/32']);
    const sent = server.requests.find((r) => r.op === 'UpdateIPSet');
    expect(JSON.parse(sent!.body)).toEqual({ Name: SET.name, Scope: 'REGIONAL', Id: SET.id, Addresses: ['198.51.100.1/32', '203.0.113.7/32'], LockToken: read!.lockToken });
  });

  it('writes an IPv6 /64 (the prefix policy) into the IPv6 set as sent, and reads it back', async () => {
    const [read] = await adapter.read([SET6]);
    await adapter.write(update(['2001:db8:1:2::/64', '2001:db8:a:b::5/128'], ['2001:db8:1:2::/64', '2001:db8:a:b::5/128'], [], SET6), read!.lockToken);
    const sent = server.requests.find((r) => r.op === 'UpdateIPSet');
    expect(JSON.parse(sent!.body)).toMatchObject({ Id: SET6.id, Addresses: ['2001:db8:1:2::/64', '2001:db8:a:b::5/128'] });
    const [again] = await adapter.read([SET6]);
    expect(sorted([...again!.addresses])).toEqual(['2001:db8:1:2::/64', '2001:db8:a:b::5/128']);
  });

  it('paces updates of one scope a second apart, so the service never throttles them', async () => {
    await readThenWrite(['203.0.113.1/32']);
    await readThenWrite(['203.0.113.2/32']);
    await readThenWrite(['203.0.113.3/32']);
    expect(server.requests.filter((r) => r.op === 'UpdateIPSet').map((r) => r.status)).toEqual([200, 200, 200]);
    expect(sorted(server.waf.addresses(SET))).toEqual(['198.51.100.1/32', '203.0.113.1/32', '203.0.113.2/32', '203.0.113.3/32']);
  });
});

describe('WAFOptimisticLockException', () => {
  it('after a stale GetIPSet (old list, old token), writes the planned list under the fresh token: the set ends exactly as planned', async () => {
    await readThenWrite(['203.0.113.1/32']);
    clock.advance(5000);
    server.waf.staleNext(1);
    const [stale] = await adapter.read([SET]);
    expect(stale?.addresses).toEqual(['198.51.100.1/32']); // the read does not show 203.0.113.1
    // The planner's list is the whole desired state (core/waf.ts): 203.0.113.1 has expired meanwhile,
    // 203.0.113.2 is new. The stale read hid 203.0.113.1, so no "removed" names it; the list must win.
    await adapter.write(update(['198.51.100.1/32', '203.0.113.2/32'], ['203.0.113.2/32']), stale!.lockToken);
    expect(server.waf.addresses(SET)).toEqual(['198.51.100.1/32', '203.0.113.2/32']);
    expect(server.requests.filter((r) => r.op === 'UpdateIPSet').map((r) => r.status)).toEqual([200, 400, 200]);
    expect(obs.metric('LockRetries')).toBe(1);
  });

  it('after another writer changed the set, reads the new token and writes the planned list (the sets are portsnare’s own)', async () => {
    const [read] = await adapter.read([SET]);
    server.waf.consoleEdit(SET, (list) => [...list, '192.0.2.99/32']);
    clock.advance(5000);
    await adapter.write(update(['203.0.113.5/32'], ['203.0.113.5/32'], ['198.51.100.1/32']), read!.lockToken);
    expect(server.waf.addresses(SET)).toEqual(['203.0.113.5/32']);
  });

  it('stops without writing when the set already holds what we wanted', async () => {
    const [read] = await adapter.read([SET]);
    server.waf.consoleEdit(SET, (list) => [...list, '203.0.113.6/32']);
    await adapter.write(update(['198.51.100.1/32', '203.0.113.6/32'], ['203.0.113.6/32']), read!.lockToken);
    expect(server.requests.filter((r) => r.op === 'UpdateIPSet').map((r) => r.status)).toEqual([400]);
  });
});

describe('faults on the wire', () => {
  it('an update whose answer was lost: the SDK retries under the spent token, and the adapter finds the list already written', async () => {
    server.dropResponseNext('UpdateIPSet');
    await readThenWrite(['203.0.113.7/32']);
    expect(server.waf.addresses(SET)).toEqual(['198.51.100.1/32', '203.0.113.7/32']);
    const updates = server.requests.filter((r) => r.op === 'UpdateIPSet');
    expect(updates[0]).toMatchObject({ status: 200, dropped: true });
    expect(server.waf.calls.UpdateIPSetAccepted).toBe(1);
  });

  it('ThrottlingException on GetIPSet: retried by the SDK, then by the adapter, counted', async () => {
    server.throttleNext('GetIPSet', 3);
    const [read] = await adapter.read([SET]);
    expect(read?.addresses).toEqual(['198.51.100.1/32']);
    expect(server.requests.filter((r) => r.op === 'GetIPSet').map((r) => r.status)).toEqual([400, 400, 400, 200]);
    expect(obs.metric('Throttles')).toBe(1);
  });

  it('WAFInternalErrorException (HTTP 500) is retried by the SDK itself', async () => {
    server.waf.failNext('UpdateIPSet', 'WAFInternalErrorException');
    await readThenWrite(['203.0.113.8/32']);
    expect(server.requests.filter((r) => r.op === 'UpdateIPSet').map((r) => r.status)).toEqual([500, 200]);
    expect(server.waf.addresses(SET)).toEqual(['198.51.100.1/32', '203.0.113.8/32']);
  });

  it('a set deleted out of band: read logs and skips it, write fails at once with WAFNonexistentItemException', async () => {
    const [read] = await adapter.read([SET]);
    server.waf.deleteSet(SET);
    const sets = await adapter.read([SET, SET6]);
    expect(sets.map((s) => s.ref.name)).toEqual([SET6.name]);
    expect(obs.logged('configured WAF IP set does not exist; skipped')).toHaveLength(1);
    await expect(adapter.write(update(['203.0.113.9/32'], ['203.0.113.9/32']), read!.lockToken)).rejects.toMatchObject({ name: 'WAFNonexistentItemException' });
    expect(server.count('UpdateIPSet')).toBe(1);
  });

  it('WAFInvalidParameterException (a list WAF refuses) is thrown, not retried', async () => {
    const [read] = await adapter.read([SET]);
    await expect(adapter.write(update(['0.0.0.0/0'], ['0.0.0.0/0']), read!.lockToken)).rejects.toMatchObject({ name: 'WAFInvalidParameterException', $metadata: { httpStatusCode: 400 } });
    expect(server.count('UpdateIPSet')).toBe(1);
  });
});
