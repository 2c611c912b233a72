import { DEMO_SECRET, DEMO_WEBHOOK_SECRET, EventSourcedClientRegistry } from '@settle/platform';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../auth/testing.js';

describe('API clients over REST', () => {
  let t: TestApp;
  let admin: Record<string, string>;
  beforeAll(async () => {
    t = await createTestApp();
    admin = await t.bearer('demo-operator');
  });
  afterAll(() => t.close());

  const create = (payload: unknown, headers = admin) =>
    t.app.inject({ method: 'POST', url: '/v1/clients', headers, payload: payload as object });

  it('an admin creates a merchant and gets its secrets once; the merchant can then work', async () => {
    const res = await create({ id: 'acme-shop', name: 'Acme shop', roles: ['merchant'] });
    expect(res.statusCode).toBe(201);
    expect(res.headers['cache-control']).toBe('no-store');
    const body = res.json();
    expect(body).toMatchObject({
      id: 'acme-shop',
      name: 'Acme shop',
      roles: ['merchant'],
      merchantId: 'acme-shop',
      disabled: false,
    });
    expect(body.client_secret).toMatch(/^cs_[A-Za-z0-9_-]{40,}$/);
    expect(body.webhook_secret).toMatch(/^whsec_[A-Za-z0-9+/=]{40,}$/);
    expect((await t.clients.get('acme-shop'))?.webhookSecret).toBe(body.webhook_secret);

    const merchant = await t.bearer('acme-shop', body.client_secret);
    const registered = await t.app.inject({
      method: 'POST',
      url: '/v1/requests',
      headers: merchant,
      payload: { amount: 100, currency: 'EUR', reference: 'first' },
    });
    expect(registered.statusCode).toBe(202);
  });

  it('lists clients without any secret or hash', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/v1/clients', headers: admin });
    expect(res.statusCode).toBe(200);
    const ids = res.json().clients.map((c: { id: string }) => c.id);
    expect(ids).toEqual(expect.arrayContaining(['demo-merchant', 'demo-merchant-2', 'demo-operator', 'acme-shop']));
    expect(res.body).not.toMatch(/scrypt|secret|whsec_/i);
  });

  it('refuses a merchant (403), an unknown role (400), a taken id (409), a merchantId on a non-merchant (400)', async () => {
    const merchant = await t.bearer('demo-merchant');
    expect((await create({ name: 'x', roles: ['admin'] }, merchant)).statusCode).toBe(403);
    expect((await t.app.inject({ method: 'GET', url: '/v1/clients', headers: merchant })).statusCode).toBe(403);
    expect(
      (await t.app.inject({ method: 'POST', url: '/v1/clients/demo-merchant-2/disable', headers: merchant }))
        .statusCode,
    ).toBe(403);
    const bad = await create({ name: 'x', roles: ['root'] });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().field).toBe('roles.0');
    expect((await create({ id: 'demo-merchant', name: 'x', roles: ['merchant'] })).statusCode).toBe(409);
    expect((await create({ name: 'x', roles: ['operator'], merchantId: 'acme' })).json().field).toBe('merchantId');
    expect((await create({ name: 'x', roles: ['merchant'], extra: 1 })).statusCode).toBe(400);
  });

  it('disables a client: 404 for an unknown one; its tokens and logins stop at once', async () => {
    expect(
      (await t.app.inject({ method: 'POST', url: '/v1/clients/no-such-client/disable', headers: admin })).statusCode,
    ).toBe(404);
    const created = (await create({ name: 'Leaky', roles: ['merchant'] })).json();
    const merchant = await t.bearer(created.id, created.client_secret);
    const res = await t.app.inject({
      method: 'POST',
      url: `/v1/clients/${created.id}/disable`,
      headers: admin,
      payload: { reason: 'secret leaked' },
    });
    expect(res.statusCode).toBe(200);
    expect(res.json().disabled).toBe(true);
    const registered = await t.app.inject({
      method: 'POST',
      url: '/v1/requests',
      headers: merchant,
      payload: { amount: 100, currency: 'EUR', reference: 'x' },
    });
    expect(registered.statusCode).toBe(401);
    // Disabling again is harmless.
    expect(
      (await t.app.inject({ method: 'POST', url: `/v1/clients/${created.id}/disable`, headers: admin })).statusCode,
    ).toBe(200);
  });

  it('stores no secret in any event: hashes and ciphertext only', async () => {
    const created = (await create({ id: 'secret-keeper', name: 'Secret keeper', roles: ['merchant'] })).json();
    const events = await t.eventStore.readStream('client-secret-keeper');
    expect(events.map((e) => e.type)).toEqual(['ClientRegistered']);
    const stored = JSON.stringify(events);
    expect(stored).not.toContain(created.client_secret);
    expect(stored).not.toContain(created.webhook_secret);
    expect(stored).not.toContain(created.webhook_secret.slice('whsec_'.length));
    expect(events[0]!.data).toMatchObject({
      secretHash: expect.stringMatching(/^scrypt\$/),
      webhookSecretCiphertext: expect.stringMatching(/^v1\./),
    });
    expect(events[0]!.metadata.actor).toBe('demo-operator');

    const all = JSON.stringify(await t.eventStore.readAll({ after: 0, limit: 10_000 }));
    for (const secret of [DEMO_SECRET, DEMO_WEBHOOK_SECRET]) expect(all).not.toContain(secret);
  });

  it('seeds the demo clients once: seeding again appends nothing', async () => {
    const before = await t.eventStore.headPosition();
    await t.clients.seedDemoClients();
    const replica = new EventSourcedClientRegistry({ eventStore: t.eventStore, secrets: t.secrets });
    await replica.start();
    await replica.seedDemoClients();
    await replica.stop();
    expect(await t.eventStore.headPosition()).toBe(before);
  });

  it("another replica's registry follows creations and disablings live", async () => {
    const replica = new EventSourcedClientRegistry({ eventStore: t.eventStore, secrets: t.secrets });
    await replica.start();
    try {
      const created = (await create({ name: 'Seen elsewhere', roles: ['merchant'] })).json();
      expect(await replica.authenticate(created.id, created.client_secret)).toMatchObject({
        id: created.id,
        webhookSecret: created.webhook_secret,
      });
      await t.app.inject({ method: 'POST', url: `/v1/clients/${created.id}/disable`, headers: admin });
      await expect.poll(async () => (await replica.get(created.id))?.disabled, { timeout: 5000 }).toBe(true);
      expect(await replica.authenticate(created.id, created.client_secret)).toBeUndefined();
    } finally {
      await replica.stop();
    }
  });
});
