import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { ConcurrencyError } from '../errors.js';
import { describeEventStoreContract } from '../testing/eventStoreContract.js';
import { createPgliteClient } from './pgliteClient.js';
import { SqlEventStore } from './sqlEventStore.js';

describeEventStoreContract('embedded (PGlite, in memory)', async () =>
  SqlEventStore.create(await createPgliteClient(undefined)),
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
