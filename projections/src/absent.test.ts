import type { EventMetadata } from '@settle/domain';
import {
  createPgliteClient,
  MemoryReadStore,
  newId,
  silentLogger,
  SqlEventStore,
  type ReadCollection,
  type ReadDoc,
  type ReadStore,
} from '@settle/platform';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MERCHANT_STATS, MERCHANT_STATS_REQUESTS, merchantStatsProjection } from './merchantStats.js';
import { Projector } from './projector.js';
import { REQUESTS, requestsProjection } from './requests.js';

const meta: EventMetadata = { correlationId: 'c', causationId: 'c', actor: 'test' };
const COLLECTIONS = [REQUESTS, MERCHANT_STATS, MERCHANT_STATS_REQUESTS];

/** A read store that records which documents were read by id (what a catch-up pays for on FerretDB). */
function counting(inner: ReadStore): { store: ReadStore; reads: Map<string, string[]> } {
  const reads = new Map<string, string[]>();
  const note = (c: string, ids: string[]) => reads.set(c, [...(reads.get(c) ?? []), ...ids]);
  const store: ReadStore = {
    name: inner.name,
    durable: inner.durable,
    collection<T extends ReadDoc>(name: string): ReadCollection<T> {
      const c = inner.collection<T>(name);
      return {
        get: (id) => (note(name, [id]), c.get(id)),
        getMany: (ids) => (note(name, ids), c.getMany(ids)),
        putMany: (docs, stored) => c.putMany(docs, stored),
        replaceMany: (docs, stored) => c.replaceMany(docs, stored),
        deleteMany: (ids) => c.deleteMany(ids),
        find: (opts) => c.find(opts),
        count: (filter) => c.count(filter),
        drop: () => c.drop(),
      };
    },
    ensureIndexes: (c, ix) => inner.ensureIndexes(c, ix),
    getCheckpoint: (n) => inner.getCheckpoint(n),
    saveCheckpoint: (n, p) => inner.saveCheckpoint(n, p),
    ping: () => inner.ping(),
    close: () => inner.close(),
  };
  return { store, reads };
}

/**
 * A request's documents are created by its stream's first event, so a batch that holds that event
 * reads none of them (on FerretDB each read is a table scan); a batch applied again after a crash
 * (documents written, checkpoints not) still ends where it was.
 */
describe('documents of requests registered in the batch', () => {
  let store: SqlEventStore;
  beforeAll(async () => {
    store = await SqlEventStore.create(await createPgliteClient(undefined), { pollMs: 50 });
  });
  afterAll(async () => {
    await store.close();
  });

  const append = (id: string, types: string[], from = 0) =>
    store.append(
      `request-${id}`,
      types.map((type) => ({
        id: newId(),
        type,
        data:
          type === 'RequestRegistered'
            ? { requestId: id, authId: `a-${id}`, merchantId: 'm-1', amount: 100, currency: 'EUR', reference: id }
            : type === 'PaymentSettled'
              ? { settledAt: new Date().toISOString(), providerPaymentId: `p-${id}` }
              : { attempt: 1, gatewayIdempotencyKey: `${id}:1`, providerPaymentId: `p-${id}` },
        metadata: meta,
      })),
      { expectedRevision: from === 0 ? 'no_stream' : from - 1 },
    );

  async function contents(readStore: ReadStore) {
    const out: Record<string, ReadDoc[]> = {};
    for (const c of COLLECTIONS)
      out[c] = (await readStore.collection(c).find()).sort((a, b) => a._id.localeCompare(b._id));
    return out;
  }

  it('reads only documents of streams that began before the batch, and a replayed batch changes nothing', async () => {
    await append('old', ['RequestRegistered', 'PaymentAuthorizationRequested']);
    const memory = new MemoryReadStore();
    const first = new Projector([requestsProjection, merchantStatsProjection], {
      eventStore: store,
      readStore: memory,
      logger: silentLogger(),
    });
    await first.start();
    await first.whenCaughtUp();
    await first.stop();

    await append('old', ['PaymentAuthorized', 'PaymentSettled'], 2);
    for (const id of ['n1', 'n2']) await append(id, ['RequestRegistered', 'PaymentAuthorizationRequested']);
    const { store: watched, reads } = counting(memory);
    const second = new Projector([requestsProjection, merchantStatsProjection], {
      eventStore: store,
      readStore: watched,
      logger: silentLogger(),
    });
    await second.start();
    await second.whenCaughtUp();
    await second.stop();
    expect([...new Set(reads.get(REQUESTS))]).toEqual(['old']);
    expect([...new Set(reads.get(MERCHANT_STATS_REQUESTS))]).toEqual(['old']);
    const done = await contents(memory);
    expect(done[MERCHANT_STATS]).toMatchObject([{ registered: 3, settled: 1, registeredAmounts: { EUR: 300 } }]);

    // The crash: every document written, no checkpoint moved. The same events again, from 0.
    for (const name of ['requests', 'merchantStats']) await memory.saveCheckpoint(name, 0);
    const third = new Projector([requestsProjection, merchantStatsProjection], {
      eventStore: store,
      readStore: memory,
      logger: silentLogger(),
    });
    await third.start();
    await third.whenCaughtUp();
    await third.stop();
    expect(await contents(memory)).toEqual(done);
  });
});
