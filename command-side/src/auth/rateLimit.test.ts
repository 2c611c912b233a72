import { afterEach, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from './testing.js';

const wrongSecret = (t: TestApp, clientId: string, ip = '203.0.113.7') =>
  t.app.inject({
    method: 'POST',
    url: '/v1/auth/token',
    remoteAddress: ip,
    payload: { grant_type: 'client_credentials', client_id: clientId, client_secret: 'not-the-secret' },
  });

function expectTooMany(res: Awaited<ReturnType<typeof wrongSecret>>) {
  expect(res.statusCode).toBe(429);
  expect(res.headers['content-type']).toMatch(/application\/problem\+json/);
  expect(Number(res.headers['retry-after'])).toBeGreaterThanOrEqual(1);
  expect(res.json()).toMatchObject({ status: 429, code: 'SETTLE_ERR_RATE_LIMITED' });
}

describe('rate limits', () => {
  let t: TestApp | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  it('200 wrong-secret token requests in a burst meet 429s with Retry-After; no secret is checked past the limit', async () => {
    t = await createTestApp({ rateLimits: { perClient: 0, perIp: 0, loginFailures: 10 } });
    const app = t;
    const answers = await Promise.all(Array.from({ length: 200 }, () => wrongSecret(app, 'demo-merchant')));
    const statuses = answers.map((r) => r.statusCode);
    expect(statuses.filter((s) => s === 401)).toHaveLength(10);
    expect(statuses.filter((s) => s === 429)).toHaveLength(190);
    expectTooMany(answers.find((r) => r.statusCode === 429)!);
    // The client id stays throttled even with the right secret, from anywhere, until the window ends.
    const right = await t.app.inject({
      method: 'POST',
      url: '/v1/auth/token',
      remoteAddress: '198.51.100.1',
      payload: { grant_type: 'client_credentials', client_id: 'demo-merchant', client_secret: 'demo-secret' },
    });
    expectTooMany(right);
  }, 120_000);

  it('throttles failed logins per IP across client ids, and not other addresses', async () => {
    t = await createTestApp({ rateLimits: { perClient: 0, perIp: 0, loginFailures: 10 } });
    for (let i = 0; i < 10; i++) expect((await wrongSecret(t, `guess-${i}`)).statusCode).toBe(401);
    expectTooMany(await wrongSecret(t, 'guess-10'));
    expect((await wrongSecret(t, 'guess-11', '198.51.100.2')).statusCode).toBe(401);
  }, 120_000);

  it('counts only failures: successful logins never lock a client out', async () => {
    t = await createTestApp({ rateLimits: { perClient: 0, perIp: 0, loginFailures: 3 } });
    for (let i = 0; i < 8; i++) await t.token('demo-merchant');
  });

  it('limits each client to its own budget, then answers 429 with Retry-After', async () => {
    t = await createTestApp({ rateLimits: { perClient: 5, perIp: 0 } });
    const merchant = await t.bearer('demo-merchant');
    const read = (headers: Record<string, string>) =>
      t!.app.inject({ method: 'GET', url: '/v1/requests/00000000-0000-0000-0000-000000000000', headers });
    for (let i = 0; i < 5; i++) expect((await read(merchant)).statusCode).toBe(404);
    const limited = await read(merchant);
    expectTooMany(limited);
    expect(limited.headers['x-ratelimit-limit']).toBe('5');
    // Another client is untouched.
    expect((await read(await t.bearer('demo-merchant-2'))).statusCode).toBe(404);
  });

  it('limits each address before authentication, leaving probes alone', async () => {
    t = await createTestApp({ rateLimits: { perClient: 0, perIp: 5 } });
    const anonymous = (ip: string) => t!.app.inject({ method: 'GET', url: '/v1/requests/x', remoteAddress: ip });
    for (let i = 0; i < 5; i++) expect((await anonymous('203.0.113.9')).statusCode).toBe(401);
    expectTooMany(await anonymous('203.0.113.9'));
    expect((await anonymous('203.0.113.10')).statusCode).toBe(401);
    for (let i = 0; i < 10; i++)
      expect(
        (await t.app.inject({ method: 'GET', url: '/health/live', remoteAddress: '203.0.113.9' })).statusCode,
      ).toBe(200);
  });
});
