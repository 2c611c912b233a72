import { createRequire } from 'node:module';
import { createClient } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { DEFAULT_GRAPHQL_LIMITS, validateWithLimits } from './limits.js';
import { schema } from './schema.js';
import { createHarness, type Harness } from './testing.js';
import type { QueryDeps } from './context.js';

// The CommonJS graphql, as limits.ts and mercurius use (see there).
const { buildSchema, getIntrospectionQuery, parse } = createRequire(import.meta.url)(
  'graphql',
) as typeof import('graphql');
const sdl = buildSchema(schema);
const codes = (query: string, introspection = false) =>
  validateWithLimits(sdl, parse(query), { ...DEFAULT_GRAPHQL_LIMITS, introspection }).map((e) => e.extensions.code);

const nest = (depth: number) => `{ __type(name: "Request") { ${'ofType { '.repeat(depth)}name${' }'.repeat(depth)} } }`;
const aliases = (n: number) => `{ ${Array.from({ length: n }, (_, i) => `a${i}: preferences { userId }`).join(' ')} }`;

describe('GraphQL limit rules', () => {
  it('lets ordinary queries through, including the largest page', () => {
    expect(
      codes(
        '{ requests(first: 100) { totalCount pageInfo { hasNextPage endCursor } edges { cursor node { id authId merchantId amount currency status reference description callbackUrl attempts lastError createdAt updatedAt version events { type position occurredAt } } } } }',
      ),
    ).toEqual([]);
    expect(codes('query ($n: Int) { requests(first: $n) { nodes { id events { type } } } }')).toEqual([]);
    expect(
      codes('{ merchantStats { registered settledAmounts { currency amount } } projections { name parkedStreams } }'),
    ).toEqual([]);
    expect(codes(aliases(30))).toEqual([]);
  });

  it("lets GraphiQL's introspection query through when introspection is on, and refuses it when off", () => {
    expect(codes(getIntrospectionQuery(), true)).toEqual([]);
    expect(codes(getIntrospectionQuery(), false)).toContain('GRAPHQL_INTROSPECTION_DISABLED');
    expect(codes('{ __typename }', false)).toEqual([]);
  });

  it('refuses depth bombs', () => {
    expect(codes(nest(12), true)).toEqual([]);
    expect(codes(nest(20), true)).toContain('GRAPHQL_DEPTH_LIMIT');
    // Through fragments too.
    const viaFragments = `{ __type(name: "Request") { ...A } } fragment A on __Type { ofType { ...B } } fragment B on __Type { ofType { ...C } } fragment C on __Type { ${'ofType { '.repeat(14)}name${' }'.repeat(14)} }`;
    expect(codes(viaFragments, true)).toContain('GRAPHQL_DEPTH_LIMIT');
  });

  it('refuses exponential introspection (cost) even with introspection on', () => {
    const bomb =
      '{ __schema { types { fields { type { fields { type { fields { type { fields { name } } } } } } } } } }';
    expect(codes(bomb, true)).toContain('GRAPHQL_COST_LIMIT');
  });

  it('refuses alias bombs, field floods and operation floods', () => {
    expect(codes(aliases(31))).toContain('GRAPHQL_ALIAS_LIMIT');
    expect(codes(`{ preferences { ${'userId '.repeat(600)} } }`)).toContain('GRAPHQL_FIELD_LIMIT');
    // Past graphql's own give-up point for overlapping fields, the limit still names itself.
    expect(codes(`{ preferences { ${'userId '.repeat(1000)} } }`)).toContain('GRAPHQL_FIELD_LIMIT');
    const ops = Array.from({ length: 25 }, (_, i) => `query q${i} { __typename }`).join(' ');
    expect(codes(ops)).toContain('GRAPHQL_OPERATION_LIMIT');
  });

  it('survives fragment cycles (reported by the standard rule, not a stack overflow)', () => {
    const cyc = '{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }';
    expect(codes(cyc)).toContain(undefined); // graphql's NoFragmentCycles has no code; the formatter adds one
  });
});

describe('GraphQL limits over HTTP and websockets', () => {
  let h: Harness;
  let dev: Harness;
  let wsUrl: string;
  beforeAll(async () => {
    h = await createHarness();
    dev = await createHarness({ graphiql: true } as Partial<QueryDeps>);
    await h.app.listen({ port: 0, host: '127.0.0.1' });
    const address = h.app.server.address();
    if (!address || typeof address === 'string') throw new Error('not listening');
    wsUrl = `ws://127.0.0.1:${address.port}/graphql`;
  });
  afterAll(async () => {
    await h.close();
    await dev.close();
  });

  it('answers every refusal with extensions.code and no 5xx', async () => {
    for (const [query, code] of [
      [nest(30), 'GRAPHQL_DEPTH_LIMIT'],
      [aliases(100), 'GRAPHQL_ALIAS_LIMIT'],
      ['{ __schema { types { name } } }', 'GRAPHQL_INTROSPECTION_DISABLED'],
      ['{ requests(first: 1000000) { nodes { id } } }', 'BAD_USER_INPUT'],
      ['{ requests(first: 99999999999) { nodes { id } } }', 'GRAPHQL_VALIDATION_FAILED'],
      ['subscription { requestUpdated { id } }', 'GRAPHQL_SUBSCRIPTION_NEEDS_WEBSOCKET'],
    ] as const) {
      const res = await h.gql(h.token.merchant, query);
      expect(res.statusCode).toBeLessThan(500);
      expect(res.body.errors?.map((e) => e.extensions?.code)).toContain(code);
    }
  });

  it('refuses a document over the token limit before building it', async () => {
    const res = await h.gql(h.token.merchant, `{ preferences { ${'userId '.repeat(6000)} } }`);
    expect(res.statusCode).toBe(400);
    expect(res.body.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
  });

  it('refuses batched queries', async () => {
    const res = await h.app.inject({
      method: 'POST',
      url: '/graphql',
      headers: { authorization: `Bearer ${h.token.merchant}` },
      payload: [{ query: '{ __typename }' }, { query: '{ __typename }' }],
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().errors[0].extensions.code).toBe('GRAPHQL_BATCH_LIMIT');
  });

  it('answers introspection in development (SETTLE_GRAPHQL_INTROSPECTION defaults to on there)', async () => {
    const res = await dev.gql(dev.token.merchant, getIntrospectionQuery());
    expect(res.body.errors).toBeUndefined();
    expect(res.statusCode).toBe(200);
  });

  it('applies the limits to websocket subscriptions, which mercurius does not validate', async () => {
    const client = createClient({
      url: wsUrl,
      webSocketImpl: WebSocket,
      retryAttempts: 0,
      connectionParams: { authorization: `Bearer ${h.token.merchant}` },
    });
    const outcome = await new Promise<unknown>((resolve) => {
      const bomb = `subscription { requestUpdated { ${Array.from({ length: 40 }, (_, i) => `a${i}: id`).join(' ')} } }`;
      client.subscribe(
        { query: bomb },
        { next: (v) => resolve(v), error: (e) => resolve(e), complete: () => resolve('complete') },
      );
    });
    await client.dispose();
    expect(JSON.stringify(outcome)).toContain('GRAPHQL_ALIAS_LIMIT');
  });
});
