/** `portsnare block ADDRESS|CIDR`: a manual block, refused when the never-block guard protects it. */
import type { Command } from 'commander';
import { blockJson, enforcedText } from './blocks';
import { requester } from './requester';
import { type BackendOptions, type CliDeps, printJson, withBackend, withBackendOptions } from './context';
import { expiresIn, humanDuration, isoSeconds } from './output';
import { parseReason, parseTarget, parseTtl } from './targets';

interface BlockOptions extends BackendOptions {
  readonly ttl?: string;
  readonly reason?: string;
  readonly replace?: boolean;
}

export function registerBlock(program: Command, deps: CliDeps): void {
  withBackendOptions(
    program
      .command('block')
      .summary('block an address or CIDR now')
      .description(
        'Block an address or CIDR by hand (reason "manual"). Without --ttl the policy\'s TTL for the offence applies ' +
          '(base TTL, doubled for each repeat offence). Refused, with exit code 3, when the never-block guard protects ' +
          'the target (allowlist, protected network, special-purpose ranges). With --stack the request goes as a ' +
          '"Block Requested" event from portsnare.cli on the stack\'s bus: the pipeline validates and enforces it.',
      )
      .argument('<target>', 'IPv4/IPv6 address or CIDR, e.g. 198.51.100.7, 198.51.100.0/24, 2001:db8::/48')
      .option('--ttl <duration>', 'how long: 90m, 2h, 7d, or seconds (1m to 365d)')
      .option('--reason <text>', 'a note kept with the block and in its history (at most 256 characters)')
      .option('--replace', 'replace an active block\'s expiry and note, even when that shortens it (without it a re-block never shortens a block nor drops its note)')
      .option('--json', 'print JSON'),
    { wait: true },
  ).action(async (targetText: string, options: BlockOptions) => {
    const target = parseTarget(targetText);
    const ttlSeconds = options.ttl !== undefined ? parseTtl(options.ttl) : undefined;
    const reason = options.reason !== undefined ? parseReason(options.reason) : undefined;
    const { where, outcome } = await withBackend(options, deps, async (backend) => ({
      where: backend.where,
      outcome: await backend.block({
        target,
        requestedBy: requester(),
        ...(ttlSeconds !== undefined ? { ttlSeconds } : {}),
        ...(reason !== undefined ? { reason } : {}),
        ...(options.replace ? { replace: true } : {}),
      }),
    }));
    const now = deps.now();
    if (options.json) {
      printJson(deps.io, outcome.kind === 'applied' ? { result: 'blocked', where, block: blockJson(outcome.block, now) } : { result: 'requested', where, ...outcome });
      return;
    }
    if (outcome.kind === 'applied') {
      const block = outcome.block;
      deps.io.out(
        `blocked ${block.target} for ${expiresIn(block.expiresAt, now)} (until ${isoSeconds(block.expiresAt)}), offence ${block.offences}, ` +
          `enforced in ${enforcedText(block)} — ${where}`,
      );
      return;
    }
    deps.io.out(
      `requested a block of ${target}${ttlSeconds !== undefined ? ` for ${humanDuration(ttlSeconds)}` : ''} on ${outcome.bus} (event ${outcome.eventId}).\n` +
        `The decide and enforce functions apply it within seconds: check with \`portsnare blocks --stack ${options.stack ?? ''}\`` +
        ` or pass --wait 30.`,
    );
  });
}
