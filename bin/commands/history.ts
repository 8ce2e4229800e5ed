/** `portsnare history ADDRESS|CIDR`: every block, refresh, expiry and unblock of one target. */
import type { Command } from 'commander';
import { blockJson } from './blocks';
import { type BackendOptions, type CliDeps, printJson, withBackend, withBackendOptions } from './context';
import { CliError, EXIT } from './errors';
import { expiresIn, isoSeconds, table } from './output';
import { wafEffectText } from './stack/waf-effect';
import { blocksCovering, parseTarget } from './targets';

export function registerHistory(program: Command, deps: CliDeps): void {
  withBackendOptions(
    program
      .command('history')
      .summary('what happened to one address')
      .description('The current state of one address or CIDR and its history, oldest first. Exit code 4 when portsnare never saw it.')
      .argument('<target>', 'an address or CIDR')
      .option('--json', 'print JSON'),
  ).action(async (targetText: string, options: BackendOptions) => {
    const target = parseTarget(targetText);
    const now = deps.now();
    const found = await withBackend(
      options,
      deps,
      async (backend) => {
        const own = await backend.history(target);
        if (own.current || own.entries.length > 0) return { where: backend.where, ...own };
        // never blocked itself, but maybe inside a blocked CIDR: that block's story is the answer
        const cover = blocksCovering(await backend.blocks(now), target).find((block) => block.target !== target);
        return cover ? { where: backend.where, coveredBy: cover.target, ...(await backend.history(cover.target)) } : { where: backend.where, ...own };
      },
      { readOnly: true },
    );
    const { where, current, entries } = found;
    const coveredBy = 'coveredBy' in found ? found.coveredBy : undefined;
    if (options.json) {
      printJson(deps.io, {
        target,
        where,
        ...(coveredBy !== undefined ? { coveredBy } : {}),
        current: current ? blockJson(current, now) : null,
        entries: entries.map((entry) => ({ at: new Date(entry.at).toISOString(), action: entry.action, detail: entry.detail })),
      });
      if (!current && entries.length === 0) throw new CliError('', EXIT.notFound);
      return;
    }
    if (!current && entries.length === 0) throw new CliError(`no history for ${target} (${where})`, EXIT.notFound);
    if (coveredBy !== undefined) deps.io.out(`${target} is inside the block of ${coveredBy}; its history follows`);
    if (current) {
      const state =
        current.active && current.expiresAt > now
          ? `blocked for ${expiresIn(current.expiresAt, now)} more (until ${isoSeconds(current.expiresAt)})`
          : `not blocked${current.liftedBy ? ` (lifted by ${current.liftedBy})` : ` (last block ended ${isoSeconds(current.expiresAt)})`}`;
      deps.io.out(`${coveredBy ?? target}: ${state}; reason ${current.reason}, offence ${current.offences}, ${current.hitCount} hits, first seen ${isoSeconds(current.firstSeen)} — ${where}`);
      // the cloud's proof of effect: per IP set rule, WAF has no per-address counter
      for (const rule of current.wafRules ?? []) {
        deps.io.out(
          rule.countedRequests !== undefined
            ? `  held by waf:${rule.ipSet}: its rule ${rule.rule} counted ${wafEffectText(rule)} in the last hour (simulation: nothing blocked; the whole set, not this address alone)`
            : rule.blockedRequests === undefined
            ? `  held by waf:${rule.ipSet}: its rule ${rule.rule}: ${wafEffectText(rule)}`
            : `  held by waf:${rule.ipSet}: its rule ${rule.rule} blocked ${wafEffectText(rule)} in the last hour (the whole set, not this address alone)`,
        );
      }
    } else {
      deps.io.out(`${target}: no current record — ${where}`);
    }
    if (entries.length > 0) {
      deps.io.out(table(['TIME', 'ACTION', 'DETAIL'], entries.map((entry) => [isoSeconds(entry.at), entry.action, entry.detail])));
    }
  });
}
