/**
 * The same block record as core/findings.ts, as an OCSF Detection Finding (class 2004, category
 * 2 Findings), the schema Amazon Security Lake takes from a custom source (OCSF 1.1.0). Pure;
 * `portsnare findings --ocsf` (bin/commands/findings.ts) prints one JSON object per line.
 *
 * The class and its required attributes (activity_id, category_uid, class_uid, finding_info with
 * uid and title, metadata with product and version, severity_id, time, type_uid = class_uid × 100
 * + activity_id): https://schema.ocsf.io/1.1.0/classes/detection_finding ; the activities 1 Create,
 * 2 Update, 3 Close; severity_id 1 Informational … 5 Critical; status_id 1 New, 4 Resolved; the
 * security_control profile's action_id 2 Denied and disposition_id 2 Blocked:
 * https://schema.ocsf.io/1.1.0/profiles/security_control ; times are epoch milliseconds
 * (timestamp_t): https://schema.ocsf.io/1.1.0/data_types .
 * Security Lake takes custom-source data as Apache Parquet objects in its S3 bucket
 * (https://docs.aws.amazon.com/security-lake/latest/userguide/custom-sources.html): that delivery
 * is deferred (docs/deploy.md "Security Hub findings").
 */
import { isHostCidr, tryParseCidr } from './address';
import { FINDING_TYPE, findingId, type FindingsTarget, type SeverityLabel, severityOf } from './findings';
import type { BlockRecord } from './policy';

export const OCSF_VERSION = '1.1.0';
export const DETECTION_FINDING_CLASS_UID = 2004;
export const FINDINGS_CATEGORY_UID = 2;

const SEVERITY_IDS: Record<SeverityLabel, number> = { INFORMATIONAL: 1, LOW: 2, MEDIUM: 3, HIGH: 4, CRITICAL: 5 };
const SEVERITY_NAMES: Record<SeverityLabel, string> = { INFORMATIONAL: 'Informational', LOW: 'Low', MEDIUM: 'Medium', HIGH: 'High', CRITICAL: 'Critical' };
const ACTIVITY_NAMES = { 1: 'Create', 2: 'Update', 3: 'Close' } as const;

export interface OcsfDetectionFinding {
  readonly activity_id: 1 | 2 | 3;
  readonly activity_name: string;
  readonly category_uid: number;
  readonly category_name: 'Findings';
  readonly class_uid: number;
  readonly class_name: 'Detection Finding';
  readonly type_uid: number;
  readonly type_name: string;
  readonly time: number;
  readonly severity_id: number;
  readonly severity: string;
  readonly status_id: 1 | 4;
  readonly status: 'New' | 'Resolved';
  readonly action_id: 2;
  readonly action: 'Denied';
  readonly disposition_id: 2;
  readonly disposition: 'Blocked';
  readonly count: number;
  readonly message: string;
  readonly metadata: { version: string; product: { name: string; vendor_name: string }; profiles: string[] };
  readonly finding_info: {
    uid: string;
    title: string;
    desc: string;
    types: string[];
    created_time: number;
    first_seen_time: number;
    last_seen_time: number;
    modified_time: number;
  };
  readonly cloud: { provider: 'AWS'; region: string; account: { uid: string } };
  readonly resources: Array<{ uid: string; type: string }>;
  readonly src_endpoint?: { ip: string };
  readonly unmapped: Record<string, string>;
}

/**
 * The activity of a record's change: its lift closes the finding; the change that started a
 * first offence creates it; any other change (a re-offence, more probes) updates it.
 */
export function ocsfActivityOf(record: BlockRecord, changedAt: number): 1 | 2 | 3 {
  if (!record.active) return 3;
  return record.offences <= 1 && changedAt === record.blockedAt ? 1 : 2;
}

/** The Detection Finding of one block record as of its change at `changedAt` (epoch ms). */
export function ocsfDetectionFinding(record: BlockRecord, changedAt: number, target: FindingsTarget): OcsfDetectionFinding {
  const label = severityOf(record.offences);
  const activity = ocsfActivityOf(record, changedAt);
  const cidr = tryParseCidr(record.target);
  const host = cidr && isHostCidr(cidr) ? cidr : undefined;
  const title = `portsnare blocked ${record.target}: port scan`;
  return {
    activity_id: activity,
    activity_name: ACTIVITY_NAMES[activity],
    category_uid: FINDINGS_CATEGORY_UID,
    category_name: 'Findings',
    class_uid: DETECTION_FINDING_CLASS_UID,
    class_name: 'Detection Finding',
    type_uid: DETECTION_FINDING_CLASS_UID * 100 + activity,
    type_name: `Detection Finding: ${ACTIVITY_NAMES[activity]}`,
    time: changedAt,
    severity_id: SEVERITY_IDS[label],
    severity: SEVERITY_NAMES[label],
    status_id: record.active ? 1 : 4,
    status: record.active ? 'New' : 'Resolved',
    action_id: 2,
    action: 'Denied',
    disposition_id: 2,
    disposition: 'Blocked',
    count: record.hitCount,
    message: title,
    metadata: { version: OCSF_VERSION, product: { name: 'portsnare', vendor_name: 'portsnare' }, profiles: ['cloud', 'security_control'] },
    finding_info: {
      uid: findingId(target.scope, record.target),
      title,
      desc: `${record.reason} block, ${record.offences} offence(s), ${record.active ? `until ${new Date(record.expiresAt).toISOString()}` : `lifted (${record.liftedBy ?? 'expired'})`}`,
      types: [FINDING_TYPE],
      created_time: record.firstSeen,
      first_seen_time: record.firstSeen,
      last_seen_time: record.lastSeen,
      modified_time: changedAt,
    },
    cloud: { provider: 'AWS', region: target.region, account: { uid: target.account } },
    resources: [{ uid: record.target, type: host ? 'IP Address' : 'CIDR' }],
    ...(host ? { src_endpoint: { ip: host.network } } : {}),
    unmapped: {
      reason: record.reason,
      offences: String(record.offences),
      blockedAt: new Date(record.blockedAt).toISOString(),
      expiresAt: new Date(record.expiresAt).toISOString(),
      ...(record.liftedBy ? { liftedBy: record.liftedBy } : {}),
    },
  };
}
