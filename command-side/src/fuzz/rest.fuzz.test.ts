import { ISO_4217_CURRENCIES } from '@settle/domain';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCommandHarness, type CommandHarness } from './harness.js';

/**
 * The hostile-input corpus for the REST API: thousands of generated invalid or malicious
 * requests against the in-process app. Every one must be refused with a 4xx problem+json naming
 * a field, and the event store must not move.
 */

const RUNS = 1500;

let h: CommandHarness;
beforeAll(async () => {
  h = await createCommandHarness();
});
afterAll(() => h.close());

const VALID = {
  amount: 1250,
  currency: 'EUR',
  reference: 'order-1',
  description: 'fuzz',
  callbackUrl: 'https://merchant.example/hook',
  metadata: { cart: '42' },
};

const INJECTION = [
  "' OR '1'='1",
  "'; DROP TABLE events; --",
  '1; SELECT pg_sleep(10)',
  '" OR ""="',
  '{"$gt": ""}',
  '{"$where": "sleep(1000)"}',
  '$where',
  '../../etc/passwd',
  '%00',
  '${jndi:ldap://x/a}',
  '<script>alert(1)</script>',
  '{{7*7}}',
  '__proto__',
  'constructor',
];
const injection = fc.constantFrom(...INJECTION);
const PROTO_KEYS = ['__proto__', 'constructor', 'prototype', '$where', '$gt', 'toString', 'hasOwnProperty'];

const hugeNumber = fc.constantFrom(
  1e308,
  -1e308,
  2 ** 53 + 1,
  1e12 + 1,
  -1,
  0,
  -0,
  1.5,
  0.1,
  Number.MAX_SAFE_INTEGER,
  Number.MIN_SAFE_INTEGER,
);
const nanIsh = fc.constantFrom(
  'NaN',
  'Infinity',
  '-Infinity',
  '1e3',
  '0x10',
  ' 1',
  '1_000',
  '١٢٣',
  '',
  'null',
  'undefined',
  'true',
);
const wrongType = fc.oneof(
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.integer(), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 5 }), fc.integer(), { maxKeys: 3 }),
);
const anyString = fc.string({ unit: 'binary', maxLength: 60 });
const controlChar = fc.integer({ min: 0, max: 31 }).map((c) => String.fromCharCode(c));
const oversized = (min: number) => fc.integer({ min, max: min + 5000 }).map((n) => 'x'.repeat(n));

/** Values that are never a valid amount. */
const badAmount = fc.oneof(
  hugeNumber.filter((n) => !(Number.isInteger(n) && n >= 1 && n <= 1e12)),
  nanIsh,
  wrongType,
  anyString,
  fc.double({ noInteger: true }),
  fc.integer({ max: 0 }),
  fc.integer({ min: 1, max: 1_000_000 }).map((n) => 1e12 + n),
);
/** Never a currency in the ISO 4217 list. */
const badCurrency = fc
  .oneof(anyString, injection, nanIsh, wrongType, fc.integer())
  .filter((c) => !(typeof c === 'string' && ISO_4217_CURRENCIES.has(c)));
/** Never a valid reference: empty, too long, control characters, or not a string. */
const badReference = fc.oneof(
  fc.constant(''),
  oversized(129),
  fc.tuple(anyString, controlChar, anyString).map(([a, c, b]) => `${a}${c}${b}`),
  fc.tuple(injection, controlChar).map(([i, c]) => `${i}${c}`),
  wrongType,
  fc.integer(),
);
const badCallbackUrl = fc.oneof(
  fc.constantFrom(
    'http://169.254.169.254/latest/meta-data/',
    'http://10.1.2.3/',
    'http://[::ffff:a9fe:a9fe]/',
    'http://100.64.0.1/',
    'http://[fd00::1]/',
    'http://[fe80::1%25eth0]/',
    'http://[2002:a9fe:a9fe::1]/',
    'http://[64:ff9b::a9fe:a9fe]/',
    // 169.254.169.254 and 10.0.0.1 in hex, decimal and octal (loopback is allowed in development).
    'http://0xa9fea9fe/',
    'http://2852039166/',
    'http://0251.0376.0251.0376/',
    'http://0x0a.1/',
    'http://[::ffff:127.0.0.1]/',
    'http://metadata.example/',
    'http://rebind.example/',
    'https://nowhere.invalid/',
    'gopher://merchant.example/',
    'file:///etc/passwd',
    'javascript:alert(1)',
    'data:text/plain,hi',
    'https://user:pass@merchant.example/',
    '//merchant.example/',
    'https://merchant.example/a b',
    'https://merchant.example/\r\nX-Evil: 1',
    'http://224.0.0.1/',
    'http://[::]/',
    'http://93.184.215.14/',
  ),
  oversized(2049).map((s) => `https://merchant.example/${s}`),
  wrongType,
);
const badMetadata = fc.oneof(
  fc.integer({ min: 21, max: 60 }).map((n) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, 'v']))),
  oversized(501).map((v) => ({ note: v })),
  fc.oneof(fc.integer(), fc.boolean(), fc.constant(null), fc.array(fc.string())).map((v) => ({ note: v })),
  fc.constantFrom(...PROTO_KEYS).map((k) => ({ [k]: { polluted: true } })),
  fc.constant({ '': 'empty key' }),
  oversized(41).map((k) => ({ [k]: 'v' })),
  fc.constantFrom('string', 42, true, ['a']),
);

type Req = { name: string; method: 'GET' | 'POST'; url: string; headers: Record<string, string>; payload?: string };

const post = (name: string, body: unknown, headers: Record<string, string> = {}): Req => ({
  name,
  method: 'POST',
  url: '/v1/requests',
  headers: { 'content-type': 'application/json', ...headers },
  payload: typeof body === 'string' ? body : JSON.stringify(body),
});

const withField = (field: string) => (value: unknown) => post(`bad ${field}`, { ...VALID, [field]: value });

/** Some extra noise that keeps a request invalid: more bad fields, or nothing. */
const noise = fc.option(fc.record({ amount: badAmount, reference: badReference }, { requiredKeys: [] }), {
  nil: undefined,
});

const badBodies: fc.Arbitrary<Req> = fc.oneof(
  badAmount.map(withField('amount')),
  badCurrency.map(withField('currency')),
  badReference.map(withField('reference')),
  badCallbackUrl.map(withField('callbackUrl')),
  badMetadata.map(withField('metadata')),
  fc
    .oneof(
      oversized(1001),
      fc.tuple(anyString, fc.constantFrom('\u0000', '\u001b', '\u007f')).map(([a, c]) => a + c),
      wrongType,
    )
    .map(withField('description')),
  // Unknown fields, prototype pollution keys included, with any value.
  fc
    .tuple(
      fc.oneof(
        fc.constantFrom(...PROTO_KEYS),
        fc.string({ minLength: 1, maxLength: 20 }).filter((k) => !(k in VALID)),
      ),
      fc.jsonValue({ maxDepth: 2 }),
    )
    .map(([k, v]) =>
      post(
        `unknown field ${k}`,
        `{${JSON.stringify(k)}:${JSON.stringify(v) ?? 'null'},${JSON.stringify(VALID).slice(1)}`,
      ),
    ),
  // A required field missing, plus noise.
  fc.tuple(fc.constantFrom('amount', 'currency', 'reference'), noise).map(([missing, extra]) => {
    const body: Record<string, unknown> = { ...VALID, ...extra };
    delete body[missing];
    return post(`missing ${missing}`, body);
  }),
  // Not an object at all.
  fc
    .oneof(
      fc.jsonValue({ maxDepth: 2 }).filter((v) => v === null || typeof v !== 'object' || Array.isArray(v)),
      fc.constantFrom('"a"', '[]', 'null', '0'),
    )
    .map((b) => post('not an object', typeof b === 'string' ? b : JSON.stringify(b))),
  // Malformed JSON, NaN-ish literals, truncations.
  fc
    .oneof(
      fc.constantFrom(
        '{',
        '{"amount": NaN, "currency": "EUR", "reference": "x"}',
        '{"amount": Infinity}',
        "{'amount': 1}",
        '{"amount": 1,}',
        '\u0000',
        '{"a":1}{"b":2}',
        '{"amount":1e400,"currency":"EUR","reference":"x"}',
      ),
      fc.integer({ min: 1, max: 80 }).map((n) => JSON.stringify(VALID).slice(0, n)),
      fc.string({ unit: 'binary', minLength: 1, maxLength: 80 }).filter((s) => {
        try {
          JSON.parse(s);
          return false;
        } catch {
          return true;
        }
      }),
    )
    .map((raw) => post('malformed JSON', raw)),
  // Deeply nested JSON, under and over the body limit.
  fc
    .integer({ min: 100, max: 40_000 })
    .map((depth) =>
      post(
        `nested ${depth}`,
        `{"amount":1250,"currency":"EUR","reference":"deep","metadata":{"a":${'['.repeat(depth)}${']'.repeat(depth)}}}`,
      ),
    ),
  // Oversized bodies.
  fc
    .integer({ min: 64 * 1024 + 1, max: 200_000 })
    .map((n) => post('oversized', { ...VALID, description: 'x'.repeat(n) })),
  // Bad Idempotency-Key headers (and a valid body, so only the header is wrong).
  fc
    .oneof(
      oversized(256),
      fc.string({ unit: 'grapheme', minLength: 1, maxLength: 20 }).filter((s) => /[^\u0020-\u007e]/.test(s)),
    )
    .map((key) => post('bad Idempotency-Key', VALID, { 'idempotency-key': key })),
  // Wrong content types.
  fc
    .constantFrom(
      'text/xml',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'application/json-patch+json',
    )
    .map((type) => post(`content-type ${type}`, 'amount=1&currency=EUR', { 'content-type': type })),
);

/** Ids and headers for GET and cancel. Nothing is ever registered under these ids. */
const badReads: fc.Arbitrary<Req> = fc.oneof(
  // 65..100 characters: longer ids meet fastify's maxParamLength first (see validation.test.ts).
  fc
    .oneof(
      injection,
      anyString,
      fc.integer({ min: 65, max: 100 }).map((n) => 'x'.repeat(n)),
      fc.constantFrom('..%2F..%2Fetc%2Fpasswd', '%24where', '%00', 'a%2Fb'),
    )
    .map((id) => ({
      name: `GET id ${id.slice(0, 20)}`,
      method: 'GET' as const,
      url: `/v1/requests/${/%[0-9A-F]{2}/.test(id) ? id : encodeURIComponent(id)}`,
      headers: {},
    })),
  fc
    .tuple(
      fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/),
      fc.oneof(fc.constant(undefined), fc.constantFrom('"1"', 'W/"0"', '*', 'abc', '"-1"', '99999999999999999999')),
    )
    .map(([id, ifMatch]) => ({
      name: 'cancel unknown id',
      method: 'POST' as const,
      url: `/v1/requests/${id}/cancel`,
      headers: { 'content-type': 'application/json', ...(ifMatch ? { 'if-match': ifMatch } : {}) },
      payload: '{}',
    })),
  fc.oneof(badReference, oversized(501)).map((reason) => ({
    name: 'cancel with bad reason',
    method: 'POST' as const,
    url: '/v1/requests/some-id/cancel',
    headers: { 'content-type': 'application/json' },
    payload: JSON.stringify({ reason }),
  })),
);

/** Bearer tokens that must not authenticate. */
const badAuth: fc.Arbitrary<Req> = fc
  .oneof(
    fc.constantFrom(
      '',
      'Bearer',
      'Bearer ',
      'Basic ZGVtbzpkZW1v',
      'Bearer null',
      'Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.',
    ),
    fc.string({ unit: 'binary-ascii', maxLength: 40 }).map((t) => `Bearer ${t.replace(/[^\x21-\x7e]/g, 'a')}`),
  )
  .map((authorization) => ({
    ...post('bad token', VALID),
    headers: { 'content-type': 'application/json', authorization },
  }));

async function send(req: Req, bearer: string | undefined) {
  const headers = { ...(bearer ? { authorization: `Bearer ${bearer}` } : {}), ...req.headers };
  return h.app.inject({
    method: req.method,
    url: req.url,
    headers,
    ...(req.payload !== undefined ? { payload: req.payload } : {}),
  });
}

describe('REST hostile-input corpus', () => {
  it(`refuses ${RUNS} generated hostile requests with a 4xx problem naming a field, storing nothing`, async () => {
    const startHead = await h.head();
    let runs = 0;
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          { arbitrary: badBodies, weight: 6 },
          { arbitrary: badReads, weight: 2 },
          { arbitrary: badAuth, weight: 1 },
        ),
        async (req) => {
          runs += 1;
          const before = await h.head();
          const res = await send(req, h.token.merchant);
          statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
          const context = `${req.name}: ${res.statusCode} ${res.body.slice(0, 300)}`;
          expect(res.statusCode, context).toBeGreaterThanOrEqual(400);
          expect(res.statusCode, context).toBeLessThan(500);
          expect(String(res.headers['content-type']), context).toMatch(/^application\/problem\+json/);
          const problem = res.json() as { status?: number; code?: string; field?: unknown; title?: string };
          expect(problem.status, context).toBe(res.statusCode);
          expect(problem.code, context).toMatch(/^SETTLE_ERR_/);
          expect(typeof problem.field === 'string' && problem.field.length > 0, context).toBe(true);
          expect(await h.head(), context).toBe(before);
        },
      ),
      { numRuns: RUNS },
    );
    expect(runs).toBeGreaterThanOrEqual(1000);
    expect(await h.head()).toBe(startHead);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    // The corpus reaches more than one kind of refusal.
    expect([...statuses.keys()].sort()).toEqual(expect.arrayContaining([400, 401, 404, 413, 415, 422]));
  }, 120_000);
});
