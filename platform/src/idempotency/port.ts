import type { SqlClient } from '../eventStore/sqlClient.js';

export interface StoredResponse {
  statusCode: number;
  body: unknown;
  headers?: Record<string, string>;
}

export type IdempotencyBegin =
  | { state: 'started' }
  | { state: 'in_progress' }
  | { state: 'mismatch' }
  | { state: 'completed'; response: StoredResponse };

/**
 * Idempotency keys with Stripe semantics: scoped by (client, route, key); the first request's
 * body fingerprint is kept; its response is stored once known and replayed after that.
 * An execution that never completed (its process died) can be taken over after `staleMs`.
 */
export interface IdempotencyStore {
  begin(scope: string, key: string, fingerprint: string, staleMs?: number): Promise<IdempotencyBegin>;
  complete(scope: string, key: string, response: StoredResponse): Promise<void>;
  /** Forget an execution that failed before doing anything, so the key can be used again. */
  abandon(scope: string, key: string): Promise<void>;
  purgeOlderThan(ms: number): Promise<number>;
}

export class SqlIdempotencyStore implements IdempotencyStore {
  constructor(private readonly sql: SqlClient) {}

  async begin(scope: string, key: string, fingerprint: string, staleMs = 60_000): Promise<IdempotencyBegin> {
    const inserted = await this.sql.query(
      `INSERT INTO settle_idempotency (scope, key, fingerprint, state) VALUES ($1, $2, $3, 'started')
       ON CONFLICT (scope, key) DO NOTHING RETURNING key`,
      [scope, key, fingerprint],
    );
    if (inserted.rows.length === 1) return { state: 'started' };
    const { rows } = await this.sql.query<{
      fingerprint: string;
      state: string;
      status_code: number | null;
      response: StoredResponse | null;
      stale: boolean;
    }>(
      `SELECT fingerprint, state, status_code, response, locked_at < now() - ($3::int * interval '1 millisecond') AS stale
       FROM settle_idempotency WHERE scope = $1 AND key = $2`,
      [scope, key, staleMs],
    );
    const row = rows[0];
    if (!row) return this.begin(scope, key, fingerprint, staleMs);
    if (row.fingerprint !== fingerprint) return { state: 'mismatch' };
    if (row.state === 'completed' && row.response) return { state: 'completed', response: row.response };
    if (row.stale) {
      const taken = await this.sql.query(
        `UPDATE settle_idempotency SET locked_at = now() WHERE scope = $1 AND key = $2 AND state = 'started'
         AND locked_at < now() - ($3::int * interval '1 millisecond') RETURNING key`,
        [scope, key, staleMs],
      );
      if (taken.rows.length === 1) return { state: 'started' };
    }
    return { state: 'in_progress' };
  }

  async complete(scope: string, key: string, response: StoredResponse): Promise<void> {
    await this.sql.query(
      `UPDATE settle_idempotency SET state = 'completed', status_code = $3, response = $4::jsonb WHERE scope = $1 AND key = $2`,
      [scope, key, response.statusCode, JSON.stringify(response)],
    );
  }

  async abandon(scope: string, key: string): Promise<void> {
    await this.sql.query(`DELETE FROM settle_idempotency WHERE scope = $1 AND key = $2 AND state = 'started'`, [
      scope,
      key,
    ]);
  }

  async purgeOlderThan(ms: number): Promise<number> {
    const { rows } = await this.sql.query(
      `DELETE FROM settle_idempotency WHERE created_at < now() - ($1::bigint * interval '1 millisecond') RETURNING key`,
      [ms],
    );
    return rows.length;
  }
}

export class MemoryIdempotencyStore implements IdempotencyStore {
  private readonly entries = new Map<
    string,
    { fingerprint: string; response?: StoredResponse; lockedAt: number; createdAt: number }
  >();
  async begin(scope: string, key: string, fingerprint: string, staleMs = 60_000): Promise<IdempotencyBegin> {
    const id = `${scope}\u0000${key}`;
    const e = this.entries.get(id);
    const now = Date.now();
    if (!e) {
      this.entries.set(id, { fingerprint, lockedAt: now, createdAt: now });
      return { state: 'started' };
    }
    if (e.fingerprint !== fingerprint) return { state: 'mismatch' };
    if (e.response) return { state: 'completed', response: e.response };
    if (now - e.lockedAt > staleMs) {
      e.lockedAt = now;
      return { state: 'started' };
    }
    return { state: 'in_progress' };
  }
  async complete(scope: string, key: string, response: StoredResponse) {
    const e = this.entries.get(`${scope}\u0000${key}`);
    if (e) e.response = response;
  }
  async abandon(scope: string, key: string) {
    const id = `${scope}\u0000${key}`;
    if (!this.entries.get(id)?.response) this.entries.delete(id);
  }
  async purgeOlderThan(ms: number) {
    let n = 0;
    const cutoff = Date.now() - ms;
    for (const [k, e] of this.entries) if (e.createdAt < cutoff && this.entries.delete(k)) n++;
    return n;
  }
}
