/**
 * The functions' environment contract: the variable names lib/ sets on each function and
 * lambda/ reads, and how they are read. One place for both sides (a name spelled twice could
 * drift). Free of imports: reconcile's bundle loads only this and its SQS client.
 *
 * - PORTSNARE_SETTINGS: the settings document (core/settings.ts), every function;
 * - TABLE_NAME: the desired-state table (its ARN in a plane: the decision table) — decide,
 *   enforce, expiry; for cleanup, the table of its placement ledger;
 * - LEDGER_TABLE_NAME: where enforce and cleanup keep the NACL placement ledger (default TABLE_NAME);
 * - ENFORCE_QUEUE_URL: the FIFO queue wake-ups go to (decide, expiry, reconcile; enforce to retry soon);
 * - EXPIRY_TIMER_QUEUE_URL: expiry's own standard queue of delayed timers (lambda/shared/timer-queue.ts);
 * - FINDINGS_PRODUCT_ARN: where the findings function imports (Security Hub's default product of the account);
 * - PLANE_ID and REPORTS_TABLE_NAME: an organization plane's enforce reports each run (core/org.ts).
 */
export const SETTINGS_ENV = 'PORTSNARE_SETTINGS';

export const FUNCTION_ENV = {
  settings: SETTINGS_ENV,
  table: 'TABLE_NAME',
  ledgerTable: 'LEDGER_TABLE_NAME',
  planeId: 'PLANE_ID',
  reportsTable: 'REPORTS_TABLE_NAME',
  enforceQueueUrl: 'ENFORCE_QUEUE_URL',
  expiryTimerQueueUrl: 'EXPIRY_TIMER_QUEUE_URL',
  /** the Security Hub export (lambda/findings): the account's default product ARN (core/findings.ts productArnOf) */
  findingsProductArn: 'FINDINGS_PRODUCT_ARN',
} as const;

/** What lib/ gives one function (values may be CloudFormation tokens). */
export interface FunctionEnvironment {
  readonly settings: string;
  readonly table?: string;
  readonly ledgerTable?: string;
  readonly planeId?: string;
  readonly reportsTable?: string;
  readonly enforceQueueUrl?: string;
  readonly expiryTimerQueueUrl?: string;
  readonly findingsProductArn?: string;
}

/** lib/: the environment variables of one function, by the contract's names (in the order above). */
export function functionEnvironment(values: FunctionEnvironment): Record<string, string> {
  const variables: Record<string, string> = {};
  for (const key of Object.keys(FUNCTION_ENV) as Array<keyof typeof FUNCTION_ENV>) {
    const value = values[key];
    if (value !== undefined) variables[FUNCTION_ENV[key]] = value;
  }
  if ((values.planeId === undefined) !== (values.reportsTable === undefined)) {
    throw new Error(`${FUNCTION_ENV.planeId} and ${FUNCTION_ENV.reportsTable} go together: a plane reports each run to the reports table`);
  }
  return variables;
}

/** A variable that must be set (not empty); the error names it. */
export function requireEnv(name: string, env: NodeJS.ProcessEnv = process.env): string {
  const value = env[name];
  if (value === undefined || value === '') throw new Error(`environment variable ${name} is not set`);
  return value;
}

function optional(name: string, env: NodeJS.ProcessEnv): string | undefined {
  const value = env[name];
  return value === undefined || value === '' ? undefined : value;
}

/** enforce's environment: its table, its ledger, its queue, and, in a plane, where it reports. */
export interface EnforceEnvironment {
  readonly table: string;
  readonly ledgerTable: string;
  readonly enforceQueueUrl?: string;
  readonly plane?: { readonly id: string; readonly reportsTable: string };
}

export function enforceEnvironmentOf(env: NodeJS.ProcessEnv = process.env): EnforceEnvironment {
  const table = requireEnv(FUNCTION_ENV.table, env);
  const planeId = optional(FUNCTION_ENV.planeId, env);
  const queue = optional(FUNCTION_ENV.enforceQueueUrl, env);
  return {
    table,
    ledgerTable: optional(FUNCTION_ENV.ledgerTable, env) ?? table,
    ...(queue ? { enforceQueueUrl: queue } : {}),
    ...(planeId ? { plane: { id: planeId, reportsTable: requireEnv(FUNCTION_ENV.reportsTable, env) } } : {}),
  };
}

/** cleanup's placement ledger table (LEDGER_TABLE_NAME, else TABLE_NAME), or undefined when neither is set. */
export function ledgerTableOf(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return optional(FUNCTION_ENV.ledgerTable, env) ?? optional(FUNCTION_ENV.table, env);
}
