import { Redis, type RedisOptions } from 'ioredis';
import { ERR_STORE_UNAVAILABLE, SettleError } from '../errors.js';

/** Hides the password of a connection URL (`redis://:secret@h`, `mongodb://u:secret@h1,h2/db`) for logs and errors. */
export const redactUrl = (url: string): string =>
  url
    .replace(/^([a-z][a-z0-9+.-]*:\/\/)([^@/?#]*)@/i, (_, scheme: string, userinfo: string) => {
      const colon = userinfo.indexOf(':');
      return `${scheme}${colon >= 0 ? `${userinfo.slice(0, colon)}:***` : '***'}@`;
    })
    .replace(/([?&]password=)[^&#]*/i, '$1***');

/** `host:port/db` of a connection, for adapter names in logs (never the password). */
export const describeConnection = (redis: Redis): string =>
  `${redis.options.host}:${redis.options.port}/${redis.options.db ?? 0}`;

/** Reconnect with exponential backoff and jitter (50 ms doubling to 2 s), forever: outages end. */
export const redisRetryStrategy = (attempt: number): number =>
  Math.min(50 * 2 ** Math.min(attempt, 6), 2000) + Math.floor(Math.random() * 100);

export interface RedisConnectionOptions {
  /** Commands issued while disconnected fail after this many reconnection attempts (fast 503s, not hangs). */
  maxRetriesPerRequest?: number;
  connectTimeoutMs?: number;
  /** Receives connection errors after start-up (ioredis keeps reconnecting meanwhile). */
  onError?: (error: Error) => void;
  redisOptions?: RedisOptions;
}

/**
 * Connects to Redis for one part of Settle (`part` names it in errors: "cache", "locks", …) and
 * proves the connection with a PING, so a wrong or missing server fails start-up with a message
 * naming the part and the (redacted) URL instead of hanging.
 *
 * @example
 * const redis = await createRedisConnection(config.redisUrl, 'cache');
 */
export async function createRedisConnection(
  url: string,
  part: string,
  opts: RedisConnectionOptions = {},
): Promise<Redis> {
  let lastError: Error | undefined;
  const redis = new Redis(url, {
    lazyConnect: true,
    connectTimeout: opts.connectTimeoutMs ?? 5000,
    maxRetriesPerRequest: opts.maxRetriesPerRequest ?? 3,
    retryStrategy: redisRetryStrategy,
    // After a failover the old primary answers READONLY: reconnect (and resend) instead of failing.
    reconnectOnError: (err) => err.message.startsWith('READONLY'),
    // CLIENT SETNAME refuses spaces; shows up in CLIENT LIST, e.g. settle:pub-sub-publisher.
    connectionName: `settle:${part.replace(/[^\w:]+/g, '-').replace(/-+$/, '')}`,
    ...opts.redisOptions,
  });
  redis.on('error', (error: Error) => {
    lastError = error;
    opts.onError?.(error);
  });
  try {
    await redis.connect();
    await redis.ping();
    return redis;
  } catch (error) {
    redis.disconnect();
    const reason = lastError?.message ?? (error as Error).message;
    throw new SettleError(
      ERR_STORE_UNAVAILABLE,
      `${part}: could not connect to Redis at ${redactUrl(url)}: ${reason}`,
      503,
      {
        cause: lastError ?? error,
      },
    );
  }
}
