import { join } from 'node:path';
import {
  createMemoryPubSub,
  createMetrics,
  createPgClient,
  createPgliteClient,
  EventStoreBus,
  instrumentEventStore,
  MemoryCache,
  MemoryLockManager,
  MemoryReadStore,
  SqlEventStore,
  SqlIdempotencyStore,
  SettleError,
  ERR_CONFIG_INVALID,
  type Bus,
  type Cache,
  type Config,
  type EventStore,
  type IdempotencyStore,
  type LockManager,
  type Logger,
  type Metrics,
  type MQEmitter,
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
  close(): Promise<void>;
}

const redact = (url: string) => url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');

async function connect<T>(part: string, url: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    throw new SettleError(
      'SETTLE_ERR_STARTUP_CONNECT',
      `could not connect to the ${part} at ${redact(url)}: ${(error as Error).message}`,
      500,
      { cause: error },
    );
  }
}

export async function createPlatform(config: Config, logger: Logger): Promise<PlatformParts> {
  let sqlStore: SqlEventStore;
  if (config.eventStore === 'embedded') {
    sqlStore = await connect('embedded event store', join(config.dataDir, 'events'), async () =>
      SqlEventStore.create(await createPgliteClient(join(config.dataDir, 'events'))),
    );
  } else if (config.eventStore.startsWith('postgres')) {
    sqlStore = await connect('event store (PostgreSQL)', config.eventStore, async () => {
      const client = await createPgClient(config.eventStore);
      return SqlEventStore.create(client);
    });
  } else {
    throw new SettleError(ERR_CONFIG_INVALID, `SETTLE_EVENT_STORE=${redact(config.eventStore)}: EventStoreDB is not wired in this build yet`);
  }
  if (config.readStore !== 'embedded')
    throw new SettleError(ERR_CONFIG_INVALID, `SETTLE_READ_STORE=${redact(config.readStore)}: MongoDB is not wired in this build yet`);
  if (config.bus !== 'embedded')
    throw new SettleError(ERR_CONFIG_INVALID, `SETTLE_BUS=${config.bus}: Kafka is not wired in this build yet`);
  if (config.redisUrl) throw new SettleError(ERR_CONFIG_INVALID, `SETTLE_REDIS_URL: Redis is not wired in this build yet`);

  const metrics = createMetrics();
  const eventStore = instrumentEventStore(sqlStore, metrics);
  const readStore = new MemoryReadStore();
  const bus = new EventStoreBus(eventStore, logger.child({ part: 'bus' }));
  const pubsub = createMemoryPubSub();
  const parts: PlatformParts = {
    eventStore,
    readStore,
    bus,
    cache: new MemoryCache(),
    locks: new MemoryLockManager(),
    pubsub,
    idempotency: new SqlIdempotencyStore(sqlStore.client),
    metrics,
    async close() {
      await bus.close();
      await new Promise<void>((r) => pubsub.close(() => r()));
      await readStore.close();
      await eventStore.close();
    },
  };
  logger.info({ eventStore: eventStore.name, readStore: readStore.name, bus: bus.name, cache: parts.cache.name }, 'parts connected');
  return parts;
}
