/**
 * nftables as an enforcement point (core/points.ts), the host's counterpart of the cloud's WAF and
 * NACL points (aws/points.ts): read the blocked sets, plan against the desired records,
 * apply in one nft transaction, report. The local pipeline runs it on restore (after a restart or
 * a reboot wiped the kernel) and on its periodic reconcile (sensor/local/pipeline.ts).
 *
 * What "absent" means here differs from WAF: the kernel detector adds sources to the blocked sets
 * on their first decoy packet, before the event that records them reaches the store
 * (docs/kernel.md). So an element is removed only when its target has a record that is no
 * longer active (lifted early) and the element is the one placed for that record (its timeout is
 * the record's expiry); an element the store does not know, or one the kernel added again for a
 * returning source, is left to its own timeout. An element of an active record whose kernel timeout is off by more than
 * `TIMEOUT_SLACK_MS` (the record was refreshed, extended or replaced) is added again with the
 * record's expiry. A simulated record (`enforce.nftables.simulate`, core/policy.ts simulationOf)
 * is planned as a lifted one: no element is added for it, and the element placed for it before
 * the switch to simulation is removed.
 */
import { type DesiredInput, type DesiredRecord, type EnforcementPoint, type ApplyResult, latestPerTarget, type PointFailure } from '../../core/points';
import type { KernelBlock } from './nft';
import type { Enforcer } from './pipeline';

export const NFT_POINT_ID = 'nft:inet portsnare';
/** a kernel timeout this close to the record's expiry is right (nft keeps whole seconds) */
export const TIMEOUT_SLACK_MS = 2_000;

export interface NftPlan {
  readonly add: ReadonlyArray<{ readonly target: string; readonly expiresAt: number }>;
  readonly remove: readonly string[];
  readonly before: ReadonlySet<string>;
}

/** Plans the blocked sets against the desired records (pure). */
export function planNft(input: DesiredInput, actual: readonly KernelBlock[], now: number, simulated: (record: DesiredRecord) => boolean = () => false): NftPlan {
  const records: readonly DesiredRecord[] = input.kind === 'changes' ? latestPerTarget(input.changes) : input.records;
  const inKernel = new Map(actual.map((block) => [block.target, block]));
  const add: Array<{ target: string; expiresAt: number }> = [];
  const remove: string[] = [];
  const seen = new Set<string>();
  for (const record of records) {
    if (seen.has(record.target)) continue;
    seen.add(record.target);
    const present = inKernel.get(record.target);
    if (record.active && record.expiresAt > now && !simulated(record)) {
      if (!present || Math.abs(present.expiresAt - record.expiresAt) > TIMEOUT_SLACK_MS) add.push({ target: record.target, expiresAt: record.expiresAt });
    } else if (present && Math.abs(present.expiresAt - record.expiresAt) <= TIMEOUT_SLACK_MS) {
      // ours: the element we placed for this record (its timeout is the record's expiry). One
      // with another timeout is the kernel detector's fresh block of a returning source, whose
      // event has not reached the store yet: not ours to lift.
      remove.push(record.target);
    }
  }
  return { add, remove, before: new Set(inKernel.keys()) };
}

function failure(error: unknown): PointFailure {
  const message = error instanceof Error ? error.message : String(error);
  return { point: NFT_POINT_ID, error: error instanceof Error ? error.name : 'Error', message, transient: true };
}

export class NftPoint implements EnforcementPoint<KernelBlock[], NftPlan> {
  readonly id = NFT_POINT_ID;

  constructor(
    private readonly enforcer: Enforcer,
    /** the records in simulation: no element for them */
    private readonly simulated: (record: DesiredRecord) => boolean = () => false,
  ) {}

  async read(): Promise<KernelBlock[]> {
    return this.enforcer.list();
  }

  plan(input: DesiredInput, actual: KernelBlock[], now: number): NftPlan {
    return planNft(input, actual, now, this.simulated);
  }

  async apply(plan: NftPlan): Promise<ApplyResult> {
    const after = new Set(plan.before);
    const failures: PointFailure[] = [];
    let applied = 0;
    if (plan.add.length) {
      try {
        await this.enforcer.ensure();
        await this.enforcer.blockMany(plan.add);
        applied += plan.add.length;
        for (const { target } of plan.add) after.add(target);
      } catch (error) {
        failures.push(failure(error));
      }
    }
    for (const target of plan.remove) {
      try {
        await this.enforcer.unblock(target);
        applied++;
        after.delete(target);
      } catch (error) {
        failures.push(failure(error));
      }
    }
    return { applied, failures, incomplete: [], before: plan.before, after };
  }
}
