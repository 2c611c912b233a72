import { afterEach, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../auth/testing.js';

describe('while a part commands need is down', () => {
  let t: TestApp | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  it(
    'POST answers 503 problem+json with Retry-After at once, naming the part; reads, liveness and readiness answer',
    { timeout: 60_000 },
    async () => {
      const down: { name: string; description: string }[] = [];
      let storeUp = true;
      t = await createTestApp({
        unavailable: () => down,
        http: {
          readiness: [
            {
              name: 'eventStore',
              check: async () => {
                if (!storeUp) throw new Error('PostgreSQL at postgres://db/settle is down');
              },
            },
          ],
        },
      });
      const headers = await t.bearer('demo-merchant');
      const register = () =>
        t!.app.inject({
          method: 'POST',
          url: '/v1/requests',
          headers,
          payload: { amount: 1000, currency: 'EUR', reference: 'outage' },
        });
      expect((await register()).statusCode).toBe(202);

      down.push({ name: 'eventStore', description: 'PostgreSQL at postgres://db/settle' });
      storeUp = false;
      const started = Date.now();
      const refused = await register();
      expect(Date.now() - started).toBeLessThan(1000);
      expect(refused.statusCode).toBe(503);
      expect(refused.headers['content-type']).toMatch(/application\/problem\+json/);
      expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      expect(refused.json()).toMatchObject({
        status: 503,
        code: 'SETTLE_ERR_UNAVAILABLE',
        parts: ['eventStore'],
      });
      // Nothing was recorded for the refused command.
      const events = await t.eventStore.readAll({ after: 0, limit: 1000 });
      expect(events.filter((e) => e.type === 'RequestRegistered')).toHaveLength(1);

      // Reads are not refused by the gate; liveness stays green; readiness is red and says why.
      const read = await t.app.inject({ method: 'GET', url: '/v1/requests/no-such-request', headers });
      expect(read.statusCode).toBe(404);
      expect((await t.app.inject({ method: 'GET', url: '/health/live' })).statusCode).toBe(200);
      const ready = await t.app.inject({ method: 'GET', url: '/health/ready' });
      expect(ready.statusCode).toBe(503);
      expect(ready.json()).toMatchObject({
        status: 'not_ready',
        down: ['eventStore'],
        checks: [{ name: 'eventStore', status: 'down', error: expect.stringContaining('PostgreSQL') }],
      });

      down.length = 0;
      storeUp = true;
      expect((await register()).statusCode).toBe(202);
      expect((await t.app.inject({ method: 'GET', url: '/health/ready' })).statusCode).toBe(200);
    },
  );
});
