/**
 * Network ACL entries through the EC2 API. Reads with DescribeNetworkAcls; writes only ingress
 * "deny all traffic" entries for single hosts inside the reserved range (core/nacl.ts decides
 * which); retries throttling (EC2: RequestLimitExceeded) with jittered backoff.
 * https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeNetworkAcls.html
 * https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateNetworkAclEntry.html
 * https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ReplaceNetworkAclEntry.html
 * https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DeleteNetworkAclEntry.html
 * https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html
 *
 * With a placement ledger (lambda/shared/repository.ts, core/nacl.ts): an entry is this stack's
 * only when the ledger holds it; a create or replace is claimed in the ledger before it is sent
 * and confirmed after; a replace or delete is sent only when the ledger holds the entry AND a
 * re-read right before shows exactly that entry (DescribeNetworkAcls is eventually consistent);
 * a deleted entry's number is held for RULE_NUMBER_COOL_DOWN_MS.
 * https://docs.aws.amazon.com/ec2/latest/devguide/eventual-consistency.html
 */
import {
  CreateNetworkAclEntryCommand,
  DeleteNetworkAclEntryCommand,
  DescribeNetworkAclsCommand,
  type EC2Client,
  type NetworkAclEntry as SdkEntry,
  ReplaceNetworkAclEntryCommand,
} from '@aws-sdk/client-ec2';
import { type NaclChange, type NaclEntry, type Placement, RULE_NUMBER_COOL_DOWN_MS, heldRuleNumbers, isExactDeny, ledgerHolds, withOwnership } from '../../core/nacl';
import type { Clock } from './clock';
import type { Observability } from './observability';
import type { PlacementLedger } from './repository';
import { errorName, isThrottling, withRetry } from './retry';

export const ERR_ENTRY_EXISTS = 'NetworkAclEntryAlreadyExists';
export const ERR_ENTRY_LIMIT = 'NetworkAclEntryLimitExceeded';
export const ERR_ENTRY_NOT_FOUND = 'InvalidNetworkAclEntry.NotFound';
export const ERR_ACL_NOT_FOUND = 'InvalidNetworkAclID.NotFound';

export function fromSdkEntry(entry: SdkEntry): NaclEntry {
  return {
    ruleNumber: entry.RuleNumber ?? 0,
    egress: entry.Egress ?? false,
    ruleAction: entry.RuleAction === 'allow' ? 'allow' : 'deny',
    protocol: entry.Protocol ?? '-1',
    ...(entry.CidrBlock !== undefined ? { cidrBlock: entry.CidrBlock } : {}),
    ...(entry.Ipv6CidrBlock !== undefined ? { ipv6CidrBlock: entry.Ipv6CidrBlock } : {}),
    ...(entry.PortRange !== undefined ? { portRange: { from: entry.PortRange.From, to: entry.PortRange.To } } : {}),
    ...(entry.IcmpTypeCode !== undefined ? { icmpTypeCode: { type: entry.IcmpTypeCode.Type, code: entry.IcmpTypeCode.Code } } : {}),
  };
}

export interface NaclApplyResult {
  readonly applied: NaclChange[];
  /** changes refused because the ACL moved under us (a number taken, an entry gone): re-plan */
  readonly conflicts: Array<{ change: NaclChange; error: string }>;
  /** NetworkAclEntryLimitExceeded: the quota is lower than configured, or foreign entries appeared */
  readonly quotaFull: boolean;
}

/** One ACL as the planner needs it: entries (other stacks' marked foreign) and held rule numbers. */
export interface AclState {
  readonly aclId: string;
  readonly entries: NaclEntry[];
  readonly held?: number[];
}

export class NaclAdapter {
  constructor(
    private readonly ec2: EC2Client,
    private readonly clock: Clock,
    private readonly obs: Observability,
    private readonly random: () => number = Math.random,
    /** this stack's placement ledger; without one, ownership is the entry's shape alone (legacy) */
    readonly ledger?: PlacementLedger,
    /** the reserved range, to mark own-shaped entries the ledger does not hold as foreign */
    private readonly range?: readonly [number, number],
  ) {}

  private retry<T>(fn: () => Promise<T>): Promise<T> {
    return withRetry(fn, { clock: this.clock, random: this.random, attempts: 6, baseMs: 200, capMs: 8_000, onRetry: () => this.obs.count('Throttles') });
  }

  /** The ACL's entries as EC2 reports them now (no ledger view). */
  async read(aclId: string): Promise<NaclEntry[]> {
    const out = await this.retry(() => this.ec2.send(new DescribeNetworkAclsCommand({ NetworkAclIds: [aclId] })));
    const acl = out.NetworkAcls?.find((a) => a.NetworkAclId === aclId);
    if (!acl) throw Object.assign(new Error(`network ACL ${aclId} not returned`), { name: ERR_ACL_NOT_FOUND });
    return (acl.Entries ?? []).map(fromSdkEntry);
  }

  /**
   * The entries of each ACL; an ACL that does not exist is logged and left out. With a ledger,
   * own-shaped entries the ledger does not hold are marked foreign and the numbers in cool-down
   * are listed as `held`.
   */
  async describe(aclIds: readonly string[]): Promise<AclState[]> {
    const result: AclState[] = [];
    for (const aclId of aclIds) {
      try {
        const entries = await this.read(aclId);
        if (!this.ledger || !this.range) {
          result.push({ aclId, entries });
          continue;
        }
        const placements = await this.ledger.list(aclId);
        result.push({ aclId, entries: withOwnership(entries, placements, this.range), held: heldRuleNumbers(placements, this.clock.now()) });
      } catch (error) {
        if (errorName(error) !== ERR_ACL_NOT_FOUND) throw error;
        this.obs.log.error('configured network ACL does not exist; skipped', { aclId });
      }
    }
    return result;
  }

  /** Applies the changes in order; stops at the first conflict so the caller re-reads and re-plans. */
  async apply(aclId: string, changes: readonly NaclChange[]): Promise<NaclApplyResult> {
    const applied: NaclChange[] = [];
    const conflicts: Array<{ change: NaclChange; error: string }> = [];
    let quotaFull = false;
    const placements = this.ledger ? await this.ledger.list(aclId) : undefined;
    for (const change of changes) {
      if (placements && change.op !== 'create' && !(await this.safeToOverwrite(aclId, change, placements))) {
        conflicts.push({ change, error: 'NotOurs' });
        break;
      }
      try {
        if (this.ledger && change.op !== 'delete') {
          // A create keeps the claim a row may still hold for this number (a read that missed our
          // own entry): until the create succeeds, either CIDR there is ours. A second create of
          // the same CIDR after a refused one keeps the first claim's `previous` (dropping it made
          // our entry there look foreign, never lifted: test/wire/org-nacl-claim.test.ts).
          const held = placements?.find((p) => p.ruleNumber === change.ruleNumber && p.state !== 'freed');
          const previous = change.op === 'replace' ? change.previous : held && held.cidr !== change.cidr ? held.cidr : held?.previous;
          await this.ledger.pending(aclId, change.ruleNumber, change.cidr, previous);
        }
        await this.retry(() => this.send(aclId, change));
        await this.settle(aclId, change);
        applied.push(change);
      } catch (error) {
        const name = errorName(error) ?? 'Error';
        if (change.op === 'delete' && name === ERR_ENTRY_NOT_FOUND) {
          await this.settle(aclId, change);
          applied.push(change); // already gone: the goal is reached
          continue;
        }
        // A create whose answer was lost is retried by the SDK and then finds its own entry
        // there: the goal is reached, not a conflict.
        if (change.op === 'create' && name === ERR_ENTRY_EXISTS && (await this.holds(aclId, change))) {
          await this.settle(aclId, change);
          applied.push(change);
          continue;
        }
        // Refused for the quota: the claim written before the call was never carried out.
        // Not on NetworkAclEntryAlreadyExists: the create may have succeeded with its answer lost
        // and a stale read hidden it; the pending claim (with the one it replaced) stays.
        if (this.ledger && change.op === 'create' && name === ERR_ENTRY_LIMIT) {
          const before = placements?.find((p) => p.ruleNumber === change.ruleNumber);
          if (before) await this.ledger.restore(aclId, before);
          else await this.ledger.withdraw(aclId, change.ruleNumber, change.cidr);
        }
        if (name === ERR_ENTRY_LIMIT) {
          quotaFull = true;
          conflicts.push({ change, error: name });
          break;
        }
        if (name === ERR_ENTRY_EXISTS || name === ERR_ENTRY_NOT_FOUND) {
          conflicts.push({ change, error: name });
          break;
        }
        throw error;
      }
    }
    return { applied, conflicts, quotaFull };
  }

  /** True when the ACL (read now) has exactly the entry `change` would create. */
  private async holds(aclId: string, change: NaclChange): Promise<boolean> {
    return (await this.read(aclId)).some((entry) => isExactDeny(entry, change.ruleNumber, change.cidr));
  }

  /**
   * A replace or delete overwrites what is at the number: only when the ledger holds the entry
   * there and a re-read now shows exactly it. A stale read, an operator's entry at a number we
   * freed, or another stack's entry all fail this, and the caller re-plans.
   */
  private async safeToOverwrite(aclId: string, change: NaclChange, placements: readonly Placement[]): Promise<boolean> {
    const cidr = change.op === 'replace' ? change.previous : change.cidr;
    const expected: NaclEntry = { ruleNumber: change.ruleNumber, egress: false, ruleAction: 'deny', protocol: '-1', ...(change.family === 'ipv4' ? { cidrBlock: cidr } : { ipv6CidrBlock: cidr }) };
    if (!ledgerHolds(placements, expected)) return false;
    return (await this.read(aclId)).some((entry) => isExactDeny(entry, change.ruleNumber, cidr));
  }

  /** Records the outcome of a carried-out change in the ledger. */
  private async settle(aclId: string, change: NaclChange): Promise<void> {
    if (!this.ledger) return;
    if (change.op === 'delete') await this.ledger.free(aclId, change.ruleNumber, change.cidr, this.clock.now() + RULE_NUMBER_COOL_DOWN_MS);
    else await this.ledger.confirm(aclId, change.ruleNumber, change.cidr);
  }

  private async send(aclId: string, change: NaclChange): Promise<void> {
    const cidr = change.family === 'ipv4' ? { CidrBlock: change.cidr } : { Ipv6CidrBlock: change.cidr };
    const entry = { NetworkAclId: aclId, RuleNumber: change.ruleNumber, Egress: false };
    switch (change.op) {
      case 'create':
        await this.ec2.send(new CreateNetworkAclEntryCommand({ ...entry, Protocol: '-1', RuleAction: 'deny', ...cidr }));
        return;
      case 'replace':
        await this.ec2.send(new ReplaceNetworkAclEntryCommand({ ...entry, Protocol: '-1', RuleAction: 'deny', ...cidr }));
        return;
      case 'delete':
        await this.ec2.send(new DeleteNetworkAclEntryCommand(entry));
        return;
    }
  }
}

export { isThrottling };
