/**
 * One chunk of the NACL ownership model's interleavings (test/lambda/nacl-model.ts), run by
 * bench/convergence.bench.ts in a process of its own: aws-sdk-client-mock leaves every stub in
 * sinon's default sandbox (about 0.4 MB per interleaving, restore() or not), so 100,000
 * interleavings in one process exhaust the heap. Prints one JSON line:
 * {"interleavings", "violations", "orphans", "examples"}.
 * Usage: tsx bench/nacl-model-chunk.ts SEED COUNT
 */
import fc from 'fast-check';
import { commandsArb, RANGES_B, runInterleaving } from '../test/lambda/nacl-model';

async function main(): Promise<void> {
  const seed = Number(process.argv[2]);
  const count = Number(process.argv[3]);
  if (!Number.isInteger(seed) || !Number.isInteger(count) || count < 1) throw new Error(`usage: nacl-model-chunk.ts SEED COUNT, got ${JSON.stringify(process.argv.slice(2))}`);
  let violations = 0;
  let orphans = 0;
  const examples: string[] = [];
  const samples = fc.sample(fc.tuple(fc.constantFrom(...RANGES_B), commandsArb()), { numRuns: count, seed });
  for (const [rangeB, commands] of samples) {
    const result = await runInterleaving(rangeB, commands);
    orphans += result.orphans;
    if (result.violations.length) {
      violations++;
      if (examples.length < 5) examples.push(`${result.violations.join('; ')}\n  ${String(commands)}`);
    }
  }
  process.stdout.write(`${JSON.stringify({ interleavings: samples.length, violations, orphans, examples })}\n`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
