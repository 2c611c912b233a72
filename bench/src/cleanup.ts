import { Kafka, logLevel } from 'kafkajs';
import { createRedisConnection } from '@settle/platform';
import { MongoClient } from 'mongodb';
import { SERVICES } from './services.js';

/** Deletes every topic (and consumer group) whose name starts with `prefix`: only this run's. */
export async function cleanupKafkaTopics(prefix: string): Promise<void> {
  if (prefix.length < 8) throw new Error(`refusing to delete topics by the short prefix ${prefix}`);
  const admin = new Kafka({
    clientId: 'settle-bench-cleanup',
    brokers: SERVICES.kafka,
    logLevel: logLevel.NOTHING,
  }).admin();
  await admin.connect();
  try {
    const topics = (await admin.listTopics()).filter((t) => t.startsWith(prefix));
    if (topics.length > 0) await admin.deleteTopics({ topics, timeout: 30_000 });
    const groups = (await admin.listGroups()).groups.map((g) => g.groupId).filter((g) => g.startsWith(prefix));
    if (groups.length > 0) await admin.deleteGroups(groups).catch(() => undefined);
  } finally {
    await admin.disconnect();
  }
}

/**
 * Drops a benchmark database without upsetting FerretDB 1.x (SQLite): dropping a database whose
 * file another connection is still reading crashed it (SIGBUS in the WAL index) and left an empty
 * file that stopped it from starting again. So: a quiet moment for queries of clients that just
 * went away to finish, each collection dropped first (a table, not the file), then the database.
 */
export async function dropMongoDatabase(name: string, quietMs = 3000): Promise<void> {
  if (!name.startsWith('settle_bench_')) throw new Error(`refusing to drop ${name}: not a benchmark database`);
  await new Promise((r) => setTimeout(r, quietMs));
  // FerretDB can stall for minutes under load: bounded waits, and the database is left behind
  // (reported by the caller) rather than the run hanging.
  const client = new MongoClient(SERVICES.mongo, { serverSelectionTimeoutMS: 5000, socketTimeoutMS: 20_000 });
  await client.connect();
  try {
    const db = client.db(name);
    for (const c of await db.listCollections({}, { nameOnly: true }).toArray())
      await db.dropCollection(c.name).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 500));
    await db.dropDatabase();
  } finally {
    await client.close();
  }
}

/** Deletes every Redis key under `prefix` (cache entries, locks, idempotency keys of one run). */
export async function cleanupRedisPrefix(url: string, prefix: string): Promise<number> {
  if (prefix.length < 8) throw new Error(`refusing to delete Redis keys by the short prefix ${prefix}`);
  const redis = await createRedisConnection(url, 'bench-cleanup');
  let deleted = 0;
  try {
    const stream = redis.scanStream({ match: `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`, count: 500 });
    for await (const keys of stream as AsyncIterable<string[]>)
      if (keys.length > 0) deleted += await redis.unlink(...keys);
  } finally {
    redis.disconnect();
  }
  return deleted;
}
