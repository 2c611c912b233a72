import type { Redis } from 'ioredis';
import type { IdempotencyBegin, IdempotencyStore, StoredResponse } from './port.js';

/*
 * One hash per (scope, key): fingerprint, state, lockedAt, createdAt (Redis server time, ms, so
 * replicas' clocks do not matter) and the response once complete. Each operation is one Lua
 * script, hence atomic: of concurrent first requests exactly one is `started`, and of concurrent
 * takeovers of a stale execution exactly one wins. Keys expire after `ttlMs` (24 h).
 */

const NOW = `local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

const BEGIN = `${NOW}
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'fingerprint', ARGV[1], 'state', 'started', 'lockedAt', now, 'createdAt', now)
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return {'started'}
end
local h = redis.call('HMGET', KEYS[1], 'fingerprint', 'state', 'lockedAt', 'response')
if h[1] ~= ARGV[1] then return {'mismatch'} end
if h[2] == 'completed' and h[4] then return {'completed', h[4]} end
if h[2] == 'started' and now - tonumber(h[3]) > tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'lockedAt', now)
  return {'started'}
end
return {'in_progress'}`;

const COMPLETE = `if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'state', 'completed', 'response', ARGV[1])
end
return 0`;

const ABANDON = `if redis.call('HGET', KEYS[1], 'state') == 'started' then return redis.call('DEL', KEYS[1]) end
return 0`;

const PURGE = `${NOW}
local cutoff = now - tonumber(ARGV[1])
local n = 0
for _, k in ipairs(KEYS) do
  local created = redis.call('HGET', k, 'createdAt')
  if created and tonumber(created) < cutoff then n = n + redis.call('DEL', k) end
end
return n`;

const SCRIPTS = {
  settleIdempotencyBegin: BEGIN,
  settleIdempotencyComplete: COMPLETE,
  settleIdempotencyAbandon: ABANDON,
  settleIdempotencyPurge: PURGE,
};

export interface RedisIdempotencyStoreOptions {
  /** Prefix of every key (default `settle:idempotency:`). */
  prefix?: string;
  /** How long a key is kept (default 24 h, Stripe's). */
  ttlMs?: number;
}

/** Idempotency keys in Redis, with the same (Stripe) semantics as `SqlIdempotencyStore`. */
export class RedisIdempotencyStore implements IdempotencyStore {
  private readonly prefix: string;
  private readonly ttlMs: number;

  constructor(
    private readonly redis: Redis,
    opts: RedisIdempotencyStoreOptions = {},
  ) {
    this.prefix = opts.prefix ?? 'settle:idempotency:';
    this.ttlMs = opts.ttlMs ?? 24 * 60 * 60 * 1000;
    for (const [name, lua] of Object.entries(SCRIPTS)) if (!(name in redis)) redis.defineCommand(name, { lua });
  }

  /** Scope and key are percent-encoded so that neither can forge the other's part of the Redis key. */
  private key(scope: string, key: string): string {
    return `${this.prefix}${encodeURIComponent(scope)}:${encodeURIComponent(key)}`;
  }

  private run(script: keyof typeof SCRIPTS, keys: string[], args: (string | number)[]): Promise<unknown> {
    // Commands defined with `defineCommand` run by EVALSHA, loading the script on NOSCRIPT.
    const command = (this.redis as unknown as Record<string, (...a: (string | number)[]) => Promise<unknown>>)[script]!;
    return command.call(this.redis, keys.length, ...keys, ...args);
  }

  async begin(scope: string, key: string, fingerprint: string, staleMs = 60_000): Promise<IdempotencyBegin> {
    const [state, response] = (await this.run(
      'settleIdempotencyBegin',
      [this.key(scope, key)],
      [fingerprint, Math.floor(staleMs), Math.ceil(this.ttlMs)],
    )) as [string, string?];
    if (state === 'completed') return { state, response: JSON.parse(response!) as StoredResponse };
    return { state } as IdempotencyBegin;
  }

  async complete(scope: string, key: string, response: StoredResponse): Promise<void> {
    await this.run('settleIdempotencyComplete', [this.key(scope, key)], [JSON.stringify(response)]);
  }

  async abandon(scope: string, key: string): Promise<void> {
    await this.run('settleIdempotencyAbandon', [this.key(scope, key)], []);
  }

  /** Keys expire by themselves after `ttlMs`; this removes older ones on demand (SCAN, then one script per page). */
  async purgeOlderThan(ms: number): Promise<number> {
    let purged = 0;
    let cursor = '0';
    do {
      const [next, keys] = await this.redis.scan(
        cursor,
        'MATCH',
        `${this.prefix.replace(/[*?[\]\\]/g, '\\$&')}*`,
        'COUNT',
        500,
      );
      cursor = next;
      if (keys.length > 0) purged += Number(await this.run('settleIdempotencyPurge', keys, [Math.floor(ms)]));
    } while (cursor !== '0');
    return purged;
  }
}
