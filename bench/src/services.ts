import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { MongoClient } from 'mongodb';
import pg from 'pg';
import type { SqlExecutor } from '@settle/platform';
import type { EventRow } from './events.js';

/** Where the real servers are (infra/local/services); each can be pointed elsewhere. */
export const SERVICES = {
  postgres: process.env.BENCH_POSTGRES_URL ?? 'postgres://settle:settle@127.0.0.1:5432/settle',
  kafka: (process.env.BENCH_KAFKA_BROKERS ?? '127.0.0.1:9092').split(','),
  mongo: process.env.BENCH_MONGO_URL ?? 'mongodb://127.0.0.1:27017/settle',
};

const withTimeout = <T>(p: Promise<T>, ms: number, what: string): Promise<T> =>
  Promise.race([
    p,
    new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms).unref(),
    ),
  ]);

/** Why a service cannot be used, or undefined when it answers. */
export async function postgresProblem(url = SERVICES.postgres): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
    return undefined;
  } catch (error) {
    return `PostgreSQL at ${url.replace(/:[^:@/]*@/, ':***@')} unavailable (${(error as Error).message})`;
  } finally {
    await client.end().catch(() => undefined);
  }
}

export async function kafkaProblem(brokers = SERVICES.kafka): Promise<string | undefined> {
  const admin = new Kafka({
    clientId: 'settle-bench-probe',
    brokers,
    logLevel: logLevel.NOTHING,
    connectionTimeout: 3000,
    retry: { retries: 1 },
  }).admin();
  try {
    await withTimeout(
      (async () => {
        await admin.connect();
        await admin.listTopics();
      })(),
      8000,
      'Kafka',
    );
    return undefined;
  } catch (error) {
    return `Kafka at ${brokers.join(',')} unavailable (${(error as Error).message})`;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

export async function mongoProblem(url = SERVICES.mongo): Promise<string | undefined> {
  const client = new MongoClient(url, { serverSelectionTimeoutMS: 3000, socketTimeoutMS: 5000 });
  try {
    // A server that accepts connections but does not answer (FerretDB stalls) counts as down.
    await withTimeout(
      (async () => {
        await client.connect();
        await client.db().command({ ping: 1 });
      })(),
      8000,
      'MongoDB',
    );
    return undefined;
  } catch (error) {
    return `MongoDB at ${url} unavailable (${(error as Error).message})`;
  } finally {
    await client.close().catch(() => undefined);
  }
}

/** The URL of another database on the same server. */
export function databaseUrl(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

/** A throwaway PostgreSQL database; `drop()` removes it (and any connection left to it). */
export async function throwawayPostgres(
  name: string,
  url = SERVICES.postgres,
): Promise<{ url: string; drop(): Promise<void> }> {
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  return {
    url: databaseUrl(url, name),
    async drop() {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

/** A temporary folder under the OS temp dir; `remove()` deletes it. */
export async function tempDir(prefix: string): Promise<{ path: string; remove(): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), `settle-bench-${prefix}-`));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

/**
 * The limit's SQL: one multi-row INSERT of `rows` into `settle_events`, exactly the columns and
 * casts Settle's append writes (the event's JSON serialised the same way).
 */
export function insertStatement(rows: EventRow[], withOccurredAt: boolean): { sql: string; params: unknown[] } {
  const params: unknown[] = [];
  const perRow = withOccurredAt ? 8 : 7;
  const values = rows.map((r, i) => {
    params.push(r.id, r.streamId, r.streamPosition, r.type, 1, JSON.stringify(r.data), JSON.stringify(r.metadata));
    if (withOccurredAt) params.push(r.occurredAt);
    const b = i * perRow;
    return `($${b + 1}::uuid, $${b + 2}, $${b + 3}, $${b + 4}, $${b + 5}, $${b + 6}::jsonb, $${b + 7}::jsonb${withOccurredAt ? `, $${b + 8}::timestamptz` : ''})`;
  });
  const columns = `event_id, stream_id, stream_position, type, version, data, metadata${withOccurredAt ? ', occurred_at' : ''}`;
  return { sql: `INSERT INTO settle_events (${columns}) VALUES ${values.join(', ')}`, params };
}

/** Fills an event store's tables with `rows` as fast as possible (seeding, not measured). */
export async function seedEvents(exec: SqlExecutor, rows: EventRow[], perStatement = 500): Promise<void> {
  for (let i = 0; i < rows.length; i += perStatement) {
    const { sql, params } = insertStatement(rows.slice(i, i + perStatement), true);
    await exec.query(sql, params);
  }
  // The streams table, so the seeded log is a consistent event store.
  const revisions = new Map<string, number>();
  for (const r of rows) revisions.set(r.streamId, r.streamPosition);
  const entries = [...revisions];
  for (let i = 0; i < entries.length; i += 1000) {
    const chunk = entries.slice(i, i + 1000);
    await exec.query(
      `INSERT INTO settle_streams (stream_id, revision) SELECT * FROM unnest($1::text[], $2::bigint[])
       ON CONFLICT (stream_id) DO UPDATE SET revision = EXCLUDED.revision`,
      [chunk.map((e) => e[0]), chunk.map((e) => e[1])],
    );
  }
}
