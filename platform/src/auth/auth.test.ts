import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPgliteClient } from '../eventStore/pgliteClient.js';
import { SqlEventStore } from '../eventStore/sqlEventStore.js';
import {
  hashRefreshToken,
  MemoryRefreshTokenStore,
  SqlRefreshTokenStore,
  type RefreshTokenStore,
} from './refreshTokens.js';
import { parseSecretsKey, SecretBox } from './secretBox.js';

describe('SecretBox', () => {
  const key = randomBytes(32);
  it('seals to ciphertext that names its key and opens back', () => {
    const box = new SecretBox(key);
    const sealed = box.seal('whsec_secret');
    expect(sealed).toMatch(/^v1\.[\w-]+\.[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(sealed).not.toContain('whsec_secret');
    expect(box.open(sealed)).toBe('whsec_secret');
    expect(box.seal('whsec_secret')).not.toBe(sealed);
  });
  it('refuses tampered ciphertext and a wrong key; older keys still open', () => {
    const sealed = new SecretBox(key).seal('whsec_secret');
    const parts = sealed.split('.');
    parts[3] = Buffer.from('whsec_other!').toString('base64url');
    expect(() => new SecretBox(key).open(parts.join('.'))).toThrow();
    expect(() => new SecretBox(randomBytes(32)).open(sealed)).toThrow(/no secrets key/);
    expect(new SecretBox(randomBytes(32), key).open(sealed)).toBe('whsec_secret');
  });
  it('parses hex and base64 keys of 32 bytes only', () => {
    expect(parseSecretsKey(key.toString('hex'))).toEqual(key);
    expect(parseSecretsKey(key.toString('base64'))).toEqual(key);
    expect(() => parseSecretsKey('c2hvcnQ=')).toThrow(/32 bytes/);
  });
});

function describeRefreshStore(name: string, create: () => Promise<RefreshTokenStore>) {
  describe(`${name} refresh token store`, () => {
    let store: RefreshTokenStore;
    beforeAll(async () => {
      store = await create();
    });
    const now = Date.now();
    it('gives a token once; a second use is a reuse that revokes the family', async () => {
      const [a, b] = [hashRefreshToken(`a-${name}`), hashRefreshToken(`b-${name}`)];
      await store.save(a, { clientId: 'c', family: `f-${name}` }, now + 60_000);
      await store.save(b, { clientId: 'c', family: `f-${name}` }, now + 60_000);
      expect(await store.consume(a, now)).toMatchObject({ state: 'ok', clientId: 'c' });
      expect(await store.consume(a, now)).toMatchObject({ state: 'reused' });
      expect(await store.consume(b, now)).toMatchObject({ state: 'revoked' });
      expect(await store.isFamilyRevoked(`f-${name}`)).toBe(true);
    });
    it('of two concurrent uses exactly one wins', async () => {
      const t = hashRefreshToken(`race-${name}`);
      await store.save(t, { clientId: 'c', family: `race-${name}` }, now + 60_000);
      const outcomes = await Promise.all([store.consume(t, now), store.consume(t, now)]);
      expect(outcomes.map((o) => o.state).sort()).toEqual(['ok', 'reused']);
    });
    it('knows nothing of unknown tokens and refuses expired ones', async () => {
      expect(await store.consume(hashRefreshToken('never'), now)).toEqual({ state: 'unknown' });
      const old = hashRefreshToken(`old-${name}`);
      await store.save(old, { clientId: 'c', family: `old-${name}` }, now - 1000);
      expect(await store.consume(old, now)).toEqual({ state: 'expired' });
      expect(await store.purgeExpired(now)).toBeGreaterThanOrEqual(1);
    });
  });
}

let sqlStore: SqlEventStore | undefined;
afterAll(async () => {
  await sqlStore?.close();
});
describeRefreshStore('memory', async () => new MemoryRefreshTokenStore());
describeRefreshStore('SQL', async () => {
  sqlStore = await SqlEventStore.create(await createPgliteClient(undefined));
  return SqlRefreshTokenStore.create(sqlStore.client);
});
