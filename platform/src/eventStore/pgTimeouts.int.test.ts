import { randomBytes, randomUUID } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isUnavailableError } from '../health/unavailable.js';
import { createPgClient } from './pgClient.js';
import type { NewEvent } from './port.js';
import { isSqlTimeout, sqlState } from './sqlClient.js';
import { SqlEventStore } from './sqlEventStore.js';

/**
 * Statement timeouts of the PostgreSQL client, on the real server from `infra/local/services up`
 * (a throwaway database per run): a statement held up by a lock or a server that stops answering
 * is cancelled, the append fails as a retryable "unavailable" error with nothing stored, the
 * store's health says so until an append could take its locks again, and the same append then
 * stores once.
 */
const ADMIN_URL = process.env['SETTLE_TEST_PG_URL'] ?? 'postgres://settle:settle@127.0.0.1:5432/settle';

async function withAdmin<T>(fn: (admin: pg.Client) => Promise<T>): Promise<T> {
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  try {
    return await fn(admin);
  } finally {
    await admin.end();
  }
}

const meta = { correlationId: 'c', causationId: 'c', actor: 'test' };
const ev = (): NewEvent => ({ id: randomUUID(), type: 'Tested', data: {}, metadata: meta });

async function failure(p: Promise<unknown>): Promise<{ error: Error; ms: number }> {
  const t0 = Date.now();
  try {
    await p;
  } catch (error) {
    return { error: error as Error, ms: Date.now() - t0 };
  }
  throw new Error('expected a failure');
}

/** A TCP proxy that can stop forwarding without closing anything: a server that went silent (half-open TCP). */
async function silenceableProxy(
  target: URL,
): Promise<{ port: number; silence(on: boolean): void; close(): Promise<void> }> {
  let silent = false;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(Number(target.port || 5432), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => sockets.delete(s));
    }
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.on('data', (d) => void (silent || upstream.write(d)));
    upstream.on('data', (d) => void (silent || client.write(d)));
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : 0,
    silence: (on) => (silent = on),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((ok) => server.close(() => ok()));
    },
  };
}

describe('PostgreSQL statement timeouts', () => {
  const name = `settle_test_${randomBytes(6).toString('hex')}`;
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  let store: SqlEventStore;

  beforeAll(async () => {
    await withAdmin((admin) => admin.query(`CREATE DATABASE ${name}`));
    store = await SqlEventStore.create(
      await createPgClient(url.toString(), { poolSize: 4, statementTimeoutMs: 500, longStatementTimeoutMs: 5000 }),
      { pollMs: 100 },
    );
  });
  afterAll(async () => {
    await store?.close();
    await withAdmin((admin) => admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
  });

  it('cancels a statement that runs past the statement timeout on the server; exec (schema set-up, ANALYZE) has the long one', async () => {
    const { error, ms } = await failure(store.client.query('SELECT pg_sleep(3)'));
    expect(sqlState(error)).toBe('57014');
    expect(error.message).toMatch(/statement timeout/);
    expect(isSqlTimeout(error)).toBe(true);
    expect(isUnavailableError(error)).toBe(true);
    expect(ms).toBeGreaterThanOrEqual(450);
    expect(ms).toBeLessThan(2500);
    // The pool is fine afterwards.
    expect((await store.client.query<{ one: number }>('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    await store.client.exec('SELECT pg_sleep(1)');
  });

  it('fails an append held up by a table lock after the timeout, stores nothing, reports the store down until an append could go through, then stores the same append once', async () => {
    const stalls: string[] = [];
    const unsubscribe = store.onStall((reason) => stalls.push(reason));
    await store.ping();
    const streamId = `locked-${randomUUID()}`;
    const event = ev();
    // A second connection holds what a CREATE INDEX would (SHARE): reads go on, appends (ROW EXCLUSIVE) wait.
    const holder = new pg.Client({ connectionString: url.toString() });
    await holder.connect();
    await holder.query('BEGIN');
    await holder.query('LOCK TABLE settle_events IN SHARE MODE');
    try {
      const { error, ms } = await failure(store.append(streamId, [event], { expectedRevision: 'no_stream' }));
      expect(sqlState(error)).toBe('57014');
      expect(isUnavailableError(error)).toBe(true); // a 503 at the edge, not a 500
      expect(ms).toBeLessThan(2500);
      expect(stalls).toEqual([
        expect.stringMatching(/^a statement timed out: canceling statement due to statement timeout/),
      ]);
      // SELECT 1 still answers, but the health probe sees that an append cannot take its locks.
      expect(await store.readStream(streamId)).toEqual([]); // reads are not held up
      await expect(store.ping()).rejects.toThrow(
        /^appends cannot take their locks within 800 ms .*since .*a statement timed out/,
      );
    } finally {
      await holder.query('ROLLBACK');
      await holder.end();
    }
    unsubscribe();
    await store.ping(); // the lock is gone: the probe passes
    await store.ping(); // and the store is no longer stalled (no probe needed)
    // Nothing of the cancelled append was stored: the same append (same event id, same expected revision) stores once.
    expect(await store.readStream(streamId)).toEqual([]);
    const result = await store.append(streamId, [event], { expectedRevision: 'no_stream' });
    expect(result).toMatchObject({ duplicate: false, nextExpectedRevision: 0 });
    expect((await store.readStream(streamId)).map((e) => e.id)).toEqual([event.id]);
  }, 20_000);

  it('gives up on a server that stops answering (half-open connection) at the client backstop, and recovers when it answers again', async () => {
    const proxy = await silenceableProxy(url);
    const proxied = new URL(url);
    proxied.hostname = '127.0.0.1';
    proxied.port = String(proxy.port);
    const silentStore = await SqlEventStore.create(
      await createPgClient(proxied.toString(), { poolSize: 2, statementTimeoutMs: 300 }),
      { pollMs: 100 },
    );
    const stalls: string[] = [];
    silentStore.onStall((reason) => stalls.push(reason));
    try {
      await silentStore.append(`silent-${randomUUID()}`, [ev()], { expectedRevision: 'no_stream' });
      proxy.silence(true);
      // The health probe bounds its own wait: no answer within 2 s.
      const probe = await failure(silentStore.ping());
      expect(probe.error.message).toBe('Query read timeout');
      expect(probe.ms).toBeLessThan(3000);
      expect(isUnavailableError(probe.error)).toBe(true);
      expect(stalls.length).toBeGreaterThanOrEqual(1);
      // An append: the server cannot cancel it (it hears nothing); the client gives up 5 s after the
      // statement timeout on a connection it had, or after the 5 s connect timeout on a new one.
      const streamId = `silent-${randomUUID()}`;
      const event = ev();
      const append = await failure(silentStore.append(streamId, [event], { expectedRevision: 'no_stream' }));
      expect(append.error.message).toMatch(/^(Query read timeout|Connection terminated due to connection timeout)$/);
      expect(isUnavailableError(append.error)).toBe(true);
      expect(append.ms).toBeGreaterThanOrEqual(5000);
      expect(append.ms).toBeLessThan(8000);
      proxy.silence(false);
      // The connections that saw no answer were dropped: new ones work, the append goes through (once).
      await silentStore.ping();
      const retried = await silentStore.append(streamId, [event], { expectedRevision: 'no_stream' });
      expect(retried.duplicate).toBe(false);
      expect((await store.readStream(streamId)).map((e) => e.id)).toEqual([event.id]);
    } finally {
      proxy.silence(false);
      await silentStore.close();
      await proxy.close();
    }
  }, 30_000);
});
