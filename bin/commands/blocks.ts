/** `portsnare blocks`: what is blocked, why, how often, until when, and where it is enforced. */
import type { Command } from 'commander';
import type { BlockView } from './backend';
import { type BackendOptions, type CliDeps, printJson, withBackend, withBackendOptions } from './context';
import { expiresIn, table } from './output';
import { blocksCovering, parseTarget } from './targets';

export function blockJson(block: BlockView, now: number): Record<string, unknown> {
  return {
    target: block.target,
    family: block.family,
    reason: block.reason,
    offences: block.offences,
    hitCount: block.hitCount,
    firstSeen: new Date(block.firstSeen).toISOString(),
    lastSeen: new Date(block.lastSeen).toISOString(),
    blockedAt: new Date(block.blockedAt).toISOString(),
    expiresAt: new Date(block.expiresAt).toISOString(),
    expiresInSeconds: Math.max(0, Math.round((block.expiresAt - now) / 1000)),
    active: block.active,
    enforcedIn: block.enforcedIn,
    ...(block.dropped !== undefined ? { dropped: block.dropped } : {}),
    sensors: block.sensors,
    ...(block.note !== undefined ? { note: block.note } : {}),
    ...(block.liftedBy !== undefined ? { liftedBy: block.liftedBy } : {}),
  };
}

export function blocksTable(blocks: readonly BlockView[], now: number): string {
  // DROPPED only where it is known: a running agent whose blocked sets count per element
  const counted = blocks.some((block) => block.dropped !== undefined);
  return table(
    ['ADDRESS', 'REASON', 'OFFENCES', 'HITS', 'EXPIRES IN', 'ENFORCED IN', ...(counted ? ['DROPPED'] : []), 'NOTE'],
    blocks.map((block) => [
      block.target,
      block.reason,
      String(block.offences),
      String(block.hitCount),
      expiresIn(block.expiresAt, now),
      block.enforcedIn.join(', ') || '-',
      ...(counted ? [droppedText(block.dropped)] : []),
      block.note ?? '',
    ]),
  );
}

/** "12 pkts, 720 B" — what the block's nftables element dropped; "-" when unknown. */
export function droppedText(dropped: BlockView['dropped']): string {
  return dropped === undefined ? '-' : `${dropped.packets} pkt${dropped.packets === 1 ? '' : 's'}, ${dropped.bytes} B`;
}

export function registerBlocks(program: Command, deps: CliDeps): void {
  withBackendOptions(
    program
      .command('blocks')
      .summary('list active blocks')
      .description('Active blocks, soonest expiry first: address or CIDR, reason, offences, hits, expires in, where it is enforced.')
      .option('--contains <address>', 'only the blocks that hold this address or CIDR (itself or a wider CIDR)')
      .option('--json', 'print a JSON array (times in ISO 8601, expiresInSeconds)'),
  ).action(async (options: BackendOptions & { contains?: string }) => {
    const now = deps.now();
    const contains = options.contains !== undefined ? parseTarget(options.contains) : undefined;
    const { where, blocks: all } = await withBackend(options, deps, async (backend) => ({ where: backend.where, blocks: await backend.blocks(now) }), { readOnly: true });
    const blocks = contains !== undefined ? blocksCovering(all, contains) : all;
    if (options.json) {
      printJson(deps.io, blocks.map((block) => blockJson(block, now)));
      return;
    }
    if (blocks.length === 0) {
      deps.io.out(contains !== undefined ? `no active block holds ${contains} (${where})` : `no active blocks (${where})`);
      return;
    }
    deps.io.out(blocksTable(blocks, now));
    deps.io.out(`${blocks.length} active block${blocks.length === 1 ? '' : 's'} (${where})`);
  });
}
