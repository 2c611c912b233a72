import { mkdir } from 'node:fs/promises';
import { PGlite } from '@electric-sql/pglite';
import type { SqlClient, SqlExecutor } from './sqlClient.js';

/**
 * The embedded PostgreSQL: PGlite (Postgres compiled to WASM) persisted to a folder. One
 * connection, so transactions run one at a time; the store's group commit keeps throughput up.
 * Every query is synced to the filesystem before it resolves, so an answered append survives
 * a `kill -9`.
 */
export async function createPgliteClient(dataDir: string | undefined): Promise<SqlClient> {
  if (dataDir) await mkdir(dataDir, { recursive: true });
  const db = dataDir ? await PGlite.create(dataDir, { relaxedDurability: false }) : await PGlite.create();
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
