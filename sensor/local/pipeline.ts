/**
 * decide → desired state → enforce, on one host (ARCHITECTURE.md, "sensor/"): the same core policy
 * and never-block guard as the cloud, the file store for the desired state, nftables as the
 * enforcer. The store is written first; the kernel follows it (restore() after a restart,
 * reconcile() now and then), so a failed nft call is repaired rather than lost.
 */
import { randomUUID } from 'node:crypto';
import { canonicalTarget, familyOf, targetOf, tryParseCidr } from '../../core/address';
import type { ScanDetected } from '../../core/event';
import type { NeverBlockGuard } from '../../core/guard';
import type { BlockReason, BlockRecord, Decision, PolicySettings, Sighting } from '../../core/policy';
import { BLOCK_REASONS, BurstBreaker, decide, isActive, lift, policyRefusal } from '../../core/policy';
import { prefixSighting } from '../../core/prefix';
import type { NftEnforcer } from './nft';
import type { FileStore, HistoryEntry } from './store';

/** What the pipeline needs of an enforcer: NftEnforcer, or a fake in tests. */
export type Enforcer = Pick<NftEnforcer, 'ensure' | 'block' | 'blockMany' | 'unblock' | 'list'>;

export interface LocalPipelineOptions {
  readonly store: FileStore;
  readonly enforcer?: Enforcer;
  readonly policy: PolicySettings;
  readonly guard: NeverBlockGuard;
  readonly logger?: (line: object) => void;
  readonly now?: () => number;
  /** reconcile() runs from expire() at most this often, ms (default 30 s) */
  readonly reconcileEveryMs?: number;
}

export type Refusal = { readonly action: 'refused'; readonly why: string };
export type LocalDecision = Decision | Refusal;

export interface HandleOptions {
  /**
   * The kernel detector already added the source to the blocked set for this many seconds (the
   * stealth kill). The store then records the block the kernel made — with that TTL, unless the
   * policy would block the event anyway — so that it survives a restart and counts as an offence.
   */
  readonly kernelBlockTtlSeconds?: number;
}

export class LocalPipeline {
  private readonly store: FileStore;
  private readonly enforcer: Enforcer | undefined;
  private readonly policy: PolicySettings;
  private guard: NeverBlockGuard;
  private readonly log: (line: object) => void;
  private readonly now: () => number;
  private readonly breaker: BurstBreaker;
  private readonly reconcileEveryMs: number;
  private lastReconcile = 0;
  /** one decision at a time: read-decide-write of a record must not interleave */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(opts: LocalPipelineOptions) {
    this.store = opts.store;
    this.enforcer = opts.enforcer;
    this.policy = opts.policy;
    this.guard = opts.guard;
    this.log = opts.logger ?? (() => undefined);
    this.now = opts.now ?? Date.now;
    this.breaker = new BurstBreaker(opts.policy.burstLimitPerMinute);
    this.reconcileEveryMs = opts.reconcileEveryMs ?? 30_000;
  }

  /**
   * Replaces the never-block guard (a config reload, a runtime allowlist change) and lifts every
   * active block the new guard protects; returns the lifted targets.
   */
  async setGuard(guard: NeverBlockGuard, requestedBy: string): Promise<string[]> {
    this.guard = guard;
    const lifted: string[] = [];
    for (const record of this.store.list()) {
      if (!record.active || guard.check(record.target).blockable) continue;
      if (await this.unblock(record.target, requestedBy)) lifted.push(record.target);
    }
    return lifted;
  }

  /** After a restart: ensure the table, lift what expired while down, put active blocks back. */
  async restore(): Promise<void> {
    await this.serial(async () => {
      const now = this.now();
      for (const record of this.store.list()) {
        if (record.active && record.expiresAt <= now) await this.store.put(lift(record, 'expired'), 'expire');
      }
      if (!this.enforcer) return;
      await this.enforcer.ensure();
      const active = this.store.active(now);
      await this.enforcer.blockMany(active.map((r) => ({ target: r.target, expiresAt: r.expiresAt })));
      this.lastReconcile = now;
      this.log({ msg: 'restored blocks', count: active.length, targets: active.slice(0, 20).map((r) => r.target) });
    });
  }

  /** One `Scan Detected` event from this host's sensor. */
  async handle(event: ScanDetected, eventId: string, handleOpts: HandleOptions = {}): Promise<LocalDecision> {
    return this.serial(async () => {
      const now = this.now();
      const target = event.attacker;
      const kernelTtl = handleOpts.kernelBlockTtlSeconds;
      const verdict = this.guard.check(target);
      if (!verdict.blockable) {
        // the kernel must not hold a block the guard refuses (the detector keeps these out; belt and braces)
        if (kernelTtl !== undefined && this.enforcer) await this.tryEnforce(() => this.enforcer!.unblock(target), target);
        return this.refuse(target, `never blocked: ${verdict.rule}`);
      }
      // after the guard, as the decide function does (lambda/decide/decider.ts); a sensor's
      // attacker is one address, so only the width rule could apply
      const policyRule = policyRefusal({ target }, this.policy);
      if (policyRule) return this.refuse(target, `refused by the policy: ${policyRule}`);
      const kernelOnly = kernelTtl !== undefined && !event.handshake && !this.policy.blockUnverified;
      const sighting: Sighting = {
        target,
        family: familyOf(target),
        reason: 'sensor',
        eventId,
        sensorId: event.sensorId,
        firstSeen: Date.parse(event.firstSeen),
        lastSeen: Date.parse(event.lastSeen),
        hits: event.probeCount,
        verified: event.handshake || kernelTtl !== undefined,
        ...(kernelOnly ? { ttlSeconds: kernelTtl, note: 'blocked by the kernel on a decoy packet' } : {}),
      };
      const prefixed = prefixSighting(sighting, this.policy, this.guard);
      const previous = this.store.get(prefixed.target);
      const decision = decide(previous, prefixed, now, this.policy);
      return this.apply(decision, previous, now, kernelTtl !== undefined);
    });
  }

  /** A manual block (operator); refused with the guard's rule for never-block targets. */
  async block(target: string, opts: { ttlSeconds?: number; reason?: string; requestedBy: string; replace?: boolean }): Promise<LocalDecision> {
    return this.serial(async () => {
      const now = this.now();
      const cidr = tryParseCidr(target);
      if (!cidr) return this.refuse(target, `not an IP address or CIDR: ${JSON.stringify(target)}`);
      const canonical = targetOf(cidr);
      const reason = (opts.reason ?? 'manual') as BlockReason;
      if (!BLOCK_REASONS.includes(reason)) return this.refuse(canonical, `unknown reason ${JSON.stringify(opts.reason)}; one of ${BLOCK_REASONS.join(', ')}`);
      if (opts.ttlSeconds !== undefined && !(Number.isFinite(opts.ttlSeconds) && opts.ttlSeconds > 0)) return this.refuse(canonical, `ttlSeconds must be a positive number, got ${opts.ttlSeconds}`);
      const verdict = this.guard.check(canonical);
      if (!verdict.blockable) return this.refuse(canonical, `never blocked: ${verdict.rule}`);
      const sighting: Sighting = {
        target: canonical,
        family: cidr.family,
        reason: 'manual',
        eventId: `manual-${randomUUID()}`,
        sensorId: opts.requestedBy,
        firstSeen: now,
        lastSeen: now,
        hits: 0,
        verified: true,
        note: `requested by ${opts.requestedBy}${reason !== 'manual' ? ` (${reason})` : ''}`,
        ...(opts.ttlSeconds !== undefined ? { ttlSeconds: Math.round(opts.ttlSeconds) } : {}),
        ...(opts.replace === true ? { replace: true } : {}),
      };
      const policyRule = policyRefusal(sighting, this.policy);
      if (policyRule) return this.refuse(canonical, `refused by the policy: ${policyRule}`);
      const previous = this.store.get(canonical);
      // a re-block of an active block keeps its note (core/policy.ts decide) and adds who asked again
      const keepNote = previous?.note !== undefined && isActive(previous, now) && opts.replace !== true;
      const asked = keepNote ? { ...sighting, note: `${previous.note}; again ${sighting.note ?? ''}`.slice(0, 1024) } : sighting;
      return this.apply(decide(previous, asked, now, this.policy), previous, now, true);
    });
  }

  /** Lifts a block early. True when something was active (in the store or in the kernel). */
  async unblock(target: string, requestedBy: string): Promise<boolean> {
    return this.serial(async () => {
      const canonical = canonicalTarget(target);
      if (!canonical) return false;
      const record = this.store.get(canonical);
      const wasActive = record !== undefined && isActive(record, this.now());
      if (record?.active) await this.store.put(lift(record, requestedBy), 'unblock');
      let inKernel = false;
      if (this.enforcer) {
        inKernel = (await this.enforcer.list()).some((e) => e.target === canonical);
        await this.tryEnforce(() => this.enforcer!.unblock(canonical), canonical);
      }
      if (wasActive || inKernel) this.log({ msg: 'unblocked', target: canonical, requestedBy });
      return wasActive || inKernel;
    });
  }

  /**
   * Lifts the records that have expired (their kernel elements time out by themselves; they are
   * removed all the same) and, every `reconcileEveryMs`, puts missing active blocks back into
   * the kernel. Returns how many were lifted. Call it every few seconds.
   */
  async expire(): Promise<number> {
    return this.serial(async () => {
      const now = this.now();
      let lifted = 0;
      for (const record of this.store.list()) {
        if (!record.active || record.expiresAt > now) continue;
        await this.store.put(lift(record, 'expired'), 'expire');
        if (this.enforcer) await this.tryEnforce(() => this.enforcer!.unblock(record.target), record.target);
        this.log({ msg: 'expired', target: record.target, offences: record.offences });
        lifted++;
      }
      if (this.enforcer && now - this.lastReconcile >= this.reconcileEveryMs) {
        this.lastReconcile = now;
        await this.tryEnforce(() => this.reconcileKernel(now), 'reconcile');
      }
      return lifted;
    });
  }

  list(): BlockRecord[] {
    return this.store.list();
  }

  history(target: string): HistoryEntry[] {
    return this.store.history(canonicalTarget(target) ?? target);
  }

  /** Whether the burst circuit breaker refuses new blocks right now. */
  breakerOpen(): boolean {
    return this.breaker.isOpen(this.now());
  }

  private async reconcileKernel(now: number): Promise<void> {
    if (!this.enforcer) return;
    const actual = new Set((await this.enforcer.list()).map((e) => e.target));
    const missing = this.store.active(now).filter((r) => !actual.has(r.target));
    if (missing.length === 0) return;
    await this.enforcer.ensure();
    await this.enforcer.blockMany(missing.map((r) => ({ target: r.target, expiresAt: r.expiresAt })));
    this.log({ msg: 'repaired kernel blocks', count: missing.length });
  }

  private async apply(decision: Decision, previous: BlockRecord | undefined, now: number, bypassBreaker: boolean): Promise<LocalDecision> {
    if (decision.action === 'ignore') {
      this.log({ msg: 'ignored', why: decision.why });
      return decision;
    }
    const record = decision.record;
    if (decision.action === 'block') {
      const isNew = !(previous && isActive(previous, now));
      if (isNew && !bypassBreaker && !this.breaker.tryAdmit(now)) {
        return this.refuse(record.target, `burst circuit breaker open: more than ${this.policy.burstLimitPerMinute} new blocks within a minute`);
      }
      await this.store.put(record, 'block');
      if (this.enforcer) await this.tryEnforce(() => this.enforcer!.block(record.target, record.expiresAt), record.target);
      this.log({ msg: 'blocked', target: record.target, reason: record.reason, offences: record.offences, expiresAt: new Date(record.expiresAt).toISOString(), why: decision.why });
    } else {
      await this.store.put(record, 'refresh');
      this.log({ msg: 'refreshed', target: record.target, hitCount: record.hitCount, why: decision.why });
    }
    return decision;
  }

  private refuse(target: string, why: string): Refusal {
    this.log({ msg: 'refused', target, why });
    return { action: 'refused', why };
  }

  /** The store is the truth; an nft failure is logged and repaired by the next reconcile. */
  private async tryEnforce(action: () => Promise<void>, target: string): Promise<void> {
    try {
      await action();
    } catch (error) {
      this.lastReconcile = 0;
      this.log({ msg: 'nft failed', level: 'error', target, error: (error as Error).message });
    }
  }

  /** One at a time in this process, and inside the store's writer lock (other processes: `portsnare … --state-dir`). */
  private serial<T>(task: () => Promise<T>): Promise<T> {
    const locked = (): Promise<T> => this.store.transaction(task);
    const result = this.queue.then(locked, locked);
    this.queue = result.catch(() => undefined);
    return result;
  }
}
