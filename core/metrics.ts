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
  /** a call abandoned at its timeout (lambda/shared/clients/timeouts.ts) */
  'CallTimeouts',
] as const;
export type MetricName = (typeof METRIC_NAMES)[number];

/** A metric by name, checked at compile time: `metric('Blocks')`. */
export function metric<N extends MetricName>(name: N): N {
  return name;
}
