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
import { SharedTail } from './sharedTail.js';
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

/** What one read tells a group commit about its streams and event ids. */
interface BatchState {
  revisions: Map<string, number>;
  existing: Map<string, { s: string; r: number; p: number }>;
}

type Outcome =
  | { kind: 'write'; pending: PendingAppend; first: number }
  | { kind: 'done'; pending: PendingAppend; result: AppendResult }
  | { kind: 'refused'; pending: PendingAppend; error: ConcurrencyError }
  | { kind: 'deferred'; pending: PendingAppend };

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
 * its positions after it, so appends also hold APPEND_LOCK (see `write`).
 */
const VISIBLE = 'transaction_id < pg_snapshot_xmin(pg_current_snapshot())';

/**
 * Transaction-level advisory lock every append statement takes first, before it has a
 * transaction id or a position: ids, positions and commits of appends then all follow one order,
 * across every process sharing the database. Without it, a transaction that got its id early
 * and a position late commits past a younger transaction's lower, still uncommitted position,
 * and readers skip that position forever. The append is one statement in its own transaction,
 * so the lock is held only while its rows are inserted and committed.
 */
export const APPEND_LOCK = 0x5e771e_0001;
/** division_by_zero: how the write statement refuses a batch decided on a stale stream revision. */
const STALE_REVISION = '22012';
/** Streams whose revision a store remembers between appends. */
const REVISION_CACHE = 10_000;
/** Serialises schema set-up: concurrent CREATE TABLE IF NOT EXISTS races on the catalogs. */
export const SCHEMA_LOCK = 0x5e771e_0002;
/** How long `ping` waits for what an append needs (its locks) once statements have timed out. */
const WRITE_PROBE_MS = 800;

export interface SqlEventStoreOptions {
  /** Appends waiting while a batch is written are committed together, up to this many. */
  maxBatch?: number;
  /** Batches in flight at once (one reads while another writes); capped by the client's maxConcurrency. */
  maxConcurrentBatches?: number;
  /** Idle poll interval of subscriptions; local appends and NOTIFY wake them at once. */
  pollMs?: number;
}

/**
 * The PostgreSQL-family event store (PostgreSQL via `pg`, PGlite embedded). Concurrent appends
 * are group-committed, set-based: while a batch is written, the next appends queue; a batch
 * costs at most one read (the current revision of every stream in it and any of its event ids
 * already stored; skipped when the store knows them, see `flush`) and one write statement (every event of every accepted append, the stream revisions
 * and the wake-up notification), whatever its size. Expected revisions are decided in between,
 * in memory, appends to the same stream within a batch chained in order. An append refused for
 * its expected revision writes nothing and fails alone.
 *
 * The read is not locked: the unique indexes on (stream, position) and on event id make the
 * write fail if another writer moved one of its streams or stored one of its ids in the meantime,
 * and the batch is then read and decided again (once; then each append alone).
 */
export class SqlEventStore implements EventStore {
  readonly name: string;
  private readonly queue: PendingAppend[] = [];
  private flushing = 0;
  /** Last known revision of recently written streams (see `knownState`), oldest first. */
  private readonly revisions = new Map<string, number>();
  /** Streams with an append in a batch being written: their next appends wait for it. */
  private readonly inFlight = new Map<string, number>();
  private readonly local = new EventEmitter();
  private readonly maxBatch: number;
  private readonly maxFlushes: number;
  private readonly pollMs: number;
  private closed = false;
  private readonly tail: SharedTail;
  private appendedSinceAnalyze = 0;
  /** Set when a statement timed out; cleared by the next write that commits or a write probe that passes. */
  private stall?: { since: string; reason: string };
  private readonly stallListeners = new Set<(reason: string) => void>();

  private constructor(
    private readonly sql: SqlClient,
    opts: SqlEventStoreOptions,
  ) {
    this.name = sql.name;
    this.maxBatch = opts.maxBatch ?? 512;
    this.maxFlushes = Math.max(1, Math.min(opts.maxConcurrentBatches ?? 1, sql.maxConcurrency));
    this.pollMs = opts.pollMs ?? 1000;
    this.local.setMaxListeners(0);
    this.tail = new SharedTail({
      read: (after, limit) => this.readAll({ after, limit }),
      freshMs: Math.min(250, this.pollMs / 2),
    });
    // First listener: the tail counts a wake-up before any subscriber hears it.
    this.local.on('appended', () => this.tail.woke());
  }

  static async create(sql: SqlClient, opts: SqlEventStoreOptions = {}): Promise<SqlEventStore> {
    // One Query message with several statements runs as one transaction: the lock covers it all.
    await sql.exec(`SELECT pg_advisory_xact_lock(${SCHEMA_LOCK});\n${EVENT_STORE_SCHEMA}`);
    // Fresh statistics keep the planner on the primary-key scan for readAll (PGlite has no autovacuum).
    await sql.exec('ANALYZE settle_events');
    const store = new SqlEventStore(sql, opts);
    sql.onTimeout?.((error) => store.stalled(error));
    if (sql.onNotify) await sql.onNotify(NOTIFY_CHANNEL, () => store.local.emit('appended'));
    return store;
  }

  get client(): SqlClient {
    return this.sql;
  }

  /**
   * Called when a statement of this store's client timed out (a lock held too long, a server that
   * stopped answering): with the reason, at once, so the part monitor can turn the event store
   * down without waiting for its next probe. Returns a function that unsubscribes.
   */
  onStall(listener: (reason: string) => void): () => void {
    this.stallListeners.add(listener);
    return () => this.stallListeners.delete(listener);
  }

  private stalled(error: Error): void {
    // The first timeout says what went wrong; later ones (the probe's own, say) keep it.
    this.stall ??= { since: new Date().toISOString(), reason: `a statement timed out: ${error.message}` };
    for (const listener of this.stallListeners) listener(this.stall.reason);
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
    // A few batches at a time (PGlite: one): one reads while another writes. The write statements
    // serialise on APPEND_LOCK anyway, so more would only split the queue into small batches.
    while (this.queue.length > 0 && this.flushing < this.maxFlushes) {
      const batch = this.takeBatch();
      if (batch.length === 0) return;
      this.flushing++;
      for (const p of batch) this.inFlight.set(p.streamId, (this.inFlight.get(p.streamId) ?? 0) + 1);
      void this.flush(batch, 0).finally(() => {
        for (const p of batch) {
          const n = this.inFlight.get(p.streamId)! - 1;
          if (n === 0) this.inFlight.delete(p.streamId);
          else this.inFlight.set(p.streamId, n);
        }
        this.flushing--;
        this.kick();
      });
    }
  }

  /** The oldest queued appends whose streams have nothing in flight, in queue order. */
  private takeBatch(): PendingAppend[] {
    if (this.inFlight.size === 0) return this.queue.splice(0, this.maxBatch);
    const batch: PendingAppend[] = [];
    const blocked = new Set<string>();
    for (let i = 0; i < this.queue.length && batch.length < this.maxBatch;) {
      const p = this.queue[i]!;
      if (this.inFlight.has(p.streamId) || blocked.has(p.streamId)) {
        // Keep the order of a stream's appends: once one waits, the later ones wait too.
        blocked.add(p.streamId);
        i++;
      } else batch.push(...this.queue.splice(i, 1));
    }
    return batch;
  }

  /**
   * Attempt 0 decides from the revisions this store last wrote or read, and reads only for a
   * stream it does not know or an append it would refuse; attempt 1 reads first. A stale revision
   * cannot slip through: writing at a stream position or an event id that exists fails on its
   * unique index, and the batch goes again. Attempt 2 (the batch lost twice to other writers)
   * reads and writes in one transaction under APPEND_LOCK, where no other store can get between;
   * attempt 3 is one append alone, for a batch that broke on a writer outside any store.
   */
  private async flush(batch: PendingAppend[], attempt: number): Promise<void> {
    let outcomes: Outcome[];
    let written: Map<string, number>;
    try {
      if (attempt >= 2) {
        [outcomes, written] = await this.sql.transaction(async (tx) => {
          await tx.query(`SELECT pg_advisory_xact_lock(${APPEND_LOCK})`);
          const decided = this.decide(batch, await this.readState(tx, batch));
          return [decided, await this.write(tx, decided)] as const;
        });
      } else {
        const known = attempt === 0 ? this.knownState(batch) : undefined;
        outcomes = known ? this.decide(batch, known) : [];
        if (!known || outcomes.some((o) => o.kind === 'refused')) {
          const read = await this.readState(this.sql, batch);
          for (const [stream, revision] of read.revisions) this.remember(stream, revision);
          outcomes = this.decide(batch, read);
        }
        written = await this.write(this.sql, outcomes);
      }
    } catch (error) {
      // A unique index was hit (class 23), or a stream's stored revision was not the one decided
      // on: another writer moved a stream or stored an event id since the store last looked. Nothing of the batch is stored: decide again.
      if (sqlState(error)?.startsWith('23') || sqlState(error) === STALE_REVISION) {
        if (attempt < 2) return this.flush(batch, attempt + 1);
        if (attempt === 2 && batch.length > 1) {
          for (const pending of batch) await this.flush([pending], 3);
          return;
        }
      }
      for (const pending of batch) pending.reject(this.translate(error, pending));
      return;
    }
    const deferred: PendingAppend[] = [];
    let wrote = 0;
    for (const o of outcomes) {
      if (o.kind === 'refused') o.pending.reject(o.error);
      else if (o.kind === 'done') o.pending.resolve(o.result);
      else if (o.kind === 'deferred') deferred.push(o.pending);
      else {
        const last = o.first + o.pending.events.length - 1;
        wrote += o.pending.events.length;
        this.remember(o.pending.streamId, last);
        o.pending.resolve({
          duplicate: false,
          position: written.get(`${last}\u0000${o.pending.streamId}`)!,
          nextExpectedRevision: last,
        });
      }
    }
    // Appends that reuse an event id of an earlier append in this batch go again, after it.
    if (deferred.length > 0) this.queue.unshift(...deferred);
    if (wrote > 0) {
      this.stall = undefined; // a write committed: appends go through again
      this.local.emit('appended');
    }
    this.appendedSinceAnalyze += wrote;
    if (this.appendedSinceAnalyze >= 20_000 && !this.sql.autovacuum) {
      // Keep planner statistics fresh as the log grows (PGlite has no autovacuum).
      this.appendedSinceAnalyze = 0;
      void this.sql.exec('ANALYZE settle_events').catch(() => undefined);
    }
  }

  private translate(error: unknown, pending: PendingAppend): unknown {
    // Two writers creating the same stream, or racing on the same event id, meet a unique index.
    if (sqlState(error) === UNIQUE_VIOLATION || sqlState(error) === STALE_REVISION)
      return new ConcurrencyError(pending.streamId, String(pending.expected), -2);
    return error;
  }

  /**
   * The batch's streams as this store last saw them, or undefined when one is unknown. A stream
   * that an append expects not to exist is taken as new: if it exists, position 0 is taken.
   */
  private knownState(batch: PendingAppend[]): BatchState | undefined {
    const revisions = new Map<string, number>();
    for (const p of batch) {
      if (revisions.has(p.streamId)) continue;
      const known = this.revisions.get(p.streamId);
      if (known !== undefined) revisions.set(p.streamId, known);
      else if (p.expected === 'no_stream') revisions.set(p.streamId, -1);
      else return undefined;
    }
    return { revisions, existing: new Map() };
  }

  /** Remembers a stream's revision (bounded: the least recently written streams are forgotten). */
  private remember(streamId: string, revision: number): void {
    this.revisions.delete(streamId);
    this.revisions.set(streamId, revision);
    if (this.revisions.size > REVISION_CACHE) this.revisions.delete(this.revisions.keys().next().value!);
  }

  /** One statement: the revision of every stream in the batch and any of its event ids already stored. */
  private async readState(sql: SqlExecutor, batch: PendingAppend[]): Promise<BatchState> {
    const streams = [...new Set(batch.map((p) => p.streamId))];
    const ids = batch.flatMap((p) => p.events.map((e) => e.id));
    const { rows } = await sql.query<{ s: string; r: number | string; p: number | string | null; id: string | null }>(
      `SELECT stream_id AS s, revision AS r, NULL::bigint AS p, NULL::text AS id
         FROM settle_streams WHERE stream_id = ANY($1::text[])
       UNION ALL
       SELECT stream_id, stream_position, global_position, event_id::text
         FROM settle_events WHERE event_id = ANY($2::uuid[])`,
      [streams, ids],
    );
    const state: BatchState = { revisions: new Map(), existing: new Map() };
    for (const row of rows) {
      if (row.id === null) state.revisions.set(row.s, Number(row.r));
      else state.existing.set(row.id, { s: row.s, r: Number(row.r), p: Number(row.p) });
    }
    return state;
  }

  /** Idempotency and expected revisions, in queue order, each append seeing the ones before it. */
  private decide(batch: PendingAppend[], state: BatchState): Outcome[] {
    const batchIds = new Set<string>();
    return batch.map((p): Outcome => {
      const ids = p.events.map((e) => e.id.toLowerCase());
      if (ids.some((id) => batchIds.has(id))) return { kind: 'deferred', pending: p };
      const existing = ids.flatMap((id) => state.existing.get(id) ?? []);
      if (existing.length > 0) {
        if (existing.length === ids.length && existing.every((r) => r.s === p.streamId))
          return {
            kind: 'done',
            pending: p,
            result: {
              duplicate: true,
              position: Math.max(...existing.map((r) => r.p)),
              nextExpectedRevision: Math.max(...existing.map((r) => r.r)),
            },
          };
        return {
          kind: 'refused',
          pending: p,
          error: new ConcurrencyError(p.streamId, `${String(p.expected)} (some event ids already stored)`, -3),
        };
      }
      const revision = state.revisions.get(p.streamId) ?? -1;
      const e = p.expected;
      const ok =
        e === 'any' ||
        (e === 'no_stream' && revision === -1) ||
        (e === 'stream_exists' && revision >= 0) ||
        (typeof e === 'number' && e === revision);
      if (!ok) return { kind: 'refused', pending: p, error: new ConcurrencyError(p.streamId, String(e), revision) };
      for (const id of ids) batchIds.add(id);
      state.revisions.set(p.streamId, revision + p.events.length);
      return { kind: 'write', pending: p, first: revision + 1 };
    });
  }

  /**
   * One statement, its own transaction: takes APPEND_LOCK, inserts every event in batch order
   * (`unnest`), upserts the streams' revisions and queues the NOTIFY. The lock is taken before
   * the first row gets its position and the transaction its id (the rows depend on it), and held
   * until the commit: ids, positions and commits of appends all follow one order. A stream whose
   * stored revision is not the one decided on (moved by another writer; or archived, its events
   * gone but its revision kept) is not updated, and the division by zero then fails the whole
   * statement (STALE_REVISION): the batch is decided again on what a read finds.
   * Returns the global position of each written (stream position, stream).
   */
  private async write(sql: SqlExecutor, outcomes: Outcome[]): Promise<Map<string, number>> {
    const cols: [string[], string[], number[], string[], number[], string[], string[]] = [[], [], [], [], [], [], []];
    for (const o of outcomes) {
      if (o.kind !== 'write') continue;
      o.pending.events.forEach((ev, i) => {
        cols[0].push(ev.id);
        cols[1].push(o.pending.streamId);
        cols[2].push(o.first + i);
        cols[3].push(ev.type);
        cols[4].push(ev.version ?? schemaVersionOf(ev.type));
        cols[5].push(JSON.stringify(ev.data));
        cols[6].push(JSON.stringify(ev.metadata));
      });
    }
    const positions = new Map<string, number>();
    if (cols[0].length === 0) return positions;
    const notify = this.sql.notify ? `, (SELECT pg_notify('${NOTIFY_CHANNEL}', '')) AS n` : '';
    const { rows } = await sql.query<{ s: string; r: number | string; p: number | string }>(
      `WITH locked AS MATERIALIZED (SELECT pg_advisory_xact_lock(${APPEND_LOCK})::text AS l),
       ins AS (
         INSERT INTO settle_events (event_id, stream_id, stream_position, type, version, data, metadata)
         SELECT e.id, e.s, e.r, e.t, e.v, e.d::jsonb, e.m::jsonb
           FROM locked,
                unnest($1::uuid[], $2::text[], $3::bigint[], $4::text[], $5::int[], $6::text[], $7::text[])
                  WITH ORDINALITY AS e(id, s, r, t, v, d, m, n)
          WHERE locked.l = ''
          ORDER BY e.n
         RETURNING stream_id, stream_position, global_position
       ),
       streams AS (
         INSERT INTO settle_streams (stream_id, revision)
         SELECT stream_id, max(stream_position) FROM ins GROUP BY stream_id
         ON CONFLICT (stream_id) DO UPDATE SET revision = EXCLUDED.revision
           WHERE settle_streams.revision + 1 =
                 (SELECT min(i.stream_position) FROM ins i WHERE i.stream_id = EXCLUDED.stream_id)
         RETURNING 1
       )
       SELECT ins.stream_id AS s, ins.stream_position AS r, ins.global_position AS p,
              1 / (CASE WHEN c.n = $8::bigint THEN 1 ELSE 0 END) AS guard
         FROM ins, (SELECT count(*) AS n FROM streams) AS c${notify}`,
      [...cols, new Set(cols[1]).size],
    );
    for (const row of rows) positions.set(`${Number(row.r)}\u0000${row.s}`, Number(row.p));
    return positions;
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

  /**
   * Catch-up reads go to the database with the subscription's prefix filter; once a read finds
   * the subscription at the visible head, it reads through the store's shared tail (one query per
   * wake-up for every live subscription), and back from the database if it falls behind the tail.
   */
  subscribe(handler: SubscriptionHandler, opts: SubscribeOptions): Subscription {
    const prefixes = opts.streamPrefixes && opts.streamPrefixes.length > 0 ? opts.streamPrefixes : undefined;
    // No matching event at or before `floor`: reads start after it (a filtered subscription
    // whose last event is old then stays within the tail).
    let floor = opts.after;
    let live = false;
    const read = async (position: number, limit: number): Promise<StoredEvent[]> => {
      const sawWake = this.tail.wake;
      const after = Math.max(position, floor);
      if (live) {
        const found = await this.tail.read(after, limit, prefixes, sawWake);
        if (found) {
          floor = found.scannedTo;
          return found.events;
        }
        live = false;
      }
      // Every matching event visible up to `head` is in this read, if it is not full.
      const head = await this.headPosition();
      const events = await this.readAll({ after, limit, ...(prefixes ? { streamPrefixes: prefixes } : {}) });
      if (events.length < limit) {
        floor = Math.max(after, head);
        this.tail.caughtUpAt(floor);
        live = this.tail.covers(floor);
      }
      return events;
    };
    return pollingSubscription(handler, {
      after: opts.after,
      batchSize: opts.batchSize ?? 500,
      idleMs: this.pollMs,
      read,
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

  /**
   * The server answers; and, once a statement has timed out, an append could take its locks now:
   * APPEND_LOCK and the tables' ROW EXCLUSIVE lock (which a long DDL, a LOCK TABLE or a stuck
   * append would hold), each within WRITE_PROBE_MS. The probe writes nothing; it passes as soon
   * as what held appends up is gone, or a write commits.
   */
  async ping(): Promise<void> {
    await this.sql.query('SELECT 1', undefined, { timeoutMs: 2000 });
    const stall = this.stall;
    if (!stall) return;
    try {
      // One simple-query message: one transaction, whose locks are released when it ends.
      await this.sql.query(
        `SET LOCAL lock_timeout = ${WRITE_PROBE_MS}; SET LOCAL statement_timeout = ${2 * WRITE_PROBE_MS};
         SELECT pg_advisory_xact_lock(${APPEND_LOCK});
         LOCK TABLE settle_events, settle_streams IN ROW EXCLUSIVE MODE`,
        undefined,
        { timeoutMs: 4 * WRITE_PROBE_MS },
      );
    } catch (error) {
      throw new Error(
        `appends cannot take their locks within ${WRITE_PROBE_MS} ms (${(error as Error).message}); since ${stall.since}, ${stall.reason}`,
        { cause: error },
      );
    }
    if (this.stall === stall) this.stall = undefined;
  }

  async close(): Promise<void> {
    this.closed = true;
    while (this.flushing > 0 || this.queue.length > 0) await new Promise((r) => setTimeout(r, 5));
    await this.sql.close();
  }
}
