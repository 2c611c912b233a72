import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createPgClient, newId, SqlEventStore } from '@settle/platform';
import { MongoClient } from 'mongodb';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const PG_ADMIN_URL = process.env.SETTLE_TEST_PG_URL ?? 'postgres://settle:settle@127.0.0.1:5432/settle';
const MONGO_URL = process.env.SETTLE_TEST_MONGO_URL ?? 'mongodb://127.0.0.1:27017';
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const CHILD = join(ROOT, 'projections/dist/testing/crashLoopChild.js');
const NODE = existsSync(join(ROOT, 'node_modules/.bin/node')) ? join(ROOT, 'node_modules/.bin/node') : process.execPath;
const meta = { correlationId: 'crash-loop', causationId: 'crash-loop', actor: 'test' };

async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: PG_ADMIN_URL });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/**
 * A projection that kills its process on one event (like an out-of-memory kill): the attempts are
 * counted before applying, so after 3 deaths on that event its stream is parked (in MongoDB) and
 * the projector gets past it instead of dying forever.
 */
describe('projector crash loop on PostgreSQL + MongoDB (FerretDB), with real process deaths', () => {
  const id = randomBytes(5).toString('hex');
  const database = `settle_crash_${id}`;
  const pgUrl = Object.assign(new URL(PG_ADMIN_URL), { pathname: `/${database}` }).toString();
  const mongoDb = `settle_crash_${id}`;
  let store: SqlEventStore;

  beforeAll(async () => {
    await admin(`CREATE DATABASE ${database}`);
    store = await SqlEventStore.create(await createPgClient(pgUrl));
  });
  afterAll(async () => {
    await store?.close();
    await admin(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    const mongo = new MongoClient(MONGO_URL, { serverSelectionTimeoutMS: 5000 });
    await mongo
      .db(mongoDb)
      .dropDatabase()
      .catch(() => undefined);
    await mongo.close();
  });

  it('parks the stream after 3 deaths on its event; the other streams are applied', async () => {
    expect(existsSync(CHILD), `${CHILD} (run npx tsc -b)`).toBe(true);
    const append = (stream: string, type: string, data: unknown) =>
      store.append(stream, [{ id: newId(), type, data, metadata: meta }], { expectedRevision: 'any' });
    for (const r of ['bad', 'good']) {
      await append(`request-${r}`, 'RequestRegistered', {
        requestId: r,
        authId: `a-${r}`,
        merchantId: 'm',
        amount: 100,
        currency: 'EUR',
        reference: r,
        registeredAt: new Date().toISOString(),
      });
      await append(`request-${r}`, 'PaymentAuthorized', { attempt: 1, providerPaymentId: `p-${r}` });
    }
    const outcomes: (number | string | null)[] = [];
    for (let run = 0; run < 6; run++) {
      const child = spawnSync(NODE, [CHILD, pgUrl, `${MONGO_URL}/${mongoDb}`, 'request-bad'], {
        encoding: 'utf8',
        timeout: 60_000,
      });
      outcomes.push(child.signal ?? child.status);
      if (child.status === 0) {
        expect(child.stdout).toContain('caught up');
        break;
      }
      expect(child.signal, child.stderr).toBe('SIGKILL');
    }
    // Once in a batch, then 3 times one event at a time: then parked, and the projector gets through.
    expect(outcomes).toEqual(['SIGKILL', 'SIGKILL', 'SIGKILL', 'SIGKILL', 0]);

    const mongo = new MongoClient(MONGO_URL, { serverSelectionTimeoutMS: 5000 });
    try {
      const db = mongo.db(mongoDb);
      const parked = await db.collection('parked_streams').find({}).toArray();
      expect(parked).toMatchObject([
        {
          _id: 'requests|request-bad',
          streamId: 'request-bad',
          eventType: 'PaymentAuthorized',
          attempts: 3,
          error: expect.stringMatching(/stopped 3 times while applying this event/),
        },
      ]);
      expect(await db.collection('requests').findOne({ _id: 'good' as never })).toMatchObject({ status: 'AUTHORIZED' });
      expect(await db.collection('requests').findOne({ _id: 'bad' as never })).toMatchObject({ status: 'REGISTERED' });
    } finally {
      await mongo.close();
    }
  }, 300_000);
});
