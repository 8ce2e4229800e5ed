/**
 * The agent: decoy listeners and (with `stealth`) the kernel detector feed the aggregator; each
 * `Scan Detected` it emits goes to every sink and, with `enforce.nftables`, to the local pipeline
 * (decide → file store → nftables). The health/control server shows it all on loopback.
 *
 *   listeners ─┐                      ┌─► sinks (stdout, file, eventbridge ← disk spool)
 *              ├─► aggregator ─► event┤
 *   kernel ────┘   ignore, own,       └─► LocalPipeline ─► FileStore + NftEnforcer
 *                  trigger, dedupe
 *
 * `start()` and `stop()` are promise-based; `stop()` finishes within its deadline: listeners
 * first (no new hits), pending hits flushed as events, sinks given the rest of the time (what
 * EventBridge has not taken stays in the spool for the next start).
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { tryCanonicalAddress, tryParseCidr } from '../core/address';
import type { ScanDetected } from '../core/event';
import { NeverBlockGuard } from '../core/guard';
import { ttlSecondsFor, type PolicySettings } from '../core/policy';
import { Aggregator } from './aggregate/aggregator';
import { ownAddresses } from './aggregate/own-addresses';
import { ALL_UNUSED, bannerFor, spoolDirectory, type AgentConfig, type SinkConfig } from './config';
import { HealthServer, type BlockControl, type ControlApi, type Metric } from './health';
import { KernelDetector, killGuardFrom, type KernelDetectorOptions, type KernelProbe } from './kernel/detector';

/** What the agent needs of a kernel detector (KernelDetector, or a stand-in in tests). */
export interface KernelDetectorLike {
  start(): Promise<void>;
  stop(): Promise<void>;
  // the EventEmitter signature, so KernelDetector fits as it is
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  on(event: 'probe' | 'error', listener: (...args: any[]) => void): unknown;
}
import { DecoyListeners, compactPorts, type Hit, type ListenerReport } from './listeners';
import { NftEnforcer } from './local/nft';
import { LocalPipeline, type Enforcer } from './local/pipeline';
import { FileStore } from './local/store';
import { errorText, jsonLogger, type Logger } from './log';
import { EventBridgePublisher, eventBridgeClient } from './publish/eventbridge';
import { FilePublisher, StdoutPublisher } from './publish/lines';
import { Spool } from './publish/spool';
import type { Publisher } from './publish/types';

export interface AgentOptions {
  readonly config: AgentConfig;
  readonly logger?: Logger;
  /** replaces the sinks of the config (tests, benchmarks) */
  readonly publishers?: Publisher[];
  /** builds the EventBridge client of an `eventbridge` sink (tests point it at a local endpoint) */
  readonly eventBridgeClient?: (sink: Extract<SinkConfig, { type: 'eventbridge' }>) => EventBridgeClient;
  /** the host's own addresses (default: os.networkInterfaces, refreshed every 30 s) */
  readonly ownAddresses?: () => string[];
  /**
   * the local enforcer when enforce.nftables is on: default NftEnforcer when available; a fake in
   * tests; null forces log-only
   */
  readonly enforcer?: Enforcer | null;
  /**
   * builds the kernel detector when `stealth` is on (default: KernelDetector when available);
   * tests hand in an EventEmitter that emits 'probe'
   */
  readonly kernelDetector?: (options: KernelDetectorOptions) => KernelDetectorLike;
  /** EventBridge retry delays (tests) */
  readonly backoff?: { baseMs: number; maxMs: number };
}

/** a kernel SYN and a socket accept of the same (source, port) this close together are one connect */
const ECHO_WINDOW_MS = 3000;
const MAX_EXCHANGES = 20_000;

export type EnforcementMode = 'off' | 'nftables' | 'log-only';

export interface AgentStartReport {
  readonly sensorId: string;
  readonly listeners: ListenerReport;
  readonly stealth: 'off' | 'on' | 'unavailable';
  readonly enforcement: EnforcementMode;
  readonly healthPort?: number;
}

/** EC2 (Nitro) puts the instance id in the DMI board asset tag; elsewhere the hostname. */
export function defaultSensorId(readTag: () => string = () => readFileSync('/sys/devices/virtual/dmi/id/board_asset_tag', 'utf8')): string {
  try {
    const tag = readTag().trim();
    if (/^i-[0-9a-f]{8,17}$/.test(tag)) return tag;
  } catch {
    // not EC2, or not Linux
  }
  return hostname();
}

export class Agent extends EventEmitter {
  readonly config: AgentConfig;
  private readonly logger: Logger;
  private sensorId = '';
  private aggregator?: Aggregator;
  private decoys?: DecoyListeners;
  private detector?: KernelDetectorLike;
  private publishers: Publisher[] = [];
  private pipeline?: LocalPipeline;
  private server?: HealthServer;
  private timers: NodeJS.Timeout[] = [];
  private readonly inflight = new Set<Promise<unknown>>();
  /** the last view (socket or kernel) of each recent (protocol, source, port), for echo() */
  private readonly exchanges = new Map<string, { views: Set<string>; at: number }>();
  /** sources the kernel already put in the blocked set since their last event (bounded) */
  private readonly kernelBlocked = new Map<string, number>();
  private report?: AgentStartReport;
  private stealthState: AgentStartReport['stealth'] = 'off';
  private enforcement: EnforcementMode = 'off';
  private startedAt = 0;
  private stopped?: Promise<void>;
  private counts = { kernelProbes: 0, blocks: 0, refused: 0, pipelineErrors: 0, publishFailures: 0, detectorErrors: 0 };

  constructor(private readonly options: AgentOptions) {
    super();
    this.config = options.config;
    this.logger = options.logger ?? jsonLogger(options.config.logLevel);
  }

  get healthPort(): number | undefined {
    return this.report?.healthPort;
  }

  async start(): Promise<AgentStartReport> {
    const config = this.config;
    this.startedAt = Date.now();
    this.sensorId = config.sensorId ?? defaultSensorId();
    const own = this.options.ownAddresses ?? ((): string[] => ownAddresses());

    this.aggregator = new Aggregator({
      sensorId: this.sensorId,
      trigger: config.trigger,
      dedupeSeconds: config.dedupeSeconds,
      ignore: config.ignore,
      ownAddresses: own(),
      maxTrackedSources: config.limits.maxTrackedSources,
      onEvent: (event) => this.dispatch(event),
      onInvalid: (error, candidate) => this.logger.error('built an invalid event (bug), not published', { error, candidate }),
    });

    const stillStarting = (): void => {
      if (this.stopped) throw new Error('stopped while starting');
    };
    try {
      await this.startPublishers();
      stillStarting();
      await this.startEnforcement(own());
      stillStarting();
      const listeners = await this.startListeners();
      stillStarting();
      await this.startDetector(listeners, own());
      stillStarting();
      if (listeners.tcp.length + listeners.udp.length === 0 && this.stealthState !== 'on') {
        throw new Error('no decoy port could be bound and no kernel detection runs: nothing to watch (see the "skipped" log lines)');
      }
      let healthPort: number | undefined;
      if (config.health.enabled) {
        this.server = new HealthServer(this.controlApi(), { host: config.health.host, port: config.health.port, logger: this.logger });
        healthPort = await this.server.start();
      }
      stillStarting();
      this.timers.push(
        setInterval(() => this.aggregator?.tick(), 1000),
        setInterval(() => this.aggregator?.setOwnAddresses(own()), 30_000),
      );
      if (this.pipeline) this.timers.push(setInterval(() => this.expire(), 1000));
      for (const timer of this.timers) timer.unref();
      this.report = { sensorId: this.sensorId, listeners, stealth: this.stealthState, enforcement: this.enforcement, ...(healthPort !== undefined ? { healthPort } : {}) };
      this.logger.info('agent started', {
        sensorId: this.sensorId,
        tcp: config.tcpPorts === ALL_UNUSED ? ALL_UNUSED : compactPorts(listeners.tcp),
        udp: config.udpPorts === ALL_UNUSED ? ALL_UNUSED : compactPorts(listeners.udp),
        listen: config.listen,
        stealth: this.stealthState,
        enforcement: this.enforcement,
        sinks: this.publishers.map((p) => p.name),
        health: healthPort !== undefined ? `http://${config.health.host}:${healthPort}` : 'off',
      });
      return this.report;
    } catch (error) {
      const stoppedMeanwhile = this.stopped !== undefined;
      await this.stop(2000).catch(() => undefined);
      // a stop() during start ran before some parts existed: release those too
      if (stoppedMeanwhile) await this.doStop(2000).catch(() => undefined);
      throw error;
    }
  }

  /** Stops within `deadlineMs` (best effort; main.ts enforces a hard deadline on top). */
  stop(deadlineMs = 5000): Promise<void> {
    this.stopped ??= this.doStop(deadlineMs);
    return this.stopped;
  }

  private async doStop(deadlineMs: number): Promise<void> {
    const until = Date.now() + deadlineMs;
    for (const timer of this.timers.splice(0)) clearInterval(timer);
    await Promise.allSettled([this.decoys?.stop(), this.detector?.stop()]);
    this.aggregator?.flush();
    await withDeadline(Promise.allSettled([...this.inflight]), Math.max(0, until - Date.now()));
    await Promise.allSettled(this.publishers.map((p) => p.stop(Math.max(0, until - Date.now() - 100))));
    await this.server?.stop();
    this.logger.info('agent stopped', { uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000) });
  }

  /** One hit from outside the sockets (tests, other detectors). */
  addHit(hit: Hit): void {
    this.aggregator?.add(hit);
  }

  status(): Record<string, unknown> {
    const agg = this.aggregator?.stats();
    const listeners = this.decoys?.stats();
    return {
      sensorId: this.sensorId,
      uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000),
      watching: {
        tcp: this.config.tcpPorts === ALL_UNUSED ? ALL_UNUSED : compactPorts(this.report?.listeners.tcp ?? []),
        udp: this.config.udpPorts === ALL_UNUSED ? ALL_UNUSED : compactPorts(this.report?.listeners.udp ?? []),
        skipped: (this.report?.listeners.skipped ?? []).map((s) => `${s.protocol}/${s.port} on ${s.address}: ${s.why}`),
        listen: this.config.listen,
      },
      stealth: this.stealthState,
      enforcement: this.enforcement,
      trigger: this.config.trigger,
      dedupeSeconds: this.config.dedupeSeconds,
      aggregator: agg,
      sockets: listeners,
      kernelProbes: this.counts.kernelProbes,
      sinks: this.publishers.map((p) => ({
        name: p.name,
        ...p.stats(),
        ...(p instanceof EventBridgePublisher ? { spool: p.spool.stats(), lastError: p.error } : {}),
      })),
      blocksActive: this.activeBlocks(),
      circuitBreakerOpen: this.pipeline?.breakerOpen() ?? false,
    };
  }

  private activeBlocks(): number {
    const now = Date.now();
    return this.pipeline ? this.pipeline.list().filter((r) => r.active && r.expiresAt > now).length : 0;
  }

  metrics(): Metric[] {
    const agg = this.aggregator?.stats() ?? { hits: 0, ignored: 0, own: 0, events: 0, tracked: 0, evicted: 0, invalid: 0 };
    const sock = this.decoys?.stats();
    const spools = this.publishers.filter((p): p is EventBridgePublisher => p instanceof EventBridgePublisher);
    const sinkSamples = (pick: (s: ReturnType<Publisher['stats']>) => number) => this.publishers.map((p) => ({ labels: { sink: p.name }, value: pick(p.stats()) }));
    return [
      { name: 'portsnare_up', help: 'The agent is running.', type: 'gauge', samples: [{ value: 1 }] },
      { name: 'portsnare_probes_total', help: 'Probes seen (socket hits and kernel probes), before filtering.', type: 'counter', samples: [{ value: agg.hits }] },
      { name: 'portsnare_probes_kernel_total', help: 'Probes reported by the kernel detector.', type: 'counter', samples: [{ value: this.counts.kernelProbes }] },
      {
        name: 'portsnare_probes_ignored_total',
        help: 'Probes dropped before aggregation, by why.',
        type: 'counter',
        samples: [
          { labels: { reason: 'ignore' }, value: agg.ignored },
          { labels: { reason: 'own_address' }, value: agg.own },
        ],
      },
      { name: 'portsnare_detections_total', help: 'Scan Detected events emitted.', type: 'counter', samples: [{ value: agg.events }] },
      { name: 'portsnare_events_published_total', help: 'Events a sink delivered (written, or accepted by PutEvents).', type: 'counter', samples: sinkSamples((s) => s.published) },
      { name: 'portsnare_events_dropped_total', help: 'Events a sink could not keep (spool full, rejected as malformed).', type: 'counter', samples: sinkSamples((s) => s.dropped) },
      { name: 'portsnare_publish_errors_total', help: 'Failed delivery attempts (retried).', type: 'counter', samples: sinkSamples((s) => s.errors) },
      { name: 'portsnare_spool_depth_events', help: 'Events waiting in the disk spool.', type: 'gauge', samples: spools.map((p) => ({ labels: { sink: p.name }, value: p.spool.stats().depth })) },
      { name: 'portsnare_spool_bytes', help: 'Bytes the disk spool uses.', type: 'gauge', samples: spools.map((p) => ({ labels: { sink: p.name }, value: p.spool.stats().bytes })) },
      { name: 'portsnare_spool_max_bytes', help: 'The spool bound (spool.maxBytes).', type: 'gauge', samples: spools.map((p) => ({ labels: { sink: p.name }, value: p.spool.stats().maxBytes })) },
      { name: 'portsnare_spool_full', help: '1 while the spool is full and refuses events.', type: 'gauge', samples: spools.map((p) => ({ labels: { sink: p.name }, value: p.spool.stats().full ? 1 : 0 })) },
      { name: 'portsnare_spool_refused_total', help: 'Events refused because the spool was full.', type: 'counter', samples: spools.map((p) => ({ labels: { sink: p.name }, value: p.spool.stats().refused })) },
      { name: 'portsnare_eventbridge_throttles_total', help: 'ThrottlingException answers from PutEvents.', type: 'counter', samples: spools.map((p) => ({ labels: { sink: p.name }, value: p.stats().throttles })) },
      { name: 'portsnare_sockets_open', help: 'Decoy connections open now.', type: 'gauge', samples: [{ value: sock?.socketsOpen ?? 0 }] },
      { name: 'portsnare_connects_reset_before_accept_total', help: 'Decoy connections reset before accept whose source only the saved SYN named (connect scans).', type: 'counter', samples: [{ value: sock?.resetBeforeAccept ?? 0 }] },
      { name: 'portsnare_sockets_rejected_total', help: 'Decoy connections closed at accept because maxSockets were open.', type: 'counter', samples: [{ value: sock?.socketsRejected ?? 0 }] },
      {
        name: 'portsnare_listeners',
        help: 'Decoy sockets bound, by protocol.',
        type: 'gauge',
        samples: [
          { labels: { protocol: 'tcp' }, value: sock?.tcpListeners ?? 0 },
          { labels: { protocol: 'udp' }, value: sock?.udpListeners ?? 0 },
        ],
      },
      { name: 'portsnare_udp_replies_suppressed_total', help: 'UDP banner replies not sent (rate limit).', type: 'counter', samples: [{ value: sock?.udpRepliesSuppressed ?? 0 }] },
      { name: 'portsnare_tracked_sources', help: 'Sources the aggregator holds in memory.', type: 'gauge', samples: [{ value: agg.tracked }] },
      { name: 'portsnare_tracked_sources_evicted_total', help: 'Sources dropped to keep memory bounded (limits.maxTrackedSources).', type: 'counter', samples: [{ value: agg.evicted }] },
      { name: 'portsnare_blocks_active', help: 'Local nftables blocks in force.', type: 'gauge', samples: [{ value: this.activeBlocks() }] },
      { name: 'portsnare_circuit_breaker_open', help: '1 while the burst circuit breaker refuses new blocks (more than burstLimitPerMinute in a minute).', type: 'gauge', samples: [{ value: this.pipeline?.breakerOpen() ? 1 : 0 }] },
      { name: 'portsnare_blocks_total', help: 'Local block decisions (new offences).', type: 'counter', samples: [{ value: this.counts.blocks }] },
      { name: 'portsnare_blocks_refused_total', help: 'Blocks refused by the never-block guard or the circuit breaker.', type: 'counter', samples: [{ value: this.counts.refused }] },
      { name: 'portsnare_enforcement_log_only', help: '1 when enforcement is configured but nftables is unavailable (log only).', type: 'gauge', samples: [{ value: this.enforcement === 'log-only' ? 1 : 0 }] },
      { name: 'process_resident_memory_bytes', help: 'Resident memory of the agent process.', type: 'gauge', samples: [{ value: process.memoryUsage().rss }] },
    ];
  }

  private healthCheck(): { ok: boolean; problems: string[]; warnings: string[] } {
    const problems: string[] = [];
    const warnings: string[] = [];
    const watching = (this.report?.listeners.tcp.length ?? 0) + (this.report?.listeners.udp.length ?? 0);
    if (watching === 0 && this.stealthState !== 'on') problems.push('no decoy port is watched');
    for (const p of this.publishers) {
      if (p instanceof EventBridgePublisher) {
        const spool = p.spool.stats();
        if (spool.full) problems.push(`${p.name}: spool full (${spool.bytes} of ${spool.maxBytes} bytes): detections are being lost`);
        if (p.error) warnings.push(`${p.name}: ${p.error} (${spool.depth} events waiting in the spool)`);
      }
    }
    if (this.enforcement === 'log-only') warnings.push('enforcement is log-only: nftables is not available');
    if (this.stealthState === 'unavailable') warnings.push('stealth detection unavailable: sockets only');
    if (this.pipeline?.breakerOpen()) warnings.push('circuit breaker open: more new blocks this minute than burstLimitPerMinute; new blocks are refused until the minute drains');
    return { ok: problems.length === 0, problems, warnings };
  }

  private controlApi(): ControlApi {
    return {
      health: () => this.healthCheck(),
      metrics: () => this.metrics(),
      status: () => this.status(),
      blocks: () => (this.pipeline ? this.blockControl(this.pipeline) : undefined),
    };
  }

  private blockControl(pipeline: LocalPipeline): BlockControl {
    return {
      list: () => pipeline.list(),
      history: (target) => pipeline.history(target),
      unblock: async (target, by) => {
        const lifted = await pipeline.unblock(target, by);
        if (lifted) this.logger.info('unblocked', { target, requestedBy: by });
        return lifted;
      },
      block: async (target, opts) => {
        const decision = await pipeline.block(target, opts);
        if (decision.action === 'refused') this.counts.refused++;
        if (decision.action === 'block') this.counts.blocks++;
        this.logger.info('manual block', { target, requestedBy: opts.requestedBy, action: decision.action, why: decision.why });
        return decision;
      },
    };
  }

  private async startPublishers(): Promise<void> {
    if (this.options.publishers) this.publishers = this.options.publishers;
    else {
      const bridges = this.config.sinks.filter((s) => s.type === 'eventbridge').length;
      this.publishers = this.config.sinks.map((sink, index) => {
        switch (sink.type) {
          case 'stdout':
            return new StdoutPublisher();
          case 'file':
            return new FilePublisher(sink.path, this.logger);
          case 'eventbridge': {
            const base = spoolDirectory(this.config);
            const directory = bridges > 1 ? join(base, `${index}-${sink.busName.replace(/[^A-Za-z0-9._-]/g, '_').slice(-64)}`) : base;
            const region = sink.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION;
            const client = this.options.eventBridgeClient?.(sink) ?? eventBridgeClient({ ...(region ? { region } : {}), ...(sink.endpoint ? { endpoint: sink.endpoint } : {}) });
            return new EventBridgePublisher({
              client,
              busName: sink.busName,
              spool: new Spool({ directory, maxBytes: this.config.spool.maxBytes, logger: this.logger }),
              logger: this.logger,
              ...(this.options.backoff ? { backoffBaseMs: this.options.backoff.baseMs, backoffMaxMs: this.options.backoff.maxMs } : {}),
            });
          }
        }
      });
    }
    for (const publisher of this.publishers) await publisher.start();
  }

  private async startEnforcement(own: string[]): Promise<void> {
    const settings = this.config.enforce.nftables;
    if (!settings.enabled) return;
    const guard = NeverBlockGuard.from({
      ...this.config.guard,
      // never block this host's own addresses, whatever the guard says
      protectedCidrs: [...this.config.guard.protectedCidrs, ...own.filter((a) => tryParseCidr(a) !== undefined)],
    });
    const store = new FileStore(this.config.stateDirectory);
    await store.load();
    const available =
      this.options.enforcer === null
        ? { ok: false as const, why: 'no enforcer given' }
        : this.options.enforcer
          ? { ok: true as const }
          : await NftEnforcer.available();
    let enforcer: Enforcer | undefined;
    if (available.ok) {
      enforcer = this.options.enforcer ?? new NftEnforcer();
      await enforcer.ensure();
      this.enforcement = 'nftables';
    } else {
      this.enforcement = 'log-only';
      this.logger.warn(`enforcement is LOG-ONLY: ${available.why}. Blocks are decided and recorded in ${this.config.stateDirectory}, but nothing is dropped.`, {
        why: available.why,
      });
    }
    this.pipeline = new LocalPipeline({ store, ...(enforcer ? { enforcer } : {}), policy: settings.policy, guard, logger: (line) => this.logger.line(line) });
    await this.pipeline.restore();
  }

  private async startListeners(): Promise<ListenerReport> {
    const config = this.config;
    const tcp = config.tcpPorts === ALL_UNUSED ? [] : config.tcpPorts;
    const udp = config.udpPorts === ALL_UNUSED ? [] : config.udpPorts;
    this.decoys = new DecoyListeners({
      addresses: config.listen,
      tcpPorts: tcp,
      udpPorts: udp,
      banner: (port) => bannerFor(config, port),
      maxSockets: config.limits.maxSockets,
      socketTimeoutMs: config.limits.socketTimeoutMs,
      maxReadBytes: config.limits.maxReadBytes,
      udpRepliesPerSecond: config.limits.udpRepliesPerSecond,
      onHit: (hit) => this.aggregator?.add(this.echo('socket', hit) ? { ...hit, echo: true } : hit),
      logger: this.logger,
    });
    return this.decoys.start();
  }

  private async startDetector(listeners: ListenerReport, own: string[]): Promise<void> {
    const config = this.config;
    if (!config.stealth) return;
    const available = this.options.kernelDetector ? { ok: true as const } : await KernelDetector.available();
    if (!available.ok) {
      this.stealthState = 'unavailable';
      const needsKernel = [config.tcpPorts, config.udpPorts].filter((p) => p === ALL_UNUSED).length;
      if (needsKernel) throw new Error(`"${ALL_UNUSED}" needs kernel detection, which is unavailable here: ${available.why}`);
      this.logger.warn(`stealth detection unavailable (${available.why}): only completed TCP connections and UDP datagrams are seen`, { why: available.why });
      return;
    }
    const policy: PolicySettings = config.enforce.nftables.policy;
    // Kernel-speed blocking on the first decoy packet rests on an unverified source (a SYN can be
    // forged), so it follows the policy's spoof guard: only with blockUnverified.
    const kill = this.enforcement === 'nftables' && policy.blockUnverified ? ttlSecondsFor(1, policy) : undefined;
    const detectorOptions: KernelDetectorOptions = {
      // ports a service holds were skipped by the listeners: the kernel must not watch them either
      tcpPorts: config.tcpPorts === ALL_UNUSED ? ALL_UNUSED : listeners.tcp,
      udpPorts: config.udpPorts === ALL_UNUSED ? ALL_UNUSED : listeners.udp,
      exempt: [...config.ignore, ...own, ...config.guard.allowlist, ...config.guard.protectedCidrs],
      ...(kill !== undefined ? { killTtlSeconds: kill } : {}),
      // what the in-kernel block must never add: the never-block guard, this host included
      killGuard: killGuardFrom({ ...config.guard, protectedCidrs: [...config.guard.protectedCidrs, ...own] }),
      excludePorts: {
        tcp: config.excludePorts.tcp === ALL_UNUSED ? [] : config.excludePorts.tcp,
        udp: config.excludePorts.udp === ALL_UNUSED ? [] : config.excludePorts.udp,
      },
    };
    this.detector = this.options.kernelDetector?.(detectorOptions) ?? new KernelDetector(detectorOptions);
    this.detector.on('probe', (probe: KernelProbe) => this.onKernelProbe(probe));
    this.detector.on('error', (error: unknown) => {
      this.counts.detectorErrors++;
      this.logger.error('kernel detector error', { error: errorText(error) });
    });
    await this.detector.start();
    this.stealthState = 'on';
    if (kill !== undefined) this.logger.info(`kernel blocks a source on its first decoy packet for ${kill}s (policy.blockUnverified is on)`);
  }

  private onKernelProbe(probe: KernelProbe): void {
    this.counts.kernelProbes++;
    if (probe.blockedByKernel) {
      this.kernelBlocked.delete(probe.source);
      this.kernelBlocked.set(probe.source, probe.at);
      if (this.kernelBlocked.size > this.config.limits.maxTrackedSources) this.kernelBlocked.delete(this.kernelBlocked.keys().next().value!);
    }
    // The kernel reports `connect` only for a completed three-way handshake (conntrack
    // established): the source address is proven, as with a socket accept.
    const hit: Hit = { source: probe.source, protocol: probe.protocol, port: probe.port, kind: probe.kind, handshake: probe.kind === 'connect', at: probe.at };
    this.aggregator?.add(this.echo('kernel', hit) ? { ...hit, echo: true } : hit);
  }

  /**
   * With stealth on, one connect is seen up to three times: the kernel's SYN, the kernel's
   * completed handshake and the socket's accept (one datagram: twice as udp). Every later view
   * adds its kind to the event but is not another hit for the trigger. True when `hit` is such a
   * later view of an exchange already counted.
   */
  private echo(side: 'socket' | 'kernel', hit: Hit): boolean {
    if (!this.detector) return false;
    const pairs = hit.protocol === 'udp' ? hit.kind === 'udp' : hit.kind === 'connect' || (side === 'kernel' && hit.kind === 'syn');
    if (!pairs) return false;
    const view = `${side}:${hit.kind}`;
    const key = `${hit.protocol}|${tryCanonicalAddress(hit.source) ?? hit.source}|${hit.port}`;
    const seen = this.exchanges.get(key);
    const echo = seen !== undefined && !seen.views.has(view) && Math.abs(hit.at - seen.at) <= ECHO_WINDOW_MS;
    if (echo) {
      seen.views.add(view);
      return true;
    }
    this.exchanges.delete(key);
    this.exchanges.set(key, { views: new Set([view]), at: hit.at });
    if (this.exchanges.size > MAX_EXCHANGES) this.exchanges.delete(this.exchanges.keys().next().value!);
    return false;
  }

  private dispatch(event: ScanDetected): void {
    const id = randomUUID();
    this.emit('detection', event, id);
    this.logger.info('scan detected', {
      attacker: event.attacker,
      probes: event.probes.length,
      probeCount: event.probeCount,
      handshake: event.handshake,
      ports: event.probes.map((p) => `${p.protocol}/${p.port}/${p.kind}`).slice(0, 8),
    });
    for (const publisher of this.publishers) {
      this.track(
        publisher.publish(event, id).then((kept) => {
          if (!kept) this.counts.publishFailures++;
        }),
      );
    }
    if (this.pipeline) {
      const kernelAt = this.kernelBlocked.get(event.attacker);
      if (kernelAt !== undefined) this.kernelBlocked.delete(event.attacker);
      const policy = this.config.enforce.nftables.policy;
      const handleOpts = kernelAt !== undefined ? { kernelBlockTtlSeconds: ttlSecondsFor(1, policy) } : {};
      this.track(
        this.pipeline.handle(event, id, handleOpts).then(
          (decision) => {
            if (decision.action === 'block') this.counts.blocks++;
            if (decision.action === 'refused') this.counts.refused++;
            this.logger.info(decision.action === 'block' ? 'blocked' : `block decision: ${decision.action}`, {
              attacker: event.attacker,
              action: decision.action,
              why: decision.why,
              enforcement: this.enforcement,
            });
            this.emit('decision', event, decision);
          },
          (error: unknown) => {
            this.counts.pipelineErrors++;
            this.logger.error('local pipeline failed on an event', { attacker: event.attacker, error: errorText(error) });
          },
        ),
      );
    }
  }

  private expiring = false;

  private expire(): void {
    const pipeline = this.pipeline;
    if (!pipeline || this.expiring) return;
    this.expiring = true;
    this.track(
      pipeline
        .expire()
        .finally(() => (this.expiring = false))
        .then(
        (lifted) => {
          if (lifted) this.logger.info('blocks expired', { lifted });
        },
        (error: unknown) => this.logger.error('expiry failed', { error: errorText(error) }),
      ),
    );
  }

  private track(promise: Promise<unknown>): void {
    const tracked = promise.catch(() => undefined).finally(() => this.inflight.delete(tracked));
    this.inflight.add(tracked);
  }
}

function withDeadline(promise: Promise<unknown>, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    void promise.finally(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
