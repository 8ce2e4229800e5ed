/**
 * dynalite in its own process for bench/incremental.bench.ts, so the bench's CPU figures count
 * the enforce run (and the in-process EC2/WAF fakes), not the DynamoDB engine. Creates the tables
 * named on the command line exactly as test/wire/dynalite.ts does, prints {"endpoint": …} on one
 * line, and stops when its parent closes stdin.
 */
import { startDynalite } from '../test/wire/dynalite';

async function main(): Promise<void> {
  const [first, ...others] = process.argv.slice(2);
  if (!first) throw new Error('usage: incremental-dynalite.ts TABLE [TABLE…]');
  const db = await startDynalite(first);
  for (const name of others) await db.addTable(name);
  process.stdout.write(`${JSON.stringify({ endpoint: db.endpoint })}\n`);
  process.stdin.resume();
  process.stdin.on('end', () => {
    void db.stop().then(() => process.exit(0));
  });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
