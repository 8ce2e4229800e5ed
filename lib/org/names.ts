/**
 * The fixed physical names of an organization's cross-account resources (docs/organization.md).
 * Stacks in other accounts and Regions cannot reference each other's tokens, so each side builds
 * the other's ARNs from these names: the decision stack names every plane's bus and enforce role,
 * every plane names the decision table. All names start with the app's stackName, so two
 * organizations (two stackNames) can share accounts.
 */
import { ACTIVE_INDEX, CHANGES_INDEX } from '../../core/table';

/** IAM role names: at most 64 characters (IAM quotas, https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html) */
export const ROLE_NAME_MAX = 64;

export interface OrgNames {
  /** the decision stack */
  readonly decisionStack: string;
  /** the stack of the plane in `account`/`region` */
  planeStack(account: string, region: string): string;
  /** the decision plane's desired-state table (in the decision account and Region) */
  readonly decisionTable: string;
  /** the enforcement planes' reports (in the decision account and Region; never read by enforce) */
  readonly reportsTable: string;
  /** every plane's event bus (one per account and Region) */
  readonly planeBus: string;
  /** the role the decision bus's fan-out rules deliver to the planes' buses with */
  readonly fanOutRole: string;
  /** a plane's enforce function role in `region` (role names are global to an account) */
  enforceRole(region: string): string;
}

export function orgNames(stackName: string): OrgNames {
  return {
    decisionStack: `${stackName}-decision`,
    planeStack: (account, region) => `${stackName}-plane-${account}-${region}`,
    decisionTable: `${stackName}-decision`,
    reportsTable: `${stackName}-plane-reports`,
    planeBus: `${stackName}-plane`,
    fanOutRole: `${stackName}-fanout`,
    enforceRole: (region) => `${stackName}-enforce-${region}`,
  };
}

export interface Env {
  readonly account: string;
  readonly region: string;
}

export function tableArn(env: Env, name: string, partition = 'aws'): string {
  return `arn:${partition}:dynamodb:${env.region}:${env.account}:table/${name}`;
}

/** the `active` index (core/table.ts): with `changes`, the only part of the decision table a plane reads */
export function activeIndexArn(env: Env, name: string, partition = 'aws'): string {
  return `${tableArn(env, name, partition)}/index/${ACTIVE_INDEX}`;
}

/** the `changes` index (core/table.ts, the change log): what a plane's enforce reads, incremental and full runs alike */
export function changesIndexArn(env: Env, name: string, partition = 'aws'): string {
  return `${tableArn(env, name, partition)}/index/${CHANGES_INDEX}`;
}

export function busArn(env: Env, name: string, partition = 'aws'): string {
  return `arn:${partition}:events:${env.region}:${env.account}:event-bus/${name}`;
}

export function roleArn(account: string, name: string, partition = 'aws'): string {
  return `arn:${partition}:iam::${account}:role/${name}`;
}
