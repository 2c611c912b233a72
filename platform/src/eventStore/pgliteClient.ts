import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PGlite } from '@electric-sql/pglite';
import type { SqlClient, SqlExecutor } from './sqlClient.js';

const execFileAsync = promisify(execFile);

/** PGlite's own start parameters, with 16 MB of shared buffers instead of PostgreSQL's 128 MB. */
const START_PARAMS = [...PGlite.defaultStartParams, '-c', 'shared_buffers=16MB'];

/** Runs initdb for a new data folder in a child process, whose memory goes away with it. */
async function initialiseInChild(dataDir: string): Promise<void> {
  const pglite = import.meta.resolve('@electric-sql/pglite');
  const code = `const { PGlite } = await import(${JSON.stringify(pglite)});
const db = await PGlite.create(process.argv[1], { relaxedDurability: false });
await db.close();`;
  await execFileAsync(process.execPath, ['--input-type=module', '-e', code, dataDir], { timeout: 300_000 });
}

let pristineCluster: Blob | undefined;

/**
 * A dump of a freshly initialised, empty PGlite cluster (see {@link dumpPristineCluster}) that
 * every later new database — in memory, or a folder without one yet — starts from instead of
 * running initdb again, which is most of what creating a PGlite costs. The unit-test harness sets
 * it once per worker; unset (the default, and always in production), every new database runs initdb.
 */
export function usePristineCluster(dump: Blob | undefined): void {
  pristineCluster = dump;
}

/** Runs initdb once in memory and returns the resulting data folder as a tarball. */
export async function dumpPristineCluster(): Promise<Blob> {
  const db = await PGlite.create({ startParams: START_PARAMS });
  try {
    return await db.dumpDataDir('none');
  } finally {
    await db.close();
  }
}

/**
 * The embedded PostgreSQL: PGlite (Postgres compiled to WASM) persisted to a folder. One
 * connection, so transactions run one at a time; the store's group commit keeps throughput up.
 * Every query is synced to the filesystem before it resolves, so an answered append survives
 * a `kill -9`.
 *
 * Memory: PostgreSQL's shared buffers live in the WASM heap, so they are kept small (the OS page
 * cache holds the files anyway), and a new data folder is initialised (initdb, which peaks near
 * 1 GB of WASM heap that is never given back) by a short-lived child process, so the server
 * process only ever opens an existing folder.
 */
export async function createPgliteClient(dataDir: string | undefined): Promise<SqlClient> {
  const fresh = !dataDir || !existsSync(join(dataDir, 'PG_VERSION'));
  // A pristine cluster, when the harness set one, stands in for initdb (in this process or a child).
  const from = fresh && pristineCluster ? { loadDataDir: pristineCluster } : {};
  if (dataDir) {
    await mkdir(dataDir, { recursive: true });
    if (fresh && !pristineCluster) await initialiseInChild(dataDir);
  }
  const db = dataDir
    ? await PGlite.create(dataDir, { relaxedDurability: false, startParams: START_PARAMS, ...from })
    : await PGlite.create({ startParams: START_PARAMS, ...from });
  const wrap = (q: Pick<PGlite, 'query'>): SqlExecutor => ({
    async query<T>(sql: string, params?: unknown[]) {
      const result = await q.query<T>(sql, params);
      return { rows: result.rows };
    },
  });
  return {
    name: dataDir ? `embedded (PGlite at ${dataDir})` : 'embedded (PGlite in memory)',
    maxConcurrency: 1,
    ...wrap(db),
    transaction: (fn) => db.transaction((tx) => fn(wrap(tx))),
    async exec(sql) {
      await db.exec(sql);
    },
    async close() {
      await db.close();
    },
  };
}
