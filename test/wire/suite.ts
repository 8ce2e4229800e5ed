/**
 * The engines a wire test file shares: one dynalite (test/wire/dynalite.ts) for the file, started
 * before its tests and stopped after them, and the HTTP fakes its tests start, each stopped after
 * the test that started it. Tests give each plane a table of its own (`nextTable`), so the engine
 * is shared and the state is not.
 */
import { afterAll, afterEach, beforeAll } from 'vitest';
import { type LocalTable, startDynalite } from './dynalite';

export interface WireSuite {
  /** the file's dynalite (available inside tests and hooks) */
  readonly db: LocalTable;
  /** stops `server` after the current test; returns it */
  track<T extends { stop(): Promise<void> }>(server: T): T;
  /** a new table of the decision table's shape, named `<prefix>-<n>` */
  nextTable(prefix: string): Promise<string>;
}

export function wireSuite(name: string): WireSuite {
  let db: LocalTable | undefined;
  let seq = 0;
  const servers: Array<{ stop(): Promise<void> }> = [];
  beforeAll(async () => {
    db = await startDynalite(name);
  });
  afterAll(async () => {
    await db?.stop();
  });
  afterEach(async () => {
    for (const server of servers.splice(0)) await server.stop();
  });
  const engine = (): LocalTable => {
    if (!db) throw new Error(`wire suite ${name}: dynalite is not started (use it inside a test or hook)`);
    return db;
  };
  return {
    get db() {
      return engine();
    },
    track(server) {
      servers.push(server);
      return server;
    },
    nextTable: (prefix) => engine().addTable(`${prefix}-${++seq}`),
  };
}
