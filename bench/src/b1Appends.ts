import pg from 'pg';
import { createPgClient, createPgliteClient, SqlEventStore, type SqlClient, type SqlExecutor } from '@settle/platform';
import { judge, type Ctx } from './context.js';
import { byStream, generateLog, type EventRow } from './events.js';
import { Latencies, now, pool, procsCpuSeconds, round, RssSampler, cpuSince, type Figures } from './measure.js';
import type { Row } from './report.js';
import { insertStatement, SERVICES, tempDir, throwawayPostgres } from './services.js';

const CONCURRENCY = [1, 16, 64];
/** Settle's PostgreSQL client as `settle start` configures it (createPgClient defaults). */
const PG_POOL_SIZE = 10;
const PG_MAX_CONCURRENCY = 4;
const ROWS_PER_STATEMENT = 100;

interface Target {
  name: 'embedded' | 'PostgreSQL';
  /** A fresh Settle event store over emptied tables, and the server processes behind it. */
  settle(): Promise<{ store: SqlEventStore; backends(): Promise<number[]>; statements: StatementCounter }>;
  /** `size` raw connections to the same, emptied tables. */
  raw(size: number): Promise<{ execs: SqlExecutor[]; backends(): Promise<number[]>; close(): Promise<void> }>;
  close(): Promise<void>;
}

/** Counts the SQL statements and transactions a client runs (how many round trips an append costs). */
interface StatementCounter {
  statements: number;
  transactions: number;
}

function counting(client: SqlClient): { client: SqlClient; counter: StatementCounter } {
  const counter: StatementCounter = { statements: 0, transactions: 0 };
  const wrapped: SqlClient = Object.create(client) as SqlClient;
  Object.assign(wrapped, {
    query: (sql: string, params?: unknown[]) => (counter.statements++, client.query(sql, params)),
    transaction: <T>(fn: (tx: SqlExecutor) => Promise<T>) => {
      counter.transactions++;
      // BEGIN and COMMIT are statements (round trips) too.
      counter.statements += 2;
      return client.transaction((tx) => fn({ query: (sql, params) => (counter.statements++, tx.query(sql, params)) }));
    },
    exec: (sql: string) => client.exec(sql),
    close: () => client.close(),
  });
  return { client: wrapped, counter };
}

const EMPTY = 'TRUNCATE settle_events, settle_streams, settle_checkpoints RESTART IDENTITY';

/** Unmeasured appends to streams of their own: JIT, pool connections, WASM warm before timing. */
async function warmUp(store: SqlEventStore, concurrency: number): Promise<void> {
  const warm = generateLog(concurrency * 2, { seed: 99 }).map((r) => ({
    ...r,
    streamId: `warm-${r.id}`,
    streamPosition: 0,
  }));
  await pool(warm, concurrency, async (r) => {
    await store.append(r.streamId, [{ id: r.id, type: r.type, data: r.data, metadata: r.metadata }], {
      expectedRevision: 'no_stream',
    });
  });
}

/**
 * Appends `rows` through Settle's event store: `concurrency` appenders, each owning a share of the
 * streams and writing their events one append at a time with the expected revision, interleaving
 * its streams as production traffic does. Stops at the deadline; returns the rows it wrote.
 */
async function appendThroughSettle(store: SqlEventStore, streams: EventRow[][], concurrency: number, seconds: number) {
  const latencies = new Latencies();
  const written: EventRow[] = [];
  const deadline = now() + seconds * 1000;
  const shares = Array.from({ length: concurrency }, (_, w) => streams.filter((_, i) => i % concurrency === w));
  const rss = new RssSampler();
  const cpu = process.cpuUsage();
  const t0 = now();
  await Promise.all(
    shares.map(async (share) => {
      const longest = Math.max(0, ...share.map((s) => s.length));
      for (let round = 0; round < longest; round++)
        for (const stream of share) {
          const row = stream[round];
          if (!row) continue;
          if (now() > deadline) return;
          const t = now();
          await store.append(row.streamId, [{ id: row.id, type: row.type, data: row.data, metadata: row.metadata }], {
            expectedRevision: row.streamPosition === 0 ? 'no_stream' : row.streamPosition - 1,
          });
          latencies.add(now() - t);
          written.push(row);
        }
    }),
  );
  const seconds_ = (now() - t0) / 1000;
  return { written, latencies, seconds: seconds_, cpuSeconds: cpuSince(cpu), peakRssMb: rss.stop() };
}

/** The limit: the same rows as multi-row INSERTs of 100, over `execs.length` connections. */
async function insertRaw(execs: SqlExecutor[], rows: EventRow[]) {
  const statements: EventRow[][] = [];
  for (let i = 0; i < rows.length; i += ROWS_PER_STATEMENT) statements.push(rows.slice(i, i + ROWS_PER_STATEMENT));
  const prepared = statements.map((s) => insertStatement(s, false));
  const latencies = new Latencies();
  const rss = new RssSampler();
  const cpu = process.cpuUsage();
  const t0 = now();
  await pool(prepared, execs.length, async (stmt, worker) => {
    const t = now();
    await execs[worker]!.query(stmt.sql, stmt.params);
    latencies.add(now() - t);
  });
  return { latencies, seconds: (now() - t0) / 1000, cpuSeconds: cpuSince(cpu), peakRssMb: rss.stop() };
}

async function postgresTarget(ctx: Ctx): Promise<Target> {
  const dbName = `settle_bench_${ctx.runId}_b1`;
  const db = await throwawayPostgres(dbName);
  const admin = new pg.Client({ connectionString: SERVICES.postgres });
  await admin.connect();
  const backends = async () =>
    (await admin.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = $1', [dbName])).rows.map(
      (r) => r.pid,
    );
  const client = await createPgClient(db.url, { poolSize: PG_POOL_SIZE, maxConcurrency: PG_MAX_CONCURRENCY });
  await SqlEventStore.create(client);
  return {
    name: 'PostgreSQL',
    async settle() {
      await client.exec(EMPTY);
      const counted = counting(client);
      const store = await SqlEventStore.create(counted.client);
      // Every pooled connection open now, so their backends (and CPU) are known before timing.
      await Promise.all(Array.from({ length: PG_POOL_SIZE }, () => client.query('SELECT pg_sleep(0.02)')));
      return { store, backends, statements: counted.counter };
    },
    async raw(size) {
      await client.exec(EMPTY);
      const clients = await Promise.all(
        Array.from({ length: size }, async () => {
          const c = new pg.Client({ connectionString: db.url });
          await c.connect();
          return c;
        }),
      );
      return {
        execs: clients.map((c) => ({
          query: async (sql: string, params?: unknown[]) => ({ rows: (await c.query(sql, params)).rows }),
        })),
        backends,
        close: async () => void (await Promise.all(clients.map((c) => c.end()))),
      };
    },
    async close() {
      await client.close().catch(() => undefined);
      await admin.end();
      await db.drop();
    },
  };
}

/** PGlite on a temporary folder, as `settle start` runs it; the raw limit uses the same instance. */
async function embeddedTarget(): Promise<Target> {
  const dir = await tempDir('b1-pglite');
  const client = await createPgliteClient(dir.path);
  await SqlEventStore.create(client);
  return {
    name: 'embedded',
    async settle() {
      await client.exec(EMPTY);
      const counted = counting(client);
      return {
        store: await SqlEventStore.create(counted.client),
        backends: async () => [],
        statements: counted.counter,
      };
    },
    async raw() {
      await client.exec(EMPTY);
      return { execs: [client], backends: async () => [], close: async () => undefined };
    },
    async close() {
      await client.close().catch(() => undefined);
      await dir.remove();
    },
  };
}

/** B1: appends through Settle's event store vs raw multi-row INSERTs of the same rows. */
export async function runB1(ctx: Ctx): Promise<Row[]> {
  const rows: Row[] = [];
  const log = generateLog(ctx.sizes.b1Events, { seed: 1 });
  const streams = byStream(log);
  ctx.log(`B1: ${log.length} events over ${streams.length} streams, ≤ ${ctx.sizes.b1Seconds} s per measurement`);
  const targets: (Target | string)[] = [await embeddedTarget()];
  const pgProblem = await ctx.problem('postgres');
  targets.push(pgProblem ?? (await postgresTarget(ctx)));

  for (const target of targets) {
    if (typeof target === 'string') {
      for (const c of CONCURRENCY)
        rows.push({
          id: 'B1',
          workload: `appends, PostgreSQL, concurrency ${c}`,
          skipped: target,
          ...(c === 16 ? { target: '≥ 50% of raw INSERTs' } : {}),
        });
      continue;
    }
    try {
      for (const c of CONCURRENCY) {
        const workload = `appends, ${target.name}, concurrency ${c}`;
        ctx.log(`B1: ${workload}`);
        const { store, backends, statements } = await target.settle();
        await warmUp(store, c);
        const statements0 = { ...statements };
        const settlePids = await backends();
        const serverCpu0 = procsCpuSeconds(settlePids);
        const s = await appendThroughSettle(store, streams, c, ctx.sizes.b1Seconds);
        const settleServerCpu = procsCpuSeconds(settlePids) - serverCpu0;
        const perEvent = (k: keyof StatementCounter) => round((statements[k] - statements0[k]) / s.written.length, 2);

        const rawConnections = target.name === 'embedded' ? 1 : Math.min(c, PG_POOL_SIZE);
        const raw = await target.raw(rawConnections);
        const warmRows = generateLog(ROWS_PER_STATEMENT, { seed: 98 });
        await raw.execs[0]!.query(insertStatement(warmRows, false).sql, insertStatement(warmRows, false).params);
        const rawPids = await raw.backends();
        const rawCpu0 = procsCpuSeconds(rawPids);
        const r = await insertRaw(raw.execs, s.written);
        const rawServerCpu = procsCpuSeconds(rawPids) - rawCpu0;
        await raw.close();

        const settle: Figures = {
          throughput: round(s.written.length / s.seconds, 1),
          unit: 'events/s',
          count: s.written.length,
          seconds: round(s.seconds, 2),
          ...s.latencies.summary(),
          latencyOf: 'one append',
          cpuSeconds: s.cpuSeconds,
          cpuOf: 'bench process (client + Settle store)',
          ...(target.name === 'PostgreSQL' ? { serverCpuSeconds: round(settleServerCpu) } : {}),
          peakRssMb: s.peakRssMb,
          rssOf: 'bench process',
          extra: { sqlStatementsPerEvent: perEvent('statements'), transactionsPerEvent: perEvent('transactions') },
        };
        const limit: Figures = {
          throughput: round(s.written.length / r.seconds, 1),
          unit: 'events/s',
          count: s.written.length,
          seconds: round(r.seconds, 2),
          ...r.latencies.summary(),
          latencyOf: `one ${ROWS_PER_STATEMENT}-row INSERT`,
          cpuSeconds: r.cpuSeconds,
          cpuOf: 'bench process',
          ...(target.name === 'PostgreSQL' ? { serverCpuSeconds: round(rawServerCpu) } : {}),
          peakRssMb: r.peakRssMb,
          rssOf: 'bench process',
          extra: { connections: rawConnections },
        };
        const ratio = settle.throughput! / limit.throughput!;
        const judged = target.name === 'PostgreSQL' && c === 16;
        rows.push({
          id: 'B1',
          workload,
          settle,
          limitName: `raw ${ROWS_PER_STATEMENT}-row INSERTs into ${target.name === 'embedded' ? 'PGlite' : 'the same PostgreSQL'}, ${rawConnections} connection${rawConnections > 1 ? 's' : ''}`,
          limit,
          ratio: round(ratio, 3),
          ...(judged ? { target: '≥ 50% of raw INSERTs', met: judge(ctx, ratio >= 0.5) } : {}),
          note: [
            `Settle: ${perEvent('statements')} SQL statements and ${perEvent('transactions')} transactions per event (group commit); the limit: ${round(1 / ROWS_PER_STATEMENT, 2)} statements per event`,
            ...(s.written.length < log.length
              ? [
                  `time-capped at ${ctx.sizes.b1Seconds} s: ${s.written.length} of ${log.length} events appended; the limit inserted the same ${s.written.length} rows`,
                ]
              : []),
          ].join('; '),
        });
      }
    } finally {
      await target.close();
    }
  }
  return rows;
}
