import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IdempotencyStore, StoredResponse } from '../idempotency/port.js';

export interface IdempotencyFixture {
  store: IdempotencyStore;
  /** Closes what the fixture opened (the port itself has no `close`). */
  close?: () => Promise<void>;
}

const response: StoredResponse = {
  statusCode: 202,
  body: { id: 'r-1', authId: 'a-1', status: 'REGISTERED', position: 17 },
  headers: { location: '/v1/requests/r-1' },
};

/**
 * One contract for every IdempotencyStore adapter: Stripe semantics (same key and body → the
 * stored response; another body → mismatch; concurrent → in progress), stale takeover, purge.
 */
export function describeIdempotencyContract(name: string, factory: () => Promise<IdempotencyFixture>): void {
  describe(`IdempotencyStore contract: ${name}`, () => {
    let fixture: IdempotencyFixture;
    let store: IdempotencyStore;
    beforeAll(async () => {
      fixture = await factory();
      store = fixture.store;
    });
    afterAll(async () => {
      await fixture?.close?.();
    });
    const scope = () => `client-${randomUUID()}:POST /v1/requests`;
    const key = () => randomUUID();

    it('starts the first request, reports the same key as in progress, and another body as a mismatch', async () => {
      const [s, k] = [scope(), key()];
      expect(await store.begin(s, k, 'fp-1')).toEqual({ state: 'started' });
      expect(await store.begin(s, k, 'fp-1')).toEqual({ state: 'in_progress' });
      expect(await store.begin(s, k, 'fp-2')).toEqual({ state: 'mismatch' });
    });

    it('replays the stored response once complete, and still refuses another body', async () => {
      const [s, k] = [scope(), key()];
      await store.begin(s, k, 'fp-1');
      await store.complete(s, k, response);
      expect(await store.begin(s, k, 'fp-1')).toEqual({ state: 'completed', response });
      expect(await store.begin(s, k, 'fp-1')).toEqual({ state: 'completed', response });
      expect(await store.begin(s, k, 'fp-2')).toEqual({ state: 'mismatch' });
    });

    it('keeps keys apart by scope, even when scope and key share separators', async () => {
      const k = key();
      expect(await store.begin(`${k}:a`, 'b', 'fp-1')).toEqual({ state: 'started' });
      expect(await store.begin(k, 'a:b', 'fp-2')).toEqual({ state: 'started' });
      expect(await store.begin(`${k}:a:b`, '', 'fp-3')).toEqual({ state: 'started' });
      await store.complete(k, 'a:b', response);
      expect(await store.begin(`${k}:a`, 'b', 'fp-1')).toEqual({ state: 'in_progress' });
    });

    it('starts exactly one of many concurrent first requests', async () => {
      const [s, k] = [scope(), key()];
      const results = await Promise.all(Array.from({ length: 10 }, () => store.begin(s, k, 'fp-1')));
      expect(results.filter((r) => r.state === 'started')).toHaveLength(1);
      expect(results.filter((r) => r.state === 'in_progress')).toHaveLength(9);
    });

    it('lets one caller take over an execution gone stale, and only one', async () => {
      const [s, k] = [scope(), key()];
      await store.begin(s, k, 'fp-1');
      await sleep(100);
      expect(await store.begin(s, k, 'fp-1', 60_000)).toEqual({ state: 'in_progress' });
      expect(await store.begin(s, k, 'fp-1', 30)).toEqual({ state: 'started' });
      expect(await store.begin(s, k, 'fp-1', 60_000)).toEqual({ state: 'in_progress' });
      // The race must finish within the stale window, or a later racer rightly takes over again: the
      // window is long enough for a loaded machine, and the wait longer still.
      await sleep(1_100);
      const racing = await Promise.all(Array.from({ length: 10 }, () => store.begin(s, k, 'fp-1', 1_000)));
      expect(racing.filter((r) => r.state === 'started')).toHaveLength(1);
      expect(await store.begin(s, k, 'fp-2', 1)).toEqual({ state: 'mismatch' });
    });

    it('never takes over a completed execution', async () => {
      const [s, k] = [scope(), key()];
      await store.begin(s, k, 'fp-1');
      await store.complete(s, k, response);
      await sleep(50);
      expect(await store.begin(s, k, 'fp-1', 1)).toEqual({ state: 'completed', response });
    });

    it('forgets an abandoned execution, but never a completed one', async () => {
      const [s, k, done] = [scope(), key(), key()];
      await store.begin(s, k, 'fp-1');
      await store.abandon(s, k);
      expect(await store.begin(s, k, 'fp-2')).toEqual({ state: 'started' });

      await store.begin(s, done, 'fp-1');
      await store.complete(s, done, response);
      await store.abandon(s, done);
      expect(await store.begin(s, done, 'fp-1')).toEqual({ state: 'completed', response });

      await expect(store.abandon(s, key())).resolves.toBeUndefined();
    });

    it('ignores completing an unknown key', async () => {
      const [s, k] = [scope(), key()];
      await store.complete(s, k, response);
      expect(await store.begin(s, k, 'fp-1')).toEqual({ state: 'started' });
    });

    it('purges keys older than a given age and keeps the younger ones', async () => {
      const [s, old, young] = [scope(), key(), key()];
      await store.begin(s, old, 'fp-1');
      await store.complete(s, old, response);
      await sleep(300);
      await store.begin(s, young, 'fp-1');
      expect(await store.purgeOlderThan(150)).toBeGreaterThanOrEqual(1);
      expect(await store.begin(s, old, 'fp-2')).toEqual({ state: 'started' });
      expect(await store.begin(s, young, 'fp-1')).toEqual({ state: 'in_progress' });
      expect(await store.purgeOlderThan(60 * 60 * 1000)).toBe(0);
    });
  });
}
