import pg from 'pg';
import type { SqlClient, SqlExecutor } from './sqlClient.js';

// int8 positions come back as strings; they stay below 2^53, so parse them.
pg.types.setTypeParser(20, (v) => Number(v));

export interface PgClientOptions {
  /** Connections of the pool (LISTEN takes one more). */
  poolSize?: number;
  /** Transactions that may usefully run at once. */
  maxConcurrency?: number;
}

/** PostgreSQL through `pg`. LISTEN/NOTIFY wakes subscriptions in other processes at once. */
export async function createPgClient(url: string, opts: PgClientOptions = {}): Promise<SqlClient> {
  const pool = new pg.Pool({ connectionString: url, max: opts.poolSize ?? 10, connectionTimeoutMillis: 5000 });
  // An idle client losing its connection must not crash the process; the pool replaces it.
  pool.on('error', () => undefined);
  const redacted = url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');
  const listeners: { close(): Promise<void> }[] = [];
  return {
    name: `PostgreSQL at ${redacted}`,
    maxConcurrency: opts.maxConcurrency ?? 4,
    autovacuum: true,
    async query<T>(sql: string, params?: unknown[]) {
      const result = await pool.query(sql, params);
      return { rows: result.rows as T[] };
    },
    async transaction(fn) {
      const client = await pool.connect();
      // A connection whose ROLLBACK failed may still be inside the transaction: destroy it
      // rather than hand it to the next caller.
      let broken: Error | undefined;
      // The pool listens for errors of idle connections only: one lost while checked out (server
      // stopped, "terminating connection due to administrator command") would crash the process.
      const onError = (error: Error) => (broken = error);
      client.on('error', onError);
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
        await client.query('ROLLBACK').catch((e: unknown) => {
          broken = e instanceof Error ? e : new Error(String(e));
        });
        throw error;
      } finally {
        client.removeListener('error', onError);
        client.release(broken);
      }
    },
    async exec(sql) {
      await pool.query(sql);
    },
    async onNotify(channel, listener) {
      const listening = await listenWithReconnect(url, channel, listener);
      listeners.push(listening);
      return listening.close;
    },
    async notify(tx, channel) {
      await tx.query(`SELECT pg_notify($1, '')`, [channel]);
    },
    async close() {
      await Promise.all(listeners.map((l) => l.close()));
      await pool.end();
    },
  };
}

/**
 * LISTEN on a dedicated connection that comes back after it is lost (server restart, failover,
 * idle timeout): otherwise subscriptions in other processes would silently fall back to their
 * idle poll. Notifications sent while it was away are gone, so it wakes the listener on reconnect.
 */
async function listenWithReconnect(
  url: string,
  channel: string,
  listener: () => void,
): Promise<{ close(): Promise<void> }> {
  let current: pg.Client | undefined;
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  const open = async () => {
    const client = new pg.Client({ connectionString: url });
    client.on('error', () => undefined); // 'end' follows and reconnects
    client.on('notification', () => listener());
    client.on('end', () => {
      if (closed || current !== client) return;
      current = undefined;
      retry(0);
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${channel}`);
    } catch (error) {
      await client.end().catch(() => undefined);
      throw error;
    }
    if (closed) await client.end().catch(() => undefined);
    else current = client;
  };
  const retry = (attempt: number) => {
    timer = setTimeout(
      () =>
        void open().then(
          () => listener(),
          () => retry(attempt + 1),
        ),
      Math.min(250 * 2 ** attempt, 5000),
    );
    timer.unref();
  };
  await open();
  return {
    async close() {
      closed = true;
      clearTimeout(timer);
      const client = current;
      current = undefined;
      await client?.end().catch(() => undefined);
    },
  };
}
