import { upcast, type StoredEvent } from '@settle/domain';
import { archiveConflict, type ArchiveCandidateQuery, type StreamArchive } from './archive.js';
import type { SqlClient } from './sqlClient.js';
import { APPEND_LOCK, SCHEMA_LOCK } from './sqlEventStore.js';

/**
 * Archived rows keep their original ids and positions, so an import puts them back exactly
 * where they were. Same columns as `settle_events` minus `transaction_id`, plus `archived_at`.
 */
export const ARCHIVE_SCHEMA = `
CREATE TABLE IF NOT EXISTS settle_events_archive (
  global_position bigint PRIMARY KEY,
  event_id uuid NOT NULL,
  stream_id text NOT NULL,
  stream_position bigint NOT NULL,
  type text NOT NULL,
  version int NOT NULL,
  data jsonb NOT NULL,
  metadata jsonb NOT NULL,
  occurred_at timestamptz NOT NULL,
  archived_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT settle_events_archive_stream_position UNIQUE (stream_id, stream_position),
  CONSTRAINT settle_events_archive_event_id UNIQUE (event_id)
);
`;

interface Row {
  global_position: string | number;
  event_id: string;
  stream_id: string;
  stream_position: string | number;
  type: string;
  version: number;
  data: string;
  metadata: string;
  occurred_at: Date | string;
}

const COLUMNS =
  'global_position, event_id, stream_id, stream_position, type, version, data::text AS data, metadata::text AS metadata, occurred_at';
const MOVED_COLUMNS =
  'global_position, event_id, stream_id, stream_position, type, version, data, metadata, occurred_at';

function toRaw(row: Row): StoredEvent {
  return {
    id: row.event_id,
    type: row.type,
    version: row.version,
    streamId: row.stream_id,
    streamPosition: Number(row.stream_position),
    globalPosition: Number(row.global_position),
    occurredAt:
      row.occurred_at instanceof Date ? row.occurred_at.toISOString() : new Date(row.occurred_at).toISOString(),
    data: JSON.parse(row.data) as unknown,
    metadata: JSON.parse(row.metadata) as StoredEvent['metadata'],
  };
}

/**
 * Archiving on PostgreSQL and PGlite: a stream's archived rows move from `settle_events` to
 * `settle_events_archive` in one transaction. Readers of the log never wait for it (a delete
 * does not hold back the transaction-id visibility rule for long: one short transaction per
 * stream) and never see a gap fill in: archived positions are behind or ahead of them and simply
 * stay away, and the tombstone the stream keeps is delivered as usual.
 */
export class SqlArchive implements StreamArchive {
  readonly kind = 'table';

  private constructor(private readonly sql: SqlClient) {}

  static async create(sql: SqlClient): Promise<SqlArchive> {
    await sql.exec(`SELECT pg_advisory_xact_lock(${SCHEMA_LOCK});\n${ARCHIVE_SCHEMA}`);
    return new SqlArchive(sql);
  }

  async *candidates(query: ArchiveCandidateQuery): AsyncIterable<string> {
    const pageSize = query.pageSize ?? 500;
    let after = '';
    for (;;) {
      // A page of stream ids in primary-key order from settle_streams (one row per stream), then
      // their events through the (stream_id, stream_position) index: one pass over the log in all,
      // a page of ids in memory. (One GROUP BY over settle_events per page would rescan the log.)
      const { rows: page } = await this.sql.query<{ stream_id: string }>(
        `SELECT stream_id FROM settle_streams WHERE stream_id > $1 AND starts_with(stream_id, $2)
          ORDER BY stream_id LIMIT $3`,
        [after, query.prefix, pageSize],
      );
      if (page.length === 0) return;
      after = page[page.length - 1]!.stream_id;
      // A truncated stream starts past position 0.
      const { rows } = await this.sql.query<{ stream_id: string }>(
        `SELECT stream_id FROM settle_events WHERE stream_id = ANY($1::text[])
          GROUP BY stream_id
         HAVING min(stream_position) = 0 AND (max(occurred_at) < $2::timestamptz OR bool_or(type = $3))
          ORDER BY stream_id`,
        [page.map((r) => r.stream_id), query.lastEventBefore.toISOString(), query.orHolding],
      );
      for (const row of rows) yield row.stream_id;
      if (page.length < pageSize) return;
    }
  }

  async readRaw(streamId: string): Promise<StoredEvent[]> {
    const { rows } = await this.sql.query<Row>(
      `SELECT ${COLUMNS} FROM settle_events WHERE stream_id = $1 ORDER BY stream_position`,
      [streamId],
    );
    return rows.map(toRaw);
  }

  async truncate(streamId: string, keepFrom: number, expectedIds: string[]): Promise<number> {
    return this.sql.transaction(async (tx) => {
      const { rows } = await tx.query<{ event_id: string }>(
        `WITH moved AS (
           DELETE FROM settle_events WHERE stream_id = $1 AND stream_position < $2
           RETURNING ${MOVED_COLUMNS}
         )
         INSERT INTO settle_events_archive (${MOVED_COLUMNS})
         SELECT ${MOVED_COLUMNS} FROM moved
         ON CONFLICT (global_position) DO UPDATE SET archived_at = now()
         RETURNING event_id::text AS event_id`,
        [streamId, keepFrom],
      );
      const moved = new Set(rows.map((r) => r.event_id));
      const expected = new Set(expectedIds);
      if (moved.size !== expected.size || [...expected].some((id) => !moved.has(id)))
        // Throwing rolls the move back: nothing leaves the log that is not in the verified file.
        throw archiveConflict(
          `${streamId}: the events before position ${keepFrom} are not the ${expected.size} exported ones (found ${moved.size}); nothing truncated`,
        );
      return moved.size;
    });
  }

  async readArchived(streamId: string): Promise<StoredEvent[]> {
    const { rows } = await this.sql.query<Row>(
      `SELECT ${COLUMNS} FROM settle_events_archive WHERE stream_id = $1 ORDER BY stream_position`,
      [streamId],
    );
    return rows.map((r) => upcast(toRaw(r)));
  }

  /** Archived events after `after` and at or before `upTo`, in global order (upcast): see `withArchivedEvents`. */
  async readArchivedRange(opts: {
    after: number;
    upTo?: number;
    limit: number;
    streamPrefixes?: string[];
  }): Promise<StoredEvent[]> {
    const params: unknown[] = [opts.after, opts.upTo ?? Number.MAX_SAFE_INTEGER, opts.limit];
    let filter = '';
    if (opts.streamPrefixes && opts.streamPrefixes.length > 0) {
      params.push(opts.streamPrefixes.map((p) => `${p.replace(/[\\%_]/g, '\\$&')}%`));
      filter = ' AND stream_id LIKE ANY($4::text[])';
    }
    const { rows } = await this.sql.query<Row>(
      `SELECT ${COLUMNS} FROM settle_events_archive
        WHERE global_position > $1 AND global_position <= $2${filter}
        ORDER BY global_position LIMIT $3`,
      params,
    );
    return rows.map((r) => upcast(toRaw(r)));
  }

  async restore(events: StoredEvent[]): Promise<{ restored: number; present: number }> {
    if (events.length === 0) return { restored: 0, present: 0 };
    const streamId = events[0]!.streamId;
    return this.sql.transaction(async (tx) => {
      // Appends hold this lock too: no append takes a position while the sequence is checked below.
      await tx.query(`SELECT pg_advisory_xact_lock(${APPEND_LOCK})`);
      const { rows: clashes } = await tx.query<{
        event_id: string;
        stream_id: string;
        stream_position: string | number;
        global_position: string | number;
      }>(
        `SELECT event_id::text AS event_id, stream_id, stream_position, global_position FROM settle_events
          WHERE event_id = ANY($1::uuid[]) OR global_position = ANY($2::bigint[])
             OR (stream_id = $3 AND stream_position = ANY($4::bigint[]))`,
        [events.map((e) => e.id), events.map((e) => e.globalPosition), streamId, events.map((e) => e.streamPosition)],
      );
      const byId = new Map(events.map((e) => [e.id, e]));
      const present = new Set<string>();
      for (const c of clashes) {
        const e = byId.get(c.event_id);
        if (
          !e ||
          e.streamId !== c.stream_id ||
          e.streamPosition !== Number(c.stream_position) ||
          e.globalPosition !== Number(c.global_position)
        )
          throw archiveConflict(
            `cannot import ${streamId}: position ${String(c.global_position)} (${c.stream_id}@${String(c.stream_position)}) ` +
              `already holds event ${c.event_id}, which is not the archived one there`,
          );
        present.add(c.event_id);
      }
      const missing = events.filter((e) => !present.has(e.id));
      if (missing.length > 0) {
        const params: unknown[] = [];
        const values = missing.map((e) => {
          const b = params.length;
          params.push(
            e.globalPosition,
            e.id,
            e.streamId,
            e.streamPosition,
            e.type,
            e.version,
            JSON.stringify(e.data),
            JSON.stringify(e.metadata),
            e.occurredAt,
          );
          return `($${b + 1}::bigint, $${b + 2}::uuid, $${b + 3}, $${b + 4}::bigint, $${b + 5}, $${b + 6}::int, $${b + 7}::jsonb, $${b + 8}::jsonb, $${b + 9}::timestamptz)`;
        });
        await tx.query(
          `INSERT INTO settle_events (${MOVED_COLUMNS}) OVERRIDING SYSTEM VALUE VALUES ${values.join(', ')}`,
          params,
        );
        const last = Math.max(...events.map((e) => e.streamPosition));
        await tx.query(
          `INSERT INTO settle_streams (stream_id, revision) VALUES ($1, $2)
           ON CONFLICT (stream_id) DO UPDATE SET revision = GREATEST(settle_streams.revision, EXCLUDED.revision)`,
          [streamId, last],
        );
        // Into a store that never had these positions (a fresh database): later appends must start past them.
        const top = Math.max(...missing.map((e) => e.globalPosition));
        await tx.query(
          `SELECT setval(pg_get_serial_sequence('settle_events', 'global_position'), $1::bigint)
            WHERE $1::bigint > COALESCE(pg_sequence_last_value(pg_get_serial_sequence('settle_events', 'global_position')::regclass), 0)`,
          [top],
        );
      }
      await tx.query('DELETE FROM settle_events_archive WHERE event_id = ANY($1::uuid[])', [events.map((e) => e.id)]);
      return { restored: missing.length, present: present.size };
    });
  }
}
