/**
 * `portsnare status --org --stack DECISION_STACK`: the organization's enforcement planes, each
 * one's health from its own report (core/org.ts). The decision stack's `PortsnarePlanes` output
 * lists the planes it fans out to; its reports table (`PortsnarePlaneReportsTable`) holds one report item per plane, which the planes
 * write (aws/plane-reports.ts: on a change, a reconcile, or a minute after the last) and this reads with the same
 * class, by BatchGetItem (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchGetItem.html).
 * A listed plane without a report has never run (or cannot write to the table): "never reported".
 */
import type { Stack } from '@aws-sdk/client-cloudformation';
import { type PlaneHealth, type PlaneReport, planeId, planeStatus } from '../../../core/org';
import { STACK_OUTPUTS } from '../../../core/outputs';
import { PlaneReports } from '../../../aws/plane-reports';
import { CliError, EXIT } from '../errors';
import { messageOf, regionOf, send } from './aws-errors';
import { type CloudClients, closeClients } from './clients';
import { describeStack, stackStatusHealthy } from './describe';
import { stackOutput } from './settings';

export type OrgPlaneHealth = PlaneHealth | 'never reported';

/** One plane as the operator sees it; the report's fields are absent when it never reported. */
export interface OrgPlaneView {
  readonly planeId: string;
  readonly health: OrgPlaneHealth;
  /** how long the plane has been behind the desired state (0 when its last run converged) */
  readonly lagMs?: number;
  /** since its last report */
  readonly silentMs?: number;
  readonly lastRunAt?: number;
  readonly lastConvergedAt?: number;
  readonly converged?: boolean;
  /** addresses the desired state held in its last run */
  readonly desired?: number;
  /** points that failed in its last run ("waf:<set>", "nacl:<acl>") */
  readonly failures: readonly string[];
  readonly mode?: 'enforce' | 'reconcile';
}

export interface OrgStatusView {
  /** "decision stack NAME (REGION)" */
  readonly where: string;
  readonly stackName: string;
  readonly region: string;
  readonly stackStatus: string;
  readonly tableName: string;
  /** the stack is in a good `*_COMPLETE` state and every plane is healthy */
  readonly healthy: boolean;
  /** in the order the stack lists them */
  readonly planes: readonly OrgPlaneView[];
}

/**
 * The plane ids of the decision stack's `PortsnarePlanes` output: a JSON array of
 * "<account>/<region>" (core/org.ts planeId), duplicates dropped. A stack without the output is
 * not a decision stack (exit 4); an output that does not parse names the output and the value.
 */
export function planesOfStack(stack: Stack, stackName: string): string[] {
  const key = STACK_OUTPUTS.planes;
  const text = stackOutput(stack, key);
  if (text === undefined) {
    throw new CliError(`stack ${stackName} has no output ${key}: is it an organization's decision stack? (--org reads the decision plane; a single-account stack has no planes)`, EXIT.notFound);
  }
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    throw new CliError(`stack ${stackName} output ${key} is not JSON: ${JSON.stringify(text)} (${messageOf(error)})`, EXIT.failure);
  }
  if (!Array.isArray(document)) throw new CliError(`stack ${stackName} output ${key} is not a JSON array of plane ids: ${JSON.stringify(text)}`, EXIT.failure);
  const ids: string[] = [];
  for (const entry of document) {
    const [account, region, ...rest] = typeof entry === 'string' ? entry.split('/') : [];
    let id: string | undefined;
    try {
      if (account !== undefined && region !== undefined && rest.length === 0) id = planeId(account, region);
    } catch {
      id = undefined;
    }
    if (id === undefined) throw new CliError(`stack ${stackName} output ${key}: ${JSON.stringify(entry)} is not a plane id "<account>/<region>"`, EXIT.failure);
    if (!ids.includes(id)) ids.push(id);
  }
  return ids;
}

/** Every listed plane's view at `now`, from its report (or "never reported"). */
export function planeViews(ids: readonly string[], reports: ReadonlyMap<string, PlaneReport>, now: number, reconcileMinutes?: number): OrgPlaneView[] {
  return ids.map((id): OrgPlaneView => {
    const report = reports.get(id);
    if (!report) return { planeId: id, health: 'never reported', failures: [] };
    const status = planeStatus(report, now, reconcileMinutes);
    return {
      planeId: id,
      health: status.health,
      lagMs: status.lagMs,
      silentMs: status.silentMs,
      lastRunAt: report.lastRunAt,
      ...(report.lastConvergedAt !== undefined ? { lastConvergedAt: report.lastConvergedAt } : {}),
      converged: report.converged,
      desired: report.desired,
      failures: report.failures,
      mode: report.mode,
    };
  });
}

/**
 * The planes' reconcile period from the decision stack's output (core/org.ts planeSilentAfterMs);
 * undefined (the default period) for a stack deployed before the output existed; an output that
 * is not a whole number of minutes names the output and the value (exit 1).
 */
export function reconcileMinutesOfStack(stack: Stack, stackName: string): number | undefined {
  const key = STACK_OUTPUTS.reconcileMinutes;
  const text = stackOutput(stack, key);
  if (text === undefined) return undefined;
  const minutes = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(minutes) || minutes < 1) throw new CliError(`stack ${stackName} output ${key} is not a whole number of minutes: ${JSON.stringify(text)}`, EXIT.failure);
  return minutes;
}

/** Reads the decision stack's plane list and the planes' reports (the clients are closed after). */
export async function readOrgStatus(clients: CloudClients, stackName: string, now: number): Promise<OrgStatusView> {
  try {
    const region = await regionOf(clients.cloudFormation);
    const stack = await describeStack(clients, stackName, region);
    const tableName = stackOutput(stack, STACK_OUTPUTS.reportsTable);
    if (!tableName) {
      throw new CliError(`stack ${stackName} in ${region} has no ${STACK_OUTPUTS.reportsTable} output: is it a portsnare decision stack?`, EXIT.notFound);
    }
    const ids = planesOfStack(stack, stackName);
    const reports = await send(`read the plane reports in table ${tableName}`, () => new PlaneReports(clients.dynamo, tableName).read(ids));
    const planes = planeViews(ids, reports, now, reconcileMinutesOfStack(stack, stackName));
    const stackStatus = stack.StackStatus ?? 'UNKNOWN';
    return {
      where: `decision stack ${stackName} (${region})`,
      stackName,
      region,
      stackStatus,
      tableName,
      healthy: stackStatusHealthy(stackStatus) && planes.every((plane) => plane.health === 'healthy'),
      planes,
    };
  } finally {
    closeClients(clients);
  }
}
