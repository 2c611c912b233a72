import type { EventMetadata, StoredEvent } from '@settle/domain';
import {
  createMetrics,
  createPgliteClient,
  MemoryReadStore,
  newId,
  silentLogger,
  SqlEventStore,
  type ReadStore,
} from '@settle/platform';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { decodeMarker } from './attempts.js';
import { MERCHANT_STATS, merchantStatsProjection, type MerchantDayDoc } from './merchantStats.js';
import { PARKED_STREAMS, ProjectorParking, type ParkedStreamDoc } from './parking.js';
import type { Projection } from './projection.js';
import { Projector } from './projector.js';
import { REQUESTS, requestsProjection, type RequestDoc } from './requests.js';

const meta: EventMetadata = { correlationId: 'c', causationId: 'c', actor: 'test' };

async function append(store: SqlEventStore, id: string, type: string, data: unknown) {
  return store.append(`request-${id}`, [{ id: newId(), type, data, metadata: meta }], { expectedRevision: 'any' });
}

async function register(store: SqlEventStore, id: string) {
  return append(store, id, 'RequestRegistered', {
    requestId: id,
    authId: `a-${id}`,
    merchantId: 'm-1',
    amount: 100,
    currency: 'EUR',
    reference: id,
    registeredAt: new Date().toISOString(),
  });
}

/** Registered → authorising → authorised → settled. */
async function settle(store: SqlEventStore, id: string) {
  await append(store, id, 'PaymentAuthorizationRequested', {
    attempt: 1,
    gatewayIdempotencyKey: `${id}-1`,
    requestedAt: new Date().toISOString(),
  });
  await append(store, id, 'PaymentAuthorized', { attempt: 1, providerPaymentId: `p-${id}` });
  return append(store, id, 'PaymentSettled', { settledAt: new Date().toISOString(), providerPaymentId: `p-${id}` });
}

/** The `requests` projection with a bug that bites on one event type of one stream, while `broken` says so. */
function buggyRequests(bug: { streamId: string; type: string; broken: boolean; hang?: boolean }): Projection {
  return {
    ...requestsProjection,
    async apply(event: StoredEvent, uow) {
      if (bug.broken && event.streamId === bug.streamId && event.type === bug.type) {
        if (bug.hang) await new Promise(() => undefined);
        throw new Error(`cannot fold ${event.type}`);
      }
      await requestsProjection.apply(event, uow);
    },
  };
}

async function gauge(metrics: ReturnType<typeof createMetrics>, projection: string): Promise<number | undefined> {
  const metric = await metrics.registry.getSingleMetric('settle_parked_streams')!.get();
  return metric.values.find((v) => v.labels.projection === projection)?.value;
}

const requestDoc = (readStore: ReadStore, id: string) => readStore.collection<RequestDoc>(REQUESTS).get(id);
const parkedDocs = (readStore: ReadStore) => readStore.collection<ParkedStreamDoc>(PARKED_STREAMS).find({});

describe('projector: per-stream parking', () => {
  let store: SqlEventStore;
  let readStore: MemoryReadStore;
  let metrics: ReturnType<typeof createMetrics>;
  let projector: Projector | undefined;

  beforeEach(async () => {
    store = await SqlEventStore.create(await createPgliteClient(undefined));
    readStore = new MemoryReadStore();
    metrics = createMetrics();
  });
  afterEach(async () => {
    await projector?.stop();
    projector = undefined;
    await store.close();
  });

  const start = async (projection: Projection, extra: Partial<ConstructorParameters<typeof Projector>[1]> = {}) => {
    projector = new Projector([projection, merchantStatsProjection], {
      eventStore: store,
      readStore,
      logger: silentLogger(),
      metrics,
      parkedPollMs: 50,
      ...extra,
    });
    await projector.start();
    return projector;
  };

  it('parks only the failing stream, for the failing projection; others reach SETTLED; skip resumes it in order', async () => {
    const bug = { streamId: 'request-bad', type: 'PaymentAuthorized', broken: true };
    await register(store, 'bad');
    await register(store, 'good');
    const p = await start(buggyRequests(bug));
    await settle(store, 'bad');
    const { position } = await settle(store, 'good');
    await expect.poll(() => p.currentPosition).toBeGreaterThanOrEqual(position);

    expect((await requestDoc(readStore, 'good'))?.status).toBe('SETTLED');
    // Held at the event before the failing one: AUTHORIZING, its later events not applied.
    const bad = await requestDoc(readStore, 'bad');
    expect(bad?.status).toBe('AUTHORIZING');
    expect(bad?.events.map((e) => e.type)).toEqual(['RequestRegistered', 'PaymentAuthorizationRequested']);
    // The other projection read the same stream without trouble.
    const [day] = await readStore.collection<MerchantDayDoc>(MERCHANT_STATS).find({});
    expect(day).toMatchObject({ registered: 2, settled: 2 });

    const [record] = await parkedDocs(readStore);
    expect(record).toMatchObject({
      projection: 'requests',
      streamId: 'request-bad',
      eventType: 'PaymentAuthorized',
      error: 'cannot fold PaymentAuthorized',
      attempts: 1,
    });
    expect(await parkedDocs(readStore)).toHaveLength(1);
    expect(await gauge(metrics, 'requests')).toBe(1);
    expect(await gauge(metrics, 'merchantStats')).toBe(0);

    // Still held: a later event of the stream waits too.
    await append(store, 'bad', 'MerchantNotified', {
      attempt: 1,
      httpStatus: 200,
      forStatus: 'SETTLED',
      webhookId: 'w',
    });
    const { position: after } = await register(store, 'later');
    await expect.poll(() => p.currentPosition).toBeGreaterThanOrEqual(after);
    expect((await requestDoc(readStore, 'bad'))?.events).toHaveLength(2);
    expect((await requestDoc(readStore, 'later'))?.status).toBe('REGISTERED');

    const parking = new ProjectorParking(readStore, 20);
    expect(await parking.list()).toMatchObject([{ owner: 'requests', streamId: 'request-bad' }]);
    expect(await parking.act('request-bad', 'skip', 'demo-operator', 5000)).toBe(true);
    const resumed = await requestDoc(readStore, 'bad');
    expect(resumed?.events.map((e) => e.type)).toEqual([
      'RequestRegistered',
      'PaymentAuthorizationRequested',
      'PaymentSettled',
      'MerchantNotified',
    ]);
    expect(resumed?.status).toBe('SETTLED');
    expect(await parkedDocs(readStore)).toEqual([]);
    expect(await gauge(metrics, 'requests')).toBe(0);

    // Unparked: new events of the stream flow again through the subscription.
    const { position: more } = await append(store, 'bad', 'MerchantNotified', {
      attempt: 2,
      httpStatus: 200,
      forStatus: 'SETTLED',
      webhookId: 'w2',
    });
    await expect.poll(async () => (await requestDoc(readStore, 'bad'))?._position).toBe(more);
  });

  it('retry stays parked with the new error while it still fails, and resumes every held event after a fix', async () => {
    const bug = { streamId: 'request-bad', type: 'PaymentAuthorized', broken: true };
    await register(store, 'bad');
    const { position } = await settle(store, 'bad');
    const p = await start(buggyRequests(bug));
    await expect.poll(() => p.currentPosition).toBeGreaterThanOrEqual(position);
    const parking = new ProjectorParking(readStore, 20);

    expect(await parking.act('request-bad', 'retry', 'demo-operator', 5000)).toBe(false);
    const [again] = await parkedDocs(readStore);
    expect(again).toMatchObject({
      attempts: 2,
      eventType: 'PaymentAuthorized',
      outcomeError: 'cannot fold PaymentAuthorized',
    });
    expect(again?.requestId).toBeUndefined();

    bug.broken = false; // the fix is deployed
    expect(await parking.act('request-bad', 'retry', 'demo-operator', 5000)).toBe(true);
    const doc = await requestDoc(readStore, 'bad');
    expect(doc?.status).toBe('SETTLED');
    expect(doc?.events.map((e) => e.type)).toEqual([
      'RequestRegistered',
      'PaymentAuthorizationRequested',
      'PaymentAuthorized',
      'PaymentSettled',
    ]);
    expect(await parking.act('request-bad', 'retry', 'demo-operator', 1000)).toBeNull();
  });

  it('a failure in a batch neither loses nor double-applies the other streams of the batch', async () => {
    const bug = { streamId: 'request-r5', type: 'RequestRegistered', broken: true };
    let last = 0;
    for (let i = 0; i < 10; i++) {
      await register(store, `r${i}`);
      last = (await settle(store, `r${i}`)).position;
    }
    const p = await start(buggyRequests(bug), { batchSize: 5000 });
    await expect.poll(() => p.currentPosition).toBeGreaterThanOrEqual(last);
    for (let i = 0; i < 10; i++) {
      const doc = await requestDoc(readStore, `r${i}`);
      if (i === 5) expect(doc).toBeNull();
      else
        expect(doc?.events.map((e) => e.type)).toEqual([
          'RequestRegistered',
          'PaymentAuthorizationRequested',
          'PaymentAuthorized',
          'PaymentSettled',
        ]);
    }
    const [day] = await readStore.collection<MerchantDayDoc>(MERCHANT_STATS).find({});
    expect(day).toMatchObject({ registered: 10, settled: 10 });
  });

  it('an event the projector keeps hanging on (like a crash loop) is parked after the attempt limit; others flow', async () => {
    const bug = { streamId: 'request-bad', type: 'PaymentAuthorized', broken: true, hang: true };
    await register(store, 'bad');
    await register(store, 'good');
    await settle(store, 'bad');
    const { position } = await settle(store, 'good');
    const p = await start(buggyRequests(bug), { batchTimeoutMs: 150, crashLoopAttempts: 2 });
    await expect.poll(() => p.currentPosition, { timeout: 15_000 }).toBeGreaterThanOrEqual(position);
    const [record] = await parkedDocs(readStore);
    expect(record).toMatchObject({ streamId: 'request-bad', eventType: 'PaymentAuthorized', attempts: 2 });
    expect(record?.error).toMatch(/stopped 2 times/);
    expect((await requestDoc(readStore, 'good'))?.status).toBe('SETTLED');
    // The attempts were written down before each try, in the event store (durable on every store),
    // and the last one is cleared once the projector is idle.
    await expect
      .poll(async () => decodeMarker(await store.getCheckpoint('readModels:attempt')), { timeout: 2_000 })
      .toBeUndefined();
  }, 20_000);

  it('a crash loop across restarts: an unfinished attempt left by a dead process makes the next start careful', async () => {
    const bug = { streamId: 'request-bad', type: 'PaymentAuthorized', broken: true, hang: true };
    await register(store, 'bad');
    await settle(store, 'bad');
    await register(store, 'good');
    const { position } = await settle(store, 'good');
    // What a process that died on the event left behind: the attempt at that event, already twice.
    const [authorized] = (await store.readStream('request-bad')).filter((e) => e.type === 'PaymentAuthorized');
    await store.saveCheckpoint('readModels:attempt', authorized!.globalPosition * 1000 + 100 + 2);
    bug.broken = false; // whatever killed it is not visible to this process: only the count is
    const p = await start(buggyRequests(bug), { crashLoopAttempts: 2 });
    await expect.poll(() => p.currentPosition).toBeGreaterThanOrEqual(position);
    expect(await parkedDocs(readStore)).toMatchObject([
      { projection: 'requests', streamId: 'request-bad', attempts: 2 },
      { projection: 'merchantStats', streamId: 'request-bad', attempts: 2 },
    ]);
    expect((await requestDoc(readStore, 'bad'))?.status).toBe('AUTHORIZING');
  });
});
