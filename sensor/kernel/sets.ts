/**
 * What the kernel holds right now: the addresses in the blocked sets (the enforcer's, which the
 * in-kernel block adds to) and in the quarantine sets, each with its remaining time, read with
 * `nft -j list set`. The agent reads this at start to put into its store the blocks the kernel
 * made while it was down (its NFLOG records were lost with it), so every block follows its
 * policy: recorded, counted as an offence, lifted or extended by the pipeline.
 */
import { tryCanonicalAddress } from '../../core/address';
import { FAMILY, NftError, TABLE, nftJson, type NftJsonItem } from '../local/nft';

export interface KernelHold {
  /** canonical address */
  readonly address: string;
  /** epoch ms when the kernel lets it go (+Infinity for an element without a timeout) */
  readonly expiresAt: number;
  /** seconds left, as nft reported them (whole seconds) */
  readonly remainingSeconds: number;
}

export interface KernelBlocks {
  /** blocked4 + blocked6: blocks by the agent and by the in-kernel block on a decoy packet */
  readonly blocked: KernelHold[];
  /** quar4 + quar6: the seconds-long holds on a first forgeable decoy packet */
  readonly quarantined: KernelHold[];
}

export const BLOCKED_SETS = ['blocked4', 'blocked6'] as const;
export const QUARANTINE_SETS = ['quar4', 'quar6'] as const;

/**
 * The addresses of one `nft -j list set` answer with their expiry. Elements nft prints as bare
 * strings have no timeout; shapes other than an address (a prefix, a range) are skipped.
 */
export function setHolds(items: readonly NftJsonItem[], now: number): KernelHold[] {
  const out: KernelHold[] = [];
  for (const item of items) {
    for (const raw of item.set?.elem ?? []) {
      const elem = raw && typeof raw === 'object' && 'elem' in raw ? (raw as { elem: { val?: unknown; expires?: unknown } }).elem : { val: raw };
      if (typeof elem.val !== 'string') continue;
      const address = tryCanonicalAddress(elem.val);
      if (address === undefined) continue;
      const expires = typeof elem.expires === 'number' && Number.isFinite(elem.expires) ? elem.expires : undefined;
      out.push({
        address,
        expiresAt: expires === undefined ? Number.POSITIVE_INFINITY : now + expires * 1000,
        remainingSeconds: expires ?? Number.POSITIVE_INFINITY,
      });
    }
  }
  return out;
}

/** `nft -j list set inet portsnare NAME`, or [] when the table or set does not exist. */
async function listSet(name: string): Promise<NftJsonItem[]> {
  try {
    return await nftJson(['list', 'set', FAMILY, TABLE, name]);
  } catch (error) {
    if (error instanceof NftError && /No such file or directory|does not exist/i.test(error.stderr)) return [];
    throw error;
  }
}

/**
 * The kernel's blocked and quarantined addresses with their remaining time (root or
 * CAP_NET_ADMIN). Missing sets (no table yet, detector stopped) read as empty.
 */
export async function readKernelBlocks(now: () => number = Date.now): Promise<KernelBlocks> {
  const read = async (names: readonly string[]): Promise<KernelHold[]> => {
    const lists = await Promise.all(names.map((n) => listSet(n)));
    const at = now();
    return lists.flatMap((items) => setHolds(items, at));
  };
  const [blocked, quarantined] = await Promise.all([read(BLOCKED_SETS), read(QUARANTINE_SETS)]);
  return { blocked, quarantined };
}
