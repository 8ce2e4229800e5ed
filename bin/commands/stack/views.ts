/** Table items as the operator sees them (bin/commands/backend.ts views). */
import type { BlockRecord } from '../../../core/policy';
import { recordView } from '../agent-client';
import type { BlockView, HistoryView } from '../backend';
import { isoSeconds } from '../output';
import type { HistoryItem } from './table-reads';

/** A stored record; where it is enforced is read from the enforcers (placements.ts). */
export function toView(record: BlockRecord): BlockView {
  return recordView(record, undefined, []);
}

/** A history item (BlockRepository.appendHistory: action, at, record, and the caller's detail) as a line. */
export function historyEntry({ at, action, item }: HistoryItem): HistoryView {
  const record = (item['record'] && typeof item['record'] === 'object' ? item['record'] : {}) as Partial<Record<keyof BlockRecord, unknown>>;
  const parts: string[] = [];
  if (typeof record.reason === 'string') parts.push(`reason ${record.reason}`);
  if (typeof record.offences === 'number') parts.push(`offence ${record.offences}`);
  if (typeof record.hitCount === 'number') parts.push(`${record.hitCount} hits`);
  if (typeof record.expiresAt === 'number' && /^(block|refresh)$/.test(action)) parts.push(`until ${isoSeconds(record.expiresAt)}`);
  // the decide function records who asked for an unblock; a lifted record says why
  if (typeof item['requestedBy'] === 'string' && item['requestedBy']) parts.push(`requestedBy ${item['requestedBy']}`);
  if (typeof record.liftedBy === 'string' && record.liftedBy) parts.push(`liftedBy ${record.liftedBy}`);
  if (typeof record.note === 'string' && record.note) parts.push(record.note);
  return { at, action, detail: parts.join(', ') };
}
