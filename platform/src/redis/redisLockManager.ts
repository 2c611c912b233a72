import { ExecutionError, Redlock, ResourceLockedError } from '@sesamecare-oss/redlock';
import type { Redis } from 'ioredis';
import { ERR_STORE_UNAVAILABLE, SettleError } from '../errors.js';
import type { LockManager } from '../lock/port.js';
import { createRedisConnection, describeConnection } from './connection.js';

export interface RedisLockManagerOptions {
  /** Prefix of every lock key (default `settle:lock:`). */
  prefix?: string;
  /** Whether `close()` closes the connection (true when the manager created it). */
  ownsConnection?: boolean;
  /** Told when a running holder's lock could not be extended (exclusivity is no longer guaranteed). */
  onLockLost?: (key: string, error: Error) => void;
}

/** The extension threshold Redlock needs: at most 500 ms before expiry, and at least 100 ms under the TTL. */
const extensionThreshold = (ttlMs: number): number | undefined => {
  const threshold = Math.min(500, Math.floor(ttlMs / 3));
  return threshold <= ttlMs - 100 && threshold > 0 ? threshold : undefined;
};

/** Whether acquiring failed only because the lock is held (as opposed to Redis being unreachable). */
async function heldElsewhere(error: unknown): Promise<boolean> {
  if (!(error instanceof ExecutionError) || error.attempts.length === 0) return false;
  const stats = await Promise.all(error.attempts);
  const reasons = stats.flatMap((s) => [...s.votesAgainst.values()]);
  return reasons.length > 0 && reasons.every((e) => e instanceof ResourceLockedError);
}

type Outcome<T> = { ok: true; value: T } | { ok: false; error: unknown };

/**
 * Redlock-style locks in Redis, so replicas of a role never run the same job at once. A lock that
 * is held is not waited for (`retryCount: 0`): `tryWithLock` reports `acquired: false` at once.
 * While `fn` runs the lock is extended before it expires, so `ttlMs` only bounds how long a
 * crashed holder blocks others; it is released when `fn` settles.
 */
export class RedisLockManager implements LockManager {
  readonly name: string;
  private readonly redlock: Redlock;
  private readonly prefix: string;

  constructor(
    private readonly redis: Redis,
    private readonly opts: RedisLockManagerOptions = {},
  ) {
    this.prefix = opts.prefix ?? 'settle:lock:';
    this.redlock = new Redlock([redis], { retryCount: 0 });
    this.name = `Redis Redlock at ${describeConnection(redis)} (${this.prefix}*)`;
  }

  static async create(
    url: string,
    opts: Omit<RedisLockManagerOptions, 'ownsConnection'> = {},
  ): Promise<RedisLockManager> {
    return new RedisLockManager(await createRedisConnection(url, 'locks'), { ...opts, ownsConnection: true });
  }

  async tryWithLock<T>(
    key: string,
    ttlMs: number,
    fn: () => Promise<T>,
  ): Promise<{ acquired: true; value: T } | { acquired: false }> {
    const resource = this.prefix + key;
    const duration = Math.max(1, Math.ceil(ttlMs));
    const threshold = extensionThreshold(duration);
    let outcome: Outcome<T> | undefined;
    const run = async (): Promise<T> => {
      try {
        const value = await fn();
        outcome = { ok: true, value };
        return value;
      } catch (error) {
        outcome = { ok: false, error };
        throw error;
      }
    };
    try {
      if (threshold !== undefined) {
        await this.redlock.using(
          [resource],
          duration,
          { retryCount: 0, automaticExtensionThreshold: threshold },
          async (signal) => {
            signal.addEventListener(
              'abort',
              () => this.opts.onLockLost?.(key, signal.error ?? new Error('lock lost')),
              { once: true },
            );
            return run();
          },
        );
      } else {
        // Too short to extend: hold it for the TTL at most.
        const lock = await this.redlock.acquire([resource], duration, { retryCount: 0 });
        try {
          await run();
        } finally {
          await lock.release().catch(() => undefined);
        }
      }
    } catch (error) {
      // fn's own failure is the caller's; a failed release after fn is not (the lock expires by itself).
      if (outcome && !outcome.ok) throw outcome.error;
      if (!outcome) {
        if (await heldElsewhere(error)) return { acquired: false };
        throw new SettleError(
          ERR_STORE_UNAVAILABLE,
          `locks: could not take lock ${key} in Redis: ${(error as Error).message}`,
          503,
          { cause: error },
        );
      }
    }
    return { acquired: true, value: (outcome as { ok: true; value: T }).value };
  }

  async close(): Promise<void> {
    if (this.opts.ownsConnection) await this.redis.quit().catch(() => this.redis.disconnect());
  }
}
