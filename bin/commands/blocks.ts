/** `portsnare blocks`: what is blocked, why, how often, until when, and where it is enforced. */
import type { Command } from 'commander';
import type { BlockView } from './backend';
import { WAF_EFFECT_WINDOW_MS, type WafRuleEffect, wafEffectText } from './stack/waf-effect';
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
    simulated: block.simulated === true,
    ...(block.dropped !== undefined ? { dropped: block.dropped } : {}),
    ...(block.wafRules !== undefined ? { wafRules: block.wafRules.map(wafRuleJson) } : {}),
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
      enforcedText(block),
      ...(counted ? [droppedText(block.dropped)] : []),
      block.note ?? '',
    ]),
  );
}

/**
 * Where a block is enforced; SIMULATED for one in simulation (README.md "Simulation"), with where
 * it is all the same (a WAF IP set whose rules count, a kernel element the detector placed).
 */
export function enforcedText(block: Pick<BlockView, 'enforcedIn' | 'simulated'>): string {
  const places = block.enforcedIn.join(', ');
  if (block.simulated) return places ? `SIMULATED (in ${places})` : 'SIMULATED';
  return places || '-';
}

/** "12 pkts, 720 B" — what the block's nftables element dropped; "-" when unknown. */
export function droppedText(dropped: BlockView['dropped']): string {
  return dropped === undefined ? '-' : `${dropped.packets} pkt${dropped.packets === 1 ? '' : 's'}, ${dropped.bytes} B`;
}

/** One WAF rule's effect in --json: blockedRequestsLastHour null when not known, with the note. */
export function wafRuleJson(effect: WafRuleEffect): Record<string, unknown> {
  return {
    ipSet: effect.ipSet,
    scope: effect.scope,
    rule: effect.rule,
    ruleGroup: effect.ruleGroup,
    blockedRequestsLastHour: effect.blockedRequests ?? null,
    // simulation: the rule counts; what it would have blocked
    ...(effect.countedRequests !== undefined ? { countedRequestsLastHour: effect.countedRequests } : {}),
    ...(effect.note !== undefined ? { note: effect.note } : {}),
  };
}

/**
 * Under the table: per IP set, what its rule blocked in the last hour. WAF has no per-address
 * counter, so this is per set; the ENFORCED IN column says which set holds each block.
 */
export function wafEffectLines(effects: readonly WafRuleEffect[]): string[] {
  if (effects.length === 0) return [];
  if (effects.some((effect) => effect.countedRequests !== undefined || effect.note?.includes('nothing was counted'))) {
    return [
      `SIMULATION: the WAF rules count, nothing is blocked. Requests counted in the last ${WAF_EFFECT_WINDOW_MS / 60_000} minutes, per IP set rule (AWS/WAFV2 CountedRequests: what blocking would have stopped; per rule, not per address):`,
      table(
        ['IP SET', 'SCOPE', 'RULE', 'COUNTED'],
        effects.map((effect) => [`waf:${effect.ipSet}`, effect.scope, effect.rule, wafEffectText(effect)]),
      ),
    ];
  }
  return [
    `WAF requests blocked in the last ${WAF_EFFECT_WINDOW_MS / 60_000} minutes, per IP set rule (AWS/WAFV2 BlockedRequests; WAF counts per rule, not per address: ENFORCED IN says which set holds a block):`,
    table(
      ['IP SET', 'SCOPE', 'RULE', 'BLOCKED'],
      effects.map((effect) => [`waf:${effect.ipSet}`, effect.scope, effect.rule, wafEffectText(effect)]),
    ),
  ];
}

export function registerBlocks(program: Command, deps: CliDeps): void {
  withBackendOptions(
    program
      .command('blocks')
      .summary('list active blocks')
      .description(
        'Active blocks, soonest expiry first: address or CIDR, reason, offences, hits, expires in, where it is enforced, and what was dropped: per element on a host (nftables counters), per WAF IP set rule over the last hour for a stack (WAF does not count per address).',
      )
      .option('--contains <address>', 'only the blocks that hold this address or CIDR (itself or a wider CIDR)')
      .option('--simulated', 'only the blocks in simulation: decided and recorded, not enforced (README.md "Simulation")')
      .option('--json', 'print a JSON array (times in ISO 8601, expiresInSeconds)'),
  ).action(async (options: BackendOptions & { contains?: string; simulated?: boolean }) => {
    const now = deps.now();
    const contains = options.contains !== undefined ? parseTarget(options.contains) : undefined;
    const { where, blocks: all, effects } = await withBackend(
      options,
      deps,
      async (backend) => {
        const blocks = await backend.blocks(now);
        // only when there is a block to show: the same read blocks() attached to the views
        return { where: backend.where, blocks, effects: blocks.length > 0 && backend.wafEffect ? await backend.wafEffect(now) : [] };
      },
      { readOnly: true },
    );
    const covering = contains !== undefined ? blocksCovering(all, contains) : all;
    const blocks = options.simulated ? covering.filter((block) => block.simulated === true) : covering;
    const kind = options.simulated ? 'simulated ' : '';
    if (options.json) {
      printJson(deps.io, blocks.map((block) => blockJson(block, now)));
      return;
    }
    if (blocks.length === 0) {
      deps.io.out(contains !== undefined ? `no active ${kind}block holds ${contains} (${where})` : `no active ${kind}blocks (${where})`);
      return;
    }
    deps.io.out(blocksTable(blocks, now));
    deps.io.out(`${blocks.length} active ${kind}block${blocks.length === 1 ? '' : 's'} (${where})`);
    for (const line of wafEffectLines(effects)) deps.io.out(line);
  });
}
