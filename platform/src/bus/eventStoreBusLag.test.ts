import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPgliteClient } from '../eventStore/pgliteClient.js';
import { SqlEventStore } from '../eventStore/sqlEventStore.js';
import { newId } from '../ids.js';
import { silentLogger } from '../logger.js';
import { createMetrics } from '../metrics.js';
import { EventStoreBus } from './eventStoreBus.js';

const meta = { correlationId: 'c', causationId: 'c', actor: 'test' };
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

describe('embedded bus: consumer lag', () => {
  let store: SqlEventStore;
  beforeAll(async () => {
    store = await SqlEventStore.create(await createPgliteClient(undefined));
  });
  afterAll(async () => {
    await store.close();
  });

  it('rises while an event waits in a handler, falls to 0 when done, and feeds the gauges', async () => {
    const metrics = createMetrics();
    const bus = new EventStoreBus(store, silentLogger(), metrics);
    let release!: () => void;
    const blocked = new Promise<void>((r) => (release = r));
    let handled = 0;
    await bus.consume({ group: 'lagtest', streamPrefixes: ['lag-'] }, async () => {
      await blocked;
      handled++;
    });
    expect(await bus.lag()).toEqual([
      { name: 'consumer:lagtest', position: 0, headPosition: 0, lagEvents: 0, lagSeconds: 0 },
    ]);

    await store.append('lag-1', [{ id: newId(), type: 'Test', data: {}, metadata: meta }], {
      expectedRevision: 'no_stream',
    });
    const { position } = await store.append('lag-2', [{ id: newId(), type: 'Test', data: {}, metadata: meta }], {
      expectedRevision: 'no_stream',
    });
    await sleep(400);
    const [busy] = await bus.lag();
    expect(busy).toMatchObject({ name: 'consumer:lagtest', position: 0, headPosition: position, lagEvents: position });
    expect(busy!.lagSeconds).toBeGreaterThan(0.2);
    const seconds = await metrics.registry.getSingleMetric('settle_projection_lag_seconds')!.get();
    expect(seconds.values.find((v) => v.labels.projection === 'consumer:lagtest')?.value).toBeGreaterThan(0);

    release();
    for (let i = 0; i < 40 && handled < 2; i++) await sleep(50);
    const [done] = await bus.lag();
    expect(done).toMatchObject({ position, lagEvents: 0, lagSeconds: 0 });
    const events = await metrics.registry.getSingleMetric('settle_projection_lag_events')!.get();
    expect(events.values.find((v) => v.labels.projection === 'consumer:lagtest')?.value).toBe(0);
    await bus.close();
  });
});
