/**
 * Proof of effect on the host: what each block's nftables element dropped, read from the
 * enforcer by LocalEnforcement, answered by the control API's /blocks, named in /metrics and
 * printed by `portsnare blocks`. The kernel side (real element counters) is
 * test/lab/ipv6-prefix.test.ts; here the enforcer is a fake that reports given counters.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { recordView } from '../../../bin/commands/agent-client';
import { blockJson, blocksTable } from '../../../bin/commands/blocks';
import type { BlockRecord } from '../../../core/policy';
import { type AgentConfig, parseConfigText } from '../../../sensor/config';
import { renderPrometheus } from '../../../sensor/health';
import { LocalEnforcement } from '../../../sensor/local/enforcement';
import type { KernelBlock } from '../../../sensor/local/nft';
import type { Enforcer } from '../../../sensor/local/pipeline';
import { memoryLogger } from '../../../sensor/log';
import { agentMetrics, type AgentSnapshot } from '../../../sensor/status';

class CountingEnforcer implements Enforcer {
  readonly elements = new Map<string, KernelBlock>();
  ensure(): Promise<void> {
    return Promise.resolve();
  }
  block(target: string, expiresAt: number): Promise<void> {
    return this.blockMany([{ target, expiresAt }]);
  }
  blockMany(entries: ReadonlyArray<{ target: string; expiresAt: number }>): Promise<void> {
    for (const e of entries) this.elements.set(e.target, { target: e.target, expiresAt: e.expiresAt, dropped: { packets: 0, bytes: 0 } });
    return Promise.resolve();
  }
  unblock(target: string): Promise<void> {
    this.elements.delete(target);
    return Promise.resolve();
  }
  list(): Promise<KernelBlock[]> {
    return Promise.resolve([...this.elements.values()]);
  }
  /** the kernel dropped packets from `target` */
  drop(target: string, packets: number, bytes: number): void {
    const e = this.elements.get(target)!;
    this.elements.set(target, { ...e, dropped: { packets: e.dropped!.packets + packets, bytes: e.dropped!.bytes + bytes } });
  }
}

function config(dir: string): AgentConfig {
  const parsed = parseConfigText(
    JSON.stringify({ stateDirectory: dir, enforce: { nftables: { enabled: true } }, guard: { blockableSpecialCidrs: ['198.51.100.0/24', '2001:db8::/32'] } }),
  );
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.value;
}

const event = (attacker: string) => ({
  version: 1 as const,
  sensorId: 'host-1',
  attacker,
  probes: [{ protocol: 'tcp' as const, port: 23, kind: 'connect' as const }],
  probeCount: 1,
  handshake: true,
  firstSeen: new Date().toISOString(),
  lastSeen: new Date().toISOString(),
});

describe('per-block drop counters', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'portsnare-dropped-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('are read from the enforcer into /blocks, the most active first in /metrics, and printed by `portsnare blocks`', async () => {
    const enforcer = new CountingEnforcer();
    const local = (await LocalEnforcement.open({ config: config(dir), own: [], enforcer, logger: memoryLogger() }))!;
    await local.handle(event('198.51.100.7'), 'ev-1');
    await local.handle(event('2001:db8:1:2::5'), 'ev-2');
    enforcer.drop('198.51.100.7', 3, 180);
    enforcer.drop('2001:db8:1:2::/64', 12, 960);
    // nothing is known before the counters are read
    expect(local.control().list().map((r) => (r as { dropped?: unknown }).dropped)).toEqual([undefined, undefined]);
    await local.readDropped();

    const listed = local.control().list() as Array<BlockRecord & { dropped?: { packets: number; bytes: number } }>;
    expect(Object.fromEntries(listed.map((r) => [r.target, r.dropped]))).toEqual({
      '198.51.100.7': { packets: 3, bytes: 180 },
      '2001:db8:1:2::/64': { packets: 12, bytes: 960 },
    });
    expect(local.droppedTop(1)).toEqual([{ target: '2001:db8:1:2::/64', packets: 12, bytes: 960 }]);

    // /metrics
    const snapshot = { config: config(dir), sensorId: 'host-1', uptimeSeconds: 1, stealth: 'off', enforcement: 'nftables', sinks: [], blocksActive: 2, breakerOpen: false, counts: { kernelProbes: 0, blocks: 2, refused: 0 }, blockDrops: local.droppedTop(100) } as AgentSnapshot;
    const text = renderPrometheus(agentMetrics(snapshot));
    expect(text).toContain('portsnare_block_dropped_packets{target="2001:db8:1:2::/64"} 12\nportsnare_block_dropped_packets{target="198.51.100.7"} 3\n');
    expect(text).toContain('portsnare_block_dropped_bytes{target="2001:db8:1:2::/64"} 960\n');

    // `portsnare blocks` through the agent's answer
    const now = Date.now();
    const views = listed.map((r) => recordView(r, undefined));
    expect(blockJson(views.find((v) => v.target === '198.51.100.7')!, now)).toMatchObject({ dropped: { packets: 3, bytes: 180 } });
    const table = blocksTable(views, now);
    expect(table.split('\n')[0]).toMatch(/ENFORCED IN\s+DROPPED\s+NOTE/);
    expect(table).toMatch(/2001:db8:1:2::\/64 .* 12 pkts, 960 B/);
  });

  it('without counters (log-only, an older table) there is no DROPPED column and no series', async () => {
    const local = (await LocalEnforcement.open({ config: config(dir), own: [], enforcer: null, logger: memoryLogger() }))!;
    await local.handle(event('198.51.100.7'), 'ev-1');
    await local.readDropped();
    const views = local.control().list().map((r) => recordView(r, undefined));
    expect(blocksTable(views, Date.now()).split('\n')[0]).not.toMatch(/DROPPED/);
    expect(local.droppedTop(100)).toEqual([]);
    expect(recordView({ ...views[0], dropped: { packets: 'x' } } as unknown as BlockRecord, undefined).dropped).toBeUndefined();
  });
});
