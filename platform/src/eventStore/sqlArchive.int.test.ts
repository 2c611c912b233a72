import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll } from 'vitest';
import { describeSqlArchive } from '../testing/sqlArchiveSuite.js';
import { createPgClient } from './pgClient.js';
import { SqlEventStore } from './sqlEventStore.js';

/** A server from `infra/local/services up`; the suite works in its own throwaway database. */
const ADMIN_URL = process.env['SETTLE_TEST_PG_URL'] ?? 'postgres://settle:settle@127.0.0.1:5432/settle';
const name = `settle_test_archive_${randomBytes(6).toString('hex')}`;

async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: ADMIN_URL });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

afterAll(() => admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));

describeSqlArchive('PostgreSQL', async () => {
  await admin(`CREATE DATABASE ${name}`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return SqlEventStore.create(await createPgClient(url.toString(), { poolSize: 4 }), { pollMs: 100 });
});
