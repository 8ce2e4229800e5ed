/**
 * Child process for the kill -9 test: puts records into the store at argv[2] in a loop and prints
 * `ack <target> <hitCount>` on stdout after each put() resolved. It never stops by itself: the
 * test kills it with SIGKILL. argv[3]: the first index; argv[4]: compactAfterLines; argv[5]: stop
 * after this many puts (a command line's few writes; default never); argv[6] `blocking`: wait for
 * the writers' lock in the kernel, as the command line does.
 */
import { FileStore } from '../../../sensor/local/store';

async function main(): Promise<void> {
  const directory = process.argv[2];
  if (!directory) throw new Error('usage: store-writer.ts DIRECTORY [FIRST] [COMPACT_AFTER_LINES]');
  const first = Number(process.argv[3] ?? 0);
  const count = Number(process.argv[5] ?? Infinity);
  const store = await FileStore.open(directory, { compactAfterLines: Number(process.argv[4] ?? 10_000), blockingLock: process.argv[6] === 'blocking' });
  process.stdout.write('ready\n');
  for (let i = first; i < first + count; i++) {
    const target = `2001:db8::${i.toString(16)}`;
    await store.put(
      {
        target,
        family: 'ipv6',
        reason: 'sensor',
        firstSeen: i,
        lastSeen: i,
        hitCount: i,
        offences: 1,
        blockedAt: i,
        expiresAt: 4_000_000_000_000,
        active: true,
        eventIds: [`event-${i}`],
        sensors: ['writer'],
      },
      'block',
    );
    process.stdout.write(`ack ${target} ${i}\n`);
    // let stdout drain now and then, so the parent hears acknowledgements while we run
    if (i % 50 === 0) await new Promise((resolve) => setImmediate(resolve));
  }
  await store.close();
  process.stdout.write('done\n');
}

main().catch((error: unknown) => {
  process.stderr.write(`${String(error)}\n`);
  process.exit(1);
});
