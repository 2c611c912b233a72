import { randomUUID } from 'node:crypto';
import type { ReadDoc, ReadStore } from '@settle/platform';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildQueryApp } from './plugin.js';
import { createHarness, type Harness } from './testing.js';

let h: Harness;
beforeAll(async () => {
  h = await createHarness();
});
afterAll(async () => {
  await h.close();
});

const PROJECTIONS = /* GraphQL */ `
  {
    projections {
      name
      version
      state
      position
      headPosition
      lagEvents
      lagSeconds
      parkedStreams
    }
  }
`;

describe('authentication', () => {
  it('answers 401 UNAUTHENTICATED without a token, before reading anything', async () => {
    const res = await h.gql(undefined, '{ __typename }');
    expect(res.statusCode).toBe(401);
    expect(res.body.data ?? null).toBeNull();
    expect(res.body.errors).toEqual([expect.objectContaining({ extensions: { code: 'UNAUTHENTICATED' } })]);
  });

  it('answers 401 for a token that does not verify, without saying why', async () => {
    for (const bad of ['not-a-jwt', `${h.token.merchant.slice(0, -4)}AAAA`]) {
      const res = await h.gql(bad, '{ preferences { userId } }');
      expect(res.statusCode).toBe(401);
      expect(res.body.errors![0]!.extensions).toEqual({ code: 'UNAUTHENTICATED' });
      expect(res.body.errors![0]!.message).toBe('the bearer token is invalid or expired');
    }
  });

  it('rejects a token signed by another key', async () => {
    const other = await createHarness();
    try {
      const res = await h.gql(other.token.operator, '{ preferences { userId } }');
      expect(res.statusCode).toBe(401);
    } finally {
      await other.close();
    }
  });

  it('refuses the token of a client disabled since it was issued', async () => {
    const client = await h.clients.add({
      id: 'shop-3',
      name: 'Shop 3',
      roles: ['merchant'],
      merchantId: 'shop-3',
      secret: 'x',
    });
    const { access_token } = await h.tokens.issue(client);
    expect((await h.gql(access_token, '{ __typename }')).statusCode).toBe(200);
    await h.clients.add({
      id: 'shop-3',
      name: 'Shop 3',
      roles: ['merchant'],
      merchantId: 'shop-3',
      secret: 'x',
      disabled: true,
    });
    const res = await h.gql(access_token, '{ __typename }');
    expect(res.statusCode).toBe(401);
    expect(res.body.errors![0]!.extensions).toEqual({ code: 'UNAUTHENTICATED' });
  });

  it('needs the Bearer scheme', async () => {
    const res = await h.app.inject({
      method: 'POST',
      url: '/graphql',
      headers: { authorization: `Basic ${h.token.merchant}` },
      payload: { query: '{ __typename }' },
    });
    expect(res.statusCode).toBe(401);
    expect(res.headers['www-authenticate']).toBe('Bearer');
  });

  it('authenticates GET queries too', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/graphql?query=%7B__typename%7D' });
    expect(res.statusCode).toBe(401);
    const ok = await h.app.inject({
      method: 'GET',
      url: '/graphql?query=%7B__typename%7D',
      headers: { authorization: `Bearer ${h.token.merchant}` },
    });
    expect(ok.json()).toEqual({ data: { __typename: 'Query' } });
  });
});

describe('operator fields', () => {
  it('shows the projections to operators', async () => {
    const { position } = await h.register('demo-merchant');
    await h.caughtUp(position);
    const res = await h.gql(h.token.operator, PROJECTIONS);
    expect(res.body.errors).toBeUndefined();
    const list = res.body.data!.projections as Record<string, unknown>[];
    expect(list.map((p) => p.name)).toEqual(['requests', 'merchantStats', 'preferences']);
    expect(list[0]).toEqual({
      name: 'requests',
      version: 1,
      state: 'live',
      position: String(position),
      headPosition: String(position),
      lagEvents: 0,
      lagSeconds: 0,
      parkedStreams: [],
    });
  });

  it('refuses them to merchants', async () => {
    const res = await h.gql(h.token.merchant, PROJECTIONS);
    expect(res.body.data).toBeNull();
    expect(res.body.errors![0]!.extensions).toMatchObject({ code: 'FORBIDDEN' });
  });

  it('checks the role before acting on a projection', async () => {
    const mutations = [
      'mutation { rebuildProjection(name: "nope") { name } }',
      'mutation { rollbackProjection(name: "nope") { name } }',
    ];
    for (const m of mutations) {
      const merchant = await h.gql(h.token.merchant, m);
      expect(merchant.body.errors![0]!.extensions).toMatchObject({ code: 'FORBIDDEN' });
      const operator = await h.gql(h.token.operator, m);
      expect(operator.body.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'name' });
    }
  });

  it('checks the role before looking for a parked stream', async () => {
    for (const m of ['retryParked', 'skipParked']) {
      const merchant = await h.gql(h.token.merchant, `mutation { ${m}(streamId: "request-1") }`);
      expect(merchant.body.errors![0]!.extensions).toMatchObject({ code: 'FORBIDDEN' });
      const operator = await h.gql(h.token.operator, `mutation { ${m}(streamId: "request-1") }`);
      expect(operator.body.errors![0]!.extensions).toMatchObject({ code: 'NOT_FOUND', field: 'streamId' });
    }
    const listed = await h.gql(h.token.merchant, '{ parkedStreams { streamId } }');
    expect(listed.body.errors![0]!.extensions).toMatchObject({ code: 'FORBIDDEN' });
  });
});

describe('errors', () => {
  it('never shows a driver’s message: INTERNAL_SERVER_ERROR with a generic message', async () => {
    const broken: ReadStore = {
      ...h.readStore,
      name: 'broken',
      durable: false,
      collection: <T extends ReadDoc>(name: string) => {
        const real = h.readStore.collection<T>(name);
        return {
          ...real,
          get: async () => Promise.reject(new Error('MongoServerError: auth failed for user settle:hunter2@db')),
        };
      },
      ensureIndexes: h.readStore.ensureIndexes.bind(h.readStore),
      getCheckpoint: h.readStore.getCheckpoint.bind(h.readStore),
      saveCheckpoint: h.readStore.saveCheckpoint.bind(h.readStore),
      ping: async () => {},
      close: async () => {},
    };
    const app = await buildQueryApp({ ...h.deps, readStore: broken });
    try {
      const res = await app.inject({
        method: 'POST',
        url: '/graphql',
        headers: { authorization: `Bearer ${h.token.merchant}` },
        payload: { query: '{ preferences { userId } }' },
      });
      const body = res.json();
      expect(body.errors).toEqual([
        expect.objectContaining({
          message: 'internal server error',
          path: ['preferences'],
          extensions: { code: 'INTERNAL_SERVER_ERROR' },
        }),
      ]);
      expect(JSON.stringify(body)).not.toMatch(/hunter2|Mongo/);
    } finally {
      await app.close();
    }
  });

  it('answers documents that do not validate with GRAPHQL_VALIDATION_FAILED', async () => {
    const res = await h.gql(h.token.merchant, '{ request(id: "x") { noSuchField } }');
    expect(res.statusCode).toBe(400);
    expect(res.body.errors![0]!.extensions).toMatchObject({ code: 'GRAPHQL_VALIDATION_FAILED' });
  });

  it('answers a principal without a reading role with FORBIDDEN', async () => {
    const client = await h.clients.add({
      id: 'svc-reporting',
      name: 'Reporting service',
      roles: ['service'],
      secret: 'x',
    });
    const service = await h.tokens.issue(client);
    const res = await h.gql(service.access_token, 'query ($id: ID!) { request(id: $id) { id } }', { id: randomUUID() });
    expect(res.body.errors![0]!.extensions).toMatchObject({ code: 'FORBIDDEN' });
  });
});

describe('GraphiQL', () => {
  it('is served at /graphiql only when enabled', async () => {
    expect((await h.app.inject({ method: 'GET', url: '/graphiql' })).statusCode).toBe(404);
    const app = await buildQueryApp({ ...h.deps, graphiql: true });
    try {
      const res = await app.inject({ method: 'GET', url: '/graphiql' });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toMatch(/text\/html/);
    } finally {
      await app.close();
    }
  });
});
