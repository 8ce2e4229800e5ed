/**
 * Operator requests on the bus (source `portsnare.cli`): the command line asks, the pipeline's
 * decide function validates and records, and the enforce function stays the one writer.
 * Manual blocks of a single address may also arrive as `Scan Detected` from `portsnare.cli`.
 */
import { z } from 'zod';
import { targetOf, tryParseCidr } from './address';

export const DETAIL_TYPE_BLOCK_REQUESTED = 'Block Requested';
export const DETAIL_TYPE_UNBLOCK_REQUESTED = 'Unblock Requested';

/** An address or a CIDR, turned into its canonical text ("198.51.100.7", "198.51.100.0/24"). */
export const TargetSchema = z.string().transform((value, ctx) => {
  const cidr = tryParseCidr(value, false);
  if (!cidr) {
    ctx.addIssue({ code: 'custom', message: `not an IPv4/IPv6 address or CIDR with host bits zero: ${JSON.stringify(value)}` });
    return z.NEVER;
  }
  return targetOf(cidr);
});

export const BlockRequestedSchema = z.strictObject({
  version: z.literal(1),
  target: TargetSchema,
  /** seconds; when absent the policy's TTL for the offence applies */
  ttlSeconds: z.number().int().min(60).max(365 * 86400).optional(),
  reason: z.string().max(256).optional(),
  requestedBy: z.string().min(1).max(256),
  /** replace an active block's expiry and note even when that shortens it (`block --replace`); core/policy.ts Sighting.replace */
  replace: z.boolean().optional(),
});
export type BlockRequested = z.output<typeof BlockRequestedSchema>;

export const UnblockRequestedSchema = z.strictObject({
  version: z.literal(1),
  target: TargetSchema,
  requestedBy: z.string().min(1).max(256),
});
export type UnblockRequested = z.output<typeof UnblockRequestedSchema>;

/** "2h", "30m", "1d", "90s" or a number of seconds → seconds; undefined when not a duration. */
export function parseDuration(text: string): number | undefined {
  const match = /^\s*(\d+)\s*([smhdw]?)\s*$/i.exec(text);
  if (!match) return undefined;
  const unit = (match[2] ?? '').toLowerCase();
  const factor = { '': 1, s: 1, m: 60, h: 3600, d: 86400, w: 604800 }[unit] ?? 1;
  return Number(match[1]) * factor;
}
