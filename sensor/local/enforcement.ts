/**
 * The agent's local enforcement (`enforce.nftables`): a LocalPipeline over the file store and
 * nftables (or log-only where nftables is unavailable), fed the agent's events, expired every
 * second, driven by the control API's block endpoints, and counting its decisions for /metrics.
 */
import { canonicalTarget, tryParseCidr } from '../../core/address';
import type { ScanDetected } from '../../core/event';
import { NeverBlockGuard } from '../../core/guard';
import { ttlSecondsFor } from '../../core/policy';
import { type AgentConfig, agentSimulation } from '../config';
import type { BlockControl } from '../health';
import { errorText, type Logger } from '../log';
import { NftEnforcer } from './nft';
import { LocalPipeline, type Enforcer, type LocalDecision } from './pipeline';
import { HostDigest, postJson } from './digest';
import { FileStore } from './store';

export interface LocalEnforcementOptions {
  readonly config: AgentConfig;
  /** this host's addresses: never blocked, whatever the guard says */
  readonly own: readonly string[];
  /** the enforcer: default NftEnforcer when available; null forces log-only */
  readonly enforcer?: Enforcer | null;
  readonly logger: Logger;
  /** how often the kernel's per-block drop counters are read, ms (default 5 s) */
  readonly droppedEveryMs?: number;
}

/** What one block's nftables element dropped (its element counter). */
export interface Dropped {
  readonly packets: number;
  readonly bytes: number;
}

export class LocalEnforcement {
  /** local block decisions (new offences) and refusals (guard, circuit breaker) */
  readonly counts = { blocks: 0, refused: 0 };
  /** sources the kernel already put in the blocked set since their last event (bounded) */
  private readonly kernelBlocked = new Map<string, number>();
  private expiring = false;
  /** per target, what its element dropped, as last read from the kernel */
  private dropped = new Map<string, Dropped>();
  private droppedReadAt = 0;
  /** the digest (config `digest`), when configured */
  readonly digest?: HostDigest;
  /** when the circuit breaker opened, newest last (bounded): the digest's breaker trips */
  private readonly breakerTrips: number[] = [];
  private breakerWasOpen = false;

  private constructor(
    private readonly pipeline: LocalPipeline,
    private readonly store: FileStore,
    /** 'nftables', or 'log-only': decided and recorded, nothing dropped */
    readonly mode: 'nftables' | 'log-only',
    private readonly config: AgentConfig,
    private readonly logger: Logger,
    private readonly enforcer: Enforcer | undefined,
    private readonly droppedEveryMs: number,
  ) {
    const settings = config.digest;
    if (settings) {
      this.digest = new HostDigest({
        settings,
        stateDirectory: config.stateDirectory,
        history: function* (from, until) {
          for (const e of store.historyBetween(from, until)) {
            const r = e.record;
            yield { at: e.at, action: e.action, target: e.target, hitCount: r.hitCount, offences: r.offences, reason: r.reason, ...(r.ports ? { ports: r.ports } : {}), ...(r.liftedBy ? { liftedBy: r.liftedBy } : {}) };
          }
        },
        breakerTrips: () => this.breakerTrips,
        label: config.sensorId ?? 'host',
        post: postJson,
        sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
        log: (level, msg, fields) => logger[level](msg, fields ?? {}),
      });
    }
  }

  /** The digest's window, when one is due (called every 30 s by the agent). Never rejects. */
  async runDigest(now = Date.now()): Promise<void> {
    await this.digest?.maybeRun(now);
  }

  /** Loads the store, readies the enforcer and puts the stored blocks back; undefined when enforcement is off. */
  static async open(options: LocalEnforcementOptions): Promise<LocalEnforcement | undefined> {
    const { config, own, logger } = options;
    const settings = config.enforce.nftables;
    if (!settings.enabled) return undefined;
    const guard = guardFor(config.guard, own);
    const store = new FileStore(config.stateDirectory);
    await store.load();
    const available =
      options.enforcer === null ? { ok: false as const, why: 'no enforcer given' } : options.enforcer ? { ok: true as const } : await NftEnforcer.available();
    let enforcer: Enforcer | undefined;
    if (available.ok) {
      enforcer = options.enforcer ?? new NftEnforcer();
      await enforcer.ensure();
    } else {
      logger.warn(`enforcement is LOG-ONLY: ${available.why}. Blocks are decided and recorded in ${config.stateDirectory}, but nothing is dropped.`, { why: available.why });
    }
    const pipeline = new LocalPipeline({ store, ...(enforcer ? { enforcer } : {}), policy: settings.policy, guard, simulation: agentSimulation(config), logger: (line) => logger.line(line) });
    await pipeline.restore();
    return new LocalEnforcement(pipeline, store, enforcer ? 'nftables' : 'log-only', config, logger, enforcer, options.droppedEveryMs ?? 5_000);
  }

  /** A new guard (config reload, runtime allowlist); lifts the active blocks it protects and returns them. */
  async setGuard(settings: AgentConfig['guard'], own: readonly string[], requestedBy: string): Promise<string[]> {
    const lifted = await this.pipeline.setGuard(guardFor(settings, own), requestedBy);
    for (const target of lifted) this.logger.info('unblocked', { target, requestedBy });
    return lifted;
  }

  /** The kernel put `source` in the blocked set on its first packet (blockUnverified). */
  noteKernelBlock(source: string, at: number): void {
    this.kernelBlocked.delete(source);
    this.kernelBlocked.set(source, at);
    if (this.kernelBlocked.size > this.config.limits.maxTrackedSources) this.kernelBlocked.delete(this.kernelBlocked.keys().next().value!);
  }

  /**
   * At start: records the kernel's blocks the store lacks (made while the agent was down, their
   * NFLOG records lost with it), each with its remaining time, so they follow the policy.
   * Returns how many were recorded; never rejects.
   */
  async adoptKernelBlocks(holds: ReadonlyArray<{ address: string; remainingSeconds: number }>, now = Date.now()): Promise<number> {
    const known = new Set(this.pipeline.list().filter((r) => r.active && r.expiresAt > now).map((r) => r.target));
    let adopted = 0;
    for (const hold of holds) {
      if (known.has(hold.address) || !(hold.remainingSeconds >= 1) || !Number.isFinite(hold.remainingSeconds)) continue;
      const decision = await this.pipeline.block(hold.address, { ttlSeconds: hold.remainingSeconds, reason: 'sensor', requestedBy: 'kernel' }).catch(() => undefined);
      if (decision?.action === 'block') adopted++;
    }
    if (adopted) this.logger.info('recorded blocks the kernel made while the agent was down', { count: adopted });
    return adopted;
  }

  /** Decides on one event and enforces the decision; never rejects (a failure is logged). */
  async handle(event: ScanDetected, id: string): Promise<LocalDecision | undefined> {
    const kernelAt = this.kernelBlocked.get(event.attacker);
    if (kernelAt !== undefined) this.kernelBlocked.delete(event.attacker);
    const handleOpts = kernelAt !== undefined ? { kernelBlockTtlSeconds: ttlSecondsFor(1, this.config.enforce.nftables.policy) } : {};
    try {
      const decision = await this.pipeline.handle(event, id, handleOpts);
      this.count(decision);
      this.logger.info(decision.action === 'block' ? 'blocked' : `block decision: ${decision.action}`, {
        attacker: event.attacker,
        action: decision.action,
        why: decision.why,
        enforcement: this.mode,
      });
      return decision;
    } catch (error) {
      this.logger.error('local pipeline failed on an event', { attacker: event.attacker, error: errorText(error) });
      return undefined;
    }
  }

  /** Lifts what has expired; skipped while the previous round runs. Never rejects. */
  async expire(): Promise<void> {
    if (this.expiring) return;
    this.expiring = true;
    try {
      const open = this.pipeline.breakerOpen();
      if (open && !this.breakerWasOpen) {
        this.breakerTrips.push(Date.now());
        if (this.breakerTrips.length > 1000) this.breakerTrips.shift();
      }
      this.breakerWasOpen = open;
      const lifted = await this.pipeline.expire();
      if (lifted) this.logger.info('blocks expired', { lifted });
      if (Date.now() - this.droppedReadAt >= this.droppedEveryMs) await this.readDropped();
    } catch (error) {
      this.logger.error('expiry failed', { error: errorText(error) });
    } finally {
      this.expiring = false;
    }
  }

  /**
   * Reads every blocked element's drop counter from the kernel (nftables element counters) into
   * the cache `dropped()` and the control API answer from. Never rejects.
   */
  async readDropped(): Promise<void> {
    this.droppedReadAt = Date.now();
    if (!this.enforcer) return;
    try {
      const next = new Map<string, Dropped>();
      for (const element of await this.enforcer.list()) {
        const target = canonicalTarget(element.target);
        if (target !== undefined && element.dropped) next.set(target, element.dropped);
      }
      this.dropped = next;
    } catch (error) {
      this.logger.warn('could not read the blocked sets’ counters', { error: errorText(error) });
    }
  }

  /** What an active block's element dropped, as last read; undefined without a counter. */
  droppedBy(target: string): Dropped | undefined {
    return this.dropped.get(target);
  }

  /** The active blocks' drop counters, most packets first, at most `limit` (for /metrics). */
  droppedTop(limit: number, now = Date.now()): Array<{ target: string } & Dropped> {
    const active = this.pipeline.list().filter((r) => r.active && r.expiresAt > now);
    return active
      .flatMap((r) => {
        const d = this.dropped.get(r.target);
        return d ? [{ target: r.target, ...d }] : [];
      })
      .sort((a, b) => b.packets - a.packets || (a.target < b.target ? -1 : 1))
      .slice(0, limit);
  }

  /** active single-address blocks per family: what the kernel's address sets hold */
  addressBlocks(now = Date.now()): { ipv4: number; ipv6: number } {
    const out = { ipv4: 0, ipv6: 0 };
    for (const r of this.pipeline.list()) if (r.active && r.expiresAt > now && !r.target.includes('/')) out[r.family]++;
    return out;
  }

  activeBlocks(now = Date.now()): number {
    return this.pipeline.list().filter((r) => r.active && r.expiresAt > now).length;
  }

  /** The block store's health: its last write failure (path and errno), until a write succeeds. */
  storeHealth(): ReturnType<FileStore['health']> {
    return this.store.health();
  }

  breakerOpen(): boolean {
    return this.pipeline.breakerOpen();
  }

  /** What the control API's /blocks and /history endpoints delegate to. */
  control(): BlockControl {
    const pipeline = this.pipeline;
    return {
      // each record with what its element dropped (nftables element counters), when known
      // and `simulated` for a block in simulation (enforce.nftables.simulate): recorded, no element
      list: () => pipeline.list().map((r) => {
        const dropped = r.active ? this.dropped.get(r.target) : undefined;
        const simulated = r.active && pipeline.simulated(r);
        return dropped || simulated ? { ...r, ...(dropped ? { dropped } : {}), ...(simulated ? { simulated: true } : {}) } : r;
      }),
      history: (target) => pipeline.history(target),
      unblock: async (target, by) => {
        const lifted = await pipeline.unblock(target, by);
        if (lifted) this.logger.info('unblocked', { target, requestedBy: by });
        return lifted;
      },
      block: async (target, opts) => {
        const decision = await pipeline.block(target, opts);
        this.count(decision);
        this.logger.info('manual block', { target, requestedBy: opts.requestedBy, action: decision.action, why: decision.why });
        return decision;
      },
    };
  }

  private count(decision: LocalDecision): void {
    if (decision.action === 'block') this.counts.blocks++;
    if (decision.action === 'refused') this.counts.refused++;
  }
}

/** The never-block guard of the config, this host's own addresses protected as well. */
function guardFor(settings: AgentConfig['guard'], own: readonly string[]): NeverBlockGuard {
  return NeverBlockGuard.from({ ...settings, protectedCidrs: [...settings.protectedCidrs, ...own.filter((a) => tryParseCidr(a) !== undefined)] });
}
