/**
 * The stack outputs the command line reads (`--stack NAME`). The construct gives them fixed
 * logical ids so they keep their names in any app; the values are plain strings.
 */
export const STACK_OUTPUTS = {
  /** the desired-state table */
  table: 'PortsnareTableName',
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
} as const;
export type StackOutputKey = (typeof STACK_OUTPUTS)[keyof typeof STACK_OUTPUTS];

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
