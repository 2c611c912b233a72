import { join } from 'node:path';
import {
  createMemoryPubSub,
  createMetrics,
  createPgClient,
  createPgliteThreadClient,
  createRedisConnection,
  createRedisPubSub,
  EsdbEventStore,
  EventStoreBus,
  instrumentEventStore,
  KafkaBus,
  MemoryCache,
  MemoryIdempotencyStore,
  MemoryLockManager,
  MemoryReadStore,
  MongoReadStore,
  PartMonitor,
  parseKafkaBrokers,
  redactUrl,
  RedisCache,
  RedisIdempotencyStore,
  RedisLockManager,
  SettleError,
  SqlEventStore,
  SqlIdempotencyStore,
  type Bus,
  type Cache,
  type Config,
  type EventStore,
  type IdempotencyStore,
  type LockManager,
  type Logger,
  type Metrics,
  type MQEmitter,
  type PartProbe,
  type ReadStore,
} from '@settle/platform';

/** The parts every role runs on, chosen by configuration — the only place adapters are picked. */
export interface PlatformParts {
  eventStore: EventStore;
  readStore: ReadStore;
  bus: Bus;
  cache: Cache;
  locks: LockManager;
  pubsub: MQEmitter;
  idempotency: IdempotencyStore;
  metrics: Metrics;
  /** Redis connection shared by rate limits and idempotency, when Redis is configured. */
  redis?: import('ioredis').Redis;
  /** Which parts answer right now (probed every second): `eventStore`, `readStore`, `bus`, `redis`. */
  health: PartMonitor;
  close(): Promise<void>;
}

async function connect<T>(part: string, url: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    throw new SettleError(
      'SETTLE_ERR_STARTUP_CONNECT',
      `could not connect to the ${part} at ${redactUrl(url)}: ${(error as Error).message}`,
      500,
      { cause: error },
    );
  }
}

export interface PlatformOptions {
  /** This process forwards the event store's log to Kafka (reactor roles). */
  forward?: boolean;
}

export async function createPlatform(
  config: Config,
  logger: Logger,
  opts: PlatformOptions = {},
): Promise<PlatformParts> {
  const closers: (() => Promise<unknown>)[] = [];
  const metrics = createMetrics();
  try {
    let store: EventStore;
    let sqlStore: SqlEventStore | undefined;
    if (config.eventStore === 'embedded') {
      const dir = join(config.dataDir, 'events');
      store = sqlStore = await connect('embedded event store', dir, async () =>
        SqlEventStore.create(await createPgliteThreadClient(dir)),
      );
    } else if (config.eventStore.startsWith('postgres')) {
      store = sqlStore = await connect('event store (PostgreSQL)', config.eventStore, async () =>
        SqlEventStore.create(
          await createPgClient(config.eventStore, {
            statementTimeoutMs: config.pgStatementTimeoutMs,
            longStatementTimeoutMs: config.pgLongStatementTimeoutMs,
          }),
        ),
      );
    } else {
      store = await connect('event store (EventStoreDB)', config.eventStore, () =>
        EsdbEventStore.create(config.eventStore),
      );
    }
    const rawStore = store;
    closers.push(() => rawStore.close());
    const eventStore = instrumentEventStore(store, metrics);

    const readStore: ReadStore =
      config.readStore === 'embedded'
        ? new MemoryReadStore()
        : await connect('read store (MongoDB)', config.readStore, () =>
            MongoReadStore.create(config.readStore, { logger: logger.child({ part: 'readStore' }) }),
          );
    closers.push(() => readStore.close());

    let bus: Bus;
    if (config.bus === 'embedded') bus = new EventStoreBus(eventStore, logger.child({ part: 'bus' }), metrics);
    else
      bus = await connect('bus (Kafka)', config.bus, () =>
        KafkaBus.create({
          brokers: parseKafkaBrokers(config.bus),
          logger: logger.child({ part: 'bus' }),
          metrics,
          topicPrefix: config.kafkaTopicPrefix,
          // Consumers count crash loops in the event store's checkpoints (durable on every store).
          attemptStore: eventStore,
          ...(opts.forward
            ? { eventStore, forwarder: { streamPrefixes: ['request-', 'preferences-', 'client-'] } }
            : {}),
        }),
      );
    closers.unshift(() => bus.close());

    let cache: Cache = new MemoryCache();
    let locks: LockManager = new MemoryLockManager();
    let pubsub: MQEmitter = createMemoryPubSub();
    let idempotency: IdempotencyStore = sqlStore
      ? new SqlIdempotencyStore(sqlStore.client)
      : new MemoryIdempotencyStore();
    let redis: PlatformParts['redis'];
    if (config.redisUrl) {
      const url = config.redisUrl;
      const p = config.redisPrefix;
      cache = await connect('cache (Redis)', url, () => RedisCache.create(url, { prefix: `${p}cache:` }));
      locks = await connect('locks (Redis)', url, () => RedisLockManager.create(url, { prefix: `${p}lock:` }));
      pubsub = await connect('pub/sub (Redis)', url, () => createRedisPubSub(url));
      const shared = await connect('Redis', url, () => createRedisConnection(url, 'rate limits'));
      redis = shared;
      closers.push(async () => shared.quit());
      // Idempotency keys live next to the events when the store is SQL (durable, one transaction away);
      // Redis otherwise.
      if (!sqlStore) idempotency = new RedisIdempotencyStore(shared, { prefix: `${p}idempotency:` });
    }
    const closeCache = cache;
    const closeLocks = locks;
    const closePubSub = pubsub;
    closers.push(
      () => closeCache.close(),
      () => closeLocks.close(),
      () => new Promise<void>((r) => closePubSub.close(() => r())),
    );

    // Embedded parts live in this process: nothing to probe but the event store (a cheap query).
    const probes: PartProbe[] = [{ name: 'eventStore', description: rawStore.name, probe: () => rawStore.ping() }];
    if (config.readStore !== 'embedded')
      probes.push({ name: 'readStore', description: readStore.name, probe: () => readStore.ping() });
    const pingBus = (bus as { ping?: () => Promise<void> }).ping?.bind(bus);
    if (pingBus) probes.push({ name: 'bus', description: bus.name, probe: pingBus });
    if (redis) {
      const r = redis;
      probes.push({
        name: 'redis',
        description: `Redis at ${redactUrl(config.redisUrl)}`,
        probe: async () => {
          // Not connected: say so now instead of queueing a PING behind the reconnection.
          if (r.status !== 'ready') throw new Error(`connection ${r.status}`);
          await r.ping();
        },
      });
      r.on('close', () => health.markDown('redis', 'connection closed'));
    }
    const health = new PartMonitor({
      parts: probes,
      logger: logger.child({ part: 'health' }),
      registry: metrics.registry,
    });
    // A statement of the event store timed out: down now (commands get 503 at once); the next
    // probe checks whether an append could take its locks again.
    sqlStore?.onStall((reason) => health.markDown('eventStore', reason));
    health.start();
    closers.unshift(async () => health.stop());

    logger.info(
      { eventStore: eventStore.name, readStore: readStore.name, bus: bus.name, cache: cache.name, locks: locks.name },
      'parts connected',
    );
    return {
      eventStore,
      readStore,
      bus,
      cache,
      locks,
      pubsub,
      idempotency,
      metrics,
      ...(redis ? { redis } : {}),
      health,
      async close() {
        for (const close of closers)
          await close().catch((error: unknown) => logger.warn({ err: error }, 'error while closing a part'));
      },
    };
  } catch (error) {
    for (const close of closers) await close().catch(() => undefined);
    throw error;
  }
}
