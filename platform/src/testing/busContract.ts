import { randomUUID } from 'node:crypto';
import type { EventMetadata, StoredEvent } from '@settle/domain';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Bus, Consumer, EventHandler } from '../bus/port.js';
import type { EventStore } from '../eventStore/port.js';

/** What a bus adapter under test is built on: the bus, and the event store whose events it carries. */
export interface BusContractSubject {
  bus: Bus;
  eventStore: EventStore;
  /** Messages the adapter dead-lettered for streams with this prefix (adapters with a DLQ). */
  readDeadLetters?(streamPrefix: string): Promise<{ event?: StoredEvent; headers: Record<string, string> }[]>;
  close(): Promise<void>;
}

/** What the adapter supports; tests of anything else are reported as skipped, with the reason. */
export interface BusCapabilities {
  /** Several consumers of one group share the work (Kafka). The embedded bus keeps one checkpoint per group, so one consumer. */
  replicas: boolean;
  /** A message that keeps failing goes to a dead-letter queue after `attempts` attempts; false = none (the embedded bus parks the stream). */
  dlq: false | { attempts: number };
}

const meta: EventMetadata = { correlationId: 'bus-contract', causationId: 'bus-contract', actor: 'test' };
const POLL = { timeout: 45_000, interval: 50 };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A fresh category per test keeps tests apart on a shared store (and, on Kafka, on their own topic). */
const newCategory = () => `bc${randomUUID().replaceAll('-', '').slice(0, 10)}`;

interface Appended {
  id: string;
  streamId: string;
  n: number;
}

/** Appends `perStream` events to each of `streams` streams, interleaved in the global log. */
async function appendRounds(
  store: EventStore,
  category: string,
  streams: number,
  perStream: number,
  from = 0,
): Promise<Appended[]> {
  const out: Appended[] = [];
  for (let n = from; n < from + perStream; n++) {
    const round = await Promise.all(
      Array.from({ length: streams }, async (_, s) => {
        const streamId = `${category}-${s}`;
        const id = randomUUID();
        await store.append(streamId, [{ id, type: 'ContractTested', data: { s, n }, metadata: meta }], {
          expectedRevision: 'any',
        });
        return { id, streamId, n };
      }),
    );
    out.push(...round);
  }
  return out;
}

/** Records effects idempotently by event id, and every delivery (so re-deliveries are visible). */
function recorder() {
  const effects = new Map<string, StoredEvent>();
  const redelivered: string[] = [];
  const order = new Map<string, number[]>();
  const handle = (event: StoredEvent) => {
    if (effects.has(event.id)) redelivered.push(event.id);
    else effects.set(event.id, event);
    const seen = order.get(event.streamId) ?? [];
    seen.push(event.streamPosition);
    order.set(event.streamId, seen);
  };
  return { effects, redelivered, order, handle };
}

const ids = (events: Appended[]) => new Set(events.map((e) => e.id));

/**
 * One contract for every Bus adapter: at-least-once delivery per consumer group, in order per
 * stream, durable progress across restarts, retries, and (where supported) shared groups and DLQ.
 * `factory` builds a bus carrying the events of the event store it returns.
 */
export function describeBusContract(
  name: string,
  factory: () => Promise<BusContractSubject>,
  capabilities: BusCapabilities,
): void {
  describe(`Bus contract: ${name}`, () => {
    let subject: BusContractSubject;
    let store: EventStore;
    let bus: Bus;
    const consumers: Consumer[] = [];
    const consume = async (group: string, streamPrefixes: string[], handler: EventHandler, concurrency = 8) => {
      const consumer = await bus.consume({ group, streamPrefixes, concurrency }, handler);
      consumers.push(consumer);
      return consumer;
    };

    beforeAll(async () => {
      subject = await factory();
      store = subject.eventStore;
      bus = subject.bus;
    });
    afterAll(async () => {
      await Promise.allSettled(consumers.map((c) => c.stop()));
      await subject?.close();
    });

    it('delivers every event of its streams once to a group, each stream in order', async () => {
      const cat = newCategory();
      const other = newCategory();
      const appended = await appendRounds(store, cat, 8, 5);
      await appendRounds(store, other, 2, 1);
      const rec = recorder();
      const consumer = await consume(`g-${cat}`, [`${cat}-`], async (e) => rec.handle(e));
      await expect.poll(() => rec.effects.size, POLL).toBe(appended.length);
      await sleep(300);
      expect(new Set(rec.effects.keys())).toEqual(ids(appended));
      expect(rec.redelivered).toEqual([]);
      for (let s = 0; s < 8; s++) expect(rec.order.get(`${cat}-${s}`)).toEqual([0, 1, 2, 3, 4]);
      const last = Math.max(...[...rec.effects.values()].map((e) => e.globalPosition));
      await expect.poll(() => consumer.position, POLL).toBeGreaterThanOrEqual(last);
      await consumer.stop();
    });

    it('handles different streams concurrently, never two events of one stream at once', async () => {
      const cat = newCategory();
      const appended = await appendRounds(store, cat, 6, 4);
      let inFlight = 0;
      let maxInFlight = 0;
      const perStream = new Map<string, number>();
      let overlapInStream = false;
      const rec = recorder();
      const consumer = await consume(
        `g-${cat}`,
        [`${cat}-`],
        async (e) => {
          inFlight++;
          maxInFlight = Math.max(maxInFlight, inFlight);
          const n = (perStream.get(e.streamId) ?? 0) + 1;
          perStream.set(e.streamId, n);
          if (n > 1) overlapInStream = true;
          await sleep(40);
          perStream.set(e.streamId, perStream.get(e.streamId)! - 1);
          inFlight--;
          rec.handle(e);
        },
        4,
      );
      await expect.poll(() => rec.effects.size, POLL).toBe(appended.length);
      expect(overlapInStream).toBe(false);
      expect(maxInFlight).toBeGreaterThan(1);
      expect(maxInFlight).toBeLessThanOrEqual(4);
      for (let s = 0; s < 6; s++) expect(rec.order.get(`${cat}-${s}`)).toEqual([0, 1, 2, 3]);
      await consumer.stop();
    });

    it('gives every event to each of two groups', async () => {
      const cat = newCategory();
      const a = recorder();
      const b = recorder();
      const ca = await consume(`ga-${cat}`, [`${cat}-`], async (e) => a.handle(e));
      const cb = await consume(`gb-${cat}`, [`${cat}-`], async (e) => b.handle(e));
      const appended = await appendRounds(store, cat, 5, 4);
      await expect.poll(() => a.effects.size, POLL).toBe(appended.length);
      await expect.poll(() => b.effects.size, POLL).toBe(appended.length);
      expect(new Set(a.effects.keys())).toEqual(ids(appended));
      expect(new Set(b.effects.keys())).toEqual(ids(appended));
      await Promise.all([ca.stop(), cb.stop()]);
    });

    it('continues where the group left off after a consumer stopped mid-stream: no event lost, none handled twice', async () => {
      const cat = newCategory();
      const group = `g-${cat}`;
      const rec = recorder();
      const first = await appendRounds(store, cat, 5, 4);
      const slow = async (e: StoredEvent) => {
        await sleep(25);
        rec.handle(e);
      };
      const c1 = await consume(group, [`${cat}-`], slow, 2);
      await expect.poll(() => rec.effects.size, POLL).toBeGreaterThanOrEqual(5);
      await c1.stop(); // while handlers are in flight and events are still waiting
      const second = await appendRounds(store, cat, 5, 2, 4);
      const c2 = await consume(group, [`${cat}-`], async (e) => rec.handle(e));
      const all = [...first, ...second];
      await expect.poll(() => rec.effects.size, POLL).toBe(all.length);
      await sleep(300);
      expect(new Set(rec.effects.keys())).toEqual(ids(all));
      expect(rec.redelivered).toEqual([]);
      for (let s = 0; s < 5; s++) expect(rec.order.get(`${cat}-${s}`)).toEqual([0, 1, 2, 3, 4, 5]);
      await c2.stop();
    });

    it('retries a failing handler until it succeeds; later events of that stream wait for it', async () => {
      const cat = newCategory();
      const appended = await appendRounds(store, cat, 3, 3);
      const flaky = appended.find((e) => e.streamId === `${cat}-1` && e.n === 1)!;
      let attempts = 0;
      const rec = recorder();
      const consumer = await consume(`g-${cat}`, [`${cat}-`], async (e) => {
        if (e.id === flaky.id && ++attempts <= 2) throw new Error('transient failure');
        rec.handle(e);
      });
      await expect.poll(() => rec.effects.size, POLL).toBe(appended.length);
      expect(attempts).toBe(3);
      expect(rec.order.get(`${cat}-1`)).toEqual([0, 1, 2]);
      expect(rec.redelivered).toEqual([]);
      await consumer.stop();
    });

    const replicasTitle =
      'shares a group between two consumers (replicas): each event handled once in all, and a leaving replica hands over its work';
    it.skipIf(!capabilities.replicas)(
      capabilities.replicas ? replicasTitle : `${replicasTitle} — skipped: this adapter runs one consumer per group`,
      async () => {
        const cat = newCategory();
        const group = `g-${cat}`;
        const r1 = recorder();
        const r2 = recorder();
        const handledBy = new Map<string, number>();
        const c1 = await consume(group, [`${cat}-`], async (e) => {
          handledBy.set(e.id, (handledBy.get(e.id) ?? 0) + 1);
          r1.handle(e);
        });
        const c2 = await consume(group, [`${cat}-`], async (e) => {
          handledBy.set(e.id, (handledBy.get(e.id) ?? 0) + 1);
          r2.handle(e);
        });
        const appended = await appendRounds(store, cat, 30, 2);
        await expect.poll(() => handledBy.size, POLL).toBe(appended.length);
        await sleep(500);
        expect([...handledBy.values()].every((n) => n === 1)).toBe(true);
        expect(r1.effects.size).toBeGreaterThan(0);
        expect(r2.effects.size).toBeGreaterThan(0);
        // A stream belongs to one replica at a time: its events are all handled by the same one.
        for (const s of new Set(appended.map((e) => e.streamId))) {
          expect(Boolean(r1.order.get(s)) !== Boolean(r2.order.get(s))).toBe(true);
        }
        await c1.stop();
        const more = await appendRounds(store, cat, 30, 1, 2);
        const all = [...appended, ...more];
        await expect.poll(() => handledBy.size, POLL).toBe(all.length);
        await sleep(300);
        expect(new Set(handledBy.keys())).toEqual(ids(all));
        expect([...handledBy.values()].every((n) => n === 1)).toBe(true);
        expect(new Set(r2.effects.keys())).toEqual(new Set([...ids(all)].filter((id) => !r1.effects.has(id))));
        await c2.stop();
      },
    );

    const dlqTitle =
      'sends a poison message to the dead-letter queue with the error in headers, and later events still flow';
    it.skipIf(!capabilities.dlq)(
      capabilities.dlq
        ? dlqTitle
        : `${dlqTitle} — skipped: this adapter has no DLQ (it parks a failing event's stream instead: eventStoreBusParking.test.ts)`,
      async () => {
        if (!capabilities.dlq || !subject.readDeadLetters)
          throw new Error('an adapter with a DLQ must provide readDeadLetters');
        const cat = newCategory();
        const appended = await appendRounds(store, cat, 2, 3);
        const poison = appended.find((e) => e.streamId === `${cat}-0` && e.n === 1)!;
        let attempts = 0;
        const rec = recorder();
        const consumer = await consume(`g-${cat}`, [`${cat}-`], async (e) => {
          if (e.id === poison.id) {
            attempts++;
            throw Object.assign(new Error('poison pill: cannot handle this event'), { code: 'TEST_ERR_POISON' });
          }
          rec.handle(e);
        });
        await expect.poll(() => rec.effects.size, POLL).toBe(appended.length - 1);
        expect(rec.effects.has(poison.id)).toBe(false);
        expect(rec.order.get(`${cat}-0`)).toEqual([0, 2]);
        expect(attempts).toBe(capabilities.dlq.attempts);
        const letters = await subject.readDeadLetters(`${cat}-`);
        expect(letters.map((l) => l.event?.id)).toEqual([poison.id]);
        const h = letters[0]!.headers;
        expect(h['x-settle-error']).toContain('poison pill');
        expect(h['x-settle-error-code']).toBe('TEST_ERR_POISON');
        expect(h['x-settle-attempts']).toBe(String(capabilities.dlq.attempts));
        expect(h['x-settle-original-topic']).toContain(cat);
        expect(h['x-settle-original-partition']).toMatch(/^\d+$/);
        expect(h['x-settle-original-offset']).toMatch(/^\d+$/);
        expect(h['ce_id']).toBe(poison.id);
        await consumer.stop();
        // The group committed past the poison message: a restarted consumer does not see it again.
        const again = recorder();
        const c2 = await consume(`g-${cat}`, [`${cat}-`], async (e) => again.handle(e));
        const later = await appendRounds(store, cat, 1, 1, 3);
        await expect.poll(() => again.effects.size, POLL).toBe(1);
        expect([...again.effects.keys()]).toEqual([later[0]!.id]);
        await c2.stop();
      },
    );
  });
}
