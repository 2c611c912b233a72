import { EventEmitter } from 'node:events';
import { schemaVersionOf, upcast, type StoredEvent } from '@settle/domain';
import { ConcurrencyError } from '../errors.js';
import type {
  AppendResult,
  EventStore,
  ExpectedRevision,
  NewEvent,
  ReadAllOptions,
  ReadStreamOptions,
  SubscribeOptions,
  Subscription,
  SubscriptionHandler,
} from './port.js';
import { EVENT_STORE_SCHEMA } from './schema.js';
import { sqlState, UNIQUE_VIOLATION, type SqlClient, type SqlExecutor } from './sqlClient.js';
import { pollingSubscription } from './subscription.js';

interface EventRow {
  global_position: string | number;
  event_id: string;
  stream_id: string;
  stream_position: string | number;
  type: string;
  version: number;
  data: unknown;
  metadata: string | StoredEvent['metadata'];
  occurred_at: Date | string;
}

interface PendingAppend {
  streamId: string;
  events: NewEvent[];
  expected: ExpectedRevision;
  resolve(result: AppendResult): void;
  reject(error: unknown): void;
}

// JSON travels as text and is parsed here: much faster than the drivers' own jsonb decoding (PGlite).
const COLUMNS =
  'global_position, event_id, stream_id, stream_position, type, version, data::text AS data, metadata::text AS metadata, occurred_at';
const NOTIFY_CHANNEL = 'settle_events';

function toStored(row: EventRow): StoredEvent {
  return upcast({
    id: row.event_id,
    type: row.type,
    version: row.version,
    streamId: row.stream_id,
    streamPosition: Number(row.stream_position),
    globalPosition: Number(row.global_position),
    occurredAt:
      row.occurred_at instanceof Date ? row.occurred_at.toISOString() : new Date(row.occurred_at).toISOString(),
    data: typeof row.data === 'string' ? JSON.parse(row.data) : row.data,
    metadata: (typeof row.metadata === 'string' ? JSON.parse(row.metadata) : row.metadata) as StoredEvent['metadata'],
  });
}

/**
 * Readers only see events of transactions older than every running one: no gap ever fills in
 * behind them. This alone is not enough: a transaction can take its id before a younger one and
 * its positions after it, so appends also hold APPEND_LOCK (see `flush`).
 */
const VISIBLE = 'transaction_id < pg_snapshot_xmin(pg_current_snapshot())';

/**
 * Transaction-level advisory lock every append transaction takes first, before it has a
 * transaction id: ids, positions and commits of appends then all follow one order, across every
 * process sharing the database. Without it, a group-commit transaction that got its id early
 * (its first append) and a position late (its last) commits past a younger transaction's
 * lower, still uncommitted position, and readers skip that position forever.
 */
export const APPEND_LOCK = 0x5e771e_0001;
/** Serialises schema set-up: concurrent CREATE TABLE IF NOT EXISTS races on the catalogs. */
export const SCHEMA_LOCK = 0x5e771e_0002;

export interface SqlEventStoreOptions {
  /** Appends waiting while a transaction runs are committed together, up to this many. */
  maxBatch?: number;
  /** Idle poll interval of subscriptions; local appends and NOTIFY wake them at once. */
  pollMs?: number;
}

/**
 * The PostgreSQL-family event store (PostgreSQL via `pg`, PGlite embedded). Concurrent appends
 * are group-committed: while one transaction runs, the next ones queue and are written together
 * in the following transaction. An append refused for its expected revision writes nothing and
 * fails alone; if the database fails the transaction, its appends are retried one by one.
 */
export class SqlEventStore implements EventStore {
  readonly name: string;
  private readonly queue: PendingAppend[] = [];
  private flushing = 0;
  private readonly local = new EventEmitter();
  private readonly maxBatch: number;
  private readonly pollMs: number;
  private closed = false;
  private appendedSinceAnalyze = 0;

  private constructor(
    private readonly sql: SqlClient,
    opts: SqlEventStoreOptions,
  ) {
    this.name = sql.name;
    this.maxBatch = opts.maxBatch ?? 256;
    this.pollMs = opts.pollMs ?? 1000;
    this.local.setMaxListeners(0);
  }

  static async create(sql: SqlClient, opts: SqlEventStoreOptions = {}): Promise<SqlEventStore> {
    // One Query message with several statements runs as one transaction: the lock covers it all.
    await sql.exec(`SELECT pg_advisory_xact_lock(${SCHEMA_LOCK});\n${EVENT_STORE_SCHEMA}`);
    // Fresh statistics keep the planner on the primary-key scan for readAll (PGlite has no autovacuum).
    await sql.exec('ANALYZE settle_events');
    const store = new SqlEventStore(sql, opts);
    if (sql.onNotify) await sql.onNotify(NOTIFY_CHANNEL, () => store.local.emit('appended'));
    return store;
  }

  get client(): SqlClient {
    return this.sql;
  }

  append(streamId: string, events: NewEvent[], opts: { expectedRevision: ExpectedRevision }): Promise<AppendResult> {
    if (events.length === 0) return Promise.reject(new Error('append needs at least one event'));
    if (this.closed) return Promise.reject(new Error('the event store is closed'));
    return new Promise((resolve, reject) => {
      this.queue.push({ streamId, events, expected: opts.expectedRevision, resolve, reject });
      this.kick();
    });
  }

  private kick(): void {
    // One append transaction at a time: APPEND_LOCK serialises them anyway, and a second one in
    // flight would only split the queue into small batches (a tiny transaction per idle slot).
    while (this.queue.length > 0 && this.flushing < 1) {
      const batch = this.queue.splice(0, this.maxBatch);
      this.flushing++;
      void this.flush(batch).finally(() => {
        this.flushing--;
        this.kick();
      });
    }
  }

  private async flush(batch: PendingAppend[]): Promise<void> {
    let outcomes: ({ ok: true; result: AppendResult } | { ok: false; error: unknown })[];
    try {
      outcomes = await this.sql.transaction(async (tx) => {
        // First statement, so the transaction id (taken by the first write) comes after it too.
        await tx.query(`SELECT pg_advisory_xact_lock(${APPEND_LOCK})`);
        const decided: typeof outcomes = [];
        for (const pending of batch) {
          try {
            decided.push({ ok: true, result: await this.appendIn(tx, pending) });
          } catch (error) {
            // A refused append wrote nothing (appendIn decides before it writes): the others go on.
            if (!(error instanceof ConcurrencyError)) throw error;
            decided.push({ ok: false, error });
          }
        }
        if (this.sql.notify && decided.some((o) => o.ok && !o.result.duplicate))
          await this.sql.notify(tx, NOTIFY_CHANNEL);
        return decided;
      });
    } catch (error) {
      // None of the transaction is stored. An integrity violation (class 23: a unique index hit
      // by a writer outside this store) belongs to one append: retry each alone so only that one
      // fails. Anything else (a lost connection) fails them all, as it would each of them.
      if (batch.length > 1 && sqlState(error)?.startsWith('23')) {
        for (const pending of batch) await this.flush([pending]);
      } else for (const pending of batch) pending.reject(this.translate(error, pending));
      return;
    }
    batch.forEach((pending, i) => {
      const outcome = outcomes[i]!;
      if (outcome.ok) pending.resolve(outcome.result);
      else pending.reject(outcome.error);
    });
    this.local.emit('appended');
    this.appendedSinceAnalyze += batch.length;
    if (this.appendedSinceAnalyze >= 20_000) {
      // Keep planner statistics fresh as the log grows (PGlite has no autovacuum).
      this.appendedSinceAnalyze = 0;
      void this.sql.exec('ANALYZE settle_events').catch(() => undefined);
    }
  }

  private translate(error: unknown, pending: PendingAppend): unknown {
    // Two writers creating the same stream, or racing on the same event id, meet a unique index.
    if (sqlState(error) === UNIQUE_VIOLATION)
      return new ConcurrencyError(pending.streamId, String(pending.expected), -2);
    return error;
  }

  /**
   * Two round trips: one read decides (idempotency, expected revision), one statement writes.
   * Every check comes before the write, so a refused append leaves the transaction clean. No
   * row lock on the stream: every writer holds APPEND_LOCK.
   */
  private async appendIn(tx: SqlExecutor, p: PendingAppend): Promise<AppendResult> {
    const ids = p.events.map((e) => e.id);
    const { rows } = await tx.query<{ revision: string | number | null; existing: string | null }>(
      `SELECT (SELECT revision FROM settle_streams WHERE stream_id = $1) AS revision,
              (SELECT json_agg(json_build_object('s', stream_id, 'r', stream_position, 'p', global_position))::text
                 FROM settle_events WHERE event_id = ANY($2::uuid[])) AS existing`,
      [p.streamId, ids],
    );
    const existing = rows[0]?.existing ? (JSON.parse(rows[0].existing) as { s: string; r: number; p: number }[]) : [];
    if (existing.length > 0) {
      if (existing.length === ids.length && existing.every((r) => r.s === p.streamId)) {
        return {
          duplicate: true,
          position: Math.max(...existing.map((r) => r.p)),
          nextExpectedRevision: Math.max(...existing.map((r) => r.r)),
        };
      }
      throw new ConcurrencyError(p.streamId, `${String(p.expected)} (some event ids already stored)`, -3);
    }
    const revision = rows[0]?.revision == null ? -1 : Number(rows[0].revision);
    const e = p.expected;
    const ok =
      e === 'any' ||
      (e === 'no_stream' && revision === -1) ||
      (e === 'stream_exists' && revision >= 0) ||
      (typeof e === 'number' && e === revision);
    if (!ok) throw new ConcurrencyError(p.streamId, String(e), revision);

    const next = revision + p.events.length;
    const params: unknown[] = [p.streamId, next];
    const values = p.events.map((ev, i) => {
      const b = params.length;
      params.push(
        ev.id,
        p.streamId,
        revision + 1 + i,
        ev.type,
        ev.version ?? schemaVersionOf(ev.type),
        JSON.stringify(ev.data),
        JSON.stringify(ev.metadata),
      );
      return `($${b + 1}::uuid, $${b + 2}, $${b + 3}, $${b + 4}, $${b + 5}, $${b + 6}::jsonb, $${b + 7}::jsonb)`;
    });
    const inserted = await tx.query<{ global_position: string }>(
      `WITH stream AS (
         INSERT INTO settle_streams (stream_id, revision) VALUES ($1, $2)
         ON CONFLICT (stream_id) DO UPDATE SET revision = EXCLUDED.revision
       )
       INSERT INTO settle_events (event_id, stream_id, stream_position, type, version, data, metadata)
       VALUES ${values.join(', ')} RETURNING global_position`,
      params,
    );
    const position = Math.max(...inserted.rows.map((r) => Number(r.global_position)));
    return { duplicate: false, position, nextExpectedRevision: next };
  }

  async readStream(streamId: string, opts: ReadStreamOptions = {}): Promise<StoredEvent[]> {
    const params: unknown[] = [streamId];
    let where = 'stream_id = $1';
    if (opts.toPosition !== undefined) {
      params.push(opts.toPosition);
      where += ` AND global_position <= $${params.length}`;
    }
    if (opts.toTime !== undefined) {
      params.push(opts.toTime);
      where += ` AND occurred_at <= $${params.length}::timestamptz`;
    }
    const { rows } = await this.sql.query<EventRow>(
      `SELECT ${COLUMNS} FROM settle_events WHERE ${where} ORDER BY stream_position`,
      params,
    );
    return rows.map(toStored);
  }

  async readAll(opts: ReadAllOptions): Promise<StoredEvent[]> {
    const params: unknown[] = [opts.after, opts.limit];
    let filter = '';
    if (opts.streamPrefixes && opts.streamPrefixes.length > 0) {
      params.push(opts.streamPrefixes.map((p) => `${p.replace(/[\\%_]/g, '\\$&')}%`));
      filter = ` AND stream_id LIKE ANY($3::text[])`;
    }
    const { rows } = await this.sql.query<EventRow>(
      `SELECT ${COLUMNS} FROM settle_events
       WHERE global_position > $1 AND ${VISIBLE}${filter}
       ORDER BY global_position LIMIT $2`,
      params,
    );
    return rows.map(toStored);
  }

  subscribe(handler: SubscriptionHandler, opts: SubscribeOptions): Subscription {
    return pollingSubscription(handler, {
      after: opts.after,
      batchSize: opts.batchSize ?? 500,
      idleMs: this.pollMs,
      read: (after, limit) =>
        this.readAll({ after, limit, ...(opts.streamPrefixes ? { streamPrefixes: opts.streamPrefixes } : {}) }),
      onWake: (listener) => {
        this.local.on('appended', listener);
        return () => this.local.off('appended', listener);
      },
    });
  }

  async headPosition(): Promise<number> {
    const { rows } = await this.sql.query<{ head: string | null }>(
      `SELECT max(global_position) AS head FROM settle_events WHERE ${VISIBLE}`,
    );
    return rows[0]?.head == null ? 0 : Number(rows[0].head);
  }

  async getCheckpoint(name: string): Promise<number> {
    const { rows } = await this.sql.query<{ position: string }>(
      'SELECT position FROM settle_checkpoints WHERE name = $1',
      [name],
    );
    return rows.length === 0 ? 0 : Number(rows[0]!.position);
  }

  async saveCheckpoint(name: string, position: number): Promise<void> {
    await this.sql.query(
      `INSERT INTO settle_checkpoints (name, position, updated_at) VALUES ($1, $2, now())
       ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position, updated_at = now()`,
      [name, position],
    );
  }

  async ping(): Promise<void> {
    await this.sql.query('SELECT 1');
  }

  async close(): Promise<void> {
    this.closed = true;
    while (this.flushing > 0 || this.queue.length > 0) await new Promise((r) => setTimeout(r, 5));
    await this.sql.close();
  }
}
