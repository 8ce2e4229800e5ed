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
 * With a placement ledger (aws/repository.ts; the ownership rules are core/nacl.ts's):
 * the ledger is the truth for our range. A create or replace is claimed in the ledger before it is
 * sent (the row keeps every CIDR of ours that may be there) and settled by the answer only; a
 * replace or delete is sent only when the ledger holds the entry AND a re-read right before shows
 * exactly that entry (DescribeNetworkAcls is eventually consistent); a deleted entry's number is
 * held for RULE_NUMBER_COOL_DOWN_MS.
 * https://docs.aws.amazon.com/ec2/latest/devguide/eventual-consistency.html
 *
 * Retries: throttling (not carried out) for every call; a timeout, lost connection or 5xx (the
 * outcome unknown) only for the idempotent calls (describe, replace, delete). A create is never
 * sent twice for one answer: NetworkAclEntryAlreadyExists on its FIRST attempt proves it was not
 * carried out (the number was somebody else's), while after a retry it may be our own entry, so
 * the claim stays. The production client (aws/clients/ec2.ts) makes one attempt per
 * call for that reason; an error's `$metadata.attempts` tells the two apart for any other client.
 * https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html
 */
import {
  CreateNetworkAclEntryCommand,
  DeleteNetworkAclEntryCommand,
  DescribeNetworkAclsCommand,
  type EC2Client,
  type NetworkAclEntry as SdkEntry,
  ReplaceNetworkAclEntryCommand,
} from '@aws-sdk/client-ec2';
import { type NaclChange, type NaclEntry, type Placement, RULE_NUMBER_COOL_DOWN_MS, heldRuleNumbers, isExactDeny, ledgerHolds, ledgerView, possibleCidrs } from '../core/nacl';
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
  /** rule number → epoch ms its applied create or replace was confirmed at (the ledger row's placedAt; none without a ledger) */
  readonly placedAt: ReadonlyMap<number, number>;
}

/** The stack's cleanup has let go of the ACL (PlacementLedger.retire): a permanent failure of that point. */
export const ERR_RETIRED = 'NaclLedgerRetired';

/** One ACL as the planner needs it: entries (other stacks' marked foreign) and held rule numbers. */
export interface AclState {
  readonly aclId: string;
  readonly entries: NaclEntry[];
  readonly held?: number[];
  /** rule number → epoch ms until which a freed number is held (what `held` was computed from) */
  readonly heldUntil?: ReadonlyMap<number, number>;
  /** entries inside our range that are not ours (core/nacl.ts ledgerView): reported, never touched */
  readonly foreignInRange?: NaclEntry[];
  /**
   * deletes of our entries OUTSIDE the range: live ledger rows the read shows exactly, left by a
   * run still on the old range when an Update moved it (after the Update's cleanup)
   */
  readonly strays?: NaclChange[];
}

/** The deletes of this stack's entries outside `range` that the ledger holds and the read shows exactly. */
export function strayDeletes(entries: readonly NaclEntry[], placements: readonly Placement[], range: readonly [number, number]): NaclChange[] {
  const strays: NaclChange[] = [];
  for (const p of placements) {
    if (p.state === 'freed' || (p.ruleNumber >= range[0] && p.ruleNumber <= range[1])) continue;
    const cidr = possibleCidrs(p).find((c) => entries.some((e) => isExactDeny(e, p.ruleNumber, c)));
    if (!cidr) continue;
    const family = cidr.includes(':') ? 'ipv6' : 'ipv4';
    strays.push({ op: 'delete', ruleNumber: p.ruleNumber, cidr, family, target: cidr.slice(0, cidr.lastIndexOf('/')) });
  }
  return strays;
}

/** Errors after which a call may or may not have been carried out (no answer, or the server failed). */
export function outcomeUnknown(error: unknown): boolean {
  const name = errorName(error) ?? '';
  if (['TimeoutError', 'AbortError', 'RequestTimeout', 'InternalError', 'InternalFailure', 'ServiceUnavailable', 'Unavailable'].includes(name)) return true;
  const code = (error as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string' && ['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNREFUSED', 'ECONNABORTED', 'EHOSTUNREACH', 'ENETUNREACH'].includes(code)) return true;
  const status = (error as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
  if (typeof status === 'number') return status >= 500 && !isThrottling(error);
  return !name || name === 'Error'; // a network failure without an AWS answer
}

/** How many attempts the SDK made for the call that failed (1 when it does not say). */
function attemptsOf(error: unknown): number {
  const attempts = (error as { $metadata?: { attempts?: number } } | undefined)?.$metadata?.attempts;
  return typeof attempts === 'number' && attempts > 0 ? attempts : 1;
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

  /** Throttling is retried for every call; an unknown outcome once more for idempotent ones (`idempotent`). */
  private retry<T>(fn: () => Promise<T>, idempotent = true): Promise<T> {
    let unknown = 0;
    return withRetry(fn, {
      clock: this.clock,
      random: this.random,
      attempts: 6,
      baseMs: 200,
      capMs: 8_000,
      // a hung call has cost its whole timeout already: one more try, not five
      retryable: (error) => isThrottling(error) || (idempotent && outcomeUnknown(error) && unknown++ < 1),
      onRetry: (error) => this.obs.count(isThrottling(error) ? 'Throttles' : 'CallRetries'),
    });
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
   * the ledger's view (core/nacl.ts ledgerView): own-shaped entries it does not hold are foreign,
   * its live rows the read did not show are `unseen` entries, the numbers in cool-down are `held`
   * and the foreign entries inside our range are listed.
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
        const view = ledgerView(entries, placements, this.range, this.clock.now());
        const strays = strayDeletes(entries, placements, this.range);
        const heldUntil = new Map(placements.filter((p) => p.state === 'freed' && p.heldUntil !== undefined).map((p) => [p.ruleNumber, p.heldUntil as number]));
        result.push({ aclId, entries: view.entries, held: heldRuleNumbers(placements, this.clock.now()), heldUntil, foreignInRange: view.foreignInRange, ...(strays.length ? { strays } : {}) });
      } catch (error) {
        if (errorName(error) !== ERR_ACL_NOT_FOUND) throw error;
        this.obs.log.error('configured network ACL does not exist; skipped', { aclId });
      }
    }
    return result;
  }

  /**
   * Deletes whatever is at the rule number (cleanup: the caller has checked it is ours). True when
   * something was deleted, false when nothing was there; retried like every idempotent call.
   */
  async deleteRule(aclId: string, ruleNumber: number): Promise<boolean> {
    try {
      await this.retry(() => this.ec2.send(new DeleteNetworkAclEntryCommand({ NetworkAclId: aclId, RuleNumber: ruleNumber, Egress: false })));
      return true;
    } catch (error) {
      if (errorName(error) === ERR_ENTRY_NOT_FOUND) return false;
      throw error;
    }
  }

  /** Applies the changes in order; stops at the first conflict so the caller re-reads and re-plans. */
  async apply(aclId: string, changes: readonly NaclChange[]): Promise<NaclApplyResult> {
    const applied: NaclChange[] = [];
    const conflicts: Array<{ change: NaclChange; error: string }> = [];
    let quotaFull = false;
    const placedAt = new Map<number, number>();
    const placements = this.ledger ? await this.ledger.list(aclId) : undefined;
    for (const change of changes) {
      if (placements && change.op !== 'create' && !(await this.safeToOverwrite(aclId, change, placements))) {
        conflicts.push({ change, error: 'NotOurs' });
        break;
      }
      const before = placements?.find((p) => p.ruleNumber === change.ruleNumber);
      try {
        // The claim comes first and names every CIDR of ours that may be at the number, the one
        // being written included: whatever happens to the call, nothing of ours leaves the ledger.
        if (this.ledger && change.op !== 'delete') {
          await this.ledger.pending(aclId, change.ruleNumber, change.cidr, possibleCidrs(before), this.clock.now());
          // checked AFTER the claim: a cleanup that retired the ACL before it sees no claim of ours
          // it must act on, so this run must not write; one that retired it after, sees the claim
          if (await this.ledger.isRetired(aclId)) {
            if (before) await this.ledger.restore(aclId, before);
            else await this.ledger.withdraw(aclId, change.ruleNumber, change.cidr);
            throw Object.assign(new Error(`this stack has let go of network ACL ${aclId} (its cleanup ran): nothing more is written there`), { name: ERR_RETIRED });
          }
        }
        await this.retry(() => this.send(aclId, change), change.op !== 'create');
        // placed at the answer: never earlier than the entry's creation (the residence time counts from here)
        const at = this.clock.now();
        await this.settle(aclId, change, at);
        if (this.ledger && change.op !== 'delete') placedAt.set(change.ruleNumber, at);
        applied.push(change);
      } catch (error) {
        const name = errorName(error) ?? 'Error';
        if (change.op === 'delete' && name === ERR_ENTRY_NOT_FOUND) {
          await this.settle(aclId, change);
          applied.push(change); // already gone: the goal is reached
          continue;
        }
        if (change.op === 'replace' && name === ERR_ENTRY_NOT_FOUND) {
          // Nothing is at the number (the write API answers from the ACL itself): none of the
          // row's CIDRs is there; the number is free again after the cool-down. Re-plan.
          if (this.ledger) await this.ledger.free(aclId, change.ruleNumber, change.cidr, this.clock.now() + RULE_NUMBER_COOL_DOWN_MS);
          conflicts.push({ change, error: name });
          break;
        }
        if (change.op === 'create' && (name === ERR_ENTRY_EXISTS || name === ERR_ENTRY_LIMIT)) {
          // Refused at the first attempt: not carried out, the row goes back as it was. After an
          // SDK retry an AlreadyExists may be our own first attempt: the claim stays.
          if (this.ledger && attemptsOf(error) === 1) {
            if (before) await this.ledger.restore(aclId, before);
            else await this.ledger.withdraw(aclId, change.ruleNumber, change.cidr);
          }
          if (name === ERR_ENTRY_LIMIT) quotaFull = true;
          conflicts.push({ change, error: name });
          break;
        }
        if (name === ERR_ENTRY_LIMIT) {
          quotaFull = true;
          conflicts.push({ change, error: name });
          break;
        }
        if (change.op === 'create' && outcomeUnknown(error)) {
          // No answer: the entry may be there. The claim stays; the next read tells (re-plan).
          conflicts.push({ change, error: name });
          break;
        }
        throw error;
      }
    }
    return { applied, conflicts, quotaFull, placedAt };
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
  private async settle(aclId: string, change: NaclChange, at = this.clock.now()): Promise<void> {
    if (!this.ledger) return;
    if (change.op === 'delete') await this.ledger.free(aclId, change.ruleNumber, change.cidr, at + RULE_NUMBER_COOL_DOWN_MS);
    else await this.ledger.confirm(aclId, change.ruleNumber, change.cidr, at);
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
