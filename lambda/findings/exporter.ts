/**
 * The Security Hub export, one run: the block records changed since the cursor (the decision
 * table's `changes` index, BlockRepository.changesSince: lifted ones included), each read in full
 * and mapped to its ASFF finding (core/findings.ts), imported with BatchImportFindings.
 *
 * - Batches of at most 100 findings, calls paced to at most 10 a second (one every 100 ms), the
 *   documented limits (https://docs.aws.amazon.com/securityhub/latest/partnerguide/guidelines-batchimportfindings.html).
 *   A throttled call (HTTP 429: LimitExceededException, TooManyRequestsException,
 *   ThrottlingException) is retried with backoff (aws/retry.ts).
 * - A finding in FailedFindings is logged and counted, and kept in the cursor's retry list: the
 *   next run imports it again (up to MAX_FINDING_ATTEMPTS, then it is dropped: logged, counted
 *   FindingsDropped); it never holds the others back, nor the cursor.
 * - The cursor moves to the time this run's change read started only when every call was
 *   answered; a call that failed for good (not a finding: the call) leaves it where it was, so the
 *   next run reads the same changes again, and the run fails (the function's error alarm).
 * - Idempotent: a finding's Id is stable per target and its UpdatedAt is the record's change
 *   time, so the overlap, a retried run or two runs at once import nothing twice (Security Hub
 *   ignores an update that is not newer: finding-update-batchimportfindings.html).
 * - At most MAX_FINDINGS_PER_RUN findings a run (the overlap and the retried ones on top): a
 *   backlog goes on from where the run stopped, by change time (by target for the first import).
 * - The first run (no cursor) imports every active record, at its last activity; a cursor more
 *   than a day old (the function off, Security Hub disabled for a while) is caught up a day per
 *   run (changesSince reads at most a day), from at most FINDINGS_MAX_AGE_MS ago: Security Hub
 *   deletes a finding 90 days after its last update anyway.
 */
import { type BatchImportFindingsCommandOutput, BatchImportFindingsCommand, type AwsSecurityFinding } from '@aws-sdk/client-securityhub';
import { asffFinding, batches, type FindingsTarget, MAX_FINDINGS_PER_IMPORT, MAX_IMPORTS_PER_SECOND } from '../../core/findings';
import type { BlockRecord } from '../../core/policy';
import type { Clock } from '../../aws/clock';
import type { Observability } from '../../aws/observability';
import { errorName, isThrottling, withRetry } from '../../aws/retry';
import type { CursorStore, RetryEntry } from './cursor';

/** read back from the cursor: covers the index's lag and the deciders' clocks */
export const OVERLAP_MS = 30_000;
/** what BlockRepository.changesSince reads at most */
export const MAX_WINDOW_MS = 86_400_000;
/** how far back a stale cursor is caught up (Security Hub keeps a finding 90 days after its last update) */
export const FINDINGS_MAX_AGE_MS = 90 * 86_400_000;
/** a finding refused this many times is given up (logged, counted FindingsDropped) */
export const MAX_FINDING_ATTEMPTS = 5;
/** targets kept for retry at most; past that the cursor is held, so nothing is lost */
export const MAX_RETRY_TARGETS = 1_000;
/**
 * findings one run imports at most (100 paced calls, about 10 s): a backlog (the first run over
 * many active blocks, a burst, a catch-up) goes over several runs, each well within the
 * function's 60 s, the cursor moved to where the run stopped
 */
export const MAX_FINDINGS_PER_RUN = 10_000;
/** full records read at once */
const READ_CONCURRENCY = 16;

/** The change log and the records (aws/repository.ts BlockRepository has these). */
export interface ChangeSource {
  changesSince(since: number, now: number): Promise<ReadonlyArray<{ readonly target: string; readonly changedAt: number }>>;
  get(target: string): Promise<{ readonly record: BlockRecord } | undefined>;
  listActive(): Promise<ReadonlyArray<{ readonly record: BlockRecord }>>;
}

export interface FindingsHub {
  send(command: BatchImportFindingsCommand): Promise<BatchImportFindingsCommandOutput>;
}

export interface ExporterDeps {
  readonly source: ChangeSource;
  readonly cursor: CursorStore;
  readonly hub: FindingsHub;
  readonly target: FindingsTarget;
  readonly clock: Clock;
  readonly obs: Observability;
  /** pause between two calls' starts, ms; default 1000 / MAX_IMPORTS_PER_SECOND */
  readonly paceMs?: number;
  readonly random?: () => number;
  /** default MAX_FINDINGS_PER_RUN */
  readonly maxFindingsPerRun?: number;
}

export interface ExportResult {
  readonly mode: 'initial' | 'changes';
  /** changes read (or active records, the first time) */
  readonly read: number;
  readonly calls: number;
  readonly imported: number;
  readonly failed: number;
  readonly dropped: number;
  /** the cursor this run wrote, or undefined when it did not move it (nor the first import's progress) */
  readonly cursor?: number;
  /** more was read than one run imports: the next run goes on */
  readonly more: boolean;
}

/** HTTP 429, or a throttling error code: retry after a pause. */
export function isImportThrottle(error: unknown): boolean {
  const status = (error as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
  return status === 429 || isThrottling(error) || errorName(error) === 'LimitExceededException';
}

interface Item {
  readonly record: BlockRecord;
  readonly changedAt: number;
}

export async function exportFindings(deps: ExporterDeps): Promise<ExportResult> {
  const { source, cursor, hub, target, clock, obs } = deps;
  const paceMs = deps.paceMs ?? Math.ceil(1000 / MAX_IMPORTS_PER_SECOND);
  const started = clock.now();
  const state = await cursor.read();

  const limit = deps.maxFindingsPerRun ?? MAX_FINDINGS_PER_RUN;
  // --- what to import --------------------------------------------------------------------------
  if (state.at === undefined) {
    // the first import: every active record, by target, `limit` a run; the change read then starts
    // when this import started, so nothing changed meanwhile is missed
    const startedAt = state.initial?.startedAt ?? started;
    const after = state.initial?.after;
    const active = (await source.listActive())
      .filter(({ record }) => after === undefined || record.target > after)
      .sort((a, b) => (a.record.target < b.record.target ? -1 : a.record.target > b.record.target ? 1 : 0));
    const taken = active.slice(0, limit);
    const more = active.length > taken.length;
    const items: Item[] = taken.map(({ record }) => ({ record, changedAt: Math.max(record.lastSeen, record.blockedAt) }));
    const position = more ? { initial: { startedAt, after: taken[taken.length - 1]!.record.target } } : { at: startedAt };
    // findings refused during an earlier part of this import wait for the change reads, which retry them
    return finish('initial', active.length, items, position, more, state.retry);
  }
  const since = Math.max(state.at - OVERLAP_MS, started - FINDINGS_MAX_AGE_MS);
  const until = Math.min(started, since + MAX_WINDOW_MS);
  const changes = await source.changesSince(since, until);
  const wanted = new Map<string, number>(); // target → change time
  for (const change of changes) wanted.set(change.target, Math.max(change.changedAt, wanted.get(change.target) ?? 0));
  // the retried ones (kept from earlier runs), those in the overlap (read again: changes an earlier
  // run may not have seen yet), then the new ones oldest first, `limit` of those a run: the overlap
  // never counts against the limit, so a backlog always moves on
  const retried = Object.entries(state.retry).map(([target, entry]) => ({ target, changedAt: Math.max(entry.changedAt, wanted.get(target) ?? 0) }));
  for (const { target } of retried) wanted.delete(target);
  const ordered = [...wanted].map(([target, changedAt]) => ({ target, changedAt })).sort((a, b) => a.changedAt - b.changedAt || (a.target < b.target ? -1 : 1));
  const overlap = ordered.filter((c) => c.changedAt <= state.at!);
  const fresh = ordered.filter((c) => c.changedAt > state.at!);
  const freshTaken = fresh.slice(0, limit);
  const more = fresh.length > freshTaken.length;
  const taken = [...retried, ...overlap, ...freshTaken];
  // cut short: the next run goes on after the last change taken
  const next = more ? freshTaken[freshTaken.length - 1]!.changedAt : until;
  const items: Item[] = [];
  for (let i = 0; i < taken.length; i += READ_CONCURRENCY) {
    const slice = taken.slice(i, i + READ_CONCURRENCY);
    const read = await Promise.all(slice.map(({ target: t }) => source.get(t)));
    slice.forEach(({ target: t, changedAt }, j) => {
      const stored = read[j];
      // gone: a lifted record past its 90 days of history; its finding was archived when it was lifted
      if (!stored) obs.log.warn('changed record not found: no finding', { target: t });
      else items.push({ record: stored.record, changedAt });
    });
  }
  return finish('changes', changes.length, items, { at: Math.max(next, state.at) }, more || until < started);

  async function finish(
    mode: ExportResult['mode'],
    readCount: number,
    items: Item[],
    position: { at?: number; initial?: { startedAt: number; after?: string } },
    more: boolean,
    carried: Readonly<Record<string, RetryEntry>> = {},
  ): Promise<ExportResult> {
    const findings = items.map((item) => ({ item, finding: asffFinding(item.record, item.changedAt, target) }));
    const byId = new Map(findings.map((f) => [f.finding.Id, f.item]));
    const attempted = new Set(items.map((item) => item.record.target));
    const retry: Record<string, RetryEntry> = Object.fromEntries(Object.entries(carried).filter(([t]) => !attempted.has(t)));
    let calls = 0;
    let imported = 0;
    let failed = 0;
    let dropped = 0;
    let callFailure: unknown;
    let lastCall: number | undefined;
    for (const batch of batches(findings, MAX_FINDINGS_PER_IMPORT)) {
      let out: BatchImportFindingsCommandOutput;
      try {
        out = await withRetry(
          async () => {
            if (lastCall !== undefined) {
              const wait = lastCall + paceMs - clock.now();
              if (wait > 0) await clock.sleep(wait);
            }
            lastCall = clock.now();
            calls++;
            return hub.send(new BatchImportFindingsCommand({ Findings: batch.map((f) => f.finding as unknown as AwsSecurityFinding) }));
          },
          {
            clock,
            attempts: 6,
            baseMs: 200,
            capMs: 5_000,
            retryable: isImportThrottle,
            ...(deps.random ? { random: deps.random } : {}),
            onRetry: (error, attempt) => {
              obs.log.warn('BatchImportFindings throttled: retrying', { attempt, error: errorName(error) ?? String(error) });
              obs.count('Throttles');
            },
          },
        );
      } catch (error) {
        // the call, not a finding: the cursor stays, the next run reads these changes again
        callFailure ??= error;
        obs.log.error('BatchImportFindings failed', { findings: batch.length, error: errorName(error) ?? String(error), message: (error as Error)?.message });
        continue;
      }
      const refused = out.FailedFindings ?? [];
      imported += batch.length - refused.length;
      for (const f of refused) {
        const item = f.Id === undefined ? undefined : byId.get(f.Id);
        failed++;
        if (!item) {
          obs.log.error('Security Hub refused a finding it names by an unknown id', { id: f.Id, code: f.ErrorCode, message: f.ErrorMessage });
          continue;
        }
        const attempts = (state.retry[item.record.target]?.attempts ?? 0) + 1;
        if (attempts >= MAX_FINDING_ATTEMPTS) {
          dropped++;
          obs.log.error('finding refused too often: given up', { target: item.record.target, attempts, code: f.ErrorCode, message: f.ErrorMessage });
        } else {
          obs.log.warn('finding refused: retried next run', { target: item.record.target, attempts, code: f.ErrorCode, message: f.ErrorMessage });
          retry[item.record.target] = { changedAt: item.changedAt, attempts };
        }
      }
    }
    obs.count('FindingsImported', imported);
    if (failed) obs.count('FindingsFailed', failed);
    if (dropped) obs.count('FindingsDropped', dropped);
    const result = { mode, read: readCount, calls, imported, failed, dropped, more };
    if (callFailure !== undefined) throw Object.assign(new Error(`BatchImportFindings failed: ${(callFailure as Error)?.message ?? String(callFailure)} (the cursor stays; the next run imports these changes again)`), { name: 'FindingsImportFailed', cause: callFailure, result });
    if (Object.keys(retry).length > MAX_RETRY_TARGETS) {
      obs.log.error('too many refused findings to keep for retry: the cursor stays', { refused: Object.keys(retry).length });
      return result;
    }
    if (!(await cursor.write({ ...position, retry }, state.version))) {
      obs.log.info('another run moved the cursor: this run\'s window is read again by the next run', { ...position });
      return result;
    }
    return { ...result, ...(position.at === undefined ? {} : { cursor: position.at }) };
  }
}
