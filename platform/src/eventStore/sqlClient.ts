/** The little SQL surface the PostgreSQL-family adapters need; PGlite and `pg` both provide it. */
export interface SqlExecutor {
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<{ rows: T[] }>;
}

export interface SqlClient extends SqlExecutor {
  readonly name: string;
  /** Runs `fn` in one transaction on one connection; rolls back if it throws. */
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  /** Runs several statements (schema set-up). */
  exec(sql: string): Promise<void>;
  /** How many transactions may usefully run at once (1 for PGlite). */
  readonly maxConcurrency: number;
  /** Called with no argument when another process may have appended (LISTEN/NOTIFY); optional. */
  onNotify?(channel: string, listener: () => void): Promise<() => Promise<void>>;
  notify?(tx: SqlExecutor, channel: string): Promise<void>;
  /** The server keeps planner statistics itself (PostgreSQL's autovacuum; PGlite has none). */
  readonly autovacuum?: boolean;
  close(): Promise<void>;
}

/** A PostgreSQL error code (SQLSTATE), when the driver reports one. */
export const sqlState = (error: unknown): string | undefined =>
  typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string'
    ? error.code
    : undefined;

export const UNIQUE_VIOLATION = '23505';
