import pg from 'pg';
import { CLIENT_QUERY_TIMEOUT, isSqlTimeout, type SqlClient, type SqlExecutor } from './sqlClient.js';

// int8 positions come back as strings; they stay below 2^53, so parse them.
pg.types.setTypeParser(20, (v) => Number(v));

export interface PgClientOptions {
  /** Connections of the pool (LISTEN takes one more). */
  poolSize?: number;
  /** Transactions that may usefully run at once. */
  maxConcurrency?: number;
  /**
   * Server-side `statement_timeout` of every statement (and `idle_in_transaction_session_timeout`
   * of every transaction): a statement waiting on a lock or a stuck server is cancelled, and so
   * rolled back, instead of holding an append or a projector forever. Default 30 s, far above a
   * group commit under load (a batch waits for APPEND_LOCK behind the few batches before it).
   */
  statementTimeoutMs?: number;
  /** Timeout of `exec` (schema set-up and ANALYZE at start, which may rewrite or scan a big log). Default 10 min. */
  longStatementTimeoutMs?: number;
}

/** Defaults of the statement timeouts (SETTLE_PG_STATEMENT_TIMEOUT, SETTLE_PG_LONG_STATEMENT_TIMEOUT). */
export const PG_STATEMENT_TIMEOUT_MS = 30_000;
export const PG_LONG_STATEMENT_TIMEOUT_MS = 600_000;
/**
 * The client gives up on an answer this long after the server should have cancelled the
 * statement: the server is gone (dead host, half-open TCP), not merely slow. The outcome of a
 * write is then unknown, like a connection lost at commit: callers retry with the same ids.
 */
const CLIENT_BACKSTOP_MS = 5_000;
/** A statement for `pg`, with its own query_timeout (the driver reads it; its types do not list it). */
const statement = (text: string, values?: unknown[], timeoutMs?: number): pg.QueryConfig =>
  ({ text, ...(values ? { values } : {}), ...(timeoutMs ? { query_timeout: timeoutMs } : {}) }) as pg.QueryConfig;

/** TCP keepalive: a connection whose server vanished without a FIN is found out and dropped. */
const KEEPALIVE_MS = 10_000;

/**
 * PostgreSQL through `pg`. LISTEN/NOTIFY wakes subscriptions in other processes at once. Every
 * statement runs under a server-side statement timeout with a client-side backstop (see
 * PgClientOptions), connections keep TCP keepalive on, and a timeout is reported to `onTimeout`
 * listeners (the event store's health).
 */
export async function createPgClient(url: string, opts: PgClientOptions = {}): Promise<SqlClient> {
  const statementTimeout = opts.statementTimeoutMs ?? PG_STATEMENT_TIMEOUT_MS;
  const longTimeout = Math.max(opts.longStatementTimeoutMs ?? PG_LONG_STATEMENT_TIMEOUT_MS, statementTimeout);
  const connection = {
    connectionString: url,
    statement_timeout: statementTimeout,
    idle_in_transaction_session_timeout: statementTimeout,
    query_timeout: statementTimeout + CLIENT_BACKSTOP_MS,
    keepAlive: true,
    keepAliveInitialDelayMillis: KEEPALIVE_MS,
  };
  const pool = new pg.Pool({ ...connection, max: opts.poolSize ?? 10, connectionTimeoutMillis: 5000 });
  // An idle client losing its connection must not crash the process; the pool replaces it.
  pool.on('error', () => undefined);
  const timeoutListeners = new Set<(error: Error) => void>();
  /** Tells the listeners about a timeout and passes every error on unchanged. */
  const watch = <T>(p: Promise<T>): Promise<T> =>
    p.catch((error: unknown) => {
      if (isSqlTimeout(error)) for (const l of timeoutListeners) l(error as Error);
      throw error;
    });
  const redacted = url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');
  const listeners: { close(): Promise<void> }[] = [];
  return {
    name: `PostgreSQL at ${redacted}`,
    maxConcurrency: opts.maxConcurrency ?? 4,
    autovacuum: true,
    async query<T>(sql: string, params?: unknown[], o?: { timeoutMs?: number }) {
      const result = await watch(pool.query(statement(sql, params, o?.timeoutMs)));
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
        await watch(client.query('BEGIN'));
        const tx: SqlExecutor = {
          async query<T>(sql: string, params?: unknown[], o?: { timeoutMs?: number }) {
            const r = await watch(client.query(statement(sql, params, o?.timeoutMs)));
            return { rows: r.rows as T[] };
          },
        };
        const result = await fn(tx);
        await watch(client.query('COMMIT'));
        return result;
      } catch (error) {
        // No answer at all (client backstop): the connection still waits for the lost statement, and a
        // ROLLBACK would queue behind it. Drop the connection; the server rolls back what it has not committed.
        if (error instanceof Error && error.message === CLIENT_QUERY_TIMEOUT) broken = error;
        else
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
      // One simple-query message runs as one transaction: SET LOCAL covers its statements and ends with it.
      await watch(
        pool.query(
          statement(
            `SET LOCAL statement_timeout = ${longTimeout};\n${sql}`,
            undefined,
            longTimeout + CLIENT_BACKSTOP_MS,
          ),
        ),
      );
    },
    onTimeout(listener) {
      timeoutListeners.add(listener);
      return () => timeoutListeners.delete(listener);
    },
    async onNotify(channel, listener) {
      const listening = await listenWithReconnect(connection, channel, listener);
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
  connection: pg.ClientConfig,
  channel: string,
  listener: () => void,
): Promise<{ close(): Promise<void> }> {
  let current: pg.Client | undefined;
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  const open = async () => {
    const client = new pg.Client(connection);
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
