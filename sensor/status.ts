/**
 * What the agent says about itself: GET /status (JSON), GET /metrics (Prometheus) and GET /healthz
 * (sensor/health.ts serves them; `portsnare status` reads /status). All three are pure functions
 * of one AgentSnapshot the agent takes per request; each sink contributes its own part through
 * Publisher.describe(), so nothing here knows which kinds of sink exist. The Prometheus metric
 * names of the agent live here and nowhere else.
 */
import type { AggregatorStats } from './aggregate/aggregator';
import { ALL_UNUSED, type AgentConfig } from './config';
import type { Metric, Sample } from './health';
import { compactPorts, type ListenerReport, type ListenerStats } from './listeners';
import { ADDRESS_SET_SIZE } from './local/nft';
import type { PublisherReport, SinkMetrics } from './publish/types';

export type EnforcementMode = 'off' | 'nftables' | 'log-only';

/** /metrics names at most this many blocks' drop counters (one series per target). */
export const BLOCK_DROPS_IN_METRICS = 100;
export type StealthState = 'off' | 'on' | 'unavailable';

/** The agent's own counters (the aggregator, listeners and sinks keep theirs). */
export interface AgentCounts {
  kernelProbes: number;
  /** sources the kernel quarantined (first forgeable decoy packet) */
  kernelQuarantines?: number;
  /** sources the kernel blocked itself (proof, or the first packet with blockUnverified) */
  kernelBlocks?: number;
  /** connections the redirect socket accepted (all-unused, redirectPort) */
  redirected?: number;
  /** local block decisions (new offences), from events and the control API */
  blocks: number;
  /** blocks refused by the never-block guard or the circuit breaker */
  refused: number;
}

/** One moment of the agent. */
export interface AgentSnapshot {
  readonly config: AgentConfig;
  readonly sensorId: string;
  readonly uptimeSeconds: number;
  /** what start() bound; undefined before it finished */
  readonly listeners?: ListenerReport;
  readonly stealth: StealthState;
  readonly enforcement: EnforcementMode;
  readonly aggregator?: AggregatorStats;
  readonly sockets?: ListenerStats;
  readonly sinks: readonly PublisherReport[];
  /** the block store's health (undefined without local enforcement) */
  readonly store?: { readonly ok: boolean; readonly problem?: string; readonly writeErrors: number };
  /** local blocks in force (0 without local enforcement) */
  readonly blocksActive: number;
  /** what the active blocks' nftables elements dropped, most packets first (bounded) */
  readonly blockDrops?: ReadonlyArray<{ readonly target: string; readonly packets: number; readonly bytes: number }>;
  readonly breakerOpen: boolean;
  readonly counts: Readonly<AgentCounts>;
  /** bounded structures, how full: tracked sources, sockets, detections kept, kernel sets */
  readonly usage?: ReadonlyArray<{ readonly name: string; readonly used: number; readonly limit: number }>;
}

export interface HealthReport {
  ok: boolean;
  problems: string[];
  warnings: string[];
}

function watched(config: AgentConfig, which: 'tcp' | 'udp', listeners?: ListenerReport): string {
  const ports = which === 'tcp' ? config.tcpPorts : config.udpPorts;
  return ports === ALL_UNUSED ? ALL_UNUSED : compactPorts(listeners?.[which] ?? []);
}

/** GET /status */
export function agentStatus(s: AgentSnapshot): Record<string, unknown> {
  return {
    sensorId: s.sensorId,
    uptimeSeconds: s.uptimeSeconds,
    watching: {
      tcp: watched(s.config, 'tcp', s.listeners),
      udp: watched(s.config, 'udp', s.listeners),
      skipped: (s.listeners?.skipped ?? []).map((k) => `${k.protocol}/${k.port} on ${k.address}: ${k.why}`),
      listen: s.config.listen,
    },
    stealth: s.stealth,
    enforcement: s.enforcement,
    trigger: s.config.trigger,
    dedupeSeconds: s.config.dedupeSeconds,
    aggregator: s.aggregator,
    sockets: s.sockets,
    kernelProbes: s.counts.kernelProbes,
    sinks: s.sinks.map((sink) => ({ name: sink.name, ...sink.status })),
    blocksActive: s.blocksActive,
    circuitBreakerOpen: s.breakerOpen,
    ...(s.store ? { store: s.store } : {}),
    usage: s.usage ?? [],
  };
}

/** GET /healthz: a problem makes it 503 (degraded); warnings are shown but keep it 200. */
export function agentHealth(s: AgentSnapshot): HealthReport {
  const watching = (s.listeners?.tcp.length ?? 0) + (s.listeners?.udp.length ?? 0);
  const problems = [
    ...(watching === 0 && s.stealth !== 'on' ? ['no decoy port is watched'] : []),
    ...(s.store?.problem !== undefined ? [s.store.problem] : []),
    ...s.sinks.flatMap((sink) => sink.health.problems),
  ];
  const warnings = s.sinks.flatMap((sink) => sink.health.warnings);
  if (s.enforcement === 'log-only') warnings.push('enforcement is log-only: nftables is not available');
  if (s.stealth === 'unavailable') warnings.push('stealth detection unavailable: sockets only');
  if (s.breakerOpen) warnings.push('circuit breaker open: more new blocks this minute than burstLimitPerMinute; new blocks are refused until the minute drains');
  return { ok: problems.length === 0, problems, warnings };
}

const NO_STATS: AggregatorStats = { hits: 0, ignored: 0, own: 0, events: 0, tracked: 0, evicted: 0, invalid: 0 };

/** GET /metrics */
export function agentMetrics(s: AgentSnapshot): Metric[] {
  const agg = s.aggregator ?? NO_STATS;
  const sock = s.sockets;
  const one = (value: number): Sample[] => [{ value }];
  /** one sample per sink that reports `key` */
  const perSink = (key: keyof SinkMetrics): Sample[] =>
    s.sinks.flatMap((sink) => {
      const value = sink.metrics[key];
      return value === undefined ? [] : [{ labels: { sink: sink.name }, value }];
    });
  return [
    { name: 'portsnare_up', help: 'The agent is running.', type: 'gauge', samples: one(1) },
    { name: 'portsnare_store_healthy', help: 'The block store accepted its last write (1), or its last write or fsync failed (0); 1 without local enforcement.', type: 'gauge', samples: one(s.store && !s.store.ok ? 0 : 1) },
    { name: 'portsnare_store_write_errors_total', help: 'Block store writes and fsyncs that failed.', type: 'counter', samples: one(s.store?.writeErrors ?? 0) },
    { name: 'portsnare_probes_total', help: 'Probes seen (socket hits and kernel probes), before filtering.', type: 'counter', samples: one(agg.hits) },
    { name: 'portsnare_probes_kernel_total', help: 'Probes reported by the kernel detector.', type: 'counter', samples: one(s.counts.kernelProbes) },
    { name: 'portsnare_kernel_quarantines_total', help: 'Sources the kernel held for quarantine.seconds on a first forgeable decoy packet.', type: 'counter', samples: one(s.counts.kernelQuarantines ?? 0) },
    { name: 'portsnare_kernel_blocks_total', help: 'Sources the kernel blocked itself (a completed handshake; the first packet with blockUnverified).', type: 'counter', samples: one(s.counts.kernelBlocks ?? 0) },
    { name: 'portsnare_redirected_connections_total', help: 'Connections to unused ports the redirect socket accepted (redirectPort).', type: 'counter', samples: one(s.counts.redirected ?? 0) },
    {
      name: 'portsnare_probes_ignored_total',
      help: 'Probes dropped before aggregation, by why.',
      type: 'counter',
      samples: [
        { labels: { reason: 'ignore' }, value: agg.ignored },
        { labels: { reason: 'own_address' }, value: agg.own },
      ],
    },
    { name: 'portsnare_detections_total', help: 'Scan Detected events emitted.', type: 'counter', samples: one(agg.events) },
    { name: 'portsnare_events_published_total', help: 'Events a sink delivered (written, or accepted by PutEvents).', type: 'counter', samples: perSink('published') },
    { name: 'portsnare_events_dropped_total', help: 'Events a sink could not keep (spool full, rejected as malformed).', type: 'counter', samples: perSink('dropped') },
    { name: 'portsnare_publish_errors_total', help: 'Failed delivery attempts (retried).', type: 'counter', samples: perSink('errors') },
    { name: 'portsnare_spool_depth_events', help: 'Events waiting in the disk spool.', type: 'gauge', samples: perSink('spoolDepth') },
    { name: 'portsnare_spool_bytes', help: 'Bytes the disk spool uses.', type: 'gauge', samples: perSink('spoolBytes') },
    { name: 'portsnare_spool_max_bytes', help: 'The spool bound (spool.maxBytes).', type: 'gauge', samples: perSink('spoolMaxBytes') },
    { name: 'portsnare_spool_full', help: '1 while the spool is full and refuses events.', type: 'gauge', samples: perSink('spoolFull') },
    { name: 'portsnare_spool_refused_total', help: 'Events refused because the spool was full.', type: 'counter', samples: perSink('spoolRefused') },
    { name: 'portsnare_eventbridge_throttles_total', help: 'ThrottlingException answers from PutEvents.', type: 'counter', samples: perSink('throttles') },
    { name: 'portsnare_sockets_open', help: 'Decoy connections open now.', type: 'gauge', samples: one(sock?.socketsOpen ?? 0) },
    { name: 'portsnare_connects_reset_before_accept_total', help: 'Decoy connections reset before accept whose source only the saved SYN named (connect scans).', type: 'counter', samples: one(sock?.resetBeforeAccept ?? 0) },
    { name: 'portsnare_sockets_rejected_total', help: 'Decoy connections closed at accept because maxSockets were open.', type: 'counter', samples: one(sock?.socketsRejected ?? 0) },
    {
      name: 'portsnare_listeners',
      help: 'Decoy sockets bound, by protocol.',
      type: 'gauge',
      samples: [
        { labels: { protocol: 'tcp' }, value: sock?.tcpListeners ?? 0 },
        { labels: { protocol: 'udp' }, value: sock?.udpListeners ?? 0 },
      ],
    },
    { name: 'portsnare_udp_replies_suppressed_total', help: 'UDP banner replies not sent (rate limit).', type: 'counter', samples: one(sock?.udpRepliesSuppressed ?? 0) },
    { name: 'portsnare_tracked_sources', help: 'Sources the aggregator holds in memory.', type: 'gauge', samples: one(agg.tracked) },
    { name: 'portsnare_tracked_sources_evicted_total', help: 'Sources dropped to keep memory bounded (limits.maxTrackedSources).', type: 'counter', samples: one(agg.evicted) },
    { name: 'portsnare_blocks_active', help: 'Local nftables blocks in force.', type: 'gauge', samples: one(s.blocksActive) },
    {
      name: 'portsnare_block_dropped_packets',
      help: `Packets one active block's nftables element dropped (its element counter), per target; the ${BLOCK_DROPS_IN_METRICS} blocks that dropped most.`,
      type: 'counter',
      samples: (s.blockDrops ?? []).map((d) => ({ labels: { target: d.target }, value: d.packets })),
    },
    {
      name: 'portsnare_block_dropped_bytes',
      help: `Bytes one active block's nftables element dropped, per target; the same blocks as portsnare_block_dropped_packets.`,
      type: 'counter',
      samples: (s.blockDrops ?? []).map((d) => ({ labels: { target: d.target }, value: d.bytes })),
    },
    { name: 'portsnare_circuit_breaker_open', help: '1 while the burst circuit breaker refuses new blocks (more than burstLimitPerMinute in a minute).', type: 'gauge', samples: one(s.breakerOpen ? 1 : 0) },
    { name: 'portsnare_blocks_total', help: 'Local block decisions (new offences).', type: 'counter', samples: one(s.counts.blocks) },
    { name: 'portsnare_blocks_refused_total', help: 'Blocks refused by the never-block guard or the circuit breaker.', type: 'counter', samples: one(s.counts.refused) },
    { name: 'portsnare_enforcement_log_only', help: '1 when enforcement is configured but nftables is unavailable (log only).', type: 'gauge', samples: one(s.enforcement === 'log-only' ? 1 : 0) },
    { name: 'process_resident_memory_bytes', help: 'Resident memory of the agent process.', type: 'gauge', samples: one(process.memoryUsage().rss) },
  ];
}

export interface Usage {
  readonly name: string;
  readonly used: number;
  readonly limit: number;
}

/** Each bounded structure of the agent against its limit (the config's `limits`, the kernel sets' size). */
export function usageOf(
  limits: AgentConfig['limits'],
  now: { tracked: number; socketsOpen: number; detections: { seen: number; capacity: number }; kernelSets?: { ipv4: number; ipv6: number } },
): Usage[] {
  const out: Usage[] = [
    { name: 'tracked sources', used: now.tracked, limit: limits.maxTrackedSources },
    { name: 'decoy sockets open', used: now.socketsOpen, limit: limits.maxSockets },
    { name: 'detections kept', used: Math.min(now.detections.seen, now.detections.capacity), limit: now.detections.capacity },
  ];
  if (now.kernelSets) {
    out.push({ name: 'kernel set blocked4', used: now.kernelSets.ipv4, limit: ADDRESS_SET_SIZE }, { name: 'kernel set blocked6', used: now.kernelSets.ipv6, limit: ADDRESS_SET_SIZE });
  }
  return out;
}
