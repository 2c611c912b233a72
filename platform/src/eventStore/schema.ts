/**
 * The event store schema, shared by PGlite (embedded) and PostgreSQL. `transaction_id` records
 * the writing transaction so readers can hold back events whose transaction is older than the
 * oldest still running one (see `readAll`): sequence values are handed out before commit, so
 * positions can become visible out of order, and a reader must never skip past a gap that
 * later fills in.
 */
export const EVENT_STORE_SCHEMA = `
CREATE TABLE IF NOT EXISTS settle_streams (
  stream_id text PRIMARY KEY,
  revision bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS settle_events (
  global_position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  event_id uuid NOT NULL,
  stream_id text NOT NULL,
  stream_position bigint NOT NULL,
  type text NOT NULL,
  version int NOT NULL DEFAULT 1,
  data jsonb NOT NULL,
  metadata jsonb NOT NULL,
  occurred_at timestamptz NOT NULL DEFAULT now(),
  transaction_id xid8 NOT NULL DEFAULT pg_current_xact_id(),
  CONSTRAINT settle_events_stream_position UNIQUE (stream_id, stream_position),
  CONSTRAINT settle_events_event_id UNIQUE (event_id)
);
-- Millisecond precision: what the envelope carries is what time-travel reads compare against.
ALTER TABLE settle_events ALTER COLUMN occurred_at SET DEFAULT date_trunc('milliseconds', clock_timestamp());
-- No index on transaction_id: readers scan the primary key from their position and filter;
-- an index on it lures the planner into scanning every visible row and sorting them.
DROP INDEX IF EXISTS settle_events_transaction;
CREATE TABLE IF NOT EXISTS settle_checkpoints (
  name text PRIMARY KEY,
  position bigint NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS settle_idempotency (
  scope text NOT NULL,
  key text NOT NULL,
  fingerprint text NOT NULL,
  state text NOT NULL,
  status_code int,
  response jsonb,
  locked_at timestamptz NOT NULL DEFAULT now(),
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (scope, key)
);
CREATE INDEX IF NOT EXISTS settle_idempotency_created ON settle_idempotency (created_at);
`;
