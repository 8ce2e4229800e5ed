/**
 * The CloudWatch metrics the functions publish (Powertools EMF) and the stack's alarms and
 * dashboard read: one namespace, one dimension, one list of names.
 */
export const METRIC_NAMESPACE = 'Portsnare';
export const SERVICE_NAME = 'portsnare';
/** Powertools adds `service` as the one dimension of every metric. */
export const METRIC_DIMENSIONS = { service: SERVICE_NAME } as const;

export const METRIC_NAMES = [
  'Detections',
  'Blocks',
  'Unblocks',
  'Evictions',
  'LockRetries',
  'Throttles',
  'CircuitBreakerOpen',
  'Repairs',
  'EnforcementLagSeconds',
  'NaclQuotaFull',
  /** a placed NACL deny an earlier foreign allow lets traffic past (core/nacl.ts shadowsOf) */
  'NaclShadowed',
  'WafCapacityFull',
  'MalformedEvents',
  'Refused',
  /** a GuardDuty Recon:EC2/Portscan finding: one of our instances scans out */
  'OwnInstanceScanning',
  /** an enforcement point (a WAF IP set, a network ACL) that an enforce run could not bring to the desired state */
  'EnforcementFailures',
  /** a configured WAF IP set that does not exist (deleted out of band): WAFNonexistentItemException */
  'WafSetMissing',
  /** an entry inside this stack's rule range that it did not place: another stack using the range, or an operator (core/nacl.ts ledgerView) */
  'NaclForeignInRange',
  /** a call whose outcome was unknown (a timeout, a lost connection, a 5xx) retried once */
  'CallRetries',
  /** expiry timers that could not be sent (the next tick still covers their records) */
  'ExpiryTimersUnsent',
  /** a digest that could not be delivered to a channel after its retries (the next digest covers its window: core/digest.ts) */
  'DigestUndelivered',
  /** Security Hub export (lambda/findings): findings imported, findings refused (retried next run), findings given up after their retries */
  'FindingsImported',
  'FindingsFailed',
  'FindingsDropped',
] as const;
export type MetricName = (typeof METRIC_NAMES)[number];

/**
 * The failure classes: each means part of the desired state is not enforced, and each has an
 * alarm in the stack (lib/Monitoring.ts), with what it means for the operator.
 */
export const FAILURE_METRICS: Readonly<Partial<Record<MetricName, string>>> = {
  EnforcementFailures: 'an enforcement point (a WAF IP set, a network ACL) could not be brought to the desired state: see the enforce function\'s log',
  WafSetMissing: 'a configured WAF IP set does not exist (deleted out of band?): its addresses are not blocked in WAF',
  WafCapacityFull: 'the WAF IP sets are full: addresses are left out; add sets of that family',
  NaclQuotaFull: 'a network ACL is full: further blocks go to WAF only',
  NaclShadowed: 'a portsnare deny is shadowed by an earlier allow in its network ACL: traffic it should stop gets in',
  NaclForeignInRange: 'a network ACL holds entries inside this stack\'s rule range that it did not place (another stack on the same range?)',
};

/** A metric by name, checked at compile time: `metric('Blocks')`. */
export function metric<N extends MetricName>(name: N): N {
  return name;
}
