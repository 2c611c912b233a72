import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { ConcurrencyError } from '../errors.js';
import { describeEventStoreContract } from '../testing/eventStoreContract.js';
import { createPgliteClient, createPgliteThreadClient } from './pgliteClient.js';
import { SqlEventStore } from './sqlEventStore.js';

describeEventStoreContract('embedded (PGlite, in memory)', async () =>
  SqlEventStore.create(await createPgliteClient(undefined)),
);

// What `settle start` runs: the same PGlite on its own worker thread.
describeEventStoreContract('embedded (PGlite on its own thread, in memory)', async () =>
  SqlEventStore.create(await createPgliteThreadClient(undefined)),
);

describe('embedded event store: the stored stream revision decides', () => {
  const meta = { correlationId: 'c', causationId: 'c', actor: 't' };
  it('refuses to start a stream whose events are gone but whose revision is kept (archived), in a store that never saw it', async () => {
    const client = await createPgliteClient(undefined);
    const first = await SqlEventStore.create(client);
    const ev = () => ({ id: randomUUID(), type: 'A', data: {}, metadata: meta });
    await first.append('request-archived', [ev(), ev()], { expectedRevision: 'no_stream' });
    // What archiving leaves: the stream's revision, none of its events.
    await client.query(`DELETE FROM settle_events WHERE stream_id = 'request-archived'`);
    // A second store on the same database knows nothing of the stream (another process).
    const second = await SqlEventStore.create(client);
    await expect(second.append('request-archived', [ev()], { expectedRevision: 'no_stream' })).rejects.toBeInstanceOf(
      ConcurrencyError,
    );
    await expect(first.append('request-archived', [ev()], { expectedRevision: 0 })).rejects.toBeInstanceOf(
      ConcurrencyError,
    );
    expect(await second.readStream('request-archived')).toEqual([]);
    const appended = await first.append('request-archived', [ev()], { expectedRevision: 1 });
    expect(appended.nextExpectedRevision).toBe(2);
    await first.close();
  });
});

describe('embedded event store on disk', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  });
  it('keeps appended events across a restart', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'settle-pglite-'));
    dirs.push(dir);
    const first = await SqlEventStore.create(await createPgliteClient(dir));
    const id = randomUUID();
    await first.append(
      'request-x',
      [
        {
          id,
          type: 'RequestRegistered',
          data: { a: 1 },
          metadata: { correlationId: 'c', causationId: 'c', actor: 't' },
        },
      ],
      {
        expectedRevision: 'no_stream',
      },
    );
    await first.close();
    const second = await SqlEventStore.create(await createPgliteClient(dir));
    const events = await second.readStream('request-x');
    expect(events.map((e) => e.id)).toEqual([id]);
    await second.close();
  });
});

describe('embedded PostgreSQL on its own thread', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  });
  const meta = { correlationId: 'c', causationId: 'c', actor: 't' };

  it('keeps appended events across a restart, readable by the in-thread client too', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'settle-pglite-thread-'));
    dirs.push(dir);
    const first = await SqlEventStore.create(await createPgliteThreadClient(dir));
    const id = randomUUID();
    await first.append('request-t', [{ id, type: 'RequestRegistered', data: { a: 1 }, metadata: meta }], {
      expectedRevision: 'no_stream',
    });
    await first.close();
    const second = await SqlEventStore.create(await createPgliteClient(dir));
    expect((await second.readStream('request-t')).map((e) => e.id)).toEqual([id]);
    await second.close();
  });

  it('reports PostgreSQL errors with their SQLSTATE, and rolls a failed transaction back', async () => {
    const client = await createPgliteThreadClient(undefined);
    await client.exec('CREATE TABLE t (k text PRIMARY KEY)');
    await client.query('INSERT INTO t VALUES ($1)', ['a']);
    await expect(client.query('INSERT INTO t VALUES ($1)', ['a'])).rejects.toMatchObject({ code: '23505' });
    await expect(
      client.transaction(async (tx) => {
        await tx.query('INSERT INTO t VALUES ($1)', ['b']);
        throw new Error('changed my mind');
      }),
    ).rejects.toThrow('changed my mind');
    expect((await client.query<{ k: string }>('SELECT k FROM t ORDER BY k')).rows).toEqual([{ k: 'a' }]);
    await client.close();
    await expect(client.query('SELECT 1')).rejects.toThrow(/thread exited/);
  });

  it('keeps statements sent during a transaction out of it', async () => {
    const client = await createPgliteThreadClient(undefined);
    await client.exec('CREATE TABLE t (k text PRIMARY KEY)');
    let outside: Promise<unknown> | undefined;
    await expect(
      client.transaction(async (tx) => {
        await tx.query('INSERT INTO t VALUES ($1)', ['in-tx']);
        // Another caller writes while the transaction is open: it must not become part of it.
        outside = client.query('INSERT INTO t VALUES ($1)', ['outside']);
        await new Promise((r) => setTimeout(r, 20));
        throw new Error('roll back');
      }),
    ).rejects.toThrow('roll back');
    await outside;
    expect((await client.query<{ k: string }>('SELECT k FROM t')).rows).toEqual([{ k: 'outside' }]);
    await client.close();
  });
});
