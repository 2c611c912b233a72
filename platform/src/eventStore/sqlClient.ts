/** The little SQL surface the PostgreSQL-family adapters need; PGlite and `pg` both provide it. */
export interface SqlExecutor {
  /** `opts.timeoutMs`: give up waiting for the answer after this long (a probe); the client's default otherwise. */
  query<T = Record<string, unknown>>(
    sql: string,
    params?: unknown[],
    opts?: { timeoutMs?: number },
  ): Promise<{ rows: T[] }>;
}

export interface SqlClient extends SqlExecutor {
  readonly name: string;
  /** Runs `fn` in one transaction on one connection; rolls back if it throws. */
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  /** Runs several statements (schema set-up, ANALYZE): under the long statement timeout, if any. */
  exec(sql: string): Promise<void>;
  /** How many transactions may usefully run at once (1 for PGlite). */
  readonly maxConcurrency: number;
  /** Called with no argument when another process may have appended (LISTEN/NOTIFY); optional. */
  onNotify?(channel: string, listener: () => void): Promise<() => Promise<void>>;
  notify?(tx: SqlExecutor, channel: string): Promise<void>;
  /** The server keeps planner statistics itself (PostgreSQL's autovacuum; PGlite has none). */
  readonly autovacuum?: boolean;
  /**
   * Called with the error whenever a statement times out (see `isSqlTimeout`): the server
   * cancelled it after the statement timeout, or no answer came within the client's backstop.
   * Returns a function that unsubscribes. Optional (PGlite sets no timeouts).
   */
  onTimeout?(listener: (error: Error) => void): () => void;
  close(): Promise<void>;
}

/** A PostgreSQL error code (SQLSTATE), when the driver reports one. */
export const sqlState = (error: unknown): string | undefined =>
  typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string'
    ? error.code
    : undefined;

export const UNIQUE_VIOLATION = '23505';

/** query_canceled: the server cancelled the statement (statement_timeout, or a cancel request); nothing of it was committed. */
export const QUERY_CANCELED = '57014';
/** lock_not_available: lock_timeout expired. */
export const LOCK_NOT_AVAILABLE = '55P03';
/** The `pg` driver's own error when no answer came within query_timeout (the outcome is unknown). */
export const CLIENT_QUERY_TIMEOUT = 'Query read timeout';

/** Whether a statement failed for taking too long (server- or client-side), not for what it said. */
export const isSqlTimeout = (error: unknown): boolean =>
  sqlState(error) === QUERY_CANCELED ||
  sqlState(error) === LOCK_NOT_AVAILABLE ||
  (error instanceof Error && error.message === CLIENT_QUERY_TIMEOUT);
