import type { EventMetadata } from '@settle/domain';
import {
  createMetrics,
  createPgliteClient,
  MemoryReadStore,
  newId,
  silentLogger,
  SqlEventStore,
} from '@settle/platform';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Projector } from './projector.js';
import { requestsProjection } from './requests.js';

const meta: EventMetadata = { correlationId: 'c', causationId: 'c', actor: 'test' };

async function register(store: SqlEventStore, id: string) {
  const data = {
    requestId: id,
    authId: `a-${id}`,
    merchantId: 'm-1',
    amount: 100,
    currency: 'EUR',
    reference: id,
    registeredAt: new Date().toISOString(),
  };
  return store.append(`request-${id}`, [{ id: newId(), type: 'RequestRegistered', data, metadata: meta }], {
    expectedRevision: 'no_stream',
  });
}

async function gauge(
  metrics: ReturnType<typeof createMetrics>,
  name: string,
  projection: string,
): Promise<number | undefined> {
  const metric = await metrics.registry.getSingleMetric(name)!.get();
  return metric.values.find((v) => v.labels.projection === projection)?.value;
}

describe('projector lag: events and seconds, 0 when caught up', () => {
  let store: SqlEventStore;
  beforeAll(async () => {
    store = await SqlEventStore.create(await createPgliteClient(undefined));
  });
  afterAll(async () => {
    await store.close();
  });

  it('reports 0 when idle, and the age of the oldest unapplied event while behind', async () => {
    await register(store, 'r1');
    const metrics = createMetrics();
    const readStore = new MemoryReadStore();
    const projector = new Projector([requestsProjection], {
      eventStore: store,
      readStore,
      logger: silentLogger(),
      metrics,
    });
    await projector.start();
    await projector.whenCaughtUp();
    const [idle] = await projector.status();
    expect(idle).toMatchObject({ name: 'requests', lagEvents: 0, lagSeconds: 0 });
    expect(await gauge(metrics, 'settle_projection_lag_seconds', 'requests')).toBe(0);
    expect(await gauge(metrics, 'settle_projection_lag_events', 'requests')).toBe(0);
    await projector.stop();

    // Stopped: new events wait, and the lag says so.
    await register(store, 'r2');
    const { position } = await register(store, 'r3');
    await new Promise((r) => setTimeout(r, 300));
    const [behind] = await projector.status();
    expect(behind!.lagEvents).toBe(2);
    expect(behind!.headPosition).toBe(position);
    expect(behind!.lagSeconds).toBeGreaterThanOrEqual(0.25);
    expect(await gauge(metrics, 'settle_projection_lag_seconds', 'requests')).toBe(behind!.lagSeconds);
    expect(await gauge(metrics, 'settle_projection_lag_events', 'requests')).toBe(2);

    // A new projector catches up from the checkpoint; its gauges fall back to 0 once idle.
    const again = new Projector([requestsProjection], {
      eventStore: store,
      readStore,
      logger: silentLogger(),
      metrics,
    });
    await again.start();
    await again.whenCaughtUp();
    await new Promise((r) => setTimeout(r, 1300)); // the post-batch refresh runs at most once a second
    expect(await gauge(metrics, 'settle_projection_lag_seconds', 'requests')).toBe(0);
    expect(await gauge(metrics, 'settle_projection_lag_events', 'requests')).toBe(0);
    expect((await again.status())[0]).toMatchObject({ lagEvents: 0, lagSeconds: 0, position });
    await again.stop();
  });
});
