import type { EventMetadata } from '@settle/domain';
import {
  createPgliteClient,
  MemoryCache,
  MemoryReadStore,
  newId,
  silentLogger,
  SqlArchive,
  SqlEventStore,
  type ReadDoc,
} from '@settle/platform';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MERCHANT_STATS, MERCHANT_STATS_REQUESTS, merchantStatsProjection } from './merchantStats.js';
import { Projector } from './projector.js';
import { REQUESTS, requestsProjection } from './requests.js';

const meta: EventMetadata = { correlationId: 'c', causationId: 'c', actor: 'test' };
const COLLECTIONS = [REQUESTS, MERCHANT_STATS, MERCHANT_STATS_REQUESTS];

type Outcome = 'settled' | 'declined' | 'open';

/**
 * The read models drop an archived request when their projector applies `RequestArchived`, and
 * end exactly where a rebuild from the truncated log (which meets only the tombstone) ends.
 */
describe('read models and archived requests', () => {
  let store: SqlEventStore;
  let archive: SqlArchive;
  beforeAll(async () => {
    store = await SqlEventStore.create(await createPgliteClient(undefined), { pollMs: 50 });
    archive = await SqlArchive.create(store.client);
  });
  afterAll(async () => {
    await store.close();
  });

  async function request(id: string, merchantId: string, amount: number, currency: string, outcome: Outcome) {
    const events = [
      {
        type: 'RequestRegistered',
        data: { requestId: id, authId: `a-${id}`, merchantId, amount, currency, reference: id },
      },
      { type: 'PaymentAuthorizationRequested', data: { attempt: 1, gatewayIdempotencyKey: `${id}:1` } },
    ];
    if (outcome === 'settled')
      events.push(
        { type: 'PaymentAuthorized', data: { attempt: 1, providerPaymentId: `p-${id}` } } as never,
        {
          type: 'PaymentSettled',
          data: { settledAt: new Date().toISOString(), providerPaymentId: `p-${id}` },
        } as never,
      );
    if (outcome === 'declined') events.push({ type: 'PaymentDeclined', data: { attempt: 1, reason: 'no' } } as never);
    await store.append(
      `request-${id}`,
      events.map((e) => ({ id: newId(), ...e, metadata: meta })),
      { expectedRevision: 'no_stream' },
    );
  }

  async function archiveRequest(id: string): Promise<number> {
    const streamId = `request-${id}`;
    const before = await store.readStream(streamId);
    const r = await store.append(
      streamId,
      [{ id: newId(), type: 'RequestArchived', data: { archivedAt: new Date().toISOString() }, metadata: meta }],
      { expectedRevision: before.length - 1 },
    );
    return r.position;
  }

  async function contents(readStore: MemoryReadStore): Promise<Record<string, Omit<ReadDoc, '_position'>[]>> {
    const out: Record<string, Omit<ReadDoc, '_position'>[]> = {};
    for (const c of COLLECTIONS)
      out[c] = (await readStore.collection(c).find())
        .map(({ _position: _, ...doc }) => doc)
        .sort((a, b) => a._id.localeCompare(b._id));
    return out;
  }

  it('drops archived requests live, and a rebuild over the truncated log agrees', async () => {
    await request('r1', 'm-1', 100, 'EUR', 'settled');
    await request('r2', 'm-1', 250, 'EUR', 'declined');
    await request('r3', 'm-1', 300, 'USD', 'settled');
    await request('r4', 'm-1', 50, 'EUR', 'open');
    await request('r5', 'm-2', 70, 'EUR', 'settled');

    const live = new MemoryReadStore();
    const cache = new MemoryCache();
    const projector = new Projector([requestsProjection, merchantStatsProjection], {
      eventStore: store,
      readStore: live,
      cache,
      logger: silentLogger(),
    });
    await projector.start();
    await projector.whenCaughtUp();
    const stats = live.collection<ReadDoc & Record<string, unknown>>(MERCHANT_STATS);
    const [day] = await stats.find({ filter: { merchantId: 'm-1' } });
    expect(day).toMatchObject({ registered: 4, settled: 2, declined: 1, registeredAmounts: { EUR: 400, USD: 300 } });
    await cache.set('request:r1', { id: 'r1', status: 'SETTLED' }, 60_000);

    let last = 0;
    for (const id of ['r1', 'r2', 'r5']) last = await archiveRequest(id);
    expect(await projector.waitFor(last, 10_000)).toBe(true);

    const requests = live.collection(REQUESTS);
    expect((await requests.find()).map((d) => d._id).sort()).toEqual(['r3', 'r4']);
    expect(await cache.get('request:r1')).toBeUndefined();
    const [after] = await stats.find({ filter: { merchantId: 'm-1' } });
    expect(after).toMatchObject({
      registered: 2,
      settled: 1,
      declined: 0,
      registeredAmounts: { EUR: 50, USD: 300 },
      settledAmounts: { USD: 300 },
    });
    // m-2 had only r5 that day: the day goes with it.
    expect(await stats.find({ filter: { merchantId: 'm-2' } })).toEqual([]);
    expect((await live.collection(MERCHANT_STATS_REQUESTS).find()).map((d) => d._id).sort()).toEqual(['r3', 'r4']);

    // Truncate two of them (as `settle archive` does), leave r5 whole: a rebuild from 0 meets
    // tombstones only for r1 and r2, and everything of r5.
    for (const id of ['r1', 'r2']) {
      const events = await archive.readRaw(`request-${id}`);
      const tombstone = events.at(-1)!;
      await archive.truncate(
        `request-${id}`,
        tombstone.streamPosition,
        events.slice(0, -1).map((e) => e.id),
      );
    }
    const rebuilt = new MemoryReadStore();
    const again = new Projector([requestsProjection, merchantStatsProjection], {
      eventStore: store,
      readStore: rebuilt,
      logger: silentLogger(),
    });
    await again.start();
    await again.whenCaughtUp();
    expect(await contents(rebuilt)).toEqual(await contents(live));
    await again.stop();
    await projector.stop();
  });
});
