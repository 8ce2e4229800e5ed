/**
 * Never-block rules (README.md, "Security model"): an allowlisted address, the VPC's own
 * CIDRs, and — unless configured — private, loopback, link-local, multicast and other reserved
 * ranges are never blocked, whoever asks.
 */
import { z } from 'zod';
import { CidrList, cidrCovers, specialRangeOverlapping, tryParseCidr } from './address';

const CidrText = z.string().refine((value) => tryParseCidr(value, true) !== undefined, {
  message: 'must be an IPv4/IPv6 address or CIDR',
});

export const GuardSettingsSchema = z.strictObject({
  /** addresses and CIDRs never blocked (partners, monitors, office ranges) */
  allowlist: z.array(CidrText).default([]),
  /** the protected network's own ranges (VPC CIDRs, the host's own subnets) */
  protectedCidrs: z.array(CidrText).default([]),
  /** block addresses in special-purpose ranges (private, loopback, reserved, …) at all */
  blockSpecialRanges: z.boolean().default(false),
  /**
   * special-purpose CIDRs that may be blocked all the same — e.g. TEST-NET ranges in a lab, or
   * 127.66.0.0/16 in the local demo — without opening every special range
   */
  blockableSpecialCidrs: z.array(CidrText).default([]),
});
export type GuardSettings = z.output<typeof GuardSettingsSchema>;

export type GuardVerdict = { blockable: true } | { blockable: false; rule: string };

export class NeverBlockGuard {
  private readonly allowlist: CidrList;
  private readonly protectedCidrs: CidrList;
  private readonly blockableSpecial: CidrList;

  constructor(private readonly settings: GuardSettings) {
    this.allowlist = new CidrList(settings.allowlist);
    this.protectedCidrs = new CidrList(settings.protectedCidrs);
    this.blockableSpecial = new CidrList(settings.blockableSpecialCidrs);
  }

  static from(input: Partial<z.input<typeof GuardSettingsSchema>> = {}): NeverBlockGuard {
    return new NeverBlockGuard(GuardSettingsSchema.parse(input));
  }

  /**
   * Whether `target` (an address or a CIDR) may be blocked; when not, the rule that protects it.
   * A CIDR is refused when it overlaps any protected range, so a wide block can never cover an
   * allowlisted address.
   */
  check(target: string): GuardVerdict {
    const cidr = tryParseCidr(target, false);
    if (!cidr) return { blockable: false, rule: `not an address or CIDR: ${JSON.stringify(target)}` };
    const allowed = this.allowlist.overlap(cidr);
    if (allowed) return { blockable: false, rule: `allowlist ${allowed.text}` };
    const own = this.protectedCidrs.overlap(cidr);
    if (own) return { blockable: false, rule: `protected network ${own.text}` };
    if (!this.settings.blockSpecialRanges) {
      const special = specialRangeOverlapping(cidr);
      if (special && !this.blockableSpecial.cidrs.some((c) => cidrCovers(c, cidr))) {
        return { blockable: false, rule: `special-purpose range ${special.name} ${special.cidr.text}` };
      }
    }
    return { blockable: true };
  }

  isBlockable(target: string): boolean {
    return this.check(target).blockable;
  }
}
