/**
 * AWS Security Hub findings of the blocks (issue 21, item 3): one finding in the AWS Security
 * Finding Format (ASFF) per blocked source, pure. lambda/findings/handler.ts reads the decision
 * table's change log and imports what this file builds with BatchImportFindings.
 *
 * The rules this mapping keeps, each from its AWS page:
 * - the required top-level attributes: AwsAccountId, CreatedAt, Description, GeneratorId, Id,
 *   ProductArn, Resources, SchemaVersion, Severity, Title, Types, UpdatedAt
 *   (https://docs.aws.amazon.com/securityhub/latest/userguide/asff-required-attributes.html);
 *   timestamps are RFC 3339 strings ("2017-03-22T13:22:13.933Z", same page); SchemaVersion
 *   "2018-10-08" (https://docs.aws.amazon.com/securityhub/latest/userguide/securityhub-findings-format.html);
 * - a custom integration's product ARN is the account's default product,
 *   `arn:<partition>:securityhub:<region>:<account>:product/<account>/default`, and
 *   BatchImportFindings must be called by the account the finding names in AwsAccountId
 *   (https://docs.aws.amazon.com/securityhub/latest/userguide/securityhub-custom-providers.html,
 *   https://docs.aws.amazon.com/securityhub/1.0/APIReference/API_BatchImportFindings.html);
 * - create or update is decided by Id (and ProductArn): an import whose UpdatedAt is the same as
 *   or earlier than the stored finding's is ignored
 *   (https://docs.aws.amazon.com/securityhub/latest/userguide/finding-update-batchimportfindings.html).
 *   So Id is stable per target (`findingId`) and UpdatedAt is the time of the record's last
 *   change: importing the same change twice (a run's overlap, a duplicated scheduler invocation)
 *   changes nothing, a later change (a re-offence, the lift) always wins;
 * - after a finding is created the provider updates Severity and Types through
 *   FindingProviderFields, not the top-level attributes (same page; and
 *   https://docs.aws.amazon.com/securityhub/1.0/APIReference/API_FindingProviderFields.html):
 *   both are sent, so the first import creates them and a later one raises the severity;
 * - Types are `namespace/category/classifier`, the namespace one of Software and Configuration
 *   Checks | TTPs | Effects | Unusual Behaviors | Sensitive Data Identifications
 *   (https://docs.aws.amazon.com/securityhub/latest/userguide/securityhub-findings-format-type-taxonomy.html);
 * - Severity.Label INFORMATIONAL | LOW | MEDIUM | HIGH | CRITICAL
 *   (https://docs.aws.amazon.com/securityhub/1.0/APIReference/API_Severity.html);
 *   RecordState ACTIVE | ARCHIVED: a lifted block's finding is archived
 *   (https://docs.aws.amazon.com/securityhub/1.0/APIReference/API_AwsSecurityFinding.html);
 * - Title at most 256 characters, Description at most 1024, ProductFields at most 50 pairs
 *   (API_AwsSecurityFinding.html, same page);
 * - at most 100 findings per BatchImportFindings call, 240 KB per finding, 6 MB per call;
 *   10 calls per second per account and Region, burst 30
 *   (https://docs.aws.amazon.com/securityhub/latest/partnerguide/guidelines-batchimportfindings.html).
 */
import { isHostCidr, tryParseCidr } from './address';
import type { BlockRecord } from './policy';

export const ASFF_SCHEMA_VERSION = '2018-10-08';
/** findings per BatchImportFindings call */
export const MAX_FINDINGS_PER_IMPORT = 100;
/** calls per second per account and Region (the steady rate; the burst of 30 is not used) */
export const MAX_IMPORTS_PER_SECOND = 10;
export const MAX_TITLE_LENGTH = 256;
export const MAX_DESCRIPTION_LENGTH = 1024;
/** what produced the finding: the decision pipeline */
export const FINDINGS_GENERATOR_ID = 'portsnare/decision';
/** the finding type: reconnaissance by port scan, an adversary's technique */
export const FINDING_TYPE = 'TTPs/Discovery/Recon:PortScan';

export type SeverityLabel = 'INFORMATIONAL' | 'LOW' | 'MEDIUM' | 'HIGH' | 'CRITICAL';

/** The ASFF attributes portsnare sends (a subset of AwsSecurityFinding, as the SDK types it). */
export interface AsffFinding {
  readonly SchemaVersion: string;
  readonly Id: string;
  readonly ProductArn: string;
  readonly GeneratorId: string;
  readonly AwsAccountId: string;
  readonly Types: string[];
  readonly CreatedAt: string;
  readonly UpdatedAt: string;
  readonly FirstObservedAt: string;
  readonly LastObservedAt: string;
  readonly Severity: { Label: SeverityLabel; Original: string };
  readonly FindingProviderFields: { Severity: { Label: SeverityLabel; Original: string }; Types: string[] };
  readonly Title: string;
  readonly Description: string;
  readonly ProductName: string;
  readonly CompanyName: string;
  readonly RecordState: 'ACTIVE' | 'ARCHIVED';
  readonly ProductFields: Record<string, string>;
  readonly Network?: { Direction: 'IN'; SourceIpV4?: string; SourceIpV6?: string };
  readonly Resources: Array<{ Type: string; Id: string; Partition: string; Region: string; Details: { Other: Record<string, string> } }>;
}

/** Where the findings go: the account and Region the function runs in, and its partition. */
export interface FindingsTarget {
  readonly partition: string;
  readonly region: string;
  readonly account: string;
  /** makes finding ids unique per deployment: the decision table's name */
  readonly scope: string;
}

/** A custom integration's product ARN: the account's default product. */
export function productArnOf(target: Pick<FindingsTarget, 'partition' | 'region' | 'account'>): string {
  return `arn:${target.partition}:securityhub:${target.region}:${target.account}:product/${target.account}/default`;
}

const PRODUCT_ARN = /^arn:(aws[a-z-]*):securityhub:([a-z]{2}(?:-[a-z]+)+-\d):(\d{12}):product\/(\d{12})\/default$/;

/** The partition, Region and account of a default product ARN; undefined when it is not one (the account twice). */
export function parseProductArn(arn: string): Pick<FindingsTarget, 'partition' | 'region' | 'account'> | undefined {
  const match = PRODUCT_ARN.exec(arn);
  if (!match || match[3] !== match[4]) return undefined;
  return { partition: match[1]!, region: match[2]!, account: match[3]! };
}

/** One finding per blocked source, the same for its whole life: created, updated, archived. */
export function findingId(scope: string, target: string): string {
  return `portsnare/${scope}/block/${target}`;
}

/** Severity rises with the offences: 1 LOW, 2–3 MEDIUM, 4 or more HIGH. */
export function severityOf(offences: number): SeverityLabel {
  if (offences >= 4) return 'HIGH';
  if (offences >= 2) return 'MEDIUM';
  return 'LOW';
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/**
 * The finding of one block record as of its change at `changedAt` (epoch ms; UpdatedAt). The
 * record is the table's full record (the change log projects only what enforcement needs).
 */
export function asffFinding(record: BlockRecord, changedAt: number, target: FindingsTarget): AsffFinding {
  const label = severityOf(record.offences);
  const original = `offences ${record.offences}`;
  const types = [FINDING_TYPE];
  const state = record.active ? `blocked until ${iso(record.expiresAt)}` : `lifted (${record.liftedBy ?? 'expired'})`;
  const description =
    `portsnare blocked ${record.target} (${record.reason}) after ${record.hitCount} probe(s) in ${record.offences} offence(s); ` +
    `first seen ${iso(record.firstSeen)}, last seen ${iso(record.lastSeen)}; ${state}.` +
    (record.note ? ` Note: ${record.note}` : '');
  const cidr = tryParseCidr(record.target);
  const host = cidr && isHostCidr(cidr) ? cidr : undefined;
  return {
    SchemaVersion: ASFF_SCHEMA_VERSION,
    Id: findingId(target.scope, record.target),
    ProductArn: productArnOf(target),
    GeneratorId: FINDINGS_GENERATOR_ID,
    AwsAccountId: target.account,
    Types: types,
    // the block's first sighting: the same for the finding's whole life
    CreatedAt: iso(record.firstSeen),
    UpdatedAt: iso(changedAt),
    FirstObservedAt: iso(record.firstSeen),
    LastObservedAt: iso(record.lastSeen),
    Severity: { Label: label, Original: original },
    FindingProviderFields: { Severity: { Label: label, Original: original }, Types: types },
    Title: clip(`portsnare blocked ${record.target}: port scan`, MAX_TITLE_LENGTH),
    Description: clip(description, MAX_DESCRIPTION_LENGTH),
    ProductName: 'portsnare',
    CompanyName: 'portsnare',
    RecordState: record.active ? 'ACTIVE' : 'ARCHIVED',
    ProductFields: {
      'portsnare/target': record.target,
      'portsnare/reason': record.reason,
      'portsnare/offences': String(record.offences),
      'portsnare/hitCount': String(record.hitCount),
      'portsnare/blockedAt': iso(record.blockedAt),
      'portsnare/expiresAt': iso(record.expiresAt),
      'portsnare/active': String(record.active),
      ...(record.liftedBy ? { 'portsnare/liftedBy': record.liftedBy } : {}),
      ...(record.sensors.length ? { 'portsnare/sensors': clip(record.sensors.join(','), 2048) } : {}),
    },
    // a host target is the scanner's address; a prefix block has no single source address
    ...(host ? { Network: { Direction: 'IN' as const, ...(host.family === 'ipv4' ? { SourceIpV4: host.network } : { SourceIpV6: host.network }) } } : {}),
    Resources: [
      {
        Type: 'Other',
        Id: record.target,
        Partition: target.partition,
        Region: target.region,
        Details: { Other: { target: record.target, family: record.family, reason: record.reason } },
      },
    ],
  };
}

/** `items` in batches of at most `size`. */
export function batches<T>(items: readonly T[], size = MAX_FINDINGS_PER_IMPORT): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/**
 * The exporter's cursor in the decision table (a key of its own partition, so the findings
 * function's only write right is on that partition: lib/DecisionCore.ts). `at`: epoch ms the last
 * successful run's change read started; `retry`: targets whose import failed, retried next run.
 */
export const FINDINGS_CURSOR_PK = 'FINDINGS';
export const FINDINGS_CURSOR_SK = 'CURSOR';
