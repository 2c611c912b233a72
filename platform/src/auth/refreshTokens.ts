import { createHash } from 'node:crypto';
import type { SqlClient } from '../eventStore/sqlClient.js';

export interface RefreshRecord {
  clientId: string;
  family: string;
}

export type ConsumeOutcome =
  | ({ state: 'ok' } & RefreshRecord)
  /** Already used once: someone holds a copy. The store has revoked the family. */
  | ({ state: 'reused' } & RefreshRecord)
  | ({ state: 'revoked' } & RefreshRecord)
  | { state: 'unknown' }
  | { state: 'expired' };

/**
 * Refresh tokens, stored by SHA-256 hash (they are 256-bit random, so a fast hash is enough and
 * a leaked table holds nothing usable). Shared by every replica and durable across restarts.
 * `consume` is atomic: of two concurrent uses of one token exactly one gets `ok`, and the other
 * is a reuse that revokes the family.
 *
 * @example
 * await store.save(hashRefreshToken(token), { clientId, family }, expiresAt);
 * const outcome = await store.consume(hashRefreshToken(token), Date.now());
 */
export interface RefreshTokenStore {
  save(tokenHash: string, record: RefreshRecord, expiresAtMs: number): Promise<void>;
  consume(tokenHash: string, nowMs: number): Promise<ConsumeOutcome>;
  revokeFamily(family: string): Promise<void>;
  isFamilyRevoked(family: string): Promise<boolean>;
  purgeExpired(nowMs: number): Promise<number>;
}

export const hashRefreshToken = (token: string): string => createHash('sha256').update(token).digest('base64url');

export class MemoryRefreshTokenStore implements RefreshTokenStore {
  private readonly tokens = new Map<string, RefreshRecord & { used: boolean; expiresAt: number }>();
  private readonly revoked = new Set<string>();

  async save(tokenHash: string, record: RefreshRecord, expiresAtMs: number) {
    this.tokens.set(tokenHash, { ...record, used: false, expiresAt: expiresAtMs });
  }
  async consume(tokenHash: string, nowMs: number): Promise<ConsumeOutcome> {
    const entry = this.tokens.get(tokenHash);
    if (!entry) return { state: 'unknown' };
    const record = { clientId: entry.clientId, family: entry.family };
    if (this.revoked.has(entry.family)) return { state: 'revoked', ...record };
    if (entry.expiresAt <= nowMs) return { state: 'expired' };
    if (entry.used) {
      this.revoked.add(entry.family);
      return { state: 'reused', ...record };
    }
    entry.used = true;
    return { state: 'ok', ...record };
  }
  async revokeFamily(family: string) {
    this.revoked.add(family);
  }
  async isFamilyRevoked(family: string) {
    return this.revoked.has(family);
  }
  async purgeExpired(nowMs: number) {
    let n = 0;
    for (const [hash, entry] of this.tokens)
      if (entry.expiresAt <= nowMs) {
        this.tokens.delete(hash);
        n++;
      }
    return n;
  }
}

const SCHEMA_LOCK = 0x5e771e_0a17;
const SCHEMA = `
CREATE TABLE IF NOT EXISTS settle_refresh_tokens (
  token_hash text PRIMARY KEY,
  client_id text NOT NULL,
  family text NOT NULL,
  expires_at timestamptz NOT NULL,
  used_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS settle_refresh_tokens_expires ON settle_refresh_tokens (expires_at);
CREATE TABLE IF NOT EXISTS settle_refresh_families (
  family text PRIMARY KEY,
  revoked_at timestamptz NOT NULL DEFAULT now()
);`;

/** The SQL adapter, on the event store's database (PostgreSQL or PGlite). */
export class SqlRefreshTokenStore implements RefreshTokenStore {
  private constructor(private readonly sql: SqlClient) {}

  static async create(sql: SqlClient): Promise<SqlRefreshTokenStore> {
    // One message, one transaction: the advisory lock serialises concurrent replicas' set-up.
    await sql.exec(`SELECT pg_advisory_xact_lock(${SCHEMA_LOCK});\n${SCHEMA}`);
    return new SqlRefreshTokenStore(sql);
  }

  async save(tokenHash: string, record: RefreshRecord, expiresAtMs: number) {
    await this.sql.query(
      `INSERT INTO settle_refresh_tokens (token_hash, client_id, family, expires_at) VALUES ($1, $2, $3, to_timestamp($4::double precision / 1000))`,
      [tokenHash, record.clientId, record.family, expiresAtMs],
    );
  }

  async consume(tokenHash: string, nowMs: number): Promise<ConsumeOutcome> {
    // The conditional UPDATE is the atomic step: only one caller flips used_at from NULL.
    const claimed = await this.sql.query<{ client_id: string; family: string; expired: boolean; revoked: boolean }>(
      `UPDATE settle_refresh_tokens t SET used_at = now() WHERE token_hash = $1 AND used_at IS NULL
       RETURNING client_id, family, expires_at <= to_timestamp($2::double precision / 1000) AS expired,
         EXISTS (SELECT 1 FROM settle_refresh_families f WHERE f.family = t.family) AS revoked`,
      [tokenHash, nowMs],
    );
    const row = claimed.rows[0];
    if (row) {
      const record = { clientId: row.client_id, family: row.family };
      if (row.revoked) return { state: 'revoked', ...record };
      if (row.expired) return { state: 'expired' };
      return { state: 'ok', ...record };
    }
    const { rows } = await this.sql.query<{ client_id: string; family: string; revoked: boolean }>(
      `SELECT client_id, family, EXISTS (SELECT 1 FROM settle_refresh_families f WHERE f.family = t.family) AS revoked
       FROM settle_refresh_tokens t WHERE token_hash = $1`,
      [tokenHash],
    );
    const used = rows[0];
    if (!used) return { state: 'unknown' };
    const record = { clientId: used.client_id, family: used.family };
    if (used.revoked) return { state: 'revoked', ...record };
    await this.revokeFamily(used.family);
    return { state: 'reused', ...record };
  }

  async revokeFamily(family: string) {
    await this.sql.query(`INSERT INTO settle_refresh_families (family) VALUES ($1) ON CONFLICT (family) DO NOTHING`, [
      family,
    ]);
  }

  async isFamilyRevoked(family: string) {
    const { rows } = await this.sql.query(`SELECT 1 FROM settle_refresh_families WHERE family = $1`, [family]);
    return rows.length > 0;
  }

  async purgeExpired(nowMs: number) {
    const { rows } = await this.sql.query(
      `DELETE FROM settle_refresh_tokens WHERE expires_at <= to_timestamp($1::double precision / 1000) RETURNING token_hash`,
      [nowMs],
    );
    return rows.length;
  }
}
