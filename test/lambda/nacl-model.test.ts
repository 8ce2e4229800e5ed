/**
 * The model-based test of NACL ownership (test/lambda/nacl-model.ts): random interleavings of two
 * stacks on one ACL, stale and lagging reads, lost answers, throttling, operator entries and
 * stack deletions, checked after every command against the reference model (who wrote each
 * entry) and at the end against the desired state. NACL_MODEL_RUNS interleavings here (default
 * 300); bench/convergence.bench.ts runs at least 100,000 (nacl_model_interleavings).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { commandsArb, RANGES_B, runInterleaving } from './nacl-model';

const RUNS = Number(process.env.NACL_MODEL_RUNS ?? 300);

describe('NACL ownership against a reference model', () => {
  it(`never touches a foreign entry, never forgets its own, converges, leaves nothing after a Delete (${RUNS} interleavings)`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...RANGES_B), commandsArb(), async (rangeB, commands) => {
        const result = await runInterleaving(rangeB, commands);
        expect(result.violations).toEqual([]);
        expect(result.orphans).toBe(0);
      }),
      { numRuns: RUNS },
    );
  }, 300_000);
});
