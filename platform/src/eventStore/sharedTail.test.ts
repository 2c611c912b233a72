import { randomUUID } from 'node:crypto';
import type { StoredEvent } from '@settle/domain';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPgliteClient } from './pgliteClient.js';
import type { SqlClient } from './sqlClient.js';
import { SqlEventStore } from './sqlEventStore.js';

const meta = { correlationId: 'c', causationId: 'c', actor: 't' };
const ev = (type: string) => ({ id: randomUUID(), type, data: {}, metadata: meta });

/** Counts the log reads a store sends (the statements subscriptions cost). */
function counting(client: SqlClient) {
  const counts = { filtered: 0, unfiltered: 0 };
  const wrapped: SqlClient = Object.create(client) as SqlClient;
  wrapped.query = (sql, params) => {
    if (/FROM settle_events\s+WHERE global_position > \$1/.test(sql)) {
      if (sql.includes('LIKE ANY')) counts.filtered++;
      else counts.unfiltered++;
    }
    return client.query(sql, params);
  };
  return { client: wrapped, counts };
}

describe('live subscriptions share one read of the log head', () => {
  let store: SqlEventStore;
  let counts: { filtered: number; unfiltered: number };
  beforeAll(async () => {
    const c = counting(await createPgliteClient(undefined));
    counts = c.counts;
    store = await SqlEventStore.create(c.client, { pollMs: 60_000 });
  });
  afterAll(async () => {
    await store.close();
  });

  it('gives each subscriber exactly its prefixes, in order, with one log read per wake-up for all of them', async () => {
    const run = randomUUID().slice(0, 8);
    const prefixes = [`a${run}-`, `b${run}-`, `c${run}-`, `d${run}-`];
    // An old event of the last prefix: its subscriber's own position stays far behind the head.
    await store.append(`${prefixes[3]}old`, [ev('Old')], { expectedRevision: 'no_stream' });
    const head = await store.headPosition();
    const seen = prefixes.map(() => [] as StoredEvent[]);
    const subs = prefixes.map((p, i) =>
      store.subscribe(
        async (batch) => {
          seen[i]!.push(...batch);
        },
        { after: 0, streamPrefixes: [p] },
      ),
    );
    await expect.poll(() => seen[3]!.length).toBe(1);
    const before = { ...counts };
    const written: string[][] = prefixes.map(() => []);
    for (let round = 0; round < 20; round++) {
      // One prefix per round: the others find nothing new for them.
      const i = round % 3;
      const e = ev(`E${round}`);
      written[i]!.push(e.id);
      await store.append(`${prefixes[i]}${round}`, [e], { expectedRevision: 'no_stream' });
      await expect.poll(() => seen[i]!.length).toBe(written[i]!.length);
    }
    for (let i = 0; i < 3; i++) {
      expect(seen[i]!.map((e) => e.id)).toEqual(written[i]);
      for (let k = 1; k < seen[i]!.length; k++)
        expect(seen[i]![k]!.globalPosition).toBeGreaterThan(seen[i]![k - 1]!.globalPosition);
    }
    expect(seen[3]!.map((e) => e.type)).toEqual(['Old']);
    expect(seen[3]![0]!.globalPosition).toBeLessThanOrEqual(head);
    // Four subscribers reading on their own would send at least 4 filtered reads per append.
    expect(counts.filtered - before.filtered).toBe(0);
    expect(counts.unfiltered - before.unfiltered).toBeLessThanOrEqual(20 * 2);
    await Promise.all(subs.map((s) => s.stop()));
  });
});
