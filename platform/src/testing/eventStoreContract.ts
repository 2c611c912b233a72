import { randomUUID } from 'node:crypto';
import type { EventMetadata, StoredEvent } from '@settle/domain';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConcurrencyError } from '../errors.js';
import type { EventStore, NewEvent, SubscribeOptions, Subscription } from '../eventStore/port.js';

const meta: EventMetadata = { correlationId: 'c', causationId: 'c', actor: 'test' };
const ev = (type: string, data: unknown = {}, id = randomUUID()): NewEvent => ({ id, type, data, metadata: meta });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A write that has taken its global position but not committed yet. */
export interface HeldWrite {
  /** Commits the held event (and wakes subscribers, as an append would). */
  commit(): Promise<void>;
}

/** What an adapter can offer the contract beyond the port itself. */
export interface EventStoreContractOptions {
  /** Opens another store on the same database or namespace, as another process would. */
  openAnother?: () => Promise<EventStore>;
  /**
   * Writes `event` as the first event of the new stream `streamId` in a transaction that takes
   * its global position now and commits only when asked: the out-of-order commit that stores
   * allocating positions before commit (sequences) must survive. Stores that assign positions
   * at commit (EventStoreDB) have no such state and leave it out; the spec then reports skipped.
   */
  holdWrite?: (streamId: string, event: NewEvent) => Promise<HeldWrite>;
  /** Size of the many-writers spec (default 8 writers × 50 appends; real servers take more). */
  writers?: number;
  appendsPerWriter?: number;
}

/** Subscribes and collects what the handler receives. */
function collect(store: EventStore, opts: SubscribeOptions): { seen: StoredEvent[]; sub: Subscription } {
  const seen: StoredEvent[] = [];
  const sub = store.subscribe(async (batch) => {
    seen.push(...batch);
  }, opts);
  return { seen, sub };
}

/** Every id exactly once, global positions strictly increasing. */
function expectExactlyOnceInOrder(seen: StoredEvent[], ids: string[]): void {
  const seenIds = seen.map((e) => e.id);
  expect(new Set(seenIds).size).toBe(seenIds.length);
  expect([...seenIds].sort()).toEqual([...ids].sort());
  for (let i = 1; i < seen.length; i++) expect(seen[i]!.globalPosition).toBeGreaterThan(seen[i - 1]!.globalPosition);
}

/**
 * One contract for every EventStore adapter (embedded and real servers). `factory` returns a
 * store on a fresh, empty database or namespace.
 */
export function describeEventStoreContract(
  name: string,
  factory: () => Promise<EventStore>,
  opts: EventStoreContractOptions = {},
): void {
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

    it('reads a missing stream as empty', async () => {
      expect(await store.readStream(stream())).toEqual([]);
    });

    describe('concurrency conflicts', () => {
      it('rejects an append with a stale expected revision and leaves the stream unchanged', async () => {
        const s = stream();
        await store.append(s, [ev('A')], { expectedRevision: 'no_stream' });
        await store.append(s, [ev('B')], { expectedRevision: 0 });
        await expect(store.append(s, [ev('C')], { expectedRevision: 0 })).rejects.toBeInstanceOf(ConcurrencyError);
        await expect(store.append(s, [ev('C')], { expectedRevision: 'no_stream' })).rejects.toBeInstanceOf(
          ConcurrencyError,
        );
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

      it("checks 'stream_exists', 'any' and revisions ahead of the stream", async () => {
        const s = stream();
        const missing = await store
          .append(s, [ev('X')], { expectedRevision: 'stream_exists' })
          .catch((e: unknown) => e);
        expect(missing).toBeInstanceOf(ConcurrencyError);
        expect((missing as ConcurrencyError).streamId).toBe(s);
        expect(await store.readStream(s)).toEqual([]);
        await store.append(s, [ev('A')], { expectedRevision: 'any' });
        await store.append(s, [ev('B')], { expectedRevision: 'stream_exists' });
        await expect(store.append(s, [ev('X')], { expectedRevision: 5 })).rejects.toBeInstanceOf(ConcurrencyError);
        const r = await store.append(s, [ev('C')], { expectedRevision: 'any' });
        expect(r.nextExpectedRevision).toBe(2);
        expect((await store.readStream(s)).map((e) => e.type)).toEqual(['A', 'B', 'C']);
      });

      it('fails only the conflicting append when others are written at the same time', async () => {
        const s = stream();
        await store.append(s, [ev('A')], { expectedRevision: 'no_stream' });
        const others = Array.from({ length: 10 }, () => stream());
        const [conflict, ...rest] = await Promise.allSettled([
          store.append(s, [ev('X')], { expectedRevision: 3 }),
          ...others.map((o) => store.append(o, [ev('B')], { expectedRevision: 'no_stream' })),
        ]);
        expect(conflict!.status).toBe('rejected');
        expect((conflict as PromiseRejectedResult).reason).toBeInstanceOf(ConcurrencyError);
        expect(rest.every((r) => r.status === 'fulfilled')).toBe(true);
        for (const o of others) expect((await store.readStream(o)).map((e) => e.type)).toEqual(['B']);
        expect(await store.readStream(s)).toHaveLength(1);
      });
    });

    describe('idempotent append', () => {
      it('treats a re-append of the same event ids as a no-op, even with a stale revision', async () => {
        const s = stream();
        const first = [ev('A'), ev('B')];
        const r1 = await store.append(s, first, { expectedRevision: 'no_stream' });
        const r2 = await store.append(s, first, { expectedRevision: 'no_stream' });
        expect(r2.duplicate).toBe(true);
        expect(r2.position).toBe(r1.position);
        expect(await store.readStream(s)).toHaveLength(2);
      });

      it('answers a re-append after later events with the original revision and position', async () => {
        const s = stream();
        const a = ev('A');
        const r1 = await store.append(s, [a], { expectedRevision: 'no_stream' });
        await store.append(s, [ev('B')], { expectedRevision: 0 });
        for (const expectedRevision of ['no_stream', 'any', 0, 1] as const) {
          const again = await store.append(s, [a], { expectedRevision });
          expect(again).toEqual({ duplicate: true, position: r1.position, nextExpectedRevision: 0 });
        }
        expect((await store.readStream(s)).map((e) => e.type)).toEqual(['A', 'B']);
      });

      it('stores concurrent re-appends of the same event ids once', async () => {
        const s = stream();
        const events = [ev('A'), ev('B')];
        const results = await Promise.allSettled(
          Array.from({ length: 8 }, () => store.append(s, events, { expectedRevision: 'no_stream' })),
        );
        const written = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
        expect(written.filter((r) => !r.duplicate)).toHaveLength(1);
        for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(ConcurrencyError);
        expect((await store.readStream(s)).map((e) => e.id)).toEqual(events.map((e) => e.id));
      });

      it('never stores an event id twice in a stream, even when mixed with new events', async () => {
        const s = stream();
        const a = ev('A');
        await store.append(s, [a], { expectedRevision: 'no_stream' });
        await expect(store.append(s, [a, ev('C')], { expectedRevision: 0 })).rejects.toBeInstanceOf(ConcurrencyError);
        expect((await store.readStream(s)).map((e) => e.id)).toEqual([a.id]);
      });
    });

    describe('per-stream order', () => {
      it('numbers a stream without gaps, in global order, keeping each writer’s order', async () => {
        const s = stream();
        const writers = 4;
        const perWriter = 15;
        await Promise.all(
          Array.from({ length: writers }, async (_, w) => {
            for (let i = 0; i < perWriter; i++) {
              const batch = Array.from({ length: 1 + (i % 3) }, (_, k) => ev('N', { w, i, k }));
              await store.append(s, batch, { expectedRevision: 'any' });
            }
          }),
        );
        const events = await store.readStream(s);
        expect(events).toHaveLength(writers * (5 * 1 + 5 * 2 + 5 * 3));
        events.forEach((e, i) => expect(e.streamPosition).toBe(i));
        for (let i = 1; i < events.length; i++)
          expect(events[i]!.globalPosition).toBeGreaterThan(events[i - 1]!.globalPosition);
        for (let w = 0; w < writers; w++) {
          const mine = events.map((e) => e.data as { w: number; i: number; k: number }).filter((d) => d.w === w);
          expect(mine.map((d) => d.i * 10 + d.k)).toEqual([...mine.map((d) => d.i * 10 + d.k)].sort((x, y) => x - y));
        }
      });

      it('reads a stream as it was at a global position', async () => {
        const s = stream();
        const r1 = await store.append(s, [ev('A')], { expectedRevision: 'no_stream' });
        await store.append(s, [ev('B')], { expectedRevision: 0 });
        expect((await store.readStream(s, { toPosition: r1.position })).map((e) => e.type)).toEqual(['A']);
      });

      it('reads a stream as it was at a time', async () => {
        const s = stream();
        await store.append(s, [ev('A')], { expectedRevision: 'no_stream' });
        await sleep(30);
        await store.append(s, [ev('B')], { expectedRevision: 0 });
        const [a, b] = await store.readStream(s);
        expect(Date.parse(b!.occurredAt)).toBeGreaterThan(Date.parse(a!.occurredAt));
        expect((await store.readStream(s, { toTime: a!.occurredAt })).map((e) => e.type)).toEqual(['A']);
        expect(await store.readStream(s, { toTime: new Date(Date.parse(a!.occurredAt) - 1000).toISOString() })).toEqual(
          [],
        );
      });
    });

    describe('global log and subscriptions', () => {
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

      it('pages through the global log with limit and after', async () => {
        const prefix = `page${randomUUID().slice(0, 8)}-`;
        const head = await store.headPosition();
        for (let i = 0; i < 7; i++)
          await store.append(`${prefix}${i}`, [ev('P', { i })], { expectedRevision: 'no_stream' });
        const pages: number[][] = [];
        let after = head;
        for (;;) {
          const page = await store.readAll({ after, limit: 3, streamPrefixes: [prefix] });
          if (page.length === 0) break;
          pages.push(page.map((e) => (e.data as { i: number }).i));
          after = page[page.length - 1]!.globalPosition;
        }
        expect(pages).toEqual([[0, 1, 2], [3, 4, 5], [6]]);
        expect(await store.headPosition()).toBeGreaterThanOrEqual(after);
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
        await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            store.append(`${prefix}c${i}`, [ev('C')], { expectedRevision: 'no_stream' }),
          ),
        );
        await expect.poll(() => seen.length, { timeout: 10_000 }).toBe(23);
        await sub.stop();
        const positions = seen.map((e) => e.globalPosition);
        expect(new Set(positions).size).toBe(positions.length);
        expect([...positions].sort((a, b) => a - b)).toEqual(positions);
        expect(seen.slice(0, 3).map((e) => e.type)).toEqual(['A1', 'A2', 'B1']);
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

      it('delivers nothing after stop() resolves', async () => {
        const prefix = `stop${randomUUID().slice(0, 8)}-`;
        const head = await store.headPosition();
        const { seen, sub } = collect(store, { after: head, streamPrefixes: [prefix] });
        await store.append(`${prefix}1`, [ev('A')], { expectedRevision: 'no_stream' });
        await expect.poll(() => seen.length, { timeout: 10_000 }).toBe(1);
        await sub.stop();
        await store.append(`${prefix}2`, [ev('B')], { expectedRevision: 'no_stream' });
        await sleep(300);
        expect(seen.map((e) => e.type)).toEqual(['A']);
      });
    });

    describe('resume from checkpoint', () => {
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

      it('keeps the last saved checkpoint of each name', async () => {
        const [a, b] = [`contract-${randomUUID()}`, `contract-${randomUUID()}`];
        await store.saveCheckpoint(a, 5);
        await store.saveCheckpoint(b, 3);
        await store.saveCheckpoint(a, 9);
        expect([await store.getCheckpoint(a), await store.getCheckpoint(b)]).toEqual([9, 3]);
      });

      it('restarts a checkpointing subscriber without losing or repeating an event', async () => {
        const prefix = `restart${randomUUID().slice(0, 8)}-`;
        const name = `contract-${randomUUID()}`;
        await store.saveCheckpoint(name, await store.headPosition());
        const ids: string[] = [];
        const append = async (n: number) => {
          for (let i = 0; i < n; i++) {
            const e = ev('R', { i });
            ids.push(e.id);
            await store.append(`${prefix}${ids.length}`, [e], { expectedRevision: 'no_stream' });
          }
        };
        const run = async (seen: StoredEvent[]) =>
          store.subscribe(
            async (batch) => {
              seen.push(...batch);
              await store.saveCheckpoint(name, batch[batch.length - 1]!.globalPosition);
            },
            { after: await store.getCheckpoint(name), streamPrefixes: [prefix], batchSize: 2 },
          );
        await append(10);
        const first: StoredEvent[] = [];
        const sub1 = await run(first);
        await expect.poll(() => first.length, { timeout: 10_000 }).toBeGreaterThanOrEqual(4);
        await sub1.stop();
        await append(5);
        const second: StoredEvent[] = [];
        const sub2 = await run(second);
        await expect.poll(() => first.length + second.length, { timeout: 10_000 }).toBe(15);
        await sleep(200);
        await sub2.stop();
        expectExactlyOnceInOrder([...first, ...second], ids);
        expect(await store.getCheckpoint(name)).toBe(second[second.length - 1]!.globalPosition);
      });
    });

    describe('no skipped events under concurrent out-of-order commits', () => {
      it.skipIf(!opts.holdWrite)(
        'holds back later events while an earlier position is uncommitted, then delivers all exactly once' +
          (opts.holdWrite ? '' : ' — skipped: this adapter cannot hold a write open while others commit'),
        async () => {
          const prefix = `held${randomUUID().slice(0, 8)}-`;
          const head = await store.headPosition();
          const { seen, sub } = collect(store, { after: head, streamPrefixes: [prefix] });
          const early = ev('Early');
          const held = await opts.holdWrite!(`${prefix}early`, early);
          const later = Array.from({ length: 3 }, (_, i) => ev('Later', { i }));
          const written = await Promise.all(
            later.map((e, i) => store.append(`${prefix}later${i}`, [e], { expectedRevision: 'no_stream' })),
          );
          await sleep(400);
          const headWhileHeld = await store.headPosition();
          const readWhileHeld = await store.readAll({ after: head, limit: 100, streamPrefixes: [prefix] });
          const seenWhileHeld = seen.length;
          await held.commit();
          await expect.poll(() => seen.length, { timeout: 10_000 }).toBe(4);
          await sleep(200);
          await sub.stop();
          const [stored] = await store.readStream(`${prefix}early`);
          // The held write really took the lowest position and really committed after the others.
          expect(stored!.globalPosition).toBeLessThan(Math.min(...written.map((w) => w.position)));
          expect(readWhileHeld).toEqual([]);
          expect(seenWhileHeld).toBe(0);
          expect(headWhileHeld).toBeLessThan(stored!.globalPosition);
          expectExactlyOnceInOrder(seen, [early.id, ...later.map((e) => e.id)]);
          expect(seen[0]!.id).toBe(early.id);
        },
      );

      it('delivers every event exactly once, in order, to subscribers in every process while many writers append', async () => {
        const writers = opts.writers ?? 8;
        const perWriter = opts.appendsPerWriter ?? 50;
        const others = opts.openAnother ? await Promise.all([opts.openAnother(), opts.openAnother()]) : [];
        const stores = [store, ...others];
        try {
          const prefix = `many${randomUUID().slice(0, 8)}-`;
          const head = await store.headPosition();
          const subscribers = [stores[0]!, stores[stores.length - 1]!].map((s) =>
            collect(s, { after: head, streamPrefixes: [prefix] }),
          );
          const ids: string[] = [];
          await Promise.all(
            Array.from({ length: writers }, async (_, w) => {
              for (let i = 0; i < perWriter; i++) {
                const batch = Array.from({ length: i % 7 === 0 ? 2 : 1 }, () => ev('M', { w, i }));
                ids.push(...batch.map((e) => e.id));
                await stores[(w + i) % stores.length]!.append(`${prefix}${w}-${i % 5}`, batch, {
                  expectedRevision: 'any',
                });
              }
            }),
          );
          for (const { seen } of subscribers)
            await expect.poll(() => seen.length, { timeout: 30_000 }).toBeGreaterThanOrEqual(ids.length);
          await sleep(200);
          await Promise.all(subscribers.map(({ sub }) => sub.stop()));
          for (const { seen } of subscribers) expectExactlyOnceInOrder(seen, ids);
          expect(
            (await store.readAll({ after: head, limit: ids.length + 10, streamPrefixes: [prefix] })).map((e) => e.id),
          ).toEqual(subscribers[0]!.seen.map((e) => e.id));
        } finally {
          await Promise.all(others.map((s) => s.close()));
        }
      });
    });
  });
}
