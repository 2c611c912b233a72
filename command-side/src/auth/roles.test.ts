import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from './testing.js';

/**
 * The REST half of the role × endpoint matrix in docs/security.md, one case per cell. A merchant
 * asking for another merchant's request gets 404 (its existence is not revealed), a role that may
 * never call an endpoint gets 403, no token 401.
 */
type Who = 'anonymous' | 'merchant' | 'otherMerchant' | 'operator' | 'admin' | 'service';
type Headers = Record<string, string>;
type Call = (t: TestApp, h: Headers) => Promise<LightMyRequestResponse>;

const register = (t: TestApp, h: Headers) =>
  t.app.inject({
    method: 'POST',
    url: '/v1/requests',
    headers: h,
    payload: { amount: 1250, currency: 'EUR', reference: 'roles' },
  });

/** A fresh request of demo-merchant for every cell, so cancel cells do not interfere. */
async function merchantRequest(t: TestApp): Promise<string> {
  const res = await register(t, await t.bearer('demo-merchant'));
  expect(res.statusCode).toBe(202);
  return res.json().id;
}

async function throwawayClient(t: TestApp): Promise<string> {
  const res = await t.app.inject({
    method: 'POST',
    url: '/v1/clients',
    headers: await t.bearer('demo-operator'),
    payload: { name: 'throwaway', roles: ['merchant'] },
  });
  return res.json().id;
}

const ENDPOINTS: Record<string, Call> = {
  'POST /v1/requests': (t, h) => register(t, h),
  'GET /v1/requests/:id': async (t, h) =>
    t.app.inject({ method: 'GET', url: `/v1/requests/${await merchantRequest(t)}`, headers: h }),
  'POST /v1/requests/:id/cancel': async (t, h) =>
    t.app.inject({
      method: 'POST',
      url: `/v1/requests/${await merchantRequest(t)}/cancel`,
      headers: h,
      payload: { reason: 'roles test' },
    }),
  'POST /v1/clients': (t, h) =>
    t.app.inject({ method: 'POST', url: '/v1/clients', headers: h, payload: { name: 'new', roles: ['merchant'] } }),
  'GET /v1/clients': (t, h) => t.app.inject({ method: 'GET', url: '/v1/clients', headers: h }),
  'POST /v1/clients/:id/disable': async (t, h) =>
    t.app.inject({ method: 'POST', url: `/v1/clients/${await throwawayClient(t)}/disable`, headers: h }),
  'GET /.well-known/jwks.json': (t, h) => t.app.inject({ method: 'GET', url: '/.well-known/jwks.json', headers: h }),
};

// Expected status per endpoint, in the order: anonymous, merchant, otherMerchant, operator, admin, service.
const MATRIX: Record<keyof typeof ENDPOINTS, [number, number, number, number, number, number]> = {
  'POST /v1/requests': [401, 202, 202, 403, 403, 403],
  'GET /v1/requests/:id': [401, 200, 404, 200, 200, 403],
  'POST /v1/requests/:id/cancel': [401, 202, 404, 202, 202, 403],
  'POST /v1/clients': [401, 403, 403, 403, 201, 403],
  'GET /v1/clients': [401, 403, 403, 403, 200, 403],
  'POST /v1/clients/:id/disable': [401, 403, 403, 403, 200, 403],
  'GET /.well-known/jwks.json': [200, 200, 200, 200, 200, 200],
};
const WHO: Who[] = ['anonymous', 'merchant', 'otherMerchant', 'operator', 'admin', 'service'];
const CASES = Object.entries(MATRIX).flatMap(([endpoint, statuses]) =>
  WHO.map((who, i) => [endpoint, who, statuses[i]!] as const),
);

describe('role × endpoint matrix (REST)', () => {
  let t: TestApp;
  const headers = {} as Record<Who, Headers>;

  beforeAll(async () => {
    t = await createTestApp();
    const admin = await t.bearer('demo-operator');
    const make = async (name: string, roles: string[]) => {
      const created = (
        await t.app.inject({ method: 'POST', url: '/v1/clients', headers: admin, payload: { name, roles } })
      ).json();
      return t.bearer(created.id, created.client_secret);
    };
    headers.anonymous = {};
    headers.merchant = await t.bearer('demo-merchant');
    headers.otherMerchant = await t.bearer('demo-merchant-2');
    headers.operator = await make('operator only', ['operator']);
    headers.admin = await make('admin only', ['admin']);
    headers.service = await make('internal service', ['service']);
  });
  afterAll(() => t.close());

  it.each(CASES)('%s as %s → %i', async (endpoint, who, status) => {
    const res = await ENDPOINTS[endpoint]!(t, headers[who]);
    expect(res.statusCode, res.body).toBe(status);
    if (status >= 400) expect(res.headers['content-type']).toMatch(/application\/problem\+json/);
  });

  it('a merchant never sees, nor cancels, another merchant’s request, and its existence is not revealed', async () => {
    const id = await merchantRequest(t);
    const missing = await t.app.inject({
      method: 'GET',
      url: '/v1/requests/00000000-0000-0000-0000-000000000000',
      headers: headers.otherMerchant,
    });
    const foreign = await t.app.inject({ method: 'GET', url: `/v1/requests/${id}`, headers: headers.otherMerchant });
    expect(foreign.statusCode).toBe(missing.statusCode);
    expect(foreign.json().detail).toBe(missing.json().detail.replace('00000000-0000-0000-0000-000000000000', id));
  });
});
