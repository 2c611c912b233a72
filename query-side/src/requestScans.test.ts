import { REQUEST_STATUSES, type RequestStatus } from '@settle/domain';
import { MemoryReadStore, type Filter, type ReadStore } from '@settle/platform';
import { REQUESTS, REQUEST_SEQ_PAGE, seqPageOf, type RequestDoc } from '@settle/projections';
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildQueryApp } from './plugin.js';
import { countFromStats, newestByPages } from './resolvers/requestScans.js';
import { DEMO_MERCHANT, DEMO_MERCHANT_2, createHarness, type Harness } from './testing.js';

const STATUSES = [...REQUEST_STATUSES];

/** The same store, saying that it sorts and counts by scanning (as FerretDB 1.x does). */
const scanning = (store: ReadStore): ReadStore => Object.create(store, { scansForSorts: { value: true } }) as ReadStore;

function requestDoc(seq: number, merchantId: string, status: RequestStatus): RequestDoc {
  const id = `r${seq}`;
  const at = new Date(1_700_000_000_000 + seq * 1000).toISOString();
  return {
    _id: id,
    _position: seq,
    id,
    authId: `auth_${seq}`,
    merchantId,
    amount: 100,
    currency: 'EUR',
    reference: id,
    status,
    attempts: 0,
    attemptInFlight: false,
    nextAttemptAt: null,
    notificationAttempts: 0,
    notifyNextAttemptAt: null,
    events: [],
    createdAt: at,
    updatedAt: at,
    version: 0,
    seq,
    seqPage: seqPageOf(seq),
  };
}

describe('newestByPages (the newest requests a seqPage at a time)', () => {
  it('answers what a sorted, limited find answers, for any filter, cursor and limit', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(fc.integer({ min: 1, max: 40 * REQUEST_SEQ_PAGE }), { maxLength: 300 }),
        fc.array(fc.constantFrom('m1', 'm2', 'm3'), { minLength: 300, maxLength: 300 }),
        fc.array(fc.constantFrom(...STATUSES), { minLength: 300, maxLength: 300 }),
        fc.record({
          merchantId: fc.option(fc.constantFrom('m1', 'm2', 'm3', 'nobody'), { nil: undefined }),
          status: fc.option(fc.subarray(STATUSES), { nil: undefined }),
          limit: fc.integer({ min: 1, max: 101 }),
          before: fc.option(fc.integer({ min: 0, max: 41 * REQUEST_SEQ_PAGE }), { nil: undefined }),
          topSlack: fc.integer({ min: 0, max: 5 * REQUEST_SEQ_PAGE }),
        }),
        async (seqs, merchants, statuses, q) => {
          const store = new MemoryReadStore();
          const collection = store.collection<RequestDoc>(REQUESTS);
          await collection.putMany(seqs.map((seq, i) => requestDoc(seq, merchants[i]!, statuses[i]!)));
          const filter: Filter = {};
          if (q.merchantId !== undefined) filter.merchantId = q.merchantId;
          if (q.status !== undefined) filter.status = { $in: q.status };
          // The top is the event store's head: at or past the newest request.
          const top = Math.max(0, ...seqs) + q.topSlack;
          const expected = await collection.find({
            filter: q.before !== undefined ? { ...filter, seq: { $lt: q.before } } : filter,
            sort: [['seq', -1]],
            limit: q.limit,
          });
          const paged = await newestByPages(collection, filter, q.limit, top, q.before);
          expect(paged.map((d) => d.seq)).toEqual(expected.map((d) => d.seq));
        },
      ),
      { numRuns: 150 },
    );
  });

  it('walks a bounded number of pages, then sorts the rest in one query', async () => {
    const store = new MemoryReadStore();
    const collection = store.collection<RequestDoc>(REQUESTS);
    // One match per 10 pages: the walk gives up after its pages and one sorted query finds the rest.
    await collection.putMany(
      Array.from({ length: 10 }, (_, i) => requestDoc((i * 10 + 1) * REQUEST_SEQ_PAGE, 'm1', 'SETTLED')),
    );
    const finds: Filter[] = [];
    const counting = Object.create(collection, {
      find: {
        value: (opts: Parameters<typeof collection.find>[0]) => {
          finds.push(opts?.filter ?? {});
          return collection.find(opts);
        },
      },
    }) as typeof collection;
    const paged = await newestByPages(counting, { merchantId: 'm1' }, 5, 100 * REQUEST_SEQ_PAGE);
    expect(paged.map((d) => d.seq / REQUEST_SEQ_PAGE)).toEqual([91, 81, 71, 61, 51]);
    expect(finds.length).toBe(17);
    expect(finds.filter((f) => f.seqPage === undefined)).toHaveLength(1);
  });
});

describe('requests on a store that scans for sorts and counts (FerretDB 1.x)', () => {
  let h: Harness;
  let scanningApp: FastifyInstance;
  const subsets = fc.sample(fc.subarray(STATUSES), { numRuns: 60, seed: 7 });

  beforeAll(async () => {
    h = await createHarness();
    let last = 0;
    // Every status: in flight at each step, settled, declined, cancelled; two merchants.
    for (let i = 0; i < 30; i++) {
      const merchant = i % 3 === 0 ? DEMO_MERCHANT_2 : DEMO_MERCHANT;
      const { id, position } = await h.register(merchant, { amount: 100 + i });
      last = position;
      if (i % 6 === 1) last = await h.startAttempt(id);
      if (i % 6 === 2) {
        await h.startAttempt(id);
        last = await h.authorize(id);
      }
      if (i % 6 === 3) last = await h.settle(id);
      if (i % 6 === 4) last = await h.decline(id);
      if (i % 6 === 5) last = await h.cancel(id);
    }
    await h.caughtUp(last);
    scanningApp = await buildQueryApp({ ...h.deps, readStore: scanning(h.deps.readStore) });
  });

  afterAll(async () => {
    await scanningApp.close();
    await h.close();
  });

  it('counts from the merchantStats counters exactly what a count of the documents says', async () => {
    const collection = h.deps.readStore.collection<RequestDoc>(REQUESTS);
    let fromCounters = 0;
    for (const merchantId of [undefined, DEMO_MERCHANT, DEMO_MERCHANT_2])
      for (const status of [undefined, ...subsets]) {
        const counted = await countFromStats(h.deps, merchantId, status);
        const filter: Filter = {};
        if (merchantId !== undefined) filter.merchantId = merchantId;
        if (status !== undefined) filter.status = { $in: status };
        const actual = await collection.count(filter);
        if (counted === undefined) {
          // Only a part of the in-flight statuses, which the counters keep as one sum.
          const inFlight = ['REGISTERED', 'AUTHORIZING', 'AUTHORIZED'].filter((s) =>
            status?.includes(s as RequestStatus),
          );
          expect(inFlight.length === 1 || inFlight.length === 2).toBe(true);
          continue;
        }
        fromCounters++;
        expect({ merchantId, status, count: counted }).toEqual({ merchantId, status, count: actual });
      }
    expect(fromCounters).toBeGreaterThan(30);
    expect(await collection.count({})).toBe(30);
  });

  it('answers the same pages, cursors and totals over GraphQL as the indexed path', async () => {
    const query = /* GraphQL */ `
      query ($filter: RequestFilter, $first: Int, $after: String) {
        requests(filter: $filter, first: $first, after: $after) {
          edges {
            cursor
            node {
              id
              status
            }
          }
          pageInfo {
            hasNextPage
            endCursor
          }
          totalCount
        }
      }
    `;
    const ask = async (app: FastifyInstance, token: string, variables: Record<string, unknown>) => {
      const res = await app.inject({
        method: 'POST',
        url: '/graphql',
        headers: { authorization: `Bearer ${token}` },
        payload: { query, variables },
      });
      return res.json() as { data: { requests: { pageInfo: { endCursor: string | null; hasNextPage: boolean } } } };
    };
    for (const token of [h.token.operator, h.token.merchant, h.token.merchant2])
      for (const status of [undefined, ['SETTLED'], ['REGISTERED', 'AUTHORIZING', 'AUTHORIZED'], ['AUTHORIZED']]) {
        let after: string | null = null;
        for (let page = 0; page < 10; page++) {
          const variables = { first: 4, after, filter: status ? { status } : null };
          const indexed = await ask(h.app, token, variables);
          const scanned = await ask(scanningApp, token, variables);
          expect(scanned).toEqual(indexed);
          after = indexed.data.requests.pageInfo.endCursor;
          if (!indexed.data.requests.pageInfo.hasNextPage) break;
        }
      }
  });
});
