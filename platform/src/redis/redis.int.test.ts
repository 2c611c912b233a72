import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisIdempotencyStore } from '../idempotency/redisIdempotencyStore.js';
import type { MQEmitter } from '../pubsub.js';
import { describeCacheContract } from '../testing/cacheContract.js';
import { describeIdempotencyContract } from '../testing/idempotencyContract.js';
import { describeLockContract } from '../testing/lockContract.js';
import { createRedisConnection } from './connection.js';
import { RedisCache } from './redisCache.js';
import { RedisLockManager } from './redisLockManager.js';
import { createRedisPubSub } from './redisPubSub.js';

/** Redis from `infra/local/services up`, or any server named here. */
const url = process.env.SETTLE_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
/** Every key this run writes lives under its own prefix, removed at the end. */
const prefix = `settle-test:${randomUUID()}:`;

afterAll(async () => {
  const redis = await createRedisConnection(url, 'test cleanup');
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await redis.del(...keys);
  } while (cursor !== '0');
  await redis.quit();
});

describeCacheContract(`Redis (${url})`, () => RedisCache.create(url, { prefix: `${prefix}cache:` }));

// Two managers on two connections: two replicas competing for the same locks.
describeLockContract(
  `Redis Redlock (${url}), two replicas`,
  async () => [
    await RedisLockManager.create(url, { prefix: `${prefix}lock:` }),
    await RedisLockManager.create(url, { prefix: `${prefix}lock:` }),
  ],
  { extendsWhileRunning: true },
);

describeIdempotencyContract(`Redis (${url})`, async () => {
  const redis = await createRedisConnection(url, 'idempotency');
  return {
    store: new RedisIdempotencyStore(redis, { prefix: `${prefix}idem:` }),
    close: () => redis.quit().then(() => undefined),
  };
});

describe('Redis adapters', () => {
  let redis: Redis;
  beforeAll(async () => {
    redis = await createRedisConnection(url, 'test');
  });
  afterAll(async () => {
    await redis?.quit();
  });

  it('fails to connect with a message naming the part and the URL, without the password', async () => {
    const failure = createRedisConnection('redis://:s3cret@127.0.0.1:1/0', 'cache');
    await expect(failure).rejects.toMatchObject({ code: 'SETTLE_ERR_STORE_UNAVAILABLE' });
    await expect(failure).rejects.toThrow(
      /^cache: could not connect to Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:1\/0: .*ECONNREFUSED/,
    );
    await expect(failure).rejects.not.toThrow(/s3cret/);
    await expect(createRedisPubSub('redis://127.0.0.1:1')).rejects.toThrow(
      /^pub\/sub \(publisher\): could not connect to Redis/,
    );
  });

  it('invalidates a cached value for every replica', async () => {
    const [a, b] = [
      new RedisCache(redis, { prefix: `${prefix}cache:` }),
      await RedisCache.create(url, { prefix: `${prefix}cache:` }),
    ];
    const key = `request:${randomUUID()}`;
    await a.set(key, { status: 'AUTHORIZED' }, 60_000);
    expect(await b.get(key)).toEqual({ status: 'AUTHORIZED' });
    await b.delete([key]);
    expect(await a.get(key)).toBeUndefined();
    expect(await redis.exists(`${prefix}cache:${key}`)).toBe(0);
    await a.close();
    await b.close();
    // The cache did not own the shared connection, so closing it left the connection open.
    expect(await redis.ping()).toBe('PONG');
  });

  it('writes cache entries as JSON under the prefix with their TTL', async () => {
    const cache = new RedisCache(redis, { prefix: `${prefix}cache:` });
    await cache.set('k', { a: 1 }, 30_000);
    expect(await redis.get(`${prefix}cache:k`)).toBe('{"a":1}');
    const ttl = await redis.pttl(`${prefix}cache:k`);
    expect(ttl).toBeGreaterThan(25_000);
    expect(ttl).toBeLessThanOrEqual(30_000);
  });

  it('keeps idempotency keys for 24 hours by default, and for the configured time otherwise', async () => {
    const idem = new RedisIdempotencyStore(redis, { prefix: `${prefix}idem-ttl:` });
    await idem.begin('scope', 'k', 'fp');
    const ttl = await redis.pttl(`${prefix}idem-ttl:scope:k`);
    expect(ttl).toBeGreaterThan(23.9 * 3600_000);
    expect(ttl).toBeLessThanOrEqual(24 * 3600_000);

    const short = new RedisIdempotencyStore(redis, { prefix: `${prefix}idem-short:`, ttlMs: 200 });
    await short.begin('scope', 'k', 'fp');
    expect(await short.begin('scope', 'k', 'other')).toEqual({ state: 'mismatch' });
    await sleep(400);
    expect(await short.begin('scope', 'k', 'other')).toEqual({ state: 'started' });
  });

  it('reports Redis being unreachable as a 503 instead of "lock held", without running fn', async () => {
    const dead = new Redis('redis://127.0.0.1:1', { maxRetriesPerRequest: 1, retryStrategy: () => 50 });
    dead.on('error', () => undefined);
    const locks = new RedisLockManager(dead);
    let ran = false;
    await expect(locks.tryWithLock('k', 5000, async () => (ran = true))).rejects.toMatchObject({
      code: 'SETTLE_ERR_STORE_UNAVAILABLE',
      statusCode: 503,
    });
    expect(ran).toBe(false);
    dead.disconnect();
  });

  it('takes and releases locks too short to extend automatically', async () => {
    const [a, b] = [
      new RedisLockManager(redis, { prefix: `${prefix}lock:` }),
      await RedisLockManager.create(url, { prefix: `${prefix}lock:` }),
    ];
    const key = randomUUID();
    let release!: () => void;
    const holding = a.tryWithLock(key, 90, () => new Promise<void>((r) => (release = r)));
    await sleep(20);
    expect(await b.tryWithLock(key, 90, async () => 'x')).toEqual({ acquired: false });
    release();
    await holding;
    expect(await b.tryWithLock(key, 90, async () => 'y')).toEqual({ acquired: true, value: 'y' });
    await b.close();
  });
});

describe('Redis pub/sub (mqemitter-redis)', () => {
  const emitters: MQEmitter[] = [];
  afterAll(async () => {
    await Promise.all(emitters.map((e) => new Promise<void>((r) => e.close(() => r()))));
  });
  const replica = async () => {
    const e = await createRedisPubSub(url);
    emitters.push(e);
    return e;
  };
  const subscribe = (e: MQEmitter, topic: string, onMessage: (m: Record<string, unknown>) => void) =>
    new Promise<void>((subscribed) =>
      e.on(
        topic,
        (message, done) => {
          onMessage(message);
          done();
        },
        () => subscribed(),
      ),
    );

  it('delivers a message emitted on one replica to the subscribers of every replica', async () => {
    const [a, b, c] = [await replica(), await replica(), await replica()];
    const topic = `${prefix}settle.requestUpdated`;
    const received: Record<string, unknown[]> = { a: [], b: [], c: [] };
    await subscribe(b, topic, (m) => received.b!.push(m));
    await subscribe(c, topic, (m) => received.c!.push(m));
    await subscribe(a, `${prefix}other`, (m) => received.a!.push(m));

    const message = { topic, payload: { requestUpdated: { id: 'r-1', status: 'SETTLED', amount: 1250 } } };
    await new Promise<void>((resolve, reject) => a.emit(message, (err) => (err ? reject(err) : resolve())));
    await expect.poll(() => received.b!.length + received.c!.length, { timeout: 5000 }).toBe(2);
    expect(received.b).toEqual([message]);
    expect(received.c).toEqual([message]);
    await sleep(100);
    expect(received.a).toEqual([]);
    expect(received.b).toHaveLength(1);
  });
});
