import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { describeEventStoreContract } from '../testing/eventStoreContract.js';
import { createPgliteClient } from './pgliteClient.js';
import { SqlEventStore } from './sqlEventStore.js';

describeEventStoreContract('embedded (PGlite, in memory)', async () =>
  SqlEventStore.create(await createPgliteClient(undefined)),
);

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
