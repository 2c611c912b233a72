import { randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import type { StoredEvent } from '@settle/domain';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConcurrencyError } from '../errors.js';
import { describeEventStoreContract, type HeldWrite } from '../testing/eventStoreContract.js';
import { createPgClient, type PgClientOptions } from './pgClient.js';
import type { NewEvent } from './port.js';
import { SqlEventStore } from './sqlEventStore.js';

/** A server from `infra/local/services up`; every run works in its own throwaway database. */
const ADMIN_URL = process.env['SETTLE_TEST_PG_URL'] ?? 'postgres://settle:settle@127.0.0.1:5432/settle';

interface TestDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

async function withAdmin<T>(fn: (admin: pg.Client) => Promise<T>): Promise<T> {
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  try {
    await admin.connect();
  } catch (error) {
    throw new Error(
      `PostgreSQL is not reachable at ${ADMIN_URL.replace(/:[^:@/]*@/, ':***@')}: run infra/local/services up postgres`,
      {
        cause: error,
      },
    );
  }
  try {
    return await fn(admin);
  } finally {
    await admin.end();
  }
}

async function createTestDatabase(): Promise<TestDatabase> {
  const name = `settle_test_${randomBytes(6).toString('hex')}`;
  await withAdmin((admin) => admin.query(`CREATE DATABASE ${name}`));
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    drop: () => withAdmin((admin) => admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).then(() => undefined),
  };
}

const openStore = async (url: string, opts: PgClientOptions = {}) =>
  SqlEventStore.create(await createPgClient(url, { poolSize: 8, ...opts }), { pollMs: 100 });

async function rawClient(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  return client;
}

/**
 * A writer that takes a global position and keeps its transaction open: what any writer does
 * between its INSERT and its COMMIT. It follows the schema, not SqlEventStore's locking.
 */
async function holdPgWrite(url: string, streamId: string, event: NewEvent): Promise<HeldWrite> {
  const client = await rawClient(url);
  await client.query('BEGIN');
  await client.query('INSERT INTO settle_streams (stream_id, revision) VALUES ($1, 0)', [streamId]);
  await client.query(
    `INSERT INTO settle_events (event_id, stream_id, stream_position, type, version, data, metadata)
     VALUES ($1::uuid, $2, 0, $3, 1, $4::jsonb, $5::jsonb)`,
    [event.id, streamId, event.type, JSON.stringify(event.data), JSON.stringify(event.metadata)],
  );
  return {
    async commit() {
      await client.query('COMMIT');
      await client.end();
    },
  };
}

let contractDb: TestDatabase | undefined;
describeEventStoreContract(
  'PostgreSQL',
  async () => {
    contractDb = await createTestDatabase();
    return openStore(contractDb.url);
  },
  {
    openAnother: () => openStore(contractDb!.url),
    holdWrite: (streamId, event) => holdPgWrite(contractDb!.url, streamId, event),
    writers: 8,
    appendsPerWriter: 200,
  },
);
afterAll(async () => {
  await contractDb?.drop();
});

const meta = { correlationId: 'c', causationId: 'c', actor: 'test' };
const ev = (type: string): NewEvent => ({ id: randomUUID(), type, data: {}, metadata: meta });

describe('PostgreSQL event store', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('creates its schema when several processes start at once', async () => {
    const fresh = await createTestDatabase();
    try {
      const stores = await Promise.all(Array.from({ length: 6 }, () => openStore(fresh.url, { poolSize: 2 })));
      await stores[0]!.append(`boot-${randomUUID()}`, [ev('A')], { expectedRevision: 'no_stream' });
      await Promise.all(stores.map((s) => s.close()));
    } finally {
      await fresh.drop();
    }
  });

  it('group-commits: 64 concurrent writers share a few transactions', async () => {
    const store = await openStore(db.url);
    const prefix = `gc${randomUUID().slice(0, 8)}-`;
    const xactCommits = async () =>
      withAdmin(async (admin) => {
        const { rows } = await admin.query<{ n: string }>(
          'SELECT xact_commit AS n FROM pg_stat_database WHERE datname = $1',
          [db.name],
        );
        return Number(rows[0]!.n);
      });
    await store.append(`${prefix}warm`, [ev('W')], { expectedRevision: 'no_stream' });
    const before = await xactCommits();
    const writers = 64;
    const perWriter = 25;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: writers }, async (_, w) => {
        for (let i = 0; i < perWriter; i++)
          await store.append(`${prefix}${w}-${i}`, [ev('G')], { expectedRevision: 'no_stream' });
      }),
    );
    const ms = performance.now() - started;
    const appends = writers * perWriter;
    const { rows } = await store.client.query<{ n: string }>(
      `SELECT count(DISTINCT transaction_id)::text AS n FROM settle_events WHERE stream_id LIKE $1 AND type = 'G'`,
      [`${prefix}%`],
    );
    const transactions = Number(rows[0]!.n);
    // Closing ends the pool's backends, which flushes their statistics; then wait for them to settle.
    await store.close();
    let after = await xactCommits();
    for (let i = 0; i < 20; i++) {
      await new Promise((r) => setTimeout(r, 250));
      const now = await xactCommits();
      if (now === after && i >= 2) break;
      after = now;
    }
    const committed = after - before;
    console.info(
      `group commit: ${appends} appends by ${writers} concurrent writers in ${Math.round(ms)} ms ` +
        `(${Math.round((appends / ms) * 1000)}/s): ${transactions} transactions wrote them; ` +
        `pg_stat_database.xact_commit grew by ${committed} (it also counts the transaction in which the LISTEN ` +
        `connection reads each notification)`,
    );
    expect(transactions).toBeLessThanOrEqual(appends / 8);
    expect(committed).toBeLessThanOrEqual(appends / 4);
  });

  it('fails only the append that broke a group-commit transaction, and stores the others', async () => {
    const store = await openStore(db.url);
    const raw = await rawClient(db.url);
    try {
      const prefix = `err${randomUUID().slice(0, 8)}-`;
      const clash = ev('Clash');
      // Another writer (not this store) holds the same event id, uncommitted, in another stream.
      const held = await holdPgWrite(db.url, `${prefix}elsewhere`, clash);
      const pacer = store.append(`${prefix}pacer`, [ev('P')], { expectedRevision: 'no_stream' });
      const batch = [
        store.append(`${prefix}a`, [ev('A')], { expectedRevision: 'no_stream' }),
        store.append(`${prefix}b`, [clash], { expectedRevision: 'no_stream' }),
        store.append(`${prefix}c`, [ev('C')], { expectedRevision: 'no_stream' }),
      ];
      // Observed at once: b may be refused while we wait below, and must not count as unhandled.
      const settled = Promise.allSettled(batch);
      await pacer;
      await expect
        .poll(async () => {
          const { rows } = await raw.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'`,
            [db.name],
          );
          return rows[0]!.n;
        })
        .toBe(1);
      await held.commit();
      const [a, b, c] = await settled;
      expect(a!.status).toBe('fulfilled');
      expect(c!.status).toBe('fulfilled');
      expect((b as PromiseRejectedResult).reason).toBeInstanceOf(ConcurrencyError);
      expect((await store.readStream(`${prefix}a`)).map((e) => e.type)).toEqual(['A']);
      expect(await store.readStream(`${prefix}b`)).toEqual([]);
    } finally {
      await raw.end();
      await store.close();
    }
  });

  it('wakes subscribers in other processes through LISTEN/NOTIFY, also after the listening connection was lost', async () => {
    const slow = async () => SqlEventStore.create(await createPgClient(db.url, { poolSize: 2 }), { pollMs: 60_000 });
    const [writer, reader] = await Promise.all([slow(), slow()]);
    try {
      const prefix = `wake${randomUUID().slice(0, 8)}-`;
      const head = await reader.headPosition();
      const seen: string[] = [];
      const sub = reader.subscribe(
        async (batch) => {
          seen.push(...batch.map((e) => e.type));
        },
        { after: head, streamPrefixes: [prefix] },
      );
      await new Promise((r) => setTimeout(r, 200));
      await writer.append(`${prefix}1`, [ev('BeforeLoss')], { expectedRevision: 'no_stream' });
      await expect.poll(() => seen, { timeout: 3000 }).toEqual(['BeforeLoss']);
      const { rows } = await writer.client.query<{ n: number }>(
        `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE datname = $1 AND query LIKE 'LISTEN%'`,
        [db.name],
      );
      expect(rows[0]!.n).toBe(2);
      await writer.append(`${prefix}2`, [ev('DuringLoss')], { expectedRevision: 'no_stream' });
      await expect.poll(() => seen, { timeout: 5000 }).toEqual(['BeforeLoss', 'DuringLoss']);
      await new Promise((r) => setTimeout(r, 1000));
      await writer.append(`${prefix}3`, [ev('AfterReconnect')], { expectedRevision: 'no_stream' });
      await expect.poll(() => seen, { timeout: 3000 }).toEqual(['BeforeLoss', 'DuringLoss', 'AfterReconnect']);
      await sub.stop();
    } finally {
      await Promise.all([writer.close(), reader.close()]);
    }
  });

  it('never lets a reader skip an event when group-commit transactions of two processes interleave', async () => {
    // Two processes; each runs one append transaction at a time, so queued appends share one.
    const [one, two] = await Promise.all([openStore(db.url), openStore(db.url)]);
    const raws: pg.Client[] = [];
    const waitingOnLocks = async () => {
      const { rows } = await one.client.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'`,
        [db.name],
      );
      return rows[0]!.n;
    };
    const lockRow = async (streamId: string) => {
      const raw = await rawClient(db.url);
      raws.push(raw);
      await raw.query('BEGIN');
      await raw.query('SELECT 1 FROM settle_streams WHERE stream_id = $1 FOR UPDATE', [streamId]);
      return raw;
    };
    try {
      const prefix = `inv${randomUUID().slice(0, 8)}-`;
      const [y, v] = [`${prefix}y`, `${prefix}v`];
      await one.append(y, [ev('Y0')], { expectedRevision: 'no_stream' });
      await one.append(v, [ev('V0')], { expectedRevision: 'no_stream' });
      const head = await one.headPosition();
      const seen: StoredEvent[] = [];
      const sub = one.subscribe(
        async (batch) => {
          seen.push(...batch);
        },
        { after: head, streamPrefixes: [prefix] },
      );
      const [p1, w, y1, p2, z, v1] = ['P1', 'W', 'Y1', 'P2', 'Z', 'V1'].map(ev) as [
        NewEvent,
        NewEvent,
        NewEvent,
        NewEvent,
        NewEvent,
        NewEvent,
      ];

      // Process one: a pacer append runs alone; W and Y1 queue behind it and share the next
      // transaction, which writes W and then waits for the lock on stream y.
      const rawY = await lockRow(y);
      const firstBatch = [
        one.append(`${prefix}p1`, [p1], { expectedRevision: 'no_stream' }),
        one.append(`${prefix}w`, [w], { expectedRevision: 'no_stream' }),
        one.append(y, [y1], { expectedRevision: 'any' }),
      ];
      await expect.poll(waitingOnLocks, { timeout: 5000 }).toBe(1);
      // Process two: the same shape, started later (a younger transaction), blocked on stream v.
      const rawV = await lockRow(v);
      const secondBatch = [
        two.append(`${prefix}p2`, [p2], { expectedRevision: 'no_stream' }),
        two.append(`${prefix}z`, [z], { expectedRevision: 'no_stream' }),
        two.append(v, [v1], { expectedRevision: 'any' }),
      ];
      await expect.poll(waitingOnLocks, { timeout: 5000 }).toBe(2);
      // Process one commits first; process two's transaction is still open.
      await rawY.query('COMMIT');
      await Promise.all(firstBatch);
      await expect.poll(() => seen.map((e) => e.id), { timeout: 5000 }).toEqual([p1.id, w.id, y1.id]);
      await rawV.query('COMMIT');
      await Promise.all(secondBatch);
      await expect.poll(() => seen.length, { timeout: 5000 }).toBe(6);
      await sub.stop();
      const all = [p1, w, y1, p2, z, v1].map((e) => e.id);
      expect([...seen.map((e) => e.id)].sort()).toEqual([...all].sort());
      for (let i = 1; i < seen.length; i++)
        expect(seen[i]!.globalPosition).toBeGreaterThan(seen[i - 1]!.globalPosition);
    } finally {
      await Promise.all(raws.map((r) => r.end().catch(() => undefined)));
      await Promise.all([one.close(), two.close()]);
    }
  });
});
