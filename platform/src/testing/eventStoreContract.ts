import { randomUUID } from 'node:crypto';
import type { EventMetadata, StoredEvent } from '@settle/domain';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConcurrencyError } from '../errors.js';
import type { EventStore, NewEvent } from '../eventStore/port.js';

const meta: EventMetadata = { correlationId: 'c', causationId: 'c', actor: 'test' };
const ev = (type: string, data: unknown = {}, id = randomUUID()): NewEvent => ({ id, type, data, metadata: meta });

/**
 * One contract for every EventStore adapter (embedded and real servers). `factory` returns a
 * store on a fresh, empty database or namespace.
 */
export function describeEventStoreContract(name: string, factory: () => Promise<EventStore>): void {
  describe(`EventStore contract: ${name}`, () => {
    let store: EventStore;
    beforeAll(async () => {
      store = await factory();
    });
    afterAll(async () => {
      await store?.close();
    });
    const stream = () => `test-${randomUUID()}`;

    it('appends to a new stream and reads it back in order', async () => {
      const s = stream();
      const r = await store.append(s, [ev('A', { n: 1 }), ev('B', { n: 2 })], { expectedRevision: 'no_stream' });
      expect(r.nextExpectedRevision).toBe(1);
      expect(r.duplicate).toBe(false);
      const events = await store.readStream(s);
      expect(events.map((e) => [e.type, e.streamPosition, e.data])).toEqual([
        ['A', 0, { n: 1 }],
        ['B', 1, { n: 2 }],
      ]);
      expect(events[1]!.globalPosition).toBeGreaterThan(events[0]!.globalPosition);
      expect(events[1]!.globalPosition).toBe(r.position);
      expect(events[0]!.metadata).toMatchObject(meta);
    });

    it('rejects an append with a stale expected revision and leaves the stream unchanged', async () => {
      const s = stream();
      await store.append(s, [ev('A')], { expectedRevision: 'no_stream' });
      await store.append(s, [ev('B')], { expectedRevision: 0 });
      await expect(store.append(s, [ev('C')], { expectedRevision: 0 })).rejects.toBeInstanceOf(ConcurrencyError);
      await expect(store.append(s, [ev('C')], { expectedRevision: 'no_stream' })).rejects.toBeInstanceOf(ConcurrencyError);
      expect((await store.readStream(s)).map((e) => e.type)).toEqual(['A', 'B']);
    });

    it('lets exactly one of many concurrent writers win the same revision', async () => {
      const s = stream();
      await store.append(s, [ev('A')], { expectedRevision: 'no_stream' });
      const results = await Promise.allSettled(
        Array.from({ length: 10 }, (_, i) => store.append(s, [ev('B', { i })], { expectedRevision: 0 })),
      );
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(ConcurrencyError);
      expect(await store.readStream(s)).toHaveLength(2);
    });

    it('lets exactly one of many concurrent creators create a stream', async () => {
      const s = stream();
      const results = await Promise.allSettled(
        Array.from({ length: 8 }, () => store.append(s, [ev('A')], { expectedRevision: 'no_stream' })),
      );
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      expect(await store.readStream(s)).toHaveLength(1);
    });

    it('treats a re-append of the same event ids as a no-op, even with a stale revision', async () => {
      const s = stream();
      const first = [ev('A'), ev('B')];
      const r1 = await store.append(s, first, { expectedRevision: 'no_stream' });
      const r2 = await store.append(s, first, { expectedRevision: 'no_stream' });
      expect(r2.duplicate).toBe(true);
      expect(r2.position).toBe(r1.position);
      expect(await store.readStream(s)).toHaveLength(2);
    });

    it('reads the global log from a position, filtered by stream prefix', async () => {
      const prefix = `glog${randomUUID().slice(0, 8)}-`;
      const head = await store.headPosition();
      await store.append(`${prefix}1`, [ev('A')], { expectedRevision: 'any' });
      await store.append(`other-${randomUUID()}`, [ev('X')], { expectedRevision: 'any' });
      await store.append(`${prefix}2`, [ev('B')], { expectedRevision: 'any' });
      const all = await store.readAll({ after: head, limit: 100 });
      expect(all.length).toBeGreaterThanOrEqual(3);
      const positions = all.map((e) => e.globalPosition);
      expect([...positions].sort((a, b) => a - b)).toEqual(positions);
      const filtered = await store.readAll({ after: head, limit: 100, streamPrefixes: [prefix] });
      expect(filtered.map((e) => e.type)).toEqual(['A', 'B']);
    });

    it('reads a stream as it was at a global position', async () => {
      const s = stream();
      const r1 = await store.append(s, [ev('A')], { expectedRevision: 'no_stream' });
      await store.append(s, [ev('B')], { expectedRevision: 0 });
      expect((await store.readStream(s, { toPosition: r1.position })).map((e) => e.type)).toEqual(['A']);
    });

    it('subscribes: catches up, then follows live appends, in order and without duplicates', async () => {
      const prefix = `sub${randomUUID().slice(0, 8)}-`;
      const head = await store.headPosition();
      await store.append(`${prefix}a`, [ev('A1'), ev('A2')], { expectedRevision: 'no_stream' });
      const seen: StoredEvent[] = [];
      const sub = store.subscribe(
        async (batch) => {
          seen.push(...batch);
        },
        { after: head, streamPrefixes: [prefix] },
      );
      await store.append(`${prefix}b`, [ev('B1')], { expectedRevision: 'no_stream' });
      await Promise.all(Array.from({ length: 20 }, (_, i) => store.append(`${prefix}c${i}`, [ev('C')], { expectedRevision: 'no_stream' })));
      await expect.poll(() => seen.length, { timeout: 10_000 }).toBe(23);
      await sub.stop();
      const positions = seen.map((e) => e.globalPosition);
      expect(new Set(positions).size).toBe(positions.length);
      expect([...positions].sort((a, b) => a - b)).toEqual(positions);
      expect(seen.slice(0, 3).map((e) => e.type)).toEqual(['A1', 'A2', 'B1']);
    });

    it('resumes a subscription from a stored checkpoint', async () => {
      const prefix = `ckpt${randomUUID().slice(0, 8)}-`;
      const name = `contract-${randomUUID()}`;
      expect(await store.getCheckpoint(name)).toBe(0);
      const head = await store.headPosition();
      const r = await store.append(`${prefix}1`, [ev('A')], { expectedRevision: 'no_stream' });
      await store.saveCheckpoint(name, r.position);
      await store.append(`${prefix}2`, [ev('B')], { expectedRevision: 'no_stream' });
      expect(await store.getCheckpoint(name)).toBe(r.position);
      const seen: string[] = [];
      const sub = store.subscribe(
        async (batch) => {
          seen.push(...batch.map((e) => e.type));
        },
        { after: await store.getCheckpoint(name), streamPrefixes: [prefix] },
      );
      await expect.poll(() => seen, { timeout: 10_000 }).toEqual(['B']);
      await sub.stop();
      expect(head).toBeLessThan(r.position);
    });

    it('stops a subscription whose handler fails, without advancing past the failed batch', async () => {
      const prefix = `fail${randomUUID().slice(0, 8)}-`;
      const head = await store.headPosition();
      await store.append(`${prefix}1`, [ev('A')], { expectedRevision: 'no_stream' });
      const sub = store.subscribe(
        async () => {
          throw new Error('boom');
        },
        { after: head, streamPrefixes: [prefix] },
      );
      await expect(sub.failed).rejects.toThrow('boom');
      await sub.stop();
    });
  });
}
