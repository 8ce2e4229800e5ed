/**
 * A stateful fake of the EC2 network ACL API, driven through aws-sdk-client-mock. It models what
 * AWS documents, so the adapters are tested against rules that can say no:
 * - DescribeNetworkAcls with NetworkAclIds: an unknown id fails with InvalidNetworkAclID.NotFound.
 *   https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeNetworkAcls.html
 *   https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html
 * - Every ACL has a default deny entry ("*") per direction for IPv4, and for IPv6 when the VPC
 *   has IPv6; it cannot be created, replaced or deleted. The API reports it as "rule number 32767
 *   for IPv4 and 32768 for IPv6".
 *   https://docs.aws.amazon.com/vpc/latest/userguide/nacl-rules.html
 *   https://docs.aws.amazon.com/vpc/latest/userguide/amazon-vpc-limits.html
 * - DescribeNetworkAcls is eventually consistent: a read right after a change may still show the
 *   state before it (staleNext).
 *   https://docs.aws.amazon.com/ec2/latest/devguide/eventual-consistency.html
 * - DescribeNetworkAcls filters: network-acl-id, vpc-id, default; another filter name fails with
 *   InvalidParameterValue. (NetworkAclIds and Filters may be given together.)
 *   https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeNetworkAcls.html
 * - CreateNetworkAclEntry: RuleNumber 1–32766 (else InvalidParameterValue); exactly one of
 *   CidrBlock / Ipv6CidrBlock; the CIDR is stored in canonical form; a rule number already used
 *   in the same direction fails with NetworkAclEntryAlreadyExists.
 *   https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateNetworkAclEntry.html
 * - Rules per network ACL, per direction, IPv4 and IPv6 apart, the default deny counted: 20 by
 *   default (up to 40); one more fails with NetworkAclEntryLimitExceeded.
 *   https://docs.aws.amazon.com/vpc/latest/userguide/amazon-vpc-limits.html
 * - ReplaceNetworkAclEntry / DeleteNetworkAclEntry of a rule number that has no entry fail with
 *   InvalidNetworkAclEntry.NotFound.
 *   https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ReplaceNetworkAclEntry.html
 *   https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DeleteNetworkAclEntry.html
 * - Throttling: RequestLimitExceeded, HTTP 503.
 *   https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html
 * - ReplaceNetworkAclEntry "replaces an entry (rule) in a network ACL": the entry at the number
 *   afterwards is a new one. The fake records, per ACL, when each entry it holds was created
 *   (CreateNetworkAclEntry, ReplaceNetworkAclEntry or a console edit that changed it) on the
 *   test's clock (`createdAt`): the independent record the residence-time spec
 *   (test/wire/spec.ts naclHolders) reads, never the stack's ledger. The API does not report it.
 *   https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ReplaceNetworkAclEntry.html
 *
 * The same state serves test/wire/ec2-server.ts, which puts it behind the EC2 Query protocol on a
 * local HTTP port for the real EC2Client.
 */
import {
  CreateNetworkAclEntryCommand,
  type CreateNetworkAclEntryCommandInput,
  DeleteNetworkAclEntryCommand,
  type DeleteNetworkAclEntryCommandInput,
  DescribeNetworkAclsCommand,
  type DescribeNetworkAclsCommandInput,
  EC2Client,
  type NetworkAclEntry,
  ReplaceNetworkAclEntryCommand,
  type ReplaceNetworkAclEntryCommandInput,
} from '@aws-sdk/client-ec2';
import { mockClient } from 'aws-sdk-client-mock';
import { tryParseCidr } from '../../core/address';
import { awsError } from './errors';

export type Ec2Op = 'DescribeNetworkAcls' | 'CreateNetworkAclEntry' | 'ReplaceNetworkAclEntry' | 'DeleteNetworkAclEntry';

/** How DescribeNetworkAcls reports the "*" default deny of each family. */
export const DEFAULT_DENY_RULE = { ipv4: 32767, ipv6: 32768 } as const;

/** An entry's place: its direction and rule number (one entry per rule number per direction). */
function slot(entry: Pick<NetworkAclEntry, 'RuleNumber' | 'Egress'>): string {
  return `${entry.Egress === true ? 'egress' : 'ingress'}/${entry.RuleNumber}`;
}

function familyOfEntry(entry: NetworkAclEntry): 'ipv4' | 'ipv6' {
  return entry.Ipv6CidrBlock !== undefined ? 'ipv6' : 'ipv4';
}

export class FakeEc2 {
  readonly client = new EC2Client({ region: 'eu-west-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
  readonly mock = mockClient(this.client);
  private readonly acls = new Map<string, NetworkAclEntry[]>();
  /** each ACL's entries before its latest change, for stale reads */
  private readonly previous = new Map<string, NetworkAclEntry[]>();
  private readonly vpcs = new Map<string, string>();
  /** per ACL, per "<egress>/<rule number>": when the entry there was created (the test's clock) */
  private readonly created = new Map<string, Map<string, number>>();
  private staleReads = 0;
  /** per ACL: a snapshot the next reads serve (a read lagging any number of changes behind) */
  private readonly lagging = new Map<string, { entries: NetworkAclEntry[]; reads: number }>();
  private readonly pending: Array<{ op: Ec2Op | '*'; error: string }> = [];
  readonly calls: Record<Ec2Op, number> = { DescribeNetworkAcls: 0, CreateNetworkAclEntry: 0, ReplaceNetworkAclEntry: 0, DeleteNetworkAclEntry: 0 };
  /** probability of RequestLimitExceeded on any call */
  throttleRate = 0;

  constructor(
    /** rules per direction per family, the default deny included */
    public quota = 20,
    private readonly random: () => number = Math.random,
    /** the test's clock, for `createdAt` */
    private readonly now: () => number = Date.now,
  ) {
    this.mock.on(DescribeNetworkAclsCommand).callsFake(async (input: DescribeNetworkAclsCommandInput) => this.describe(input));
    this.mock.on(CreateNetworkAclEntryCommand).callsFake(async (input: CreateNetworkAclEntryCommandInput) => this.create(input));
    this.mock.on(ReplaceNetworkAclEntryCommand).callsFake(async (input: ReplaceNetworkAclEntryCommandInput) => this.replace(input));
    this.mock.on(DeleteNetworkAclEntryCommand).callsFake(async (input: DeleteNetworkAclEntryCommandInput) => this.remove(input));
  }

  addAcl(aclId: string, options: { ipv6?: boolean; entries?: NetworkAclEntry[]; vpcId?: string } = {}): void {
    const defaults: NetworkAclEntry[] = [];
    for (const egress of [false, true]) {
      defaults.push({ RuleNumber: DEFAULT_DENY_RULE.ipv4, Egress: egress, Protocol: '-1', RuleAction: 'deny', CidrBlock: '0.0.0.0/0' });
      if (options.ipv6) defaults.push({ RuleNumber: DEFAULT_DENY_RULE.ipv6, Egress: egress, Protocol: '-1', RuleAction: 'deny', Ipv6CidrBlock: '::/0' });
    }
    this.acls.set(aclId, [...(options.entries ?? []).map((e) => ({ ...e })), ...defaults]);
    this.created.set(aclId, new Map(this.acls.get(aclId)!.map((e) => [slot(e), this.now()])));
    this.previous.set(aclId, this.entries(aclId));
    this.vpcs.set(aclId, options.vpcId ?? 'vpc-0123456789abcdef0');
  }

  /** The VPC an ACL belongs to. */
  vpcOf(aclId: string): string | undefined {
    return this.vpcs.get(aclId);
  }

  /** The next `n` DescribeNetworkAcls calls see each ACL as it was before its latest change. */
  staleNext(n = 1): void {
    this.staleReads += n;
  }

  /**
   * The next `reads` DescribeNetworkAcls of `aclId` answer with `snapshot` (taken earlier with
   * entries()): eventual consistency lagging several changes behind, which staleNext (one change
   * behind) cannot show. https://docs.aws.amazon.com/ec2/latest/devguide/eventual-consistency.html
   */
  lagNext(aclId: string, snapshot: NetworkAclEntry[], reads = 1): void {
    this.lagging.set(aclId, { entries: snapshot.map((e) => ({ ...e })), reads });
  }

  /** Serves one call by operation name (the HTTP front end's entry point). */
  handle(op: Ec2Op, input: Record<string, unknown>): object {
    switch (op) {
      case 'DescribeNetworkAcls':
        return this.describe(input as DescribeNetworkAclsCommandInput);
      case 'CreateNetworkAclEntry':
        return this.create(input as unknown as CreateNetworkAclEntryCommandInput);
      case 'ReplaceNetworkAclEntry':
        return this.replace(input as unknown as ReplaceNetworkAclEntryCommandInput);
      case 'DeleteNetworkAclEntry':
        return this.remove(input as unknown as DeleteNetworkAclEntryCommandInput);
    }
  }

  /** Records the state before a change, for stale reads. */
  private changing(aclId: string): void {
    this.previous.set(aclId, this.entries(aclId));
  }

  /** The entries as AWS holds them (copies). */
  entries(aclId: string): NetworkAclEntry[] {
    return (this.acls.get(aclId) ?? []).map((e) => ({ ...e }));
  }

  /** Someone edits the ACL outside portsnare (the console): no API rules apply. */
  consoleEdit(aclId: string, edit: (entries: NetworkAclEntry[]) => NetworkAclEntry[]): void {
    this.changing(aclId);
    const before = new Map(this.entries(aclId).map((e) => [slot(e), JSON.stringify(e)]));
    const after = edit(this.entries(aclId));
    this.acls.set(aclId, after);
    const created = this.created.get(aclId) ?? new Map<string, number>();
    const kept = new Map<string, number>();
    for (const entry of after) {
      const at = before.get(slot(entry)) === JSON.stringify(entry) ? created.get(slot(entry)) : undefined;
      kept.set(slot(entry), at ?? this.now());
    }
    this.created.set(aclId, kept);
  }

  /**
   * When the entry at `ruleNumber` (ingress unless `egress`) was created, on the test's clock:
   * by CreateNetworkAclEntry, ReplaceNetworkAclEntry or a console edit. Undefined: no entry there.
   */
  createdAt(aclId: string, ruleNumber: number, egress = false): number | undefined {
    return this.created.get(aclId)?.get(slot({ RuleNumber: ruleNumber, Egress: egress }));
  }

  /** The next call of `op` ('*': any call) fails with `error`. */
  failNext(op: Ec2Op | '*', error: string, times = 1): void {
    for (let i = 0; i < times; i++) this.pending.push({ op, error });
  }

  clearFaults(): void {
    this.pending.length = 0;
    this.throttleRate = 0;
    this.staleReads = 0;
    this.lagging.clear();
  }

  private gate(op: Ec2Op): void {
    this.calls[op]++;
    const index = this.pending.findIndex((p) => p.op === op || p.op === '*');
    if (index >= 0) {
      const [fault] = this.pending.splice(index, 1);
      const status = fault!.error === 'InternalError' ? 500 : fault!.error === 'RequestLimitExceeded' ? 503 : 400;
      throw awsError(fault!.error, `injected ${fault!.error} on ${op}`, status);
    }
    if (this.throttleRate > 0 && this.random() < this.throttleRate) throw awsError('RequestLimitExceeded', 'Request limit exceeded.', 503);
  }

  private acl(aclId: string | undefined): NetworkAclEntry[] {
    const entries = aclId === undefined ? undefined : this.acls.get(aclId);
    if (!entries) throw awsError('InvalidNetworkAclID.NotFound', `The networkAcl ID '${aclId}' does not exist`);
    return entries;
  }

  private describe(input: DescribeNetworkAclsCommandInput) {
    this.gate('DescribeNetworkAcls');
    const stale = this.staleReads > 0;
    if (stale) this.staleReads--;
    const ids = input.NetworkAclIds?.length ? input.NetworkAclIds : [...this.acls.keys()];
    for (const id of ids) this.acl(id); // an unknown id named explicitly fails the call
    const filters = (input.Filters ?? []).map((filter) => {
      const values = filter.Values ?? [];
      switch (filter.Name) {
        case 'network-acl-id':
          return (id: string) => values.includes(id);
        case 'vpc-id':
          return (id: string) => values.includes(this.vpcs.get(id) ?? '');
        case 'default':
          return () => values.includes('false');
        default:
          throw awsError('InvalidParameterValue', `The filter '${filter.Name}' is invalid`);
      }
    });
    const acls = ids
      .filter((id) => filters.every((match) => match(id)))
      .map((id) => {
        const lag = this.lagging.get(id);
        if (lag && --lag.reads <= 0) this.lagging.delete(id);
        return {
          NetworkAclId: id,
          VpcId: this.vpcs.get(id),
          IsDefault: false,
          Entries: (lag ? lag.entries : stale ? (this.previous.get(id) ?? []) : this.acl(id)).map((e) => ({ ...e })),
        };
      });
    return { NetworkAcls: acls };
  }

  private validated(input: CreateNetworkAclEntryCommandInput | ReplaceNetworkAclEntryCommandInput): NetworkAclEntry {
    const rule = input.RuleNumber;
    if (rule === undefined || !Number.isInteger(rule) || rule < 1 || rule > 32766) {
      throw awsError('InvalidParameterValue', `Invalid value '${rule}' for ruleNumber. Must be in range 1 to 32766`);
    }
    if (input.Egress === undefined || input.Protocol === undefined || input.RuleAction === undefined) {
      throw awsError('MissingParameter', 'Egress, Protocol and RuleAction are required');
    }
    if ((input.CidrBlock === undefined) === (input.Ipv6CidrBlock === undefined)) {
      throw awsError('InvalidParameterCombination', 'Exactly one of CidrBlock and Ipv6CidrBlock must be given');
    }
    const raw = input.CidrBlock ?? input.Ipv6CidrBlock ?? '';
    const cidr = tryParseCidr(raw, true);
    if (!cidr || cidr.family !== (input.CidrBlock !== undefined ? 'ipv4' : 'ipv6')) {
      throw awsError('InvalidParameterValue', `Value (${raw}) for parameter cidrBlock is invalid`);
    }
    return {
      RuleNumber: rule,
      Egress: input.Egress,
      Protocol: input.Protocol,
      RuleAction: input.RuleAction,
      ...(cidr.family === 'ipv4' ? { CidrBlock: cidr.text } : { Ipv6CidrBlock: cidr.text }),
      ...(input.PortRange ? { PortRange: input.PortRange } : {}),
      ...(input.IcmpTypeCode ? { IcmpTypeCode: input.IcmpTypeCode } : {}),
    };
  }

  private checkQuota(entries: NetworkAclEntry[], entry: NetworkAclEntry, replacing?: NetworkAclEntry): void {
    const family = familyOfEntry(entry);
    const count = entries.filter((e) => e !== replacing && e.Egress === entry.Egress && familyOfEntry(e) === family).length;
    if (count + 1 > this.quota) {
      throw awsError('NetworkAclEntryLimitExceeded', `The maximum number of ${entry.Egress ? 'egress' : 'ingress'} rules for this network ACL has been reached`);
    }
  }

  private create(input: CreateNetworkAclEntryCommandInput) {
    this.gate('CreateNetworkAclEntry');
    const entries = this.acl(input.NetworkAclId);
    const entry = this.validated(input);
    if (entries.some((e) => e.RuleNumber === entry.RuleNumber && e.Egress === entry.Egress)) {
      throw awsError('NetworkAclEntryAlreadyExists', `The network acl entry identified by ${entry.RuleNumber} already exists.`);
    }
    this.checkQuota(entries, entry);
    this.changing(input.NetworkAclId!);
    entries.push(entry);
    this.created.get(input.NetworkAclId!)?.set(slot(entry), this.now());
    return {};
  }

  private replace(input: ReplaceNetworkAclEntryCommandInput) {
    this.gate('ReplaceNetworkAclEntry');
    const entries = this.acl(input.NetworkAclId);
    const entry = this.validated(input);
    const index = entries.findIndex((e) => e.RuleNumber === entry.RuleNumber && e.Egress === entry.Egress);
    if (index < 0) throw awsError('InvalidNetworkAclEntry.NotFound', `The network acl entry identified by ${entry.RuleNumber} does not exist`);
    this.checkQuota(entries, entry, entries[index]);
    this.changing(input.NetworkAclId!);
    entries[index] = entry;
    this.created.get(input.NetworkAclId!)?.set(slot(entry), this.now());
    return {};
  }

  private remove(input: DeleteNetworkAclEntryCommandInput) {
    this.gate('DeleteNetworkAclEntry');
    const entries = this.acl(input.NetworkAclId);
    const rule = input.RuleNumber;
    if (rule === undefined || rule < 1 || rule > 32766) throw awsError('InvalidParameterValue', `Invalid value '${rule}' for ruleNumber`);
    const index = entries.findIndex((e) => e.RuleNumber === rule && e.Egress === input.Egress);
    if (index < 0) throw awsError('InvalidNetworkAclEntry.NotFound', `The network acl entry identified by ${rule} does not exist`);
    this.changing(input.NetworkAclId!);
    entries.splice(index, 1);
    this.created.get(input.NetworkAclId!)?.delete(slot({ RuleNumber: rule, Egress: input.Egress }));
    return {};
  }
}
