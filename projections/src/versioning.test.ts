import { EVENT_SCHEMA_VERSIONS, paymentRequestDecider, registerUpcaster, type EventMetadata } from '@settle/domain';
import {
  createMetrics,
  createPgliteClient,
  loadAggregate,
  MemoryReadStore,
  newId,
  silentLogger,
  SqlEventStore,
} from '@settle/platform';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Projector } from './projector.js';
import { REQUESTS, requestsProjection, type RequestDoc } from './requests.js';
import { replayStream } from './streamReplay.js';

/**
 * Event versioning end to end: a RequestRegistered stored in an old shape (v1: `merchant`, and
 * `amount` as a decimal string) is read back by the aggregate, the projection and a stream
 * replay in the current shape (v2: `merchantId`, integer `amount`), next to an event stored as v2.
 */
const versions = EVENT_SCHEMA_VERSIONS as Record<string, number>;
const original = versions.RequestRegistered!;
const meta: EventMetadata = { correlationId: 'c', causationId: 'c', actor: 'test' };
const OLD_ID = 'req-v1';
const NEW_ID = 'req-v2';
const OLD_EVENT = newId();
const NEW_EVENT = newId();

describe('event versioning: a v1 event upcast to v2 on every read path', () => {
  let store: SqlEventStore;

  beforeAll(async () => {
    store = await SqlEventStore.create(await createPgliteClient(undefined));
    // Written while the schema was v1.
    await store.append(
      `request-${OLD_ID}`,
      [
        {
          id: OLD_EVENT,
          type: 'RequestRegistered',
          version: 1,
          data: {
            requestId: OLD_ID,
            authId: 'a-1',
            merchant: 'm-1',
            amount: '12.34',
            currency: 'EUR',
            reference: 'old',
            registeredAt: '2026-01-01T00:00:00.000Z',
          },
          metadata: meta,
        },
      ],
      { expectedRevision: 'no_stream' },
    );
    // The schema moves to v2 with an upcaster.
    versions.RequestRegistered = 2;
    registerUpcaster('RequestRegistered', 1, (data) => {
      const { merchant, amount, ...rest } = data as { merchant: string; amount: string } & Record<string, unknown>;
      return { ...rest, merchantId: merchant, amount: Math.round(Number(amount) * 100) };
    });
    await store.append(
      `request-${NEW_ID}`,
      [
        {
          id: NEW_EVENT,
          type: 'RequestRegistered',
          data: {
            requestId: NEW_ID,
            authId: 'a-2',
            merchantId: 'm-2',
            amount: 500,
            currency: 'EUR',
            reference: 'new',
            registeredAt: '2026-01-02T00:00:00.000Z',
          },
          metadata: meta,
        },
      ],
      { expectedRevision: 'no_stream' },
    );
    await store.append(
      `request-${OLD_ID}`,
      [{ id: newId(), type: 'RequestCancelled', data: { reason: 'test', by: 'm-1' }, metadata: meta }],
      { expectedRevision: 0 },
    );
  });

  afterAll(async () => {
    versions.RequestRegistered = original;
    await store.close();
  });

  it('keeps what was stored: one v1 row, one v2 row', async () => {
    const { rows } = await store.client.query<{ event_id: string; version: number }>(
      `SELECT event_id, version FROM settle_events WHERE type = 'RequestRegistered' ORDER BY global_position`,
    );
    expect(rows.map((r) => [r.event_id, Number(r.version)])).toEqual([
      [OLD_EVENT, 1],
      [NEW_EVENT, 2],
    ]);
  });

  it('the aggregate folds both in the v2 shape', async () => {
    const old = await loadAggregate(store, `request-${OLD_ID}`, paymentRequestDecider);
    expect(old.events[0]!.version).toBe(2);
    expect(old.state).toMatchObject({ merchantId: 'm-1', amount: 1234, status: 'CANCELLED' });
    const fresh = await loadAggregate(store, `request-${NEW_ID}`, paymentRequestDecider);
    expect(fresh.state).toMatchObject({ merchantId: 'm-2', amount: 500, status: 'REGISTERED' });
  });

  it('the projection sees both in the v2 shape', async () => {
    const readStore = new MemoryReadStore();
    const projector = new Projector([requestsProjection], {
      eventStore: store,
      readStore,
      logger: silentLogger(),
      metrics: createMetrics(),
    });
    await projector.start();
    await projector.whenCaughtUp();
    await projector.stop();
    const docs = readStore.collection<RequestDoc>(REQUESTS);
    expect(await docs.get(OLD_ID)).toMatchObject({ merchantId: 'm-1', amount: 1234, status: 'CANCELLED' });
    expect(await docs.get(NEW_ID)).toMatchObject({ merchantId: 'm-2', amount: 500, status: 'REGISTERED' });
  });

  it('a stream replay (settle replay --stream) shows the v2 shape at every step', async () => {
    const lines = [];
    for await (const line of replayStream(store, `request-${OLD_ID}`)) lines.push(line);
    expect(lines.map((l) => l.type)).toEqual(['RequestRegistered', 'RequestCancelled']);
    expect(lines[0]!.state).toMatchObject({ merchantId: 'm-1', amount: 1234, status: 'REGISTERED' });
    expect(lines[0]!.state).not.toHaveProperty('merchant');
    expect(lines[1]!.state).toMatchObject({ merchantId: 'm-1', amount: 1234, status: 'CANCELLED' });
    const fresh = (await replayStream(store, `request-${NEW_ID}`).next()).value;
    expect(fresh!.state).toMatchObject({ merchantId: 'm-2', amount: 500 });
  });
});
