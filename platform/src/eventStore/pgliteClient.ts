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
  if (dataDir) {
    await mkdir(dataDir, { recursive: true });
    if (!existsSync(join(dataDir, 'PG_VERSION'))) await initialiseInChild(dataDir);
  }
  const db = dataDir
    ? await PGlite.create(dataDir, { relaxedDurability: false, startParams: START_PARAMS })
    : await PGlite.create({ startParams: START_PARAMS });
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
