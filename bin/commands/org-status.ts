/**
 * How `portsnare status --org` prints the organization's planes (bin/commands/stack/org.ts reads
 * them): one line per plane, in the order the decision stack lists them, and the same facts as JSON.
 */
import type { OrgPlaneView, OrgStatusView } from './stack/org';
import { humanDuration, isoSeconds, keyValues, table } from './output';

const ORDER = ['healthy', 'lagging', 'silent', 'never reported'] as const;

/** "4: 1 healthy, 1 lagging, 1 silent, 1 never reported" (only the kinds present). */
export function planeCounts(planes: readonly OrgPlaneView[]): string {
  if (planes.length === 0) return '0: the stack lists no enforcement planes';
  const parts = ORDER.map((health) => [health, planes.filter((plane) => plane.health === health).length] as const)
    .filter(([, count]) => count > 0)
    .map(([health, count]) => `${count} ${health}`);
  return `${planes.length}: ${parts.join(', ')}`;
}

function lastRun(plane: OrgPlaneView): string {
  if (plane.lastRunAt === undefined) return 'never';
  return `${isoSeconds(plane.lastRunAt)} (${humanDuration((plane.silentMs ?? 0) / 1000)} ago)`;
}

export function orgStatusText(view: OrgStatusView): string {
  const header = keyValues([
    ['stack', `${view.stackName} ${view.stackStatus} (${view.region})`],
    ['table', view.tableName],
    ['planes', planeCounts(view.planes)],
  ]);
  if (view.planes.length === 0) return header;
  const rows = view.planes.map((plane) => [
    plane.planeId,
    plane.health,
    plane.lagMs === undefined ? '-' : humanDuration(plane.lagMs / 1000),
    lastRun(plane),
    plane.converged === undefined ? '-' : plane.converged ? 'yes' : 'no',
    plane.desired === undefined ? '-' : String(plane.desired),
    plane.failures.join(', ') || '-',
  ]);
  return `${header}\n\n${table(['PLANE', 'HEALTH', 'LAG', 'LAST RUN', 'CONVERGED', 'DESIRED', 'FAILED POINTS'], rows)}`;
}

function iso(epochMs: number | undefined): string | null {
  return epochMs === undefined ? null : new Date(epochMs).toISOString();
}

function seconds(ms: number | undefined): number | null {
  return ms === undefined ? null : Math.round(ms / 1000);
}

export function orgStatusJson(view: OrgStatusView): Record<string, unknown> {
  return {
    where: view.where,
    healthy: view.healthy,
    backend: 'org',
    stack: view.stackName,
    region: view.region,
    stackStatus: view.stackStatus,
    table: view.tableName,
    planes: view.planes.map((plane) => ({
      planeId: plane.planeId,
      health: plane.health,
      lagSeconds: seconds(plane.lagMs),
      silentSeconds: seconds(plane.silentMs),
      lastRunAt: iso(plane.lastRunAt),
      lastConvergedAt: iso(plane.lastConvergedAt),
      converged: plane.converged ?? null,
      desired: plane.desired ?? null,
      failures: plane.failures,
      mode: plane.mode ?? null,
    })),
  };
}
