import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ScanDetected } from '../../../core/event';
import { NeverBlockGuard } from '../../../core/guard';
import { PolicySettingsSchema, type PolicySettings } from '../../../core/policy';
import { LocalPipeline, type Enforcer } from '../../../sensor/local/pipeline';
import { FileStore } from '../../../sensor/local/store';

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

describe('LocalPipeline', () => {
  let dir: string;
  let now: number;
  let store: FileStore;
  let enforcer: FakeEnforcer;
  let logs: object[];

  function pipeline(policy: Partial<PolicySettings> = {}, guard = NeverBlockGuard.from({ blockableSpecialCidrs: TESTNET, allowlist: ['203.0.113.10'] })): LocalPipeline {
    return new LocalPipeline({ store, enforcer, policy: PolicySettingsSchema.parse(policy), guard, logger: (l) => logs.push(l), now: () => now });
  }

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'portsnare-pipeline-'));
    now = T0 + 1000;
    store = new FileStore(dir, { now: () => now });
    await store.load();
    enforcer = new FakeEnforcer(() => now);
    logs = [];
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('blocks a verified scanner in the store and the kernel with the base TTL', async () => {
    const decision = await pipeline().handle(event('198.51.100.66'), 'ev-1');
    expect(decision.action).toBe('block');
    expect(store.get('198.51.100.66')).toMatchObject({ active: true, offences: 1, expiresAt: now + 3600_000, hitCount: 4 });
    expect(enforcer.elements.get('198.51.100.66')).toBe(now + 3600_000);
  });

  it('ignores an unverified scanner while blockUnverified is off', async () => {
    const decision = await pipeline().handle(event('198.51.100.66', false), 'ev-1');
    expect(decision.action).toBe('ignore');
    expect(enforcer.elements.size).toBe(0);
  });

  it('records a block the kernel already made, with the kernel TTL, even when unverified', async () => {
    const decision = await pipeline().handle(event('198.51.100.66', false), 'ev-1', { kernelBlockTtlSeconds: 600 });
    expect(decision.action).toBe('block');
    expect(store.get('198.51.100.66')).toMatchObject({ active: true, expiresAt: now + 600_000 });
  });

  it('refuses a never-block target and takes a kernel block of it back out', async () => {
    enforcer.elements.set('203.0.113.10', now + 60_000);
    const decision = await pipeline().handle(event('203.0.113.10', false), 'ev-1', { kernelBlockTtlSeconds: 60 });
    expect(decision).toEqual({ action: 'refused', why: 'never blocked: allowlist 203.0.113.10/32' });
    expect(enforcer.elements.has('203.0.113.10')).toBe(false);
    expect(store.get('203.0.113.10')).toBeUndefined();
  });

  it('counts a redelivered event once and refreshes during an active block', async () => {
    const p = pipeline();
    await p.handle(event('198.51.100.66'), 'ev-1');
    expect((await p.handle(event('198.51.100.66'), 'ev-1')).action).toBe('ignore');
    now += 60_000;
    const refresh = await p.handle(event('198.51.100.66'), 'ev-2');
    expect(refresh.action).toBe('refresh');
    expect(store.get('198.51.100.66')).toMatchObject({ hitCount: 8, expiresAt: T0 + 1000 + 3600_000 });
  });

  it('escalates a repeat offence after expiry: base × factor', async () => {
    const p = pipeline();
    await p.handle(event('198.51.100.66'), 'ev-1');
    now += 3600_000 + 1;
    expect(await p.expire()).toBe(1);
    expect(enforcer.elements.has('198.51.100.66')).toBe(false);
    await p.handle(event('198.51.100.66'), 'ev-2');
    expect(store.get('198.51.100.66')).toMatchObject({ offences: 2, expiresAt: now + 7200_000 });
    expect(p.history('198.51.100.66').map((h) => h.action)).toEqual(['block', 'expire', 'block']);
  });

  it('opens the burst circuit breaker past the limit per minute', async () => {
    const p = pipeline({ burstLimitPerMinute: 2 });
    const actions = [];
    for (const last of [1, 2, 3]) actions.push((await p.handle(event(`198.51.100.${last}`), `ev-${last}`)).action);
    expect(actions).toEqual(['block', 'block', 'refused']);
    expect(p.breakerOpen()).toBe(true);
    now += 61_000;
    expect((await p.handle(event('198.51.100.3'), 'ev-4')).action).toBe('block');
  });

  it('blocks manually with a TTL and a CIDR, and refuses a protected range naming the rule', async () => {
    const p = pipeline();
    expect((await p.block('198.51.100.128/25', { ttlSeconds: 120, requestedBy: 'ops' })).action).toBe('block');
    expect(enforcer.elements.get('198.51.100.128/25')).toBe(now + 120_000);
    expect(await p.block('10.1.2.3', { requestedBy: 'ops' })).toEqual({ action: 'refused', why: 'never blocked: special-purpose range private 10.0.0.0/8' });
    expect(await p.block('203.0.113.0/24', { requestedBy: 'ops' })).toEqual({ action: 'refused', why: 'never blocked: allowlist 203.0.113.10/32' });
    expect((await p.block('not-an-ip', { requestedBy: 'ops' })).action).toBe('refused');
  });

  it('unblocks early: lifted in the store, gone from the kernel; false when nothing was blocked', async () => {
    const p = pipeline({ ipv6BlockPrefix: 128 });
    await p.handle(event('2001:db8:1::66'), 'ev-1');
    expect(await p.unblock('2001:0db8:1::66', 'ops')).toBe(true);
    expect(store.get('2001:db8:1::66')).toMatchObject({ active: false, liftedBy: 'ops' });
    expect(enforcer.elements.size).toBe(0);
    expect(await p.unblock('2001:db8:1::66', 'ops')).toBe(false);
  });

  it('unblocks a source only the kernel had blocked', async () => {
    enforcer.elements.set('198.51.100.9', now + 60_000);
    expect(await pipeline().unblock('198.51.100.9', 'ops')).toBe(true);
    expect(enforcer.elements.size).toBe(0);
  });

  it('restore() after a restart puts active blocks back and lifts what expired while down', async () => {
    const p = pipeline();
    await p.handle(event('198.51.100.1'), 'ev-1');
    await p.block('198.51.100.2', { ttlSeconds: 60, requestedBy: 'ops' });
    enforcer.elements.clear(); // a reboot: the kernel forgot
    now += 120_000;
    const reloaded = new FileStore(dir, { now: () => now });
    await reloaded.load();
    store = reloaded;
    await pipeline().restore();
    expect([...enforcer.elements.keys()]).toEqual(['198.51.100.1']);
    expect(enforcer.elements.get('198.51.100.1')).toBe(T0 + 1000 + 3600_000);
    expect(reloaded.get('198.51.100.2')).toMatchObject({ active: false, liftedBy: 'expired' });
  });

  it('a failed nft call keeps the desired state and the next expire() repairs the kernel', async () => {
    const p = pipeline();
    enforcer.failNext = true;
    expect((await p.handle(event('198.51.100.66'), 'ev-1')).action).toBe('block');
    expect(enforcer.elements.size).toBe(0);
    expect(logs).toContainEqual(expect.objectContaining({ msg: 'nft failed' }));
    await p.expire();
    expect(enforcer.elements.get('198.51.100.66')).toBe(T0 + 1000 + 3600_000);
  });

  it('keys a block by its canonical target: a host CIDR is its address, any spelling folds', async () => {
    const p = pipeline();
    expect(await p.block('2001:DB8:0::1/128', { ttlSeconds: 120, requestedBy: 'ops' })).toMatchObject({ action: 'block' });
    expect(await p.block('::ffff:198.51.100.7', { ttlSeconds: 120, requestedBy: 'ops' })).toMatchObject({ action: 'block' });
    expect(await p.block('198.51.100.8/32', { ttlSeconds: 120, requestedBy: 'ops' })).toMatchObject({ action: 'block' });
    expect([...enforcer.elements.keys()].sort()).toEqual(['198.51.100.7', '198.51.100.8', '2001:db8::1']);
    expect(p.list().map((r) => r.target).sort()).toEqual(['198.51.100.7', '198.51.100.8', '2001:db8::1']);
    expect(await p.block('203.0.113.5/24', { requestedBy: 'ops' })).toMatchObject({ action: 'refused', why: expect.stringContaining('not an IP address or CIDR') });
    expect(await p.unblock('198.51.100.8/32', 'ops')).toBe(true);
  });

  describe('policy.ipv6BlockPrefix (core/prefix.ts)', () => {
    it('blocks a detected IPv6 attacker by its /64 (the default): one record, one interval element', async () => {
      const p = pipeline();
      expect(await p.handle(event('2001:db8:1:2::5'), 'ev-1')).toMatchObject({ action: 'block', record: { target: '2001:db8:1:2::/64', family: 'ipv6' } });
      expect([...enforcer.elements.keys()]).toEqual(['2001:db8:1:2::/64']);
      expect(await p.handle(event('2001:db8:1:2::9'), 'ev-2')).toMatchObject({ action: 'refresh', record: { target: '2001:db8:1:2::/64', hitCount: 8 } });
      expect(p.list().map((r) => r.target)).toEqual(['2001:db8:1:2::/64']);
      expect(store.get('2001:db8:1:2::/64')?.note).toBe('prefix of 2001:db8:1:2::5 (policy.ipv6BlockPrefix 64)');
    });

    it('narrows to the address when the /64 holds an allowlisted address, and refuses the allowlisted one', async () => {
      const p = pipeline({}, NeverBlockGuard.from({ blockableSpecialCidrs: TESTNET, allowlist: ['2001:db8:a:b::77'] }));
      expect(await p.handle(event('2001:db8:a:b::5'), 'ev-1')).toMatchObject({ action: 'block', record: { target: '2001:db8:a:b::5' } });
      expect(store.get('2001:db8:a:b::5')?.note).toBe('blocked alone: its /64 2001:db8:a:b::/64 holds a protected address (allowlist 2001:db8:a:b::77/128)');
      expect(await p.handle(event('2001:db8:a:b::77'), 'ev-2')).toMatchObject({ action: 'refused' });
      expect([...enforcer.elements.keys()]).toEqual(['2001:db8:a:b::5']);
    });

    it('an operator’s block of one IPv6 address is taken as asked; a manual /64 is a /64', async () => {
      const p = pipeline();
      expect(await p.block('2001:db8:1:2::5', { requestedBy: 'ops' })).toMatchObject({ action: 'block', record: { target: '2001:db8:1:2::5' } });
      expect(await p.block('2001:db8:1:3::/64', { requestedBy: 'ops' })).toMatchObject({ action: 'block', record: { target: '2001:db8:1:3::/64' } });
    });

    it('a kernel block of one address is recorded as its /64 (the kernel keeps its own element until it times out)', async () => {
      const p = pipeline({ blockUnverified: false });
      const d = await p.handle(event('2001:db8:1:2::5', false), 'ev-1', { kernelBlockTtlSeconds: 600 });
      expect(d).toMatchObject({ action: 'block', record: { target: '2001:db8:1:2::/64', note: 'blocked by the kernel on a decoy packet; prefix of 2001:db8:1:2::5 (policy.ipv6BlockPrefix 64)' } });
      expect(enforcer.elements.get('2001:db8:1:2::/64')).toBe(now + 600_000);
    });
  });

  describe('policy.ttlJitterPercent', () => {
    it('off by default: the expiry is the policy TTL exactly', async () => {
      const d = await pipeline().handle(event('198.51.100.40'), 'ev-1');
      expect(d.action === 'block' && d.record.expiresAt - now).toBe(3600_000);
    });

    it('on: the expiry gets 0–N % more, and the store, its history and the kernel element hold that real expiry', async () => {
      const p = pipeline({ ttlJitterPercent: 50 });
      const extras: number[] = [];
      for (let i = 0; i < 30; i++) {
        const d = await p.handle(event(`198.51.100.${100 + i}`), `ev-${i}`);
        expect(d.action).toBe('block');
        if (d.action !== 'block') continue;
        const ttl = d.record.expiresAt - now;
        expect(ttl).toBeGreaterThanOrEqual(3600_000);
        expect(ttl).toBeLessThanOrEqual(5400_000);
        extras.push(ttl - 3600_000);
        expect(store.get(d.record.target)?.expiresAt).toBe(d.record.expiresAt);
        expect(p.history(d.record.target).at(-1)?.record.expiresAt).toBe(d.record.expiresAt);
        expect(enforcer.elements.get(d.record.target)).toBe(d.record.expiresAt);
      }
      // random: thirty first offences do not all come back at one moment
      expect(new Set(extras).size).toBeGreaterThan(20);
    });
  });
});
