import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCommandHarness, type CommandHarness } from '../fuzz/harness.js';

let h: CommandHarness;
beforeAll(async () => {
  h = await createCommandHarness();
});
afterAll(() => h.close());

const valid = { amount: 1250, currency: 'EUR', reference: 'order-1' };

async function post(body: unknown, headers: Record<string, string> = {}, url = '/v1/requests') {
  const res = await h.app.inject({
    method: 'POST',
    url,
    headers: { authorization: `Bearer ${h.token.merchant}`, 'content-type': 'application/json', ...headers },
    payload: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return {
    status: res.statusCode,
    type: String(res.headers['content-type']),
    body: res.json() as { field?: string; code?: string; detail?: string },
  };
}

/** Asserts a refusal naming `field` that stored nothing. */
async function refused(status: number, field: string, body: unknown, headers: Record<string, string> = {}) {
  const before = await h.head();
  const res = await post(body, headers);
  expect(res.status, JSON.stringify(res.body)).toBe(status);
  expect(res.type).toMatch(/^application\/problem\+json/);
  expect(res.body.field).toBe(field);
  expect(await h.head()).toBe(before);
}

describe('POST /v1/requests validation', () => {
  it('accepts a valid registration (the refusals below are not vacuous)', async () => {
    const before = await h.head();
    const res = await post({
      ...valid,
      metadata: Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, 'v'.repeat(500)])),
      callbackUrl: 'https://merchant.example/hook',
    });
    expect(res.status).toBe(202);
    expect(await h.head()).toBeGreaterThan(before);
  });

  it.each([
    ['unknown field', { ...valid, colour: 'red' }, 'colour'],
    ['nested unknown field', { ...valid, metadata: { a: { b: 1 } } }, 'metadata.a'],
    ['amount 0', { ...valid, amount: 0 }, 'amount'],
    ['amount above 10^12', { ...valid, amount: 1_000_000_000_001 }, 'amount'],
    ['amount 1e308', { ...valid, amount: 1e308 }, 'amount'],
    ['fractional amount', { ...valid, amount: 1.5 }, 'amount'],
    ['amount as string', { ...valid, amount: '1250' }, 'amount'],
    ['currency lower case', { ...valid, currency: 'eur' }, 'currency'],
    ['currency not a string', { ...valid, currency: 978 }, 'currency'],
    ['reference empty', { ...valid, reference: '' }, 'reference'],
    ['reference too long', { ...valid, reference: 'r'.repeat(129) }, 'reference'],
    ['reference with NUL', { ...valid, reference: 'a\u0000b' }, 'reference'],
    ['reference with CRLF', { ...valid, reference: 'a\r\nSet-Cookie: x' }, 'reference'],
    ['description too long', { ...valid, description: 'd'.repeat(1001) }, 'description'],
    [
      '21 metadata keys',
      { ...valid, metadata: Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`k${i}`, 'v'])) },
      'metadata',
    ],
    ['metadata value of 501 characters', { ...valid, metadata: { k: 'v'.repeat(501) } }, 'metadata.k'],
    ['metadata value not a string', { ...valid, metadata: { k: 1 } }, 'metadata.k'],
    ['metadata key too long', { ...valid, metadata: { ['k'.repeat(41)]: 'v' } }, 'metadata'],
    ['callbackUrl with spaces', { ...valid, callbackUrl: 'https://merchant.example/a b' }, 'callbackUrl'],
    ['callbackUrl too long', { ...valid, callbackUrl: `https://merchant.example/${'a'.repeat(2048)}` }, 'callbackUrl'],
    ['body an array', [valid], 'body'],
    ['body null', null, 'body'],
  ])('refuses %s with 400 naming the field', async (_name, body, field) => {
    await refused(400, field, body);
  });

  it.each([
    ['unknown currency', { ...valid, currency: 'QQQ' }, 'currency'],
    ['cloud metadata callback', { ...valid, callbackUrl: 'http://169.254.169.254/latest/meta-data' }, 'callbackUrl'],
    ['private callback', { ...valid, callbackUrl: 'http://10.1.2.3/' }, 'callbackUrl'],
    ['IPv4-mapped callback', { ...valid, callbackUrl: 'http://[::ffff:a9fe:a9fe]/' }, 'callbackUrl'],
    ['CGNAT callback', { ...valid, callbackUrl: 'http://100.64.0.1/' }, 'callbackUrl'],
    ['ULA callback', { ...valid, callbackUrl: 'http://[fd00::1]/' }, 'callbackUrl'],
    ['host resolving to metadata', { ...valid, callbackUrl: 'https://metadata.example/' }, 'callbackUrl'],
    ['host resolving partly private', { ...valid, callbackUrl: 'https://rebind.example/' }, 'callbackUrl'],
    ['file URL', { ...valid, callbackUrl: 'file:///etc/passwd' }, 'callbackUrl'],
  ])('refuses %s with 422 naming the field', async (_name, body, field) => {
    await refused(422, field, body);
  });

  it('refuses a body over 64 KiB with 413, even though the server takes 1 MiB elsewhere', async () => {
    await refused(413, 'body', { ...valid, description: 'x'.repeat(64 * 1024) });
    const before = await h.head();
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/requests/some-id/cancel',
      headers: { authorization: `Bearer ${h.token.merchant}`, 'content-type': 'application/json' },
      payload: JSON.stringify({ reason: 'x'.repeat(70_000) }),
    });
    expect(res.statusCode).toBe(413);
    expect(await h.head()).toBe(before);
  });

  it('refuses malformed JSON, prototype-pollution keys and a non-JSON body', async () => {
    await refused(400, 'body', '{"amount": 1,');
    await refused(400, 'body', `{"amount":1250,"currency":"EUR","reference":"p","__proto__":{"polluted":true}}`);
    await refused(
      400,
      'body',
      `{"amount":1250,"currency":"EUR","reference":"p","constructor":{"prototype":{"polluted":true}}}`,
    );
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    await refused(400, 'body', 'amount=1', { 'content-type': 'text/plain' });
    await refused(415, 'Content-Type', '<amount>1</amount>', { 'content-type': 'application/xml' });
  });

  it('refuses bad Idempotency-Key headers', async () => {
    await refused(400, 'idempotency-key', valid, { 'idempotency-key': 'k'.repeat(256) });
    await refused(400, 'idempotency-key', valid, { 'idempotency-key': 'ключ' });
  });

  it('validates path parameters and headers of GET and cancel', async () => {
    for (const url of ["/v1/requests/'%20OR%201=1--", '/v1/requests/%24where', `/v1/requests/${'a'.repeat(65)}`]) {
      const res = await h.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${h.token.merchant}` } });
      expect(res.statusCode).toBe(400);
      expect(res.json().field).toBe('id');
    }
    const res = await h.app.inject({
      method: 'GET',
      url: '/v1/requests/abc',
      headers: { authorization: `Bearer ${h.token.merchant}`, 'if-none-match': 'x'.repeat(200) },
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().field).toBe('if-none-match');
    const cancel = await h.app.inject({
      method: 'POST',
      url: '/v1/requests/abc/cancel',
      headers: { authorization: `Bearer ${h.token.merchant}`, 'if-match': 'not-an-etag' },
      payload: {},
    });
    expect(cancel.statusCode).toBe(400);
    expect(cancel.json().field).toBe('If-Match');
  });

  // Known gap: fastify answers a path parameter over maxParamLength (100) with its own 414 JSON
  // before any hook or error handler runs. Fix: `frameworkErrors` in createHttpApp (app.ts) sending
  // a problem+json; this test then fails and should become a plain `it`.
  it('answers an over-long path parameter with problem+json', async () => {
    const res = await h.app.inject({
      method: 'GET',
      url: `/v1/requests/${'a'.repeat(101)}`,
      headers: { authorization: `Bearer ${h.token.merchant}` },
    });
    expect(res.statusCode).toBeLessThan(500);
    expect(String(res.headers['content-type'])).toMatch(/^application\/problem\+json/);
  });
});
