/**
 * The stack outputs the command line reads (`--stack NAME`). The construct gives them fixed
 * logical ids so they keep their names in any app; the values are plain strings.
 */
export const STACK_OUTPUTS = {
  /** the desired-state table */
  table: 'PortsnareTableName',
  /** an organization's decision stack: the planes' reports table (core/org.ts) */
  reportsTable: 'PortsnarePlaneReportsTable',
  /** the event bus sensors put `Scan Detected` events on */
  bus: 'PortsnareEventBusName',
  busArn: 'PortsnareEventBusArn',
  /** every WAF IP set, comma separated ("-" when none) */
  ipSets: 'PortsnareIpSetArns',
  /** one rule group per WAF scope, comma separated ("-" when none) */
  ruleGroups: 'PortsnareRuleGroupArn',
  /** the functions' PORTSNARE_SETTINGS document (core/settings.ts), as JSON */
  settings: 'PortsnareSettings',
  /** an organization's decision stack: the enforcement plane ids (core/org.ts planeId), as a JSON array */
  planes: 'PortsnarePlanes',
  /** the stack's cloud sensors and what watches them: a JSON array of SensorListing ("[]" when none) */
  sensors: 'PortsnareSensors',
  /** the SNS topic the stack's alarms notify ("-" when none: no alarmEmail) */
  alarmTopic: 'PortsnareAlarmTopicArn',
  /** the address `portsnare selftest` may block (core/selftest.ts; "-" when none) */
  canary: 'PortsnareCanaryAddress',
  /** an enforcement plane's own table: its NACL placement ledger (core/table.ts) */
  ledgerTable: 'PortsnareLedgerTableName',
  /** an organization's decision stack: the planes' reconcile period in minutes (core/org.ts planeSilentAfterMs) */
  reconcileMinutes: 'PortsnareReconcileMinutes',
  /** an organization's decision stack: each plane's stack name, a JSON object plane id → stack name */
  planeStacks: 'PortsnarePlaneStacks',
} as const;
export type StackOutputKey = (typeof STACK_OUTPUTS)[keyof typeof STACK_OUTPUTS];

/**
 * One sensor in the `PortsnareSensors` output: the heartbeat rule that counts its `Sensor
 * Heartbeat` events, the alarm on that count, and the bus the rule is on. The count is the
 * rule's SENSOR_HEARTBEAT_METRIC with the dimensions EventBusName and RuleName (a rule on a
 * custom bus: https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-monitoring.html).
 */
export interface SensorListing {
  readonly sensorId: string;
  /** the rule's name (not its CloudFormation Ref, which is "bus|rule" on a custom bus) */
  readonly ruleName: string;
  readonly alarmName: string;
  readonly busName: string;
}

/** The metric a heartbeat rule's matches are counted in (EventBridge's own, per rule). */
export const SENSOR_HEARTBEAT_METRIC = { namespace: 'AWS/Events', metricName: 'MatchedEvents' } as const;

/** The value CloudFormation shows for a list output that is empty (an output cannot be ""). */
export const EMPTY_LIST_OUTPUT = '-';

/** Splits a comma-separated list output; the empty marker is the empty list. */
export function listOutput(value: string | undefined): string[] {
  if (value === undefined || value === EMPTY_LIST_OUTPUT) return [];
  return value
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part.length > 0);
}
