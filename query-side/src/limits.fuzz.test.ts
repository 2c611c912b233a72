import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHarness, type Harness } from './testing.js';

/**
 * The hostile-input corpus for GraphQL: generated depth bombs, alias bombs, field floods, huge
 * pages, invalid arguments and variables, fragment cycles, garbage. None may cause a 5xx, every
 * error carries `extensions.code`, and nothing is written.
 */

const RUNS = 1200;

let h: Harness;
beforeAll(async () => {
  h = await createHarness();
});
afterAll(() => h.close());

const REQUEST_FIELDS = [
  'id',
  'authId',
  'merchantId',
  'amount',
  'currency',
  'status',
  'reference',
  'description',
  'callbackUrl',
  'attempts',
  'lastError',
  'createdAt',
  'updatedAt',
  'version',
  'events { type position occurredAt }',
];
const hostileString = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom(
    "' OR 1=1 --",
    '{"$gt":""}',
    '$where',
    '../../etc',
    '\u0000',
    'NaN',
    '-1',
    '99999999999999999999999',
    '2026-13-45T99:99:99Z',
    'Infinity',
    '__proto__',
  ),
);
/** A GraphQL string literal of a hostile string. */
const lit = (s: string) => JSON.stringify(s);

const field = fc.constantFrom(...REQUEST_FIELDS);

const depthBomb = fc
  .integer({ min: 11, max: 300 })
  .map((d) => `{ __type(name: "Request") { ${'ofType { '.repeat(d)}name${' }'.repeat(d)} } }`);
const unknownNesting = fc
  .integer({ min: 2, max: 200 })
  .map((d) => `{ requests { nodes { ${'a { '.repeat(d)}b${' }'.repeat(d)} } } }`);
const aliasBomb = fc
  .tuple(fc.integer({ min: 31, max: 400 }), field)
  .map(([n, f]) => `{ request(id: "x") { ${Array.from({ length: n }, (_, i) => `a${i}: ${f}`).join(' ')} } }`);
const rootAliasBomb = fc
  .integer({ min: 31, max: 200 })
  .map(
    (n) =>
      `{ ${Array.from({ length: n }, (_, i) => `r${i}: requests(first: 100) { nodes { id events { type } } }`).join(' ')} }`,
  );
const fieldFlood = fc.integer({ min: 501, max: 1500 }).map((n) => `{ preferences { ${'userId '.repeat(n)} } }`);
const hugePage = fc
  .oneof(fc.integer({ min: 101, max: 2 ** 31 - 1 }), fc.integer({ min: -(2 ** 31), max: 0 }))
  .map((n) => `{ requests(first: ${n}) { nodes { id } } }`);
const overflowInt = fc
  .constantFrom('2147483648', '99999999999999999999', '1e10', '1.5', '-0.0', 'NaN', 'null', '"20"', 'true')
  .map((v) => `{ requests(first: ${v}) { nodes { id } } }`);
const badArgs = fc.oneof(
  hostileString.map((s) => `{ request(id: ${lit(s)}) { id } }`),
  hostileString.map((s) => `{ request(id: "abc", asOf: ${lit(s)}) { id } }`),
  hostileString.map((s) => `{ requests(after: ${lit(s)}) { nodes { id } } }`),
  hostileString.map((s) => `{ requests(minPosition: ${lit(s)}) { nodes { id } } }`),
  hostileString.map((s) => `{ requests(filter: { from: ${lit(s)} }) { nodes { id } } }`),
  hostileString.map((s) => `{ merchantStats(merchantId: ${lit(s)}, from: ${lit(s)}) { registered } }`),
  fc.constantFrom(
    '{ requests(filter: { status: [NOPE] }) { nodes { id } } }',
    '{ requests(filter: { evil: 1 }) { nodes { id } } }',
    '{ request { id } }',
    '{ request(id: null) { id } }',
    '{ request(id: ["a","b"]) { id } }',
  ),
  hostileString.map(
    (s) =>
      `mutation { registerPreferences(input: { defaultCurrency: ${lit(s)}, locale: ${lit(s)}, timezone: ${lit(s)} }) { userId } }`,
  ),
  fc
    .constantFrom('rebuildProjection', 'rollbackProjection')
    .chain((m) => hostileString.map((s) => `mutation { ${m}(name: ${lit(s)}) { name } }`)),
  fc
    .constantFrom('retryParked', 'skipParked')
    .chain((m) => hostileString.map((s) => `mutation { ${m}(streamId: ${lit(s)}) }`)),
);
const fragmentCycle = fc.integer({ min: 2, max: 30 }).map((n) => {
  const frags = Array.from({ length: n }, (_, i) => `fragment F${i} on Query { ...F${(i + 1) % n} }`).join(' ');
  return `{ ...F0 } ${frags}`;
});
const manyOperations = fc
  .integer({ min: 21, max: 200 })
  .map((n) => Array.from({ length: n }, (_, i) => `query q${i} { __typename }`).join(' '));
const introspection = fc.constantFrom(
  '{ __schema { types { name } } }',
  '{ __type(name: "Request") { fields { name } } }',
  'query { __schema { queryType { name } } }',
);
const directiveSpam = fc
  .integer({ min: 2, max: 200 })
  .map((n) => `{ preferences ${'@include(if: true) '.repeat(n)} { userId } }`);
const garbage = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc.integer({ min: 1, max: 4000 }).map((n) => '{'.repeat(n)),
  fc.integer({ min: 1, max: 2000 }).map((n) => `{ preferences { userId } }${'}'.repeat(n)}`),
  fc.constantFrom(
    '',
    ' ',
    'subscription { requestUpdated { id } }',
    '{ __typename } { __typename }',
    'query ($a: Int = "x") { __typename }',
    '{ requests(first: $undefined) { nodes { id } } }',
  ),
);

/** A document plus hostile variables. */
const badVariables = fc.tuple(fc.jsonValue({ maxDepth: 3 }), fc.jsonValue({ maxDepth: 3 })).map(([first, filter]) => ({
  query: 'query ($first: Int, $filter: RequestFilter) { requests(first: $first, filter: $filter) { nodes { id } } }',
  variables: { first, filter },
}));
/** Built inside the property: fast-check would overflow its stack printing such a value. */
const deepVariables = fc.integer({ min: 10, max: 1000 }).map((depth) => ({
  query: 'query ($filter: RequestFilter) { requests(filter: $filter) { nodes { id } } }',
  variables: { filter: `<nested ${depth} deep>` } as Record<string, unknown>,
  depth,
}));
function nested(depth: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = { status: v };
  return v;
}

const documents = fc.oneof(
  depthBomb,
  unknownNesting,
  aliasBomb,
  rootAliasBomb,
  fieldFlood,
  hugePage,
  overflowInt,
  badArgs,
  fragmentCycle,
  manyOperations,
  introspection,
  directiveSpam,
  garbage,
);
const operations = fc.oneof(
  { arbitrary: documents.map((query) => ({ query, variables: {} as Record<string, unknown> })), weight: 8 },
  { arbitrary: badVariables as fc.Arbitrary<{ query: string; variables: Record<string, unknown> }>, weight: 1 },
  { arbitrary: deepVariables as fc.Arbitrary<{ query: string; variables: Record<string, unknown> }>, weight: 1 },
);

describe('GraphQL hostile-input corpus', () => {
  it(`answers ${RUNS} generated hostile documents without a 5xx, every error with extensions.code`, async () => {
    const startHead = await h.eventStore.headPosition();
    let runs = 0;
    const codes = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(
        operations,
        fc.constantFrom('merchant', 'merchant2', 'operator') as fc.Arbitrary<'merchant' | 'merchant2' | 'operator'>,
        async (op, who) => {
          runs += 1;
          const { query } = op;
          const depth = (op as { depth?: number }).depth;
          const variables = depth === undefined ? op.variables : { filter: nested(depth) };
          const res = await h.gql(h.token[who], query, variables);
          const context = `${who} ${query.slice(0, 200)} → ${res.statusCode} ${JSON.stringify(res.body).slice(0, 300)}`;
          expect(res.statusCode, context).toBeLessThan(500);
          for (const e of res.body.errors ?? []) {
            expect(typeof e.extensions?.code, context).toBe('string');
            expect(e.extensions?.code, context).not.toBe('INTERNAL_SERVER_ERROR');
            codes.set(String(e.extensions?.code), (codes.get(String(e.extensions?.code)) ?? 0) + 1);
          }
        },
      ),
      { numRuns: RUNS },
    );
    expect(runs).toBeGreaterThanOrEqual(1000);
    expect(await h.eventStore.headPosition()).toBe(startHead);
    expect([...codes.keys()]).toEqual(
      expect.arrayContaining([
        'GRAPHQL_DEPTH_LIMIT',
        'GRAPHQL_ALIAS_LIMIT',
        'GRAPHQL_FIELD_LIMIT',
        'GRAPHQL_VALIDATION_FAILED',
        'BAD_USER_INPUT',
      ]),
    );
  }, 120_000);
});
