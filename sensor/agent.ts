/**
 * The agent: orchestration only. Decoy listeners and (with `stealth`) the kernel detector feed the
 * aggregator; each `Scan Detected` it emits goes to every sink and, with `enforce.nftables`, to
 * the local pipeline (decide → file store → nftables). The loopback server (sensor/health.ts)
 * shows it: /status, /metrics and /healthz are built in sensor/status.ts from snapshot(), each
 * sink reporting itself through Publisher.describe(). See ARCHITECTURE.md ("sensor/").
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
import type { ScanDetected } from '../core/event';
import { Aggregator } from './aggregate/aggregator';
import { EchoFilter } from './aggregate/echo';
import { ownAddresses } from './aggregate/own-addresses';
import { ALL_UNUSED, bannerFor, controlSocketPath, controlTokenPath, loadConfigFile, type AgentConfig } from './config';
import { controlToken } from './control-token';
import { HealthServer, type AllowControl, type ControlApi, type Metric } from './health';
import { KernelDetector, type KernelDetectorOptions, type KernelProbe } from './kernel/detector';
import { readKernelBlocks, type KernelBlocks } from './kernel/sets';
import { DecoyListeners, compactPorts, type Hit, type ListenerReport } from './listeners';
import { RedirectListener } from './listeners/redirect';
import { LocalEnforcement } from './local/enforcement';
import type { Enforcer } from './local/pipeline';
import { DEFAULT_DETECTIONS_KEPT, DetectionRing } from './detections';
import { killStaleNflogReaders } from './kernel/nflog';
import { DEFAULT_NFLOG_GROUP } from './kernel/rules';
import { errorText, jsonLogger, type Logger } from './log';
import { assertWritableState } from './state-dir';
import { RuntimeAllowlist, allowlistControl, guardWith } from './allowlist';
import { publishersFor, type SinkOptions } from './publish/sinks';
import type { Publisher } from './publish/types';
import { agentHealth, BLOCK_DROPS_IN_METRICS, agentMetrics, agentStatus, type AgentSnapshot, type EnforcementMode, type StealthState, type Usage, usageOf } from './status';
import { kernelDetectorOptions, redirectPortOf } from './stealth';

/** how long a first event from a kernel SYN waits for the handshake of that connect */
const PROOF_GRACE_MS = 1000;

/** What the agent needs of a kernel detector (KernelDetector, or a stand-in in tests). */
export interface KernelDetectorLike {
  start(): Promise<void>;
  stop(): Promise<void>;
  // the EventEmitter signature, so KernelDetector fits as it is
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  on(event: 'probe' | 'error', listener: (...args: any[]) => void): unknown;
}

export interface AgentOptions {
  readonly config: AgentConfig;
  readonly logger?: Logger;
  /** replaces the sinks of the config (tests, benchmarks) */
  readonly publishers?: Publisher[];
  /** builds the EventBridge client of an `eventbridge` sink (tests point it at a local endpoint) */
  readonly eventBridgeClient?: SinkOptions['eventBridgeClient'];
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
  readonly backoff?: SinkOptions['backoff'];
  /** the config file, re-read by reload() (SIGHUP, POST /reload) */
  readonly configPath?: string;
  /** how many recent detections GET /detections keeps (default 1000) */
  readonly detectionsKept?: number;
  /**
   * reads the kernel's blocked sets at start (default: readKernelBlocks with the default
   * enforcer; none when an enforcer is handed in)
   */
  readonly readKernelBlocks?: () => Promise<KernelBlocks>;
}

export interface AgentStartReport {
  readonly sensorId: string;
  readonly listeners: ListenerReport;
  readonly stealth: StealthState;
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
  /** the config in effect (reload() replaces what can change at run time) */
  config: AgentConfig;
  private readonly logger: Logger;
  private sensorId = '';
  private aggregator?: Aggregator;
  private decoys?: DecoyListeners;
  private detector?: KernelDetectorLike;
  /** with a kernel detector: which hits are later views of one exchange */
  private echoes?: EchoFilter;
  private publishers: Publisher[] = [];
  private local?: LocalEnforcement;
  private server?: HealthServer;
  private timers: NodeJS.Timeout[] = [];
  private readonly inflight = new Set<Promise<unknown>>();
  private report?: AgentStartReport;
  private stealthState: StealthState = 'off';
  private startedAt = 0;
  private stopped?: Promise<void>;
  private kernelProbes = 0;
  private readonly detections: DetectionRing;
  private allowlist?: RuntimeAllowlist;
  /** guard of the config file, before the runtime allowlist is merged in */
  private baseGuard?: AgentConfig['guard'];
  private kernelQuarantines = 0;
  private kernelBlocks = 0;
  private redirect?: RedirectListener;

  constructor(private readonly options: AgentOptions) {
    super();
    this.config = options.config;
    this.detections = new DetectionRing(options.detectionsKept ?? DEFAULT_DETECTIONS_KEPT);
    this.logger = options.logger ?? jsonLogger(options.config.logLevel);
  }

  get healthPort(): number | undefined {
    return this.report?.healthPort;
  }

  private get enforcement(): EnforcementMode {
    return this.local?.mode ?? 'off';
  }

  async start(): Promise<AgentStartReport> {
    // before anything starts: an unwritable store or spool would keep blocks in memory only
    assertWritableState(this.config);
    // the operator's runtime allowlist (portsnare allow) joins guard.allowlist
    this.allowlist = new RuntimeAllowlist(this.config.stateDirectory);
    this.baseGuard = this.config.guard;
    this.config = { ...this.config, guard: guardWith(this.config, this.allowlist.list()) };
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
      // with the kernel watching, one connect is a SYN first and its handshake a moment later: one event
      ...(config.stealth ? { proofGraceMs: PROOF_GRACE_MS } : {}),
      onEvent: (event) => this.dispatch(event),
      onInvalid: (error, candidate) => this.logger.error('built an invalid event (bug), not published', { error, candidate }),
    });

    // a kernel reader left behind by a killed agent holds the NFLOG group: end it first
    if (config.stealth) {
      for (const stale of await killStaleNflogReaders(DEFAULT_NFLOG_GROUP)) this.logger.warn('ended a stale tcpdump reader of our NFLOG group (left by an agent killed with SIGKILL)', { pid: stale });
    }
    const stillStarting = (): void => {
      if (this.stopped) throw new Error('stopped while starting');
    };
    try {
      this.publishers = this.options.publishers ?? (await publishersFor(config, { ...this.options, logger: this.logger, sensorId: this.sensorId }));
      for (const publisher of this.publishers) await publisher.start();
      stillStarting();
      this.local = await LocalEnforcement.open({ config, own: own(), logger: this.logger, ...(this.options.enforcer !== undefined ? { enforcer: this.options.enforcer } : {}) });
      stillStarting();
      await this.adoptKernelBlocks();
      const listeners = await this.startListeners();
      stillStarting();
      await this.startDetector(listeners, own());
      stillStarting();
      if (listeners.tcp.length + listeners.udp.length === 0 && this.stealthState !== 'on') {
        throw new Error('no decoy port could be bound and no kernel detection runs: nothing to watch (see the "skipped" log lines)');
      }
      let healthPort: number | undefined;
      const socket = controlSocketPath(config);
      const tokenFile = controlTokenPath(config);
      if (config.health.enabled || socket !== undefined) {
        this.server = new HealthServer(this.controlApi(), {
          host: config.health.host,
          port: config.health.port,
          logger: this.logger,
          tcp: config.health.enabled,
          ...(socket !== undefined ? { socket: { path: socket, group: config.control.group } } : {}),
          ...(tokenFile !== undefined && config.health.enabled ? { token: controlToken(tokenFile), tokenFile } : {}),
        });
        const port = await this.server.start();
        if (config.health.enabled) healthPort = port;
      }
      stillStarting();
      this.timers.push(
        setInterval(() => this.aggregator?.tick(), config.stealth ? 250 : 1000),
        setInterval(() => this.aggregator?.setOwnAddresses(own()), 30_000),
      );
      const local = this.local;
      if (local) this.timers.push(setInterval(() => this.track(local.expire()), 1000));
      if (local?.digest) this.timers.push(setInterval(() => this.track(local.runDigest()), 30_000));
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
        control: controlSocketPath(config) ?? 'off',
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
    await Promise.allSettled([this.decoys?.stop(), this.detector?.stop(), this.redirect?.stop()]);
    this.aggregator?.flush();
    await withDeadline(Promise.allSettled([...this.inflight]), Math.max(0, until - Date.now()));
    await Promise.allSettled(this.publishers.map((p) => p.stop(Math.max(0, until - Date.now() - 100))));
    await this.server?.stop();
    this.logger.info('agent stopped', { uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000) });
  }

  /**
   * Re-reads the config file (SIGHUP, POST /reload) without dropping a block: `ignore` and
   * `guard` apply at once (the kernel's exempt sets too, and active blocks the new guard protects
   * are lifted); any other changed key is reported as needing a restart. An invalid file changes
   * nothing and throws naming the key.
   */
  async reload(): Promise<{ applied: string[]; restartNeeded: string[]; lifted: string[] }> {
    const path = this.options.configPath;
    if (!path) throw new Error('no config file to re-read: the agent was started without --config');
    const loaded = loadConfigFile(path);
    assertWritableState(loaded);
    const next: AgentConfig = { ...loaded, guard: guardWith(loaded, this.allowlist?.list() ?? []) };
    this.baseGuard = loaded.guard;
    const changed = (Object.keys(next) as Array<keyof AgentConfig>).filter((key) => JSON.stringify(next[key]) !== JSON.stringify(this.config[key]));
    const live = new Set<keyof AgentConfig>(['ignore', 'guard']);
    const applied = changed.filter((key) => live.has(key));
    const restartNeeded = changed.filter((key) => !live.has(key));
    this.config = { ...this.config, ignore: next.ignore, guard: next.guard };
    this.aggregator?.setIgnore(next.ignore);
    const lifted = await this.applyGuard('reload: never-block rule');
    this.logger.info('config reloaded', { path, applied, restartNeeded, lifted });
    return { applied, restartNeeded, lifted };
  }

  /** The guard in this.config, applied: the local pipeline (lifting what it now protects) and the kernel's exempt sets. */
  private async applyGuard(by: string): Promise<string[]> {
    const own = (this.options.ownAddresses ?? ((): string[] => ownAddresses()))();
    const lifted = (await this.local?.setGuard(this.config.guard, own, by)) ?? [];
    const detector = this.detector as (KernelDetectorLike & { updateExempt?: (exempt: readonly string[]) => Promise<void> }) | undefined;
    if (detector?.updateExempt && this.report) await detector.updateExempt(kernelDetectorOptions(this.config, this.report.listeners, own, this.enforcement === 'nftables').exempt);
    return lifted;
  }

  /** The runtime allowlist behind GET/POST/DELETE /allow. */
  private allowControl(): AllowControl {
    const file = (): RuntimeAllowlist => this.allowlist ?? new RuntimeAllowlist(this.config.stateDirectory);
    const rebuild = async (by: string): Promise<string[]> => {
      const base = this.baseGuard ?? this.options.config.guard;
      this.config = { ...this.config, guard: guardWith({ ...this.config, guard: base }, file().list()) };
      return this.applyGuard(by);
    };
    return allowlistControl(file, rebuild, (message, attributes) => this.logger.info(message, attributes));
  }

  /** One moment of the agent, what /status, /metrics and /healthz are built from (sensor/status.ts). */
  snapshot(): AgentSnapshot {
    return {
      config: this.config,
      sensorId: this.sensorId,
      uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000),
      ...(this.report ? { listeners: this.report.listeners } : {}),
      stealth: this.stealthState,
      enforcement: this.enforcement,
      ...(this.aggregator ? { aggregator: this.aggregator.stats() } : {}),
      ...(this.decoys ? { sockets: this.decoys.stats() } : {}),
      sinks: this.publishers.map((p) => p.describe()),
      ...(this.local ? { store: this.local.storeHealth() } : {}),
      blocksActive: this.local?.activeBlocks() ?? 0,
      ...(this.local ? { blockDrops: this.local.droppedTop(BLOCK_DROPS_IN_METRICS) } : {}),
      breakerOpen: this.local?.breakerOpen() ?? false,
      counts: { kernelProbes: this.kernelProbes, kernelQuarantines: this.kernelQuarantines, kernelBlocks: this.kernelBlocks, redirected: this.redirect?.accepted ?? 0, blocks: this.local?.counts.blocks ?? 0, refused: this.local?.counts.refused ?? 0 },
      usage: this.usage(),
    };
  }

  /** How full each bounded structure is (status: "sets against their limits"). */
  private usage(): Usage[] {
    return usageOf(this.config.limits, {
      tracked: this.aggregator?.stats().tracked ?? 0,
      socketsOpen: this.decoys?.stats().socketsOpen ?? 0,
      detections: this.detections,
      ...(this.local?.mode === 'nftables' ? { kernelSets: this.local.addressBlocks() } : {}),
    });
  }

  status(): Record<string, unknown> {
    return agentStatus(this.snapshot());
  }

  metrics(): Metric[] {
    return agentMetrics(this.snapshot());
  }

  private controlApi(): ControlApi {
    return {
      health: () => agentHealth(this.snapshot()),
      metrics: () => this.metrics(),
      status: () => this.status(),
      blocks: () => this.local?.control(),
      reload: () => this.reload(),
      allow: () => this.allowControl(),
      detections: (since: number) => ({ seen: this.detections.seen, kept: this.detections.capacity, enforcement: this.enforcement, detections: this.detections.list(since) }),
    };
  }

  private async startListeners(): Promise<ListenerReport> {
    const config = this.config;
    this.decoys = new DecoyListeners({
      addresses: config.listen,
      tcpPorts: config.tcpPorts === ALL_UNUSED ? [] : config.tcpPorts,
      udpPorts: config.udpPorts === ALL_UNUSED ? [] : config.udpPorts,
      banner: (port) => bannerFor(config, port),
      maxSockets: config.limits.maxSockets,
      socketTimeoutMs: config.limits.socketTimeoutMs,
      maxReadBytes: config.limits.maxReadBytes,
      udpRepliesPerSecond: config.limits.udpRepliesPerSecond,
      onHit: (hit) => this.aggregator?.add(this.echoes?.mark('socket', hit) ?? hit),
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
    const detectorOptions = kernelDetectorOptions(config, listeners, own, this.enforcement === 'nftables');
    this.detector = this.options.kernelDetector?.(detectorOptions) ?? new KernelDetector(detectorOptions);
    this.echoes = new EchoFilter();
    this.detector.on('probe', (probe: KernelProbe) => this.onKernelProbe(probe));
    this.detector.on('error', (error: unknown) => this.logger.error('kernel detector error', { error: errorText(error) }));
    const redirectPort = redirectPortOf(config);
    if (redirectPort !== undefined && detectorOptions.redirectPort !== undefined) {
      // before the rules that lead to it: an accepted connection there is proof (a socket's accept)
      this.redirect = new RedirectListener({ port: redirectPort, onHit: (hit) => this.aggregator?.add(this.echoes?.mark('socket', hit) ?? hit) });
      await this.redirect.start();
    }
    await this.detector.start();
    this.stealthState = 'on';
    const q = detectorOptions.quarantineSeconds ?? 0;
    if (q > 0) this.logger.info(`kernel holds a source for ${q}s on its first forgeable decoy packet (quarantine), at most once per ${detectorOptions.quarantinePeriodSeconds}s`);
    const kill = detectorOptions.killTtlSeconds;
    if (kill !== undefined) this.logger.info(`kernel blocks a source on its first decoy packet for ${kill}s (policy.blockUnverified is on)`);
  }

  private onKernelProbe(probe: KernelProbe): void {
    this.kernelProbes++;
    // a quarantine is no block: the kernel budgets it (quarantinePerMinute = the policy's burst
    // limit); it is counted here, never against the pipeline's breaker, so a forger who trips
    // quarantines cannot stop proven sources from being blocked
    if (probe.quarantinedByKernel) this.kernelQuarantines++;
    if (probe.blockedByKernel) {
      this.kernelBlocks++;
      this.local?.noteKernelBlock(probe.source, probe.at);
    }
    // one packet, which may be forged: never proof (only a socket's accept is, docs/kernel.md)
    const hit: Hit = { source: probe.source, protocol: probe.protocol, port: probe.port, kind: probe.kind, handshake: false, at: probe.at };
    this.aggregator?.add(this.echoes?.mark('kernel', hit) ?? hit);
  }

  /** Records in the store the kernel blocks made while the agent was down (docs/kernel.md). */
  private async adoptKernelBlocks(): Promise<void> {
    const local = this.local;
    if (!local || local.mode !== 'nftables' || !this.config.stealth) return;
    const read = this.options.readKernelBlocks ?? (this.options.enforcer === undefined ? (): Promise<KernelBlocks> => readKernelBlocks() : undefined);
    if (!read) return;
    try {
      await local.adoptKernelBlocks((await read()).blocked);
    } catch (error) {
      this.logger.warn('could not read the kernel blocked sets at start', { error: errorText(error) });
    }
  }

  private dispatch(event: ScanDetected): void {
    const id = randomUUID();
    const entry = this.detections.add(event, id, Date.now());
    this.emit('detection', event, id);
    const ports = event.probes.map((p) => `${p.protocol}/${p.port}/${p.kind}`).slice(0, 8);
    this.logger.info('scan detected', { attacker: event.attacker, probes: event.probes.length, probeCount: event.probeCount, handshake: event.handshake, ports });
    // a sink counts what it could not keep (its describe())
    for (const publisher of this.publishers) this.track(publisher.publish(event, id));
    if (this.local) {
      const recorded = this.local.handle(event, id).then((decision) => {
        if (!decision) return;
        entry.outcome = decision.action;
        entry.why = decision.why;
        this.emit('decision', event, decision);
      });
      this.track(recorded);
    }
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

