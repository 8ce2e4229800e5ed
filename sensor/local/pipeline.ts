/**
 * decide → desired state → enforce, on one host (ARCHITECTURE.md, "sensor/"): the same core policy
 * and never-block guard as the cloud, the file store for the desired state, nftables as the
 * enforcer. The store is written first; the kernel follows it (restore() after a restart,
 * reconcile() now and then), so a failed nft call is repaired rather than lost.
 */
import { randomUUID } from 'node:crypto';
import { canonicalTarget, targetOf, tryParseCidr } from '../../core/address';
import type { ScanDetected } from '../../core/event';
import type { NeverBlockGuard } from '../../core/guard';
import { DecisionService, type DecisionResult, type DecisionStorePort } from '../../core/decisions';
import { sightingOfScan } from '../../core/intake';
import type { BlockReason, BlockRecord, Decision, PolicySettings, Sighting, SimulationSettings } from '../../core/policy';
import { BLOCK_REASONS, BurstBreaker, isActive, lift, simulationOf } from '../../core/policy';
import { type PointReport, runPoint } from '../../core/points';
import type { NftEnforcer } from './nft';
import { NftPoint } from './nft-point';
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
  /** `enforce.nftables.simulate` (sensor/config.ts agentSimulation): simulated blocks are recorded, never put in nftables */
  readonly simulation?: SimulationSettings;
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
  /** the decision use case, the cloud's too (core/decisions.ts) */
  private readonly decisions: DecisionService;
  private readonly reconcileEveryMs: number;
  private lastReconcile = 0;
  private readonly simulation: SimulationSettings | undefined;
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
    this.simulation = opts.simulation;
    this.decisions = new DecisionService({
      store: fileStorePort(this.store),
      breaker: { admit: (_target, now, limit) => Promise.resolve(this.breaker.tryAdmit(now, limit) ? 'admitted' : 'open') },
      clock: { now: this.now },
      guard: () => this.guard,
      policy: () => this.policy,
    });
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
      const report = await this.enforceAll(now);
      this.lastReconcile = now;
      this.log({ msg: 'restored blocks', count: active.length, added: report.applied, targets: active.slice(0, 20).map((r) => r.target) });
      for (const f of report.failures) this.log({ msg: 'nft failed', level: 'error', target: 'restore', error: f.message });
    });
  }

  /** One `Scan Detected` event from this host's sensor. */
  async handle(event: ScanDetected, eventId: string, handleOpts: HandleOptions = {}): Promise<LocalDecision> {
    return this.serial(async () => {
      const kernelTtl = handleOpts.kernelBlockTtlSeconds;
      const kernelOnly = kernelTtl !== undefined && !event.handshake && !this.policy.blockUnverified;
      // the cloud's reading of the event (core/intake.ts), plus what only the host knows: a
      // block its kernel already made is a verified offence, with the kernel's TTL
      const scan = sightingOfScan(event, eventId, false);
      const sighting: Sighting = {
        ...scan,
        verified: scan.verified || kernelTtl !== undefined,
        ...(kernelOnly ? { ttlSeconds: kernelTtl, note: 'blocked by the kernel on a decoy packet' } : {}),
      };
      const result = await this.decisions.decide(sighting, { alreadyEnforced: kernelTtl !== undefined });
      // the kernel must not hold a block the guard refuses (the detector keeps these out; belt and braces)
      if (result.outcome === 'refused' && result.by === 'guard' && kernelTtl !== undefined && this.enforcer) {
        await this.tryEnforce(() => this.enforcer!.unblock(result.target), result.target);
      }
      return this.apply(result);
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
      return this.apply(await this.decisions.decide(sighting));
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

  /** Whether a record is in simulation: decided and recorded, no nftables element. */
  simulated(record: { readonly reason?: BlockReason }): boolean {
    return simulationOf(record, this.simulation) !== undefined;
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
    const report = await this.enforceAll(now);
    if (report.applied) this.log({ msg: 'repaired kernel blocks', count: report.applied });
    if (report.failures.length) throw new Error(report.failures.map((f) => f.message).join('; '));
  }

  /** The whole store through the nftables point (sensor/local/nft-point.ts): missing blocks added, lifted ones removed. */
  private async enforceAll(now: number): Promise<PointReport> {
    return runPoint(new NftPoint(this.enforcer!, (record) => this.simulated(record)), { kind: 'full', records: this.store.list() }, () => now, 1, (point, error) => ({
      point,
      error: error instanceof Error ? error.name : 'Error',
      message: error instanceof Error ? error.message : String(error),
      transient: true,
    }));
  }

  /** The decision service's result as the host reports it, and the kernel told of a new block. */
  private async apply(result: DecisionResult): Promise<LocalDecision> {
    switch (result.outcome) {
      case 'refused':
        return this.refuse(result.target, result.by === 'guard' ? `never blocked: ${result.rule}` : `refused by the policy: ${result.rule}`);
      case 'breaker-open':
        return this.refuse(result.target, `burst circuit breaker open: more than ${result.limitPerMinute} new blocks within a minute`);
      case 'unchanged':
        this.log({ msg: 'ignored', why: result.why });
        return { action: 'ignore', why: result.why };
      case 'blocked': {
        const { record, why } = result.decision;
        const simulated = this.simulated(record);
        if (this.enforcer && !simulated) await this.tryEnforce(() => this.enforcer!.block(record.target, record.expiresAt), record.target);
        this.log({ msg: 'blocked', target: record.target, reason: record.reason, offences: record.offences, expiresAt: new Date(record.expiresAt).toISOString(), why, ...(simulated ? { simulated: true } : {}) });
        return result.decision;
      }
      case 'refreshed':
        this.log({ msg: 'refreshed', target: result.target, hitCount: result.decision.record.hitCount, why: result.decision.why });
        return result.decision;
    }
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

/**
 * The decision service's store port over the file store. The pipeline holds the store's writer
 * lock across read-decide-write (`serial`), so the record cannot change under a decision; the
 * save checks it all the same (the record read must still be the one stored). The journal line
 * `put` appends is the record and its history entry at once (the event id is in its eventIds).
 */
export function fileStorePort(store: FileStore): DecisionStorePort {
  return {
    read: (target) => {
      const record = store.get(target);
      return Promise.resolve(record ? { record, version: record } : undefined);
    },
    async save(record, expected, action) {
      if (store.get(record.target) !== expected?.record) return false;
      await store.put(record, action);
      return true;
    },
  };
}
