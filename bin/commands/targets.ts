/** The operator's input, checked before anything is asked of a backend. */
import { canonicalTarget, cidrCovers, tryParseCidr } from '../../core/address';
import type { BlockView } from './backend';
import { BlockRequestedSchema, parseDuration } from '../../core/commands';
import { CliError, EXIT } from './errors';

/** An address or CIDR in canonical text ("198.51.100.7", "2001:db8::/48"); a usage error otherwise. */
export function parseTarget(text: string): string {
  const strict = canonicalTarget(text);
  if (strict !== undefined) return strict;
  const loose = tryParseCidr(text, true);
  if (loose) throw new CliError(`invalid target ${JSON.stringify(text)}: the host bits of a CIDR must be zero — did you mean ${loose.text}?`, EXIT.usage);
  throw new CliError(`invalid target ${JSON.stringify(text)}: not an IPv4 or IPv6 address or CIDR (e.g. 198.51.100.7, 198.51.100.0/24, 2001:db8::1)`, EXIT.usage);
}

const TTL_LIMITS = BlockRequestedSchema.shape.ttlSeconds.unwrap();
const MIN_TTL = 60;
const MAX_TTL = 365 * 86400;

/** "2h", "30m", "1d", "3600" → seconds, within what the pipeline accepts (1 minute to 365 days). */
export function parseTtl(text: string): number {
  const seconds = parseDuration(text);
  if (seconds === undefined) throw new CliError(`invalid --ttl ${JSON.stringify(text)}: use a number with s, m, h, d or w (e.g. 90m, 2h, 7d)`, EXIT.usage);
  if (!TTL_LIMITS.safeParse(seconds).success) {
    throw new CliError(`invalid --ttl ${JSON.stringify(text)}: must be between ${MIN_TTL}s (1m) and ${MAX_TTL / 86400}d`, EXIT.usage);
  }
  return seconds;
}

export function parseReason(text: string): string {
  if (text.length > 256) throw new CliError(`invalid --reason: at most 256 characters (got ${text.length})`, EXIT.usage);
  return text;
}

/** The active blocks that hold `target` (itself, or a CIDR around it), narrowest first. */
export function blocksCovering(blocks: readonly BlockView[], target: string): BlockView[] {
  const inner = tryParseCidr(target);
  if (!inner) return [];
  return blocks
    .filter((block) => {
      const outer = tryParseCidr(block.target);
      return outer !== undefined && outer.family === inner.family && cidrCovers(outer, inner);
    })
    .sort((a, b) => (tryParseCidr(b.target)?.prefix ?? 0) - (tryParseCidr(a.target)?.prefix ?? 0));
}
