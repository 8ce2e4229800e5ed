/**
 * Simulation on the host (issue 21 item 1, `enforce.nftables.simulate`): the local pipeline
 * decides and records as always and puts no nftables element for a simulated block; switching
 * back to enforce puts what is still active into the kernel at the next restore or reconcile, and
 * switching to simulation takes the elements it placed back out. The enforcer is an in-memory
 * kernel set (elements with a timeout); the real nftables is exercised by test/sensor/local/nft.test.ts.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ScanDetected } from '../../../core/event';
import { NeverBlockGuard } from '../../../core/guard';
import { PolicySettingsSchema, type SimulationSettings } from '../../../core/policy';
import { LocalPipeline, type Enforcer } from '../../../sensor/local/pipeline';
import { FileStore } from '../../../sensor/local/store';
import { agentSimulation, kernelSimulated, parseAgentConfig } from '../../../sensor/config';

/** The kernel's blocked sets, in memory: elements with an expiry, gone once it passes. */
class FakeEnforcer implements Enforcer {
  readonly elements = new Map<string, number>();
  failNext = false;
  ensured = 0;
  constructor(private readonly now: () => number) {}
  ensure(): Promise<void> {
    this.ensured++;
    return Promise.resolve();
  }
  block(target: string, expiresAt: number): Promise<void> {
    return this.blockMany([{ target, expiresAt }]);
  }
  blockMany(entries: ReadonlyArray<{ target: string; expiresAt: number }>): Promise<void> {
    if (this.failNext) {
      this.failNext = false;
      return Promise.reject(new Error('nft: Operation not permitted'));
    }
    for (const e of entries) if (e.expiresAt > this.now()) this.elements.set(e.target, e.expiresAt);
    return Promise.resolve();
  }
  unblock(target: string): Promise<void> {
    this.elements.delete(target);
    return Promise.resolve();
  }
  list(): Promise<Array<{ target: string; expiresAt: number }>> {
    return Promise.resolve([...this.elements].filter(([, at]) => at > this.now()).map(([target, expiresAt]) => ({ target, expiresAt })));
  }
}

const T0 = Date.parse('2026-11-21T10:00:00Z');
const TESTNET = ['198.51.100.0/24', '203.0.113.0/24', '2001:db8::/32'];

function event(attacker: string, handshake = true, overrides: Partial<ScanDetected> = {}): ScanDetected {
  return {
    version: 1,
    sensorId: 'host-1',
    attacker,
    probes: [{ protocol: 'tcp', port: 23, kind: handshake ? 'connect' : 'syn' }],
    probeCount: 4,
    handshake,
    firstSeen: new Date(T0).toISOString(),
    lastSeen: new Date(T0 + 250).toISOString(),
    ...overrides,
  };
}

describe('LocalPipeline in simulation', () => {
  let dir: string;
  let now: number;
  let store: FileStore;
  let enforcer: FakeEnforcer;
  let logs: object[];

  function pipeline(simulation: SimulationSettings | undefined, reconcileEveryMs = 30_000): LocalPipeline {
    const guard = NeverBlockGuard.from({ blockableSpecialCidrs: TESTNET, allowlist: ['203.0.113.10'] });
    return new LocalPipeline({ store, enforcer, policy: PolicySettingsSchema.parse({ ipv6BlockPrefix: 128 }), guard, logger: (l) => logs.push(l), now: () => now, reconcileEveryMs, ...(simulation ? { simulation } : {}) });
  }

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'portsnare-simulation-'));
    now = T0 + 1000;
    store = new FileStore(dir, { now: () => now });
    await store.load();
    enforcer = new FakeEnforcer(() => now);
    logs = [];
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('simulate true: a scanner and a manual block are recorded and in history, with no element; the log says simulated', async () => {
    const p = pipeline({ all: true, inputs: [] });
    expect((await p.handle(event('198.51.100.66'), 'ev-1')).action).toBe('block');
    expect((await p.block('198.51.100.7', { requestedBy: 'ops' })).action).toBe('block');
    expect(store.get('198.51.100.66')).toMatchObject({ active: true, reason: 'sensor', expiresAt: now + 3600_000 });
    expect(store.get('198.51.100.7')).toMatchObject({ active: true, reason: 'manual' });
    expect(p.history('198.51.100.66').map((h) => h.action)).toEqual(['block']);
    expect(enforcer.elements.size).toBe(0);
    expect(logs).toContainEqual(expect.objectContaining({ msg: 'blocked', target: '198.51.100.66', simulated: true }));
    // the periodic reconcile and a restore put nothing in either
    now += 60_000;
    await p.expire();
    await p.restore();
    expect(enforcer.elements.size).toBe(0);
  });

  it('simulate { inputs: [sensor] }: the scanner is recorded without an element, a manual block is enforced', async () => {
    const p = pipeline({ all: false, inputs: ['sensor'] });
    await p.handle(event('198.51.100.66'), 'ev-1');
    await p.block('198.51.100.7', { requestedBy: 'ops', ttlSeconds: 600 });
    expect(store.get('198.51.100.66')).toMatchObject({ active: true, reason: 'sensor' });
    expect([...enforcer.elements]).toEqual([['198.51.100.7', now + 600_000]]);
    expect(logs).not.toContainEqual(expect.objectContaining({ msg: 'blocked', target: '198.51.100.7', simulated: true }));
  });

  it('switching to enforce: the next restore puts what is still active into the kernel, nothing expired', async () => {
    const p = pipeline({ all: true, inputs: [] });
    await p.handle(event('198.51.100.1'), 'ev-1'); // an hour
    await p.block('198.51.100.2', { requestedBy: 'ops', ttlSeconds: 60 });
    now += 120_000; // 198.51.100.2 has expired
    expect(enforcer.elements.size).toBe(0);
    await pipeline(undefined).restore();
    expect([...enforcer.elements]).toEqual([['198.51.100.1', T0 + 1000 + 3600_000]]);
    expect(store.get('198.51.100.2')).toMatchObject({ active: false, liftedBy: 'expired' });
  });

  it('switching to enforce without a restart: the periodic reconcile puts the active blocks in', async () => {
    await pipeline({ all: true, inputs: [] }).handle(event('198.51.100.1'), 'ev-1');
    const p = pipeline(undefined, 10_000);
    now += 11_000;
    await p.expire();
    expect([...enforcer.elements]).toEqual([['198.51.100.1', T0 + 1000 + 3600_000]]);
  });

  it('switching to simulation takes out the elements placed for the simulated records, and only those', async () => {
    const p = pipeline(undefined);
    await p.handle(event('198.51.100.1'), 'ev-1');
    await p.block('198.51.100.2', { requestedBy: 'ops' });
    enforcer.elements.set('198.51.100.3', now + 30_000); // the kernel detector's own block: not ours
    expect([...enforcer.elements.keys()].sort()).toEqual(['198.51.100.1', '198.51.100.2', '198.51.100.3']);
    await pipeline({ all: false, inputs: ['sensor'] }).restore();
    expect([...enforcer.elements.keys()].sort()).toEqual(['198.51.100.2', '198.51.100.3']);
    // the record stays active in the store: simulation lifts nothing
    expect(store.get('198.51.100.1')).toMatchObject({ active: true });
  });
});

describe('enforce.nftables.simulate in the agent config', () => {
  const parse = (simulate: unknown) => parseAgentConfig({ enforce: { nftables: { enabled: true, simulate } } });

  it('true, false or { inputs } become core simulation settings; absent is off', () => {
    const settings = (simulate: unknown) => {
      const parsed = simulate === undefined ? parseAgentConfig({}) : parse(simulate);
      if (!parsed.ok) throw new Error(parsed.error);
      return [agentSimulation(parsed.value), kernelSimulated(parsed.value)];
    };
    expect(settings(undefined)).toEqual([{ all: false, inputs: [] }, false]);
    expect(settings(false)).toEqual([{ all: false, inputs: [] }, false]);
    expect(settings(true)).toEqual([{ all: true, inputs: [] }, true]);
    expect(settings({ inputs: ['sensor'] })).toEqual([{ all: false, inputs: ['sensor'] }, true]);
    expect(settings({ inputs: ['manual'] })).toEqual([{ all: false, inputs: ['manual'] }, false]);
  });

  it('a wrong value names the key and the value', () => {
    const error = (simulate: unknown) => {
      const parsed = parse(simulate);
      return parsed.ok ? 'accepted' : parsed.error;
    };
    expect(error('yes')).toBe('enforce.nftables.simulate: must be true, false or { "inputs": [...] } with inputs among sensor, manual, guardduty, flowlogs (got "yes")');
    expect(error({ inputs: ['sensors'] })).toBe(
      'enforce.nftables.simulate: must be true, false or { "inputs": [...] } with inputs among sensor, manual, guardduty, flowlogs (got {"inputs":["sensors"]})',
    );
    expect(error({ inputs: [] })).toBe('enforce.nftables.simulate.inputs: must name at least one input; true simulates every block (got [])');
  });
});
