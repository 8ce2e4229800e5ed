/**
 * Network ACL entries through the EC2 API. Reads with DescribeNetworkAcls; writes only ingress
 * "deny all traffic" entries for single hosts inside the reserved range (core/nacl.ts decides
 * which); retries throttling (EC2: RequestLimitExceeded) with jittered backoff.
 * https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeNetworkAcls.html
 * https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateNetworkAclEntry.html
 * https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ReplaceNetworkAclEntry.html
 * https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DeleteNetworkAclEntry.html
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
import { tryParseCidr } from '../../core/address';
import type { NaclChange, NaclEntry } from '../../core/nacl';
import type { Clock } from './clock';
import type { Observability } from './observability';
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

export class NaclAdapter {
  constructor(
    private readonly ec2: EC2Client,
    private readonly clock: Clock,
    private readonly obs: Observability,
    private readonly random: () => number = Math.random,
  ) {}

  private retry<T>(fn: () => Promise<T>): Promise<T> {
    return withRetry(fn, { clock: this.clock, random: this.random, attempts: 6, baseMs: 200, capMs: 8_000, onRetry: () => this.obs.count('Throttles') });
  }

  /** The entries of each ACL; an ACL that does not exist is logged and left out. */
  async describe(aclIds: readonly string[]): Promise<Array<{ aclId: string; entries: NaclEntry[] }>> {
    const result: Array<{ aclId: string; entries: NaclEntry[] }> = [];
    for (const aclId of aclIds) {
      try {
        const out = await this.retry(() => this.ec2.send(new DescribeNetworkAclsCommand({ NetworkAclIds: [aclId] })));
        const acl = out.NetworkAcls?.find((a) => a.NetworkAclId === aclId);
        if (!acl) throw Object.assign(new Error(`network ACL ${aclId} not returned`), { name: ERR_ACL_NOT_FOUND });
        result.push({ aclId, entries: (acl.Entries ?? []).map(fromSdkEntry) });
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
    for (const change of changes) {
      try {
        await this.retry(() => this.send(aclId, change));
        applied.push(change);
      } catch (error) {
        const name = errorName(error) ?? 'Error';
        if (change.op === 'delete' && name === ERR_ENTRY_NOT_FOUND) {
          applied.push(change); // already gone: the goal is reached
          continue;
        }
        // A create whose answer was lost is retried by the SDK and then finds its own entry
        // there: the goal is reached, not a conflict.
        if (change.op === 'create' && name === ERR_ENTRY_EXISTS && (await this.holds(aclId, change))) {
          applied.push(change);
          continue;
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
    const [acl] = await this.describe([aclId]);
    const want = tryParseCidr(change.cidr, true)?.text;
    return (acl?.entries ?? []).some(
      (entry) =>
        !entry.egress &&
        entry.ruleNumber === change.ruleNumber &&
        entry.ruleAction === 'deny' &&
        entry.protocol === '-1' &&
        entry.portRange === undefined &&
        entry.icmpTypeCode === undefined &&
        tryParseCidr(entry.cidrBlock ?? entry.ipv6CidrBlock ?? '', true)?.text === want,
    );
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
