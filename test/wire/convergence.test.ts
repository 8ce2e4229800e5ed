/**
 * The convergence property on the wire (test/wire/convergence-run.ts): random schedules of scans,
 * duplicates, time, stale ACL and IP set reads, throttling, lost answers, operator entries inside
 * and outside the range, a second stack on the same ACL, an IP set deleted out of band and a stack
 * update resetting the IP sets, through the real handlers and SDK clients. After the faults stop
 * and both stacks reconcile, AWS holds what test/wire/spec.ts (an independent specification)
 * says, the operator's entries are untouched, and a deleted IP set raised an alarm instead.
 * Runs: CONVERGENCE_RUNS (default 25, for CI).
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalTable, startDynalite } from './dynalite';
import { opArb, otherRangeArb, runSchedule } from './convergence-run';

const RUNS = Number(process.env.CONVERGENCE_RUNS ?? 25);
let db: LocalTable;
let run = 0;

beforeAll(async () => {
  db = await startDynalite('convergence');
});
afterAll(async () => {
  await db?.stop();
});

describe('convergence on the wire', () => {
  it(`after any schedule and a reconcile, AWS holds the specified state (${RUNS} runs)`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb(true), { minLength: 4, maxLength: 30 }), otherRangeArb, async (ops, otherRange) => {
        const result = await runSchedule(db, `t${++run}`, ops, otherRange);
        expect(result.failures).toEqual([]);
      }),
      { numRuns: RUNS, endOnFailure: true },
    );
  }, 300_000);
});
