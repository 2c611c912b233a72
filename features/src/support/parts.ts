import { createHash } from 'node:crypto';
import pg from 'pg';

/**
 * Which parts a feature run drives Settle on: `embedded` (the default) or `real` — PostgreSQL,
 * Kafka, MongoDB wire (FerretDB) and Redis from `infra/local/services up` (set
 * SETTLE_FEATURES_PARTS=real; `npm run test:features:real` does). Each data directory gets
 * its own database, topics and key prefix, so a restart on the same directory sees its own
 * state and nothing else.
 */
export const PARTS = process.env.SETTLE_FEATURES_PARTS === 'real' ? 'real' : 'embedded';

const PG_ADMIN_URL = process.env.SETTLE_FEATURES_PG_URL ?? 'postgres://settle:settle@127.0.0.1:5432/settle';
const KAFKA = process.env.SETTLE_FEATURES_KAFKA ?? 'kafka://127.0.0.1:9092';
const MONGO = process.env.SETTLE_FEATURES_MONGO ?? 'mongodb://127.0.0.1:27017';
const REDIS = process.env.SETTLE_FEATURES_REDIS ?? 'redis://127.0.0.1:6379';

const created = new Set<string>();
console.error(
  PARTS === 'real'
    ? '[features] running on the real parts: PostgreSQL, Kafka, MongoDB wire (FerretDB), Redis'
    : '[features] running on the embedded parts',
);

export async function partsEnv(dataDir: string): Promise<Record<string, string>> {
  if (PARTS === 'embedded') return {};
  const ns = `f${createHash('sha256').update(dataDir).digest('hex').slice(0, 10)}`;
  const database = `settle_${ns}`;
  if (!created.has(database)) {
    const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
    await admin.connect();
    try {
      const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
      if (exists.rowCount === 0) await admin.query(`CREATE DATABASE ${database}`);
    } finally {
      await admin.end();
    }
    created.add(database);
  }
  const pgUrl = new URL(PG_ADMIN_URL);
  pgUrl.pathname = `/${database}`;
  return {
    SETTLE_EVENT_STORE: pgUrl.toString(),
    SETTLE_BUS: KAFKA,
    SETTLE_KAFKA_TOPIC_PREFIX: `settle-${ns}.`,
    SETTLE_READ_STORE: `${MONGO}/settle_${ns}`,
    SETTLE_REDIS_URL: REDIS,
    SETTLE_REDIS_PREFIX: `settle-${ns}:`,
  };
}
