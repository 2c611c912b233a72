import pg from 'pg';
import type { SqlClient, SqlExecutor } from './sqlClient.js';

// int8 positions come back as strings; they stay below 2^53, so parse them.
pg.types.setTypeParser(20, (v) => Number(v));

export interface PgClientOptions {
  /** Connections; group commit runs up to `maxConcurrency` transactions at once. */
  poolSize?: number;
  maxConcurrency?: number;
}

/** PostgreSQL through `pg`. LISTEN/NOTIFY wakes subscriptions in other processes at once. */
export async function createPgClient(url: string, opts: PgClientOptions = {}): Promise<SqlClient> {
  const pool = new pg.Pool({ connectionString: url, max: opts.poolSize ?? 10, connectionTimeoutMillis: 5000 });
  // An idle client losing its connection must not crash the process; the pool replaces it.
  pool.on('error', () => undefined);
  const redacted = url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');
  const listeners: pg.Client[] = [];
  return {
    name: `PostgreSQL at ${redacted}`,
    maxConcurrency: opts.maxConcurrency ?? 4,
    async query<T>(sql: string, params?: unknown[]) {
      const result = await pool.query(sql, params);
      return { rows: result.rows as T[] };
    },
    async transaction(fn) {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const tx: SqlExecutor = {
          async query<T>(sql: string, params?: unknown[]) {
            const r = await client.query(sql, params);
            return { rows: r.rows as T[] };
          },
        };
        const result = await fn(tx);
        await client.query('COMMIT');
        return result;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      } finally {
        client.release();
      }
    },
    async exec(sql) {
      await pool.query(sql);
    },
    async onNotify(channel, listener) {
      const client = new pg.Client({ connectionString: url });
      client.on('error', () => undefined);
      client.on('notification', () => listener());
      await client.connect();
      await client.query(`LISTEN ${channel}`);
      listeners.push(client);
      return async () => {
        await client.end().catch(() => undefined);
      };
    },
    async notify(tx, channel) {
      await tx.query(`SELECT pg_notify($1, '')`, [channel]);
    },
    async close() {
      await Promise.all(listeners.map((c) => c.end().catch(() => undefined)));
      await pool.end();
    },
  };
}
