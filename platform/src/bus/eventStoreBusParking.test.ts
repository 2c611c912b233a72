import type { StoredEvent } from '@settle/domain';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createPgliteClient } from '../eventStore/pgliteClient.js';
import { SqlEventStore } from '../eventStore/sqlEventStore.js';
import { newId } from '../ids.js';
import { silentLogger } from '../logger.js';
import { createMetrics } from '../metrics.js';
import { EventStoreBus } from './eventStoreBus.js';
import { BusParking } from './parking.js';

const meta = { correlationId: 'c', causationId: 'c', actor: 'test' };
const fast = { maxAttempts: 2, retryInitialDelayMs: 5, retryMaxDelayMs: 10, parkedPollMs: 20 };

describe('embedded bus: per-stream parking for a reactor group', () => {
  let store: SqlEventStore;
  let bus: EventStoreBus | undefined;
  const handled: string[] = [];
  /** `<streamId>/<type>` that fail, and how. */
  const failing = new Map<string, Error>();
  const handler = async (e: StoredEvent) => {
    const error = failing.get(`${e.streamId}/${e.type}`);
    if (error) throw error;
    handled.push(`${e.streamId}/${e.type}`);
  };
  const append = (stream: string, ...types: string[]) =>
    store.append(
      stream,
      types.map((type) => ({ id: newId(), type, data: {}, metadata: meta })),
      { expectedRevision: 'any' },
    );
  const of = (stream: string) => handled.filter((h) => h.startsWith(`${stream}/`)).map((h) => h.split('/')[1]);

  beforeEach(async () => {
    store = await SqlEventStore.create(await createPgliteClient(undefined));
    handled.length = 0;
    failing.clear();
  });
  afterEach(async () => {
    await bus?.close();
    bus = undefined;
    await store.close();
  });

  it('parks the failing stream after its retries, holds its later events, lets others flow; retry and skip resume it in order', async () => {
    const metrics = createMetrics();
    bus = new EventStoreBus(store, silentLogger(), metrics, fast);
    const consumer = await bus.consume({ group: 'g', streamPrefixes: ['request-'] }, handler);
    failing.set('request-bad/B', new Error('handler bug'));
    await append('request-bad', 'A', 'B', 'C');
    const { position } = await append('request-good', 'A', 'B', 'C');
    await expect.poll(() => consumer.position).toBeGreaterThanOrEqual(position);
    expect(of('request-good')).toEqual(['A', 'B', 'C']);
    expect(of('request-bad')).toEqual(['A']);

    const parking = new BusParking(store, ['g'], 10);
    expect(await parking.list()).toMatchObject([
      { owner: 'consumer:g', streamId: 'request-bad', eventType: 'B', error: 'handler bug', attempts: 2 },
    ]);
    const gauge = async () =>
      (await metrics.registry.getSingleMetric('settle_parked_streams')!.get()).values.find(
        (v) => v.labels.projection === 'consumer:g',
      )?.value;
    expect(await gauge()).toBe(1);

    // Held: a later event of the parked stream waits too, and the watermark still moves on.
    const later = await append('request-bad', 'D');
    await expect.poll(() => consumer.position).toBeGreaterThanOrEqual(later.position);
    expect(of('request-bad')).toEqual(['A']);

    expect(await parking.act('request-bad', 'retry', 'op', 5000)).toBe(false);
    expect(await parking.list()).toMatchObject([{ streamId: 'request-bad', eventType: 'B', attempts: 3 }]);

    failing.clear(); // fixed
    expect(await parking.act('request-bad', 'retry', 'op', 5000)).toBe(true);
    expect(of('request-bad')).toEqual(['A', 'B', 'C', 'D']);
    expect(await parking.list()).toEqual([]);
    expect(await gauge()).toBe(0);
    // Flowing again.
    await append('request-bad', 'E');
    await expect.poll(() => of('request-bad')).toEqual(['A', 'B', 'C', 'D', 'E']);

    failing.set('request-other/A', new Error('poison'));
    await append('request-other', 'A', 'B');
    await expect.poll(async () => (await parking.list()).map((p) => p.streamId)).toEqual(['request-other']);
    expect(await parking.act('request-other', 'skip', 'op', 5000)).toBe(true);
    expect(of('request-other')).toEqual(['B']);
    expect(await parking.act('request-nope', 'skip', 'op', 1000)).toBeNull();
  });

  it('keeps retrying an outage instead of parking; parked streams survive a restart', async () => {
    bus = new EventStoreBus(store, silentLogger(), undefined, fast);
    await bus.consume({ group: 'g', streamPrefixes: ['request-'] }, handler);
    failing.set('request-a/A', Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }));
    failing.set('request-b/A', new Error('handler bug'));
    await append('request-a', 'A');
    await append('request-b', 'A', 'B');
    const parking = new BusParking(store, ['g'], 10);
    await expect.poll(async () => (await parking.list()).map((p) => p.streamId)).toEqual(['request-b']);
    await new Promise((r) => setTimeout(r, 200)); // many more attempts than maxAttempts
    expect((await parking.list()).map((p) => p.streamId)).toEqual(['request-b']);
    failing.delete('request-a/A'); // the part is back
    await expect.poll(() => of('request-a')).toEqual(['A']);

    await bus.close();
    failing.clear();
    bus = new EventStoreBus(store, silentLogger(), undefined, fast);
    const consumer = await bus.consume({ group: 'g', streamPrefixes: ['request-'] }, handler);
    const { position } = await append('request-b', 'C');
    await expect.poll(() => consumer.position).toBeGreaterThanOrEqual(position);
    expect(of('request-b')).toEqual([]); // still parked after the restart: held, not handled
    expect(await parking.act('request-b', 'retry', 'op', 5000)).toBe(true);
    expect(of('request-b')).toEqual(['A', 'B', 'C']);
  });
});
