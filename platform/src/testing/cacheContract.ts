import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Cache } from '../cache/port.js';

/** One contract for every Cache adapter. `factory` returns a cache with no entries of its own yet. */
export function describeCacheContract(name: string, factory: () => Promise<Cache>): void {
  describe(`Cache contract: ${name}`, () => {
    let cache: Cache;
    beforeAll(async () => {
      cache = await factory();
    });
    afterAll(async () => {
      await cache?.close();
    });
    const key = () => `test:${randomUUID()}`;

    it('misses a key never set', async () => {
      expect(await cache.get(key())).toBeUndefined();
    });

    it.each([
      [
        'an object',
        { id: 'r-1', amount: 1250, status: 'SETTLED', events: [{ type: 'A', position: 1 }], description: null },
      ],
      ['an array', [1, 'two', { three: 3 }]],
      ['a string', 'zahlung — 支付 😀'],
      ['a number', 12.5],
      ['false', false],
      ['null', null],
    ])('keeps %s as JSON', async (_label, value) => {
      const k = key();
      await cache.set(k, value, 10_000);
      expect(await cache.get(k)).toEqual(value);
    });

    it('returns copies: changing a read value does not change the cache', async () => {
      const k = key();
      await cache.set(k, { tags: ['a'] }, 10_000);
      const read = (await cache.get<{ tags: string[] }>(k))!;
      read.tags.push('b');
      expect(await cache.get(k)).toEqual({ tags: ['a'] });
    });

    it('overwrites a value', async () => {
      const k = key();
      await cache.set(k, { v: 1 }, 10_000);
      await cache.set(k, { v: 2 }, 10_000);
      expect(await cache.get(k)).toEqual({ v: 2 });
    });

    it('deletes many keys at once, ignoring unknown ones', async () => {
      const [a, b, c] = [key(), key(), key()];
      await Promise.all([a, b, c].map((k) => cache.set(k, k, 10_000)));
      await cache.delete([a, b, key()]);
      await cache.delete([]);
      expect(await cache.get(a)).toBeUndefined();
      expect(await cache.get(b)).toBeUndefined();
      expect(await cache.get(c)).toBe(c);
    });

    it('forgets a value once its TTL has passed', async () => {
      const [short, long] = [key(), key()];
      await cache.set(short, 'short', 150);
      await cache.set(long, 'long', 10_000);
      expect(await cache.get(short)).toBe('short');
      await sleep(400);
      expect(await cache.get(short)).toBeUndefined();
      expect(await cache.get(long)).toBe('long');
    });

    it('starts a new TTL when a value is set again', async () => {
      const k = key();
      await cache.set(k, 1, 150);
      await cache.set(k, 2, 10_000);
      await sleep(300);
      expect(await cache.get(k)).toBe(2);
    });
  });
}
