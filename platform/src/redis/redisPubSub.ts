import mqemitterRedis from 'mqemitter-redis';
import type { MQEmitter } from '../pubsub.js';
import { createRedisConnection, type RedisConnectionOptions } from './connection.js';

/**
 * Pub/sub across replicas (GraphQL subscriptions fan-out): an mqemitter that publishes through
 * Redis, for mercurius' `subscription.emitter`. Both of its connections (one subscribes, one
 * publishes) are checked at start and reconnect with backoff, resubscribing their topics.
 *
 * @example
 * const pubsub = await createRedisPubSub(config.redisUrl);
 */
export async function createRedisPubSub(url: string, opts: RedisConnectionOptions = {}): Promise<MQEmitter> {
  // Publishing waits through a short outage rather than dropping the update.
  const pubConn = await createRedisConnection(url, 'pub/sub (publisher)', { maxRetriesPerRequest: 20, ...opts });
  const subConn = await createRedisConnection(url, 'pub/sub (subscriber)', opts).catch(async (error: unknown) => {
    pubConn.disconnect();
    throw error;
  });
  // mqemitter-redis is typed against its own ioredis 5; the v6 connections serve the same calls.
  const emitter = mqemitterRedis({ pubConn: pubConn as never, subConn: subConn as never, concurrency: 0 });
  // It re-emits every connection error on `state`: unheard, a Redis outage would crash the process.
  // The connections reconnect by themselves (and resubscribe), so the error is only reported.
  (emitter as unknown as { state: import('node:events').EventEmitter }).state.on('error', (error: Error) =>
    opts.onError?.(error),
  );
  return emitter;
}
