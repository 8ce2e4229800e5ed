/**
 * Where each target is in force now, read from the enforcers themselves: portsnare's WAF IP sets
 * (the `PortsnareIpSetArns` output) and portsnare's own deny entries in the configured network
 * ACLs — recognised by core/nacl.ts `ownEntryTarget`, the rule the enforce function applies, so an
 * operator's deny entry inside the range is never credited to portsnare.
 *
 * A source that cannot be read is reported as such ("unknown: …"), not as "nowhere"; a read that
 * AWS denied or throttled (after the SDK's retries) fails the command with the error's name.
 * https://docs.aws.amazon.com/waf/latest/APIReference/API_GetIPSet.html
 * https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeNetworkAcls.html
 */
import { DescribeNetworkAclsCommand } from '@aws-sdk/client-ec2';
import { GetIPSetCommand } from '@aws-sdk/client-wafv2';
import { canonicalTarget } from '../../../core/address';
import { ownEntryTarget, withOwnership } from '../../../core/nacl';
import type { NaclSettings } from '../../../core/settings';
import { fromSdkEntry } from '../../../aws/nacl-adapter';
import { PlacementLedger } from '../../../aws/repository';
import { awsError, mustFail } from './aws-errors';
import type { CloudClients } from './clients';

export interface IpSetRef {
  readonly scope: 'REGIONAL' | 'CLOUDFRONT';
  readonly region: string;
  readonly name: string;
  readonly id: string;
}

/** arn:aws:wafv2:eu-west-1:111122223333:regional/ipset/NAME/ID (global/… for CloudFront) */
export function parseIpSetArn(arn: string): IpSetRef | undefined {
  const match = /^arn:aws[\w-]*:wafv2:([\w-]+):\d{12}:(regional|global)\/ipset\/([\w-]+)\/([\w-]+)$/.exec(arn);
  if (!match) return undefined;
  return { region: match[1] ?? '', scope: match[2] === 'global' ? 'CLOUDFRONT' : 'REGIONAL', name: match[3] ?? '', id: match[4] ?? '' };
}

export interface Placements {
  /** canonical target → "waf:NAME", "nacl:acl-…#RULE" */
  readonly byTarget: ReadonlyMap<string, readonly string[]>;
  /** sources that could not be read, with why */
  readonly unknown: readonly string[];
}

export interface PlacementSources {
  readonly ipSets: readonly IpSetRef[];
  readonly nacl: Pick<NaclSettings, 'aclIds' | 'ruleRange'>;
  /** the stack's table: its placement ledger says which NACL entries are this stack's */
  readonly tableName: string;
}

/** What one source holds: [target, place] pairs, or why it could not be read. */
type SourceRead = { readonly places: ReadonlyArray<readonly [string, string]> } | { readonly unknown: string };

export async function readPlacements(clients: CloudClients, sources: PlacementSources): Promise<Placements> {
  /** a not-found source is shown as unknown; a denied or throttled read fails the command */
  const unreadable = (error: unknown, what: string, label: string): SourceRead => {
    const failure = awsError(error, what);
    if (mustFail(error)) throw failure;
    return { unknown: `${label} (${failure.message})` };
  };
  const reads: Array<Promise<SourceRead>> = sources.ipSets.map(async (ref) => {
    try {
      const region = ref.scope === 'CLOUDFRONT' ? 'us-east-1' : ref.region;
      const answer = await clients.waf(region).send(new GetIPSetCommand({ Name: ref.name, Scope: ref.scope, Id: ref.id }));
      const places: Array<[string, string]> = [];
      for (const address of answer.IPSet?.Addresses ?? []) {
        const target = canonicalTarget(address);
        if (target !== undefined) places.push([target, `waf:${ref.name}`]);
      }
      return { places };
    } catch (error) {
      return unreadable(error, `read the IP set ${ref.name} (${ref.scope})`, `waf:${ref.name}`);
    }
  });
  const aclIds = [...new Set(sources.nacl.aclIds)];
  if (aclIds.length > 0) reads.push(readAcls(clients, aclIds, sources.nacl.ruleRange, sources.tableName).catch((error: unknown) => unreadable(error, `read the network ACLs ${aclIds.join(', ')}`, 'nacl')));
  // merged in the order the sources are listed, whichever answered first
  const byTarget = new Map<string, string[]>();
  const unknown: string[] = [];
  for (const read of await Promise.all(reads)) {
    if ('unknown' in read) unknown.push(read.unknown);
    else for (const [target, place] of read.places) byTarget.set(target, [...(byTarget.get(target) ?? []), place]);
  }
  return { byTarget, unknown };
}

async function readAcls(clients: CloudClients, aclIds: string[], ruleRange: readonly [number, number], tableName: string): Promise<SourceRead> {
  const answer = await clients.ec2.send(new DescribeNetworkAclsCommand({ NetworkAclIds: aclIds }));
  const ledger = new PlacementLedger(clients.dynamo, tableName);
  const places: Array<[string, string]> = [];
  for (const acl of answer.NetworkAcls ?? []) {
    // an entry of portsnare's shape is this stack's only if its ledger holds it (another stack may share the ACL)
    const entries = withOwnership((acl.Entries ?? []).map(fromSdkEntry), await ledger.list(acl.NetworkAclId ?? ''), ruleRange);
    for (const entry of entries) {
      const target = ownEntryTarget(entry, ruleRange);
      if (target !== undefined) places.push([target, `nacl:${acl.NetworkAclId ?? '?'}#${entry.ruleNumber}`]);
    }
  }
  return { places };
}
