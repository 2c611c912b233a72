import type { Redis } from 'ioredis';
import type { Cache } from '../cache/port.js';
import { createRedisConnection, describeConnection } from './connection.js';

export interface RedisCacheOptions {
  /** Prefix of every key (default `settle:cache:`). */
  prefix?: string;
  /** Whether `close()` closes the connection (true when the cache created it). */
  ownsConnection?: boolean;
}

/**
 * Cache-aside in Redis, shared by every query replica: values as JSON under `settle:cache:<key>`,
 * each with its TTL, so a projector's invalidation reaches all replicas at once.
 */
export class RedisCache implements Cache {
  readonly name: string;
  private readonly prefix: string;

  constructor(
    private readonly redis: Redis,
    private readonly opts: RedisCacheOptions = {},
  ) {
    this.prefix = opts.prefix ?? 'settle:cache:';
    this.name = `Redis at ${describeConnection(redis)} (${this.prefix}*)`;
  }

  static async create(url: string, opts: Omit<RedisCacheOptions, 'ownsConnection'> = {}): Promise<RedisCache> {
    return new RedisCache(await createRedisConnection(url, 'cache'), { ...opts, ownsConnection: true });
  }

  async get<T>(key: string): Promise<T | undefined> {
    const raw = await this.redis.get(this.prefix + key);
    return raw === null ? undefined : (JSON.parse(raw) as T);
  }

  async set(key: string, value: unknown, ttlMs: number): Promise<void> {
    await this.redis.set(this.prefix + key, JSON.stringify(value), 'PX', Math.max(1, Math.ceil(ttlMs)));
  }

  async delete(keys: string[]): Promise<void> {
    if (keys.length === 0) return;
    await this.redis.unlink(...keys.map((k) => this.prefix + k));
  }

  async close(): Promise<void> {
    if (this.opts.ownsConnection) await this.redis.quit().catch(() => this.redis.disconnect());
  }
}
