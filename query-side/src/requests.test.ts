import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { MemoryReadStore } from '@settle/platform';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_MERCHANT, DEMO_MERCHANT_2, createHarness, type GraphQLResponse, type Harness } from './testing.js';

const REQUEST = /* GraphQL */ `
  query ($id: ID!, $asOf: String, $minPosition: String) {
    request(id: $id, asOf: $asOf, minPosition: $minPosition) {
      id
      authId
      merchantId
      amount
      currency
      status
      reference
      description
      callbackUrl
      attempts
      lastError
      events {
        type
        position
        occurredAt
      }
      createdAt
      updatedAt
      version
    }
  }
`;

const REQUESTS = /* GraphQL */ `
  query ($filter: RequestFilter, $first: Int, $after: String) {
    requests(filter: $filter, first: $first, after: $after) {
      edges {
        cursor
        node {
          id
          status
          merchantId
          createdAt
        }
      }
      nodes {
        id
      }
      pageInfo {
        hasNextPage
        endCursor
      }
      totalCount
    }
  }
`;

interface Connection {
  requests: {
    edges: { cursor: string; node: { id: string; status: string; merchantId: string; createdAt: string } }[];
    nodes: { id: string }[];
    pageInfo: { hasNextPage: boolean; endCursor: string | null };
    totalCount: number;
  };
}

let h: Harness;
beforeAll(async () => {
  h = await createHarness();
});
afterAll(async () => {
  await h.close();
});

describe('request(id)', () => {
  it('answers a registered request with its timeline', async () => {
    const { id } = await h.register(DEMO_MERCHANT, {
      amount: 1_000_000_000_000,
      currency: 'EUR',
      reference: 'order-42',
    });
    await h.caughtUp(await h.settle(id));

    const res = await h.gql(h.token.merchant, REQUEST, { id });

    expect(res.statusCode).toBe(200);
    expect(res.body.errors).toBeUndefined();
    const request = res.body.data!.request as Record<string, unknown>;
    expect(request).toMatchObject({
      id,
      merchantId: DEMO_MERCHANT,
      amount: '1000000000000',
      currency: 'EUR',
      status: 'SETTLED',
      reference: 'order-42',
      description: 'Test payment',
      callbackUrl: 'https://merchant.example/settle',
      attempts: 1,
      lastError: null,
      version: 4,
    });
    expect((request.authId as string).startsWith('auth_')).toBe(true);
    const events = request.events as { type: string; position: string; occurredAt: string }[];
    expect(events.map((e) => e.type)).toEqual([
      'RequestRegistered',
      'PaymentAuthorizationRequested',
      'PaymentAuthorized',
      'CallbackReceived',
      'PaymentSettled',
    ]);
    expect(events.every((e) => /^\d+$/.test(e.position) && !Number.isNaN(Date.parse(e.occurredAt)))).toBe(true);
    expect(request.createdAt).toBe(events[0]!.occurredAt);
    expect(request.updatedAt).toBe(events[4]!.occurredAt);
  });

  it('answers null for an unknown id', async () => {
    const res = await h.gql(h.token.merchant, REQUEST, { id: randomUUID() });
    expect(res.body).toEqual({ data: { request: null } });
  });

  it('answers null, not an error, for another merchant’s request; operators see it', async () => {
    const { id, position } = await h.register(DEMO_MERCHANT_2);
    await h.caughtUp(position);

    const asOther = await h.gql(h.token.merchant, REQUEST, { id });
    expect(asOther.body).toEqual({ data: { request: null } });

    const asOwner = await h.gql(h.token.merchant2, REQUEST, { id });
    expect((asOwner.body.data!.request as { id: string }).id).toBe(id);

    const asOperator = await h.gql(h.token.operator, REQUEST, { id });
    expect((asOperator.body.data!.request as { merchantId: string }).merchantId).toBe(DEMO_MERCHANT_2);
  });

  it('reads through the cache, and sees the next change once the projector has invalidated it', async () => {
    const { id, position } = await h.register(DEMO_MERCHANT);
    await h.caughtUp(position);

    await h.gql(h.token.merchant, REQUEST, { id });
    expect(await h.cache.get(`request:${id}`)).toMatchObject({ id, status: 'REGISTERED' });

    await h.caughtUp(await h.cancel(id));
    const res = await h.gql(h.token.merchant, REQUEST, { id });
    expect((res.body.data!.request as { status: string }).status).toBe('CANCELLED');
  });

  it('serves a cached document without going to the read store', async () => {
    const { id, position } = await h.register(DEMO_MERCHANT, { reference: 'from-store' });
    await h.caughtUp(position);
    await h.gql(h.token.merchant, REQUEST, { id });
    const cached = (await h.cache.get<Record<string, unknown>>(`request:${id}`))!;
    await h.cache.set(`request:${id}`, { ...cached, reference: 'from-cache' }, 30_000);

    const res = await h.gql(h.token.merchant, REQUEST, { id });
    expect((res.body.data!.request as { reference: string }).reference).toBe('from-cache');
  });
});

describe('request(id, asOf) — time travel', () => {
  it('folds the stream up to a global position', async () => {
    const { id, position: registeredAt } = await h.register(DEMO_MERCHANT);
    const authorizingAt = await h.startAttempt(id);
    const authorizedAt = await h.authorize(id);
    await h.caughtUp(await h.capture(id));

    const status = async (asOf: string) => {
      const res = await h.gql(h.token.merchant, REQUEST, { id, asOf });
      expect(res.body.errors).toBeUndefined();
      return res.body.data!.request as { status: string; version: number; events: unknown[] } | null;
    };
    expect(await status(String(registeredAt - 1))).toBeNull();
    expect(await status(String(registeredAt))).toMatchObject({
      status: 'REGISTERED',
      version: 0,
      events: [expect.anything()],
    });
    expect(await status(String(authorizingAt))).toMatchObject({ status: 'AUTHORIZING', version: 1 });
    expect(await status(String(authorizedAt))).toMatchObject({ status: 'AUTHORIZED', version: 2 });
    expect((await status(String(authorizedAt + 1000)))!.status).toBe('SETTLED');
  });

  it('folds the stream up to a time, inclusive of the millisecond the API shows', async () => {
    const { id } = await h.register(DEMO_MERCHANT);
    await sleep(5);
    await h.startAttempt(id);
    await sleep(5);
    await h.caughtUp(await h.authorize(id));
    const now = await h.gql(h.token.merchant, REQUEST, { id });
    const events = (now.body.data!.request as { events: { type: string; occurredAt: string }[] }).events;

    const res = await h.gql(h.token.merchant, REQUEST, { id, asOf: events[1]!.occurredAt });
    expect(res.body.data!.request).toMatchObject({ status: 'AUTHORIZING', version: 1 });
  });

  it('keeps merchants apart in the past too', async () => {
    const { id, position } = await h.register(DEMO_MERCHANT_2);
    const res = await h.gql(h.token.merchant, REQUEST, { id, asOf: String(position) });
    expect(res.body).toEqual({ data: { request: null } });
  });

  it('rejects an asOf that is neither a position nor a time, naming the argument', async () => {
    const res = await h.gql(h.token.merchant, REQUEST, { id: randomUUID(), asOf: 'yesterday' });
    expect(res.body.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'asOf' });
  });
});

describe('requests — pagination and filters', () => {
  it('walks three pages newest first, with the total of the filtered set', async () => {
    const merchantId = `m-${randomUUID()}`;
    const ids: string[] = [];
    let last = 0;
    for (let i = 0; i < 5; i++) {
      const r = await h.register(merchantId);
      ids.push(r.id);
      last = r.position;
    }
    await h.caughtUp(last);

    const seen: string[] = [];
    let after: string | null = null;
    const pages: { size: number; hasNextPage: boolean; totalCount: number }[] = [];
    do {
      const res: GraphQLResponse<Connection> = await h.gql<Connection>(h.token.operator, REQUESTS, {
        filter: { merchantId },
        first: 2,
        after,
      });
      expect(res.body.errors).toBeUndefined();
      const c = res.body.data!.requests;
      expect(c.nodes.map((n) => n.id)).toEqual(c.edges.map((e) => e.node.id));
      expect(c.pageInfo.endCursor).toBe(c.edges.at(-1)?.cursor ?? null);
      seen.push(...c.edges.map((e) => e.node.id));
      pages.push({ size: c.edges.length, hasNextPage: c.pageInfo.hasNextPage, totalCount: c.totalCount });
      after = c.pageInfo.hasNextPage ? c.pageInfo.endCursor : null;
    } while (after !== null);

    expect(pages).toEqual([
      { size: 2, hasNextPage: true, totalCount: 5 },
      { size: 2, hasNextPage: true, totalCount: 5 },
      { size: 1, hasNextPage: false, totalCount: 5 },
    ]);
    expect(seen).toEqual([...ids].reverse());
  });

  it('shows a merchant only its own requests, whatever the filter says', async () => {
    const mine = await h.register(DEMO_MERCHANT);
    const theirs = await h.register(DEMO_MERCHANT_2);
    await h.caughtUp(Math.max(mine.position, theirs.position));

    const res = await h.gql<Connection>(h.token.merchant, REQUESTS, { first: 100 });
    const c = res.body.data!.requests;
    expect(c.edges.every((e) => e.node.merchantId === DEMO_MERCHANT)).toBe(true);
    expect(c.nodes.map((n) => n.id)).toContain(mine.id);
    expect(c.nodes.map((n) => n.id)).not.toContain(theirs.id);
    const operator = await h.gql<Connection>(h.token.operator, REQUESTS, {
      filter: { merchantId: DEMO_MERCHANT },
      first: 1,
    });
    expect(c.totalCount).toBe(operator.body.data!.requests.totalCount);

    const naming = await h.gql(h.token.merchant, REQUESTS, { filter: { merchantId: DEMO_MERCHANT_2 } });
    expect(naming.body.data).toBeNull();
    expect(naming.body.errors![0]!.extensions).toMatchObject({ code: 'FORBIDDEN' });
  });

  it('lets operators list every merchant', async () => {
    const a = await h.register(DEMO_MERCHANT);
    const b = await h.register(DEMO_MERCHANT_2);
    await h.caughtUp(b.position);
    const res = await h.gql<Connection>(h.token.operator, REQUESTS, { first: 100 });
    const ids = res.body.data!.requests.nodes.map((n) => n.id);
    expect(ids).toEqual(expect.arrayContaining([a.id, b.id]));
  });

  it('filters by status', async () => {
    const merchantId = `m-${randomUUID()}`;
    const settled = await h.register(merchantId);
    const declined = await h.register(merchantId);
    const cancelled = await h.register(merchantId);
    const open = await h.register(merchantId);
    await h.settle(settled.id);
    await h.decline(declined.id);
    await h.caughtUp(await h.cancel(cancelled.id));
    await h.caughtUp(open.position);

    const list = async (status: string[]) => {
      const res = await h.gql<Connection>(h.token.operator, REQUESTS, { filter: { merchantId, status } });
      return res.body.data!.requests;
    };
    expect((await list(['SETTLED'])).nodes).toEqual([{ id: settled.id }]);
    const terminal = await list(['DECLINED', 'CANCELLED']);
    expect(terminal.nodes).toEqual([{ id: cancelled.id }, { id: declined.id }]);
    expect(terminal.totalCount).toBe(2);
    expect((await list(['REGISTERED'])).nodes).toEqual([{ id: open.id }]);
  });

  it('filters by registration time, both bounds inclusive', async () => {
    const merchantId = `m-${randomUUID()}`;
    const created: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await h.register(merchantId);
      await h.caughtUp(r.position);
      created.push(r.id);
      await sleep(5);
    }
    const all = await h.gql<Connection>(h.token.operator, REQUESTS, { filter: { merchantId } });
    const at = new Map(all.body.data!.requests.edges.map((e) => [e.node.id, e.node.createdAt]));
    const [first, second, third] = created.map((id) => at.get(id)!);
    expect(new Set([first, second, third]).size).toBe(3);

    const window = await h.gql<Connection>(h.token.operator, REQUESTS, {
      filter: { merchantId, from: second, to: second },
    });
    expect(window.body.data!.requests.nodes).toEqual([{ id: created[1] }]);
    const since = await h.gql<Connection>(h.token.operator, REQUESTS, { filter: { merchantId, from: second } });
    expect(since.body.data!.requests.nodes).toEqual([{ id: created[2] }, { id: created[1] }]);
    const until = await h.gql<Connection>(h.token.operator, REQUESTS, { filter: { merchantId, to: second } });
    expect(until.body.data!.requests.totalCount).toBe(2);
    expect(first! < second!).toBe(true);
    expect(second! < third!).toBe(true);
  });

  it('rejects a page size outside 1..100 and a forged cursor, naming the argument', async () => {
    for (const first of [0, 101, -1]) {
      const res = await h.gql(h.token.operator, REQUESTS, { first });
      expect(res.body.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'first' });
    }
    const res = await h.gql(h.token.operator, REQUESTS, { after: 'not-a-cursor!' });
    expect(res.body.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'after' });
  });

  it('rejects a date that is not ISO 8601', async () => {
    const res = await h.gql(h.token.operator, REQUESTS, { filter: { from: 'last tuesday' } });
    expect(res.body.data ?? null).toBeNull();
    expect(res.body.errors![0]!.message).toMatch(/DateTime/);
  });
});

describe('read-your-writes', () => {
  it('waits for minPosition before reading', async () => {
    const { id, position } = await h.register(DEMO_MERCHANT);
    // Not waiting for the projector here: the query must.
    const res = await h.gql(h.token.merchant, REQUEST, { id, minPosition: String(position) });
    expect((res.body.data!.request as { id: string }).id).toBe(id);
    expect(res.body.extensions).toBeUndefined();
  });

  it('takes the position from the x-settle-min-position header too', async () => {
    const { id, position } = await h.register(DEMO_MERCHANT);
    const res = await h.gql(h.token.merchant, REQUEST, { id }, { 'x-settle-min-position': String(position) });
    expect((res.body.data!.request as { id: string }).id).toBe(id);
  });

  it('answers anyway, marked stale, when the position is not reached in time', async () => {
    const quick = await createHarness({ readWaitMs: 50 });
    try {
      const far = String(1_000_000);
      const started = Date.now();
      const res = await quick.gql(quick.token.merchant, REQUEST, { id: randomUUID(), minPosition: far });
      expect(res.body).toEqual({ data: { request: null }, extensions: { stale: true } });
      expect(Date.now() - started).toBeLessThan(2000);
      const header = await quick.gql(quick.token.merchant, REQUESTS, {}, { 'x-settle-min-position': far });
      expect(header.body.extensions).toEqual({ stale: true });
    } finally {
      await quick.close();
    }
  });

  it('rejects a minPosition that is not a position', async () => {
    const res = await h.gql(h.token.merchant, REQUEST, { id: randomUUID(), minPosition: '-3' });
    expect(res.body.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'minPosition' });
    const header = await h.gql(h.token.merchant, REQUEST, { id: randomUUID() }, { 'x-settle-min-position': 'soon' });
    expect(header.statusCode).toBe(400);
    expect(header.body.errors![0]!.extensions).toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'x-settle-min-position',
    });
  });
});

describe('a read store that does not answer', () => {
  it('answers SERVICE_UNAVAILABLE, not an internal error, without the driver message', async () => {
    const timedOut = Object.assign(new Error('connection 7 to 127.0.0.1:27017 timed out'), {
      name: 'MongoNetworkTimeoutError',
    });
    // The port as a driver that lost its server answers: every read fails with its timeout error.
    const silent = new MemoryReadStore();
    silent.collection = () => {
      const fail = () => Promise.reject(timedOut);
      return { find: fail, count: fail, get: fail, getMany: fail } as never;
    };
    const down = await createHarness({ readStore: silent });
    try {
      const res = await down.gql(down.token.merchant, '{ requests { totalCount } }');
      expect(res.body.errors?.[0]?.extensions).toMatchObject({ code: 'SERVICE_UNAVAILABLE', retryAfterSeconds: 1 });
      expect(JSON.stringify(res.body)).not.toContain('27017');
    } finally {
      await down.close();
    }
  });
});
