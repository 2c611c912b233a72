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
    occurredAt: row.occurred_at instanceof Date ? row.occurred_at.toISOString() : new Date(row.occurred_at).toISOString(),
    data: typeof row.data === 'string' ? JSON.parse(row.data) : row.data,
    metadata: (typeof row.metadata === 'string' ? JSON.parse(row.metadata) : row.metadata) as StoredEvent['metadata'],
  });
}

/** Readers only see events of transactions older than every running one: no gap ever fills in behind them. */
const VISIBLE = 'transaction_id < pg_snapshot_xmin(pg_current_snapshot())';

export interface SqlEventStoreOptions {
  /** Appends waiting while a transaction runs are committed together, up to this many. */
  maxBatch?: number;
  /** Idle poll interval of subscriptions; local appends and NOTIFY wake them at once. */
  pollMs?: number;
}

/**
 * The PostgreSQL-family event store (PostgreSQL via `pg`, PGlite embedded). Concurrent appends
 * are group-committed: while one transaction runs, the next ones queue and are written together
 * in the following transaction, each inside its own savepoint so one conflict fails only its
 * own append.
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
    await sql.exec(EVENT_STORE_SCHEMA);
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
    while (this.queue.length > 0 && this.flushing < this.sql.maxConcurrency) {
      const batch = this.queue.splice(0, this.maxBatch);
      this.flushing++;
      void this.flush(batch).finally(() => {
        this.flushing--;
        this.kick();
      });
    }
  }

  private async flush(batch: PendingAppend[]): Promise<void> {
    const outcomes: ({ ok: true; result: AppendResult } | { ok: false; error: unknown })[] = [];
    try {
      await this.sql.transaction(async (tx) => {
        outcomes.length = 0;
        for (const [i, pending] of batch.entries()) {
          const single = batch.length === 1;
          if (!single) await tx.query(`SAVEPOINT a${i}`);
          try {
            const result = await this.appendIn(tx, pending);
            if (!single) await tx.query(`RELEASE SAVEPOINT a${i}`);
            outcomes.push({ ok: true, result });
          } catch (error) {
            if (single) throw error;
            await tx.query(`ROLLBACK TO SAVEPOINT a${i}`);
            outcomes.push({ ok: false, error: this.translate(error, pending) });
          }
        }
        if (this.sql.notify && outcomes.some((o) => o.ok && !o.result.duplicate)) await this.sql.notify(tx, NOTIFY_CHANNEL);
      });
    } catch (error) {
      const translated = batch.length === 1 ? this.translate(error, batch[0]!) : error;
      for (const pending of batch) pending.reject(translated);
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

  private async appendIn(tx: SqlExecutor, p: PendingAppend): Promise<AppendResult> {
    const ids = p.events.map((e) => e.id);
    const existing = await tx.query<{ event_id: string; global_position: string; stream_id: string; stream_position: string }>(
      'SELECT event_id, global_position, stream_id, stream_position FROM settle_events WHERE event_id = ANY($1::uuid[])',
      [ids],
    );
    if (existing.rows.length > 0) {
      if (existing.rows.length === ids.length && existing.rows.every((r) => r.stream_id === p.streamId)) {
        return {
          duplicate: true,
          position: Math.max(...existing.rows.map((r) => Number(r.global_position))),
          nextExpectedRevision: Math.max(...existing.rows.map((r) => Number(r.stream_position))),
        };
      }
      throw new ConcurrencyError(p.streamId, `${String(p.expected)} (some event ids already stored)`, -3);
    }
    const current = await tx.query<{ revision: string }>(
      'SELECT revision FROM settle_streams WHERE stream_id = $1 FOR UPDATE',
      [p.streamId],
    );
    const revision = current.rows.length === 0 ? -1 : Number(current.rows[0]!.revision);
    const e = p.expected;
    const ok =
      e === 'any' ||
      (e === 'no_stream' && revision === -1) ||
      (e === 'stream_exists' && revision >= 0) ||
      (typeof e === 'number' && e === revision);
    if (!ok) throw new ConcurrencyError(p.streamId, String(e), revision);

    const next = revision + p.events.length;
    if (revision === -1)
      await tx.query('INSERT INTO settle_streams (stream_id, revision) VALUES ($1, $2)', [p.streamId, next]);
    else await tx.query('UPDATE settle_streams SET revision = $2 WHERE stream_id = $1', [p.streamId, next]);

    const params: unknown[] = [];
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
      `INSERT INTO settle_events (event_id, stream_id, stream_position, type, version, data, metadata)
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
    const { rows } = await this.sql.query<{ position: string }>('SELECT position FROM settle_checkpoints WHERE name = $1', [name]);
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
