import { createPrivateKey, createPublicKey, generateKeyPairSync, randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUDIENCE, createTestApp, ISSUER, newSigningKey, type TestApp } from './testing.js';

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
const nowS = () => Math.floor(Date.now() / 1000);

describe('access tokens under attack', () => {
  let t: TestApp;
  const claims = () => ({
    roles: ['operator', 'admin'],
    sub: 'demo-operator',
    iss: ISSUER,
    aud: AUDIENCE,
    iat: nowS(),
    nbf: nowS(),
    exp: nowS() + 600,
    jti: randomUUID(),
  });
  const sign = (payload: Record<string, unknown>, pem = t.privateKeyPem, kid = t.tokens.kid) =>
    new SignJWT(payload).setProtectedHeader({ alg: 'EdDSA', kid, typ: 'JWT' }).sign(createPrivateKey(pem));
  const call = (token: string) =>
    t.app.inject({ method: 'GET', url: '/v1/clients', headers: { authorization: `Bearer ${token}` } });

  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(() => t.close());

  it('accepts a genuine token, and a forged one made the same way (the forgery helper is sound)', async () => {
    expect((await call((await t.token('demo-operator')).access_token)).statusCode).toBe(200);
    expect((await call(await sign(claims()))).statusCode).toBe(200);
  });

  const attacks: [string, () => Promise<string>][] = [
    ['alg: none', async () => `${b64({ alg: 'none', typ: 'JWT', kid: t.tokens.kid })}.${b64(claims())}.`],
    [
      'HS256 signed with the public key',
      async () => {
        const publicPem = createPublicKey(createPrivateKey(t.privateKeyPem))
          .export({ type: 'spki', format: 'pem' })
          .toString();
        return new SignJWT(claims())
          .setProtectedHeader({ alg: 'HS256', kid: t.tokens.kid, typ: 'JWT' })
          .sign(new TextEncoder().encode(publicPem));
      },
    ],
    ['expired', () => sign({ ...claims(), iat: nowS() - 3600, nbf: nowS() - 3600, exp: nowS() - 1800 })],
    ['not yet valid', () => sign({ ...claims(), nbf: nowS() + 1800, exp: nowS() + 3600 })],
    ['wrong aud', () => sign({ ...claims(), aud: 'someone-else' })],
    ['wrong iss', () => sign({ ...claims(), iss: 'https://evil.example' })],
    ['unknown kid (signed with another key)', () => sign(claims(), newSigningKey(), 'not-a-known-kid')],
    ['a known kid but signed with another key', () => sign(claims(), newSigningKey())],
    [
      'tampered payload',
      async () => {
        const genuine = (await t.token('demo-merchant')).access_token;
        const [h, p, s] = genuine.split('.');
        const payload = JSON.parse(Buffer.from(p!, 'base64url').toString());
        return `${h}.${b64({ ...payload, roles: ['admin'], sub: 'demo-operator' })}.${s}`;
      },
    ],
    ['without jti', async () => sign({ ...claims(), jti: undefined })],
    ['garbage', async () => 'not.a.jwt'],
  ];

  it.each(attacks)('refuses %s with 401', async (_name, forge) => {
    const res = await call(await forge());
    expect(res.statusCode).toBe(401);
    expect(res.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(res.json().code).toBe('SETTLE_ERR_AUTH_UNAUTHENTICATED');
  });

  it("refuses a disabled client's still-unexpired token at once", async () => {
    const admin = await t.bearer('demo-operator');
    const created = (
      await t.app.inject({
        method: 'POST',
        url: '/v1/clients',
        headers: admin,
        payload: { name: 'Soon gone', roles: ['operator'] },
      })
    ).json();
    const { access_token } = await t.token(created.id, created.client_secret);
    const read = () =>
      t.app.inject({
        method: 'GET',
        url: '/v1/requests/00000000-0000-0000-0000-000000000000',
        headers: { authorization: `Bearer ${access_token}` },
      });
    expect((await read()).statusCode).toBe(404);
    expect(
      (await t.app.inject({ method: 'POST', url: `/v1/clients/${created.id}/disable`, headers: admin })).statusCode,
    ).toBe(200);
    expect((await read()).statusCode).toBe(401);
    const again = await t.app.inject({
      method: 'POST',
      url: '/v1/auth/token',
      payload: { grant_type: 'client_credentials', client_id: created.id, client_secret: created.client_secret },
    });
    expect(again.statusCode).toBe(401);
  });
});

describe('signing keys rotate', () => {
  it('verifies tokens of the previous key, publishes both in the JWKS, signs with the new one', async () => {
    const oldKey = newSigningKey();
    const before = await createTestApp({ tokens: { privateKeyPem: oldKey } });
    const oldToken = (await before.token('demo-operator')).access_token;
    const oldKid = before.tokens.kid;
    await before.close();

    const previousPublic = createPublicKey(createPrivateKey(oldKey)).export({ type: 'spki', format: 'pem' }).toString();
    const after = await createTestApp({ tokens: { previousKeys: [previousPublic] } });
    try {
      const jwks = (await after.app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json();
      expect(jwks.keys.map((k: { kid: string }) => k.kid).sort()).toEqual([oldKid, after.tokens.kid].sort());
      expect(jwks.keys.every((k: { d?: string }) => k.d === undefined)).toBe(true);
      const res = await after.app.inject({
        method: 'GET',
        url: '/v1/clients',
        headers: { authorization: `Bearer ${oldToken}` },
      });
      expect(res.statusCode).toBe(200);
      const fresh = (await after.token('demo-operator')).access_token;
      expect(JSON.parse(Buffer.from(fresh.split('.')[0]!, 'base64url').toString()).kid).toBe(after.tokens.kid);
    } finally {
      await after.close();
    }
  }, 120_000);

  it('accepts an ES256 (P-256) key as well', async () => {
    const pem = generateKeyPairSync('ec', { namedCurve: 'P-256' })
      .privateKey.export({ type: 'pkcs8', format: 'pem' })
      .toString();
    const t = await createTestApp({ tokens: { privateKeyPem: pem } });
    try {
      const res = await t.app.inject({ method: 'GET', url: '/v1/clients', headers: await t.bearer('demo-operator') });
      expect(res.statusCode).toBe(200);
      expect((await t.app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json().keys[0].alg).toBe('ES256');
    } finally {
      await t.close();
    }
  });
});

describe('refresh tokens', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(() => t.close());
  const refresh = (refresh_token: string) =>
    t.app.inject({ method: 'POST', url: '/v1/auth/token', payload: { grant_type: 'refresh_token', refresh_token } });

  it('rotate on every use; reusing a rotated one revokes the whole family, the newest too', async () => {
    const first = await t.token('demo-merchant');
    const second = await refresh(first.refresh_token);
    expect(second.statusCode).toBe(200);
    const third = await refresh(second.json().refresh_token);
    expect(third.statusCode).toBe(200);
    const newest = third.json().refresh_token as string;

    const replay = await refresh(first.refresh_token);
    expect(replay.statusCode).toBe(400);
    expect(replay.json().error).toBe('invalid_grant');
    expect((await refresh(newest)).statusCode).toBe(400);
    // Another family of the same client is untouched.
    const other = await t.token('demo-merchant');
    expect((await refresh(other.refresh_token)).statusCode).toBe(200);
  });

  it('are stored hashed, so they survive a restart and are shared by replicas', async () => {
    const { refresh_token } = await t.token('demo-merchant');
    const { rows } = await t.eventStore.client.query<{ token_hash: string }>(
      'SELECT token_hash FROM settle_refresh_tokens',
    );
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.some((r) => r.token_hash === refresh_token)).toBe(false);
    // A second TokenService on the same database (another replica, or after a restart) accepts it once.
    const { SqlRefreshTokenStore, TokenService } = await import('@settle/platform');
    const replica = new TokenService({
      privateKeyPem: t.privateKeyPem,
      issuer: ISSUER,
      audience: AUDIENCE,
      accessTtlS: 900,
      refreshStore: await SqlRefreshTokenStore.create(t.eventStore.client),
    });
    await expect(replica.consumeRefresh(refresh_token)).resolves.toMatchObject({ clientId: 'demo-merchant' });
    expect((await refresh(refresh_token)).statusCode).toBe(400);
  });

  it('stop working when the client is disabled', async () => {
    const admin = await t.bearer('demo-operator');
    const created = (
      await t.app.inject({
        method: 'POST',
        url: '/v1/clients',
        headers: admin,
        payload: { name: 'M', roles: ['merchant'] },
      })
    ).json();
    const pair = await t.token(created.id, created.client_secret);
    await t.app.inject({ method: 'POST', url: `/v1/clients/${created.id}/disable`, headers: admin });
    expect((await refresh(pair.refresh_token)).statusCode).toBe(400);
  });
});
