import { MongoClient, type AnyBulkWriteOperation, type Document } from 'mongodb';
import {
  createPgClient,
  createPgliteClient,
  MemoryReadStore,
  silentLogger,
  SqlEventStore,
  versionedCheckpoint,
  versionedCollection,
  type ReadStore,
  type SqlClient,
} from '@settle/platform';
import { ALL_PROJECTIONS, ProjectionOperations } from '@settle/projections';
import { dropMongoDatabase } from './cleanup.js';
import { judge, type Ctx } from './context.js';
import { LogGenerator } from './events.js';
import { cpuSince, Latencies, now, round, RssSampler, type Figures } from './measure.js';
import { loadPlatformModule, type MongoReadStoreLike, type MongoReadStoreModule } from './optional.js';
import type { Row } from './report.js';
import { SERVICES, seedEvents, tempDir, throwawayPostgres } from './services.js';

const RATE_TARGET = 20_000;
/** "Grows linearly": the per-event time at the largest size is at most this many times that at the smallest. */
const LINEAR_TOLERANCE = 1.5;
const SEED_CHUNK = 10_000;
/** How long a rebuild cut at its cap may take to stop (the batches and writes in flight end first). */
const STOP_GRACE_SECONDS = 60;

interface Source {
  name: string;
  store: SqlEventStore;
  client: SqlClient;
  close(): Promise<void>;
}

interface Rebuild {
  figures: Figures;
  processed: number;
  capped: boolean;
  /** The version the rebuild wrote (its collections are `<name>_v<version>`). */
  version: number;
  /** Events the written documents stand for: all of them, or (cut short) the lowest checkpoint (0: unknown). */
  covered: number;
  /** Cut short: how long stopping took (the batches and writes in flight; counted in the rate unless it stalled). */
  stopSeconds?: number;
  /** Cut short: whether the stop ended within its grace (else the rate is up to the cap). */
  stopped: boolean;
}

/**
 * `settle replay --projection` for every projection at once, into a fresh read store: the rebuild
 * runner (`ProjectionOperations`) writing version 2 from position 0, measured until every
 * projection has cut over (or the cap: the runners are then stopped at their next batch).
 */
async function rebuild(
  source: Source,
  readStore: ReadStore,
  events: number,
  capSeconds: number,
  log: (message: string) => void,
): Promise<Rebuild> {
  const latencies = new Latencies();
  let lastLog = now();
  const positions = new Map<string, number>();
  const lastBatch = new Map<string, number>();
  const operations = new ProjectionOperations({
    eventStore: source.store,
    readStore,
    projections: ALL_PROJECTIONS,
    logger: silentLogger(),
    onProgress: (p) => {
      const t = now();
      if (t - lastLog > 15_000) {
        lastLog = t;
        log(`B4:   ${p.projection} at ${p.position} of ${p.headPosition}, ${p.eventsPerSecond} events/s`);
      }
      latencies.add(t - (lastBatch.get(p.projection) ?? t0));
      lastBatch.set(p.projection, t);
      positions.set(p.projection, p.position);
    },
  });
  const rss = new RssSampler();
  const cpu = process.cpuUsage();
  const t0 = now();
  const handles = await Promise.all(ALL_PROJECTIONS.map((p) => operations.rebuild(p.name, { actor: 'bench' })));
  // A projection with no events in the log (preferences here) finishes without a progress report.
  const finished = new Set<string>();
  for (const h of handles) void h.done.then(() => finished.add(h.projection)).catch(() => undefined);
  let timer: NodeJS.Timeout | undefined;
  const cut = await Promise.race([
    Promise.all(handles.map((h) => h.done)).then(() => false),
    new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), capSeconds * 1000))),
  ]);
  clearTimeout(timer);
  // Cut short, the rate is over the events every projection had folded once stopping has ended
  // (with the writes in flight landed), in the time up to then; if the stop stalls, up to the cap.
  const foldedBy = () =>
    Math.min(events, ...ALL_PROJECTIONS.filter((p) => !finished.has(p.name)).map((p) => positions.get(p.name) ?? 0));
  let seconds = (now() - t0) / 1000;
  let processed = cut ? foldedBy() : events;
  const version = handles[0]!.version;
  let covered = events;
  let stopSeconds: number | undefined;
  let stopped = true;
  if (cut) {
    // Stopping waits for the batches and writes in flight; a stalled server must not hold the run
    // (the store is then closed under a runner still waiting on it, and there is no limit to compare).
    const t = now();
    let stopTimer: NodeJS.Timeout | undefined;
    stopped = await Promise.race([
      operations
        .stop()
        .then(() => Promise.allSettled(handles.map((h) => h.done)))
        .then(() => true),
      new Promise<boolean>((resolve) => (stopTimer = setTimeout(() => resolve(false), STOP_GRACE_SECONDS * 1000))),
    ]);
    clearTimeout(stopTimer);
    stopSeconds = round((now() - t) / 1000, 1);
    if (stopped) {
      seconds = (now() - t0) / 1000;
      processed = foldedBy();
      // What was written stands for the lowest checkpoint (the changes not flushed yet were dropped).
      covered = Math.min(
        processed,
        ...(await Promise.all(
          ALL_PROJECTIONS.filter((p) => !finished.has(p.name)).map((p) =>
            readStore.getCheckpoint(versionedCheckpoint(p.name, version)),
          ),
        )),
      );
    } else {
      covered = 0;
      log(`B4: the rebuild cut at its cap did not stop within ${STOP_GRACE_SECONDS} s`);
    }
  }
  // The batch in flight at the cap may have been the last one.
  const capped = processed < events;
  return {
    processed,
    capped,
    version,
    covered,
    stopped,
    ...(stopSeconds !== undefined ? { stopSeconds } : {}),
    figures: {
      throughput: round(processed / seconds, 1),
      unit: 'events/s',
      count: processed,
      seconds: round(seconds, 2),
      ...latencies.summary(),
      latencyOf: 'one rebuild batch (≤ 5000 events, with any wait for the previous flush)',
      cpuSeconds: cpuSince(cpu),
      cpuOf: 'bench process (rebuild runners + store clients)',
      peakRssMb: rss.stop(),
      rssOf: 'bench process',
      extra: {
        logSize: events,
        ...(capped ? { cappedAfterSeconds: capSeconds } : {}),
        ...(stopSeconds !== undefined ? { stopSeconds } : {}),
      },
    },
  };
}

/** Embedded limit: reading the same log in the projector's batches, and nothing else. */
async function scanLog(source: Source, events: number): Promise<Figures> {
  const rss = new RssSampler();
  const cpu = process.cpuUsage();
  const t0 = now();
  let after = 0;
  let n = 0;
  const prefixes = [...new Set(ALL_PROJECTIONS.flatMap((p) => p.streamPrefixes))];
  for (;;) {
    const batch = await source.store.readAll({ after, limit: 5000, streamPrefixes: prefixes });
    if (batch.length === 0) break;
    n += batch.length;
    after = batch[batch.length - 1]!.globalPosition;
  }
  const seconds = (now() - t0) / 1000;
  return {
    throughput: round(n / seconds, 1),
    unit: 'events/s',
    count: n,
    seconds: round(seconds, 2),
    cpuSeconds: cpuSince(cpu),
    cpuOf: 'bench process',
    peakRssMb: rss.stop(),
    rssOf: 'bench process',
    extra: { logSize: events },
  };
}

/** A cursor's documents in arrays of `size`. */
async function* chunks(cursor: AsyncIterable<Document>, size: number): AsyncGenerator<Document[]> {
  let chunk: Document[] = [];
  for await (const d of cursor) {
    chunk.push(d);
    if (chunk.length === size) {
      yield chunk;
      chunk = [];
    }
  }
  if (chunk.length > 0) yield chunk;
}

/**
 * MongoDB limit: the rebuild's final documents written raw — one unordered bulkWrite of inserts
 * per 1000 documents into empty collections with the same indexes — as events/s of the log they
 * stand for (events ÷ seconds the bulk writes took; reading them back is not timed). Cut at `capSeconds`: the rate is then over the
 * share of the documents written (events × written ÷ documents).
 */
async function rawBulkWrite(
  ctx: Ctx,
  fromDb: string,
  version: number,
  events: number,
  capSeconds: number,
  withUpserts: boolean,
): Promise<Figures> {
  const client = new MongoClient(SERVICES.mongo, { serverSelectionTimeoutMS: 5000, socketTimeoutMS: 60_000 });
  await client.connect();
  const rawDb = `${fromDb}_raw`;
  try {
    const to = client.db(rawDb);
    // Read chunk by chunk while writing (only the writes are timed), the collections in turn, so a
    // write cut at the cap holds the same share of each.
    const sources: { name: string; cursor: AsyncIterator<Document[]> }[] = [];
    let docs = 0;
    for (const p of ALL_PROJECTIONS)
      for (const [name, indexes] of Object.entries(p.collections)) {
        const from = client.db(fromDb).collection(versionedCollection(name, version));
        // The collection's metadata, not a scan: FerretDB counts 100k+ documents slowly under load.
        docs += await from.estimatedDocumentCount();
        sources.push({ name, cursor: chunks(from.find({}, { batchSize: 1000 }), 1000) });
        for (const ix of indexes)
          await to.collection(name).createIndex(Object.fromEntries(ix.fields), ix.unique ? { unique: true } : {});
      }
    const collections: [string, Document[]][] = sources.map((x) => [x.name, []]);
    const latencies = new Latencies();
    const rss = new RssSampler();
    const cpu = process.cpuUsage();
    let writing = 0;
    let written = 0;
    let open = sources;
    while (open.length > 0 && writing < capSeconds * 1000) {
      const still: typeof open = [];
      for (const x of open) {
        if (writing >= capSeconds * 1000) break;
        const next = await x.cursor.next();
        if (next.done) continue;
        still.push(x);
        const ops = next.value.map((document): AnyBulkWriteOperation<Document> => ({ insertOne: { document } }));
        const t = now();
        await to.collection(x.name).bulkWrite(ops, { ordered: false });
        latencies.add(now() - t);
        writing += now() - t;
        written += ops.length;
        if (withUpserts) collections.find(([n]) => n === x.name)![1].push(...next.value);
      }
      open = still;
    }
    const seconds = writing / 1000;
    const covered = docs > 0 ? Math.round((events * written) / docs) : events;
    ctx.log(
      `B4: raw bulkWrite of ${written} of ${docs} documents took ${seconds.toFixed(2)} s${written < docs ? ` (cut at ${capSeconds} s)` : ''}`,
    );
    const upserts = withUpserts
      ? await rawUpserts(client, `${fromDb}_ups`, collections, Math.min(10, capSeconds))
      : undefined;
    return {
      throughput: round(covered / seconds, 1),
      unit: 'events/s',
      count: covered,
      seconds: round(seconds, 2),
      ...latencies.summary(),
      latencyOf: 'one bulkWrite of ≤ 1000 inserts',
      cpuSeconds: cpuSince(cpu),
      cpuOf: 'bench process',
      peakRssMb: rss.stop(),
      rssOf: 'bench process',
      extra: {
        documents: docs,
        documentsWritten: written,
        documentsPerSecond: round(written / seconds, 1),
        ...(written < docs ? { cappedAfterSeconds: capSeconds } : {}),
        ...(upserts !== undefined ? { unguardedUpsertsPerSecond: upserts } : {}),
      },
    };
  } finally {
    await client.close();
    await dropMongoDatabase(rawDb, 1000).catch((error: unknown) =>
      ctx.log(`B4: could not drop ${rawDb}: ${(error as Error).message}`),
    );
  }
}

/**
 * For the notes: the same documents as unguarded replaceOne upserts by _id (what a projector
 * writing into a live collection needs), documents per second, within `capSeconds`.
 */
async function rawUpserts(
  client: MongoClient,
  dbName: string,
  collections: [string, Document[]][],
  capSeconds: number,
): Promise<number> {
  const to = client.db(dbName);
  let n = 0;
  const t0 = now();
  try {
    outer: for (const [name, list] of collections)
      for (let i = 0; i < list.length; i += 100) {
        const ops = list.slice(i, i + 100).map((d): AnyBulkWriteOperation<Document> => ({
          replaceOne: { filter: { _id: d._id }, replacement: d, upsert: true },
        }));
        await to.collection(name).bulkWrite(ops, { ordered: false });
        n += ops.length;
        if (now() - t0 > capSeconds * 1000) break outer;
      }
    return round(n / ((now() - t0) / 1000), 1);
  } finally {
    await dropMongoDatabase(dbName, 1000).catch(() => undefined);
  }
}

async function embeddedSource(): Promise<Source> {
  const dir = await tempDir('b4-pglite');
  const client = await createPgliteClient(dir.path);
  const store = await SqlEventStore.create(client);
  return { name: 'PGlite', store, client, close: async () => (await store.close(), await dir.remove()) };
}

async function postgresSource(ctx: Ctx): Promise<Source> {
  const db = await throwawayPostgres(`settle_bench_${ctx.runId}_b4`);
  const client = await createPgClient(db.url);
  const store = await SqlEventStore.create(client);
  return { name: 'PostgreSQL', store, client, close: async () => (await store.close(), await db.drop()) };
}

/** One rebuild at one log size into a fresh read store (MongoDB when `mongoModule` is given), with its limit. */
async function measureSize(
  ctx: Ctx,
  source: Source,
  mongoModule: MongoReadStoreModule | string | undefined,
  n: number,
  cap: number,
  left: () => number,
  done: { n: number; r: Rebuild }[],
): Promise<Row> {
  const isMongo = mongoModule !== undefined;
  const variant = isMongo ? 'MongoDB' : 'embedded (MemoryReadStore)';
  const workload = `rebuild ${n.toLocaleString('en-US')} events, ${variant}`;
  const targetText = isMongo ? `≥ ${RATE_TARGET.toLocaleString('en-US')} events/s` : undefined;
  ctx.log(`B4: ${workload} (cap ${cap} s)`);
  let readStore: ReadStore;
  let mongo: MongoReadStoreLike | undefined;
  const dbName = `settle_bench_${ctx.runId}_b4_${n}`;
  if (isMongo)
    readStore = mongo = await (mongoModule as MongoReadStoreModule).MongoReadStore.create(SERVICES.mongo, {
      dbName,
      // A stalled server fails the batch (the rebuild fails, and so this size) instead of hanging the run.
      clientOptions: { socketTimeoutMS: 60_000 },
    });
  else readStore = new MemoryReadStore();
  try {
    const r = await rebuild(source, readStore, n, cap, (m) => ctx.log(m));
    done.push({ n, r });
    const limitCap = Math.max(5, Math.min(ctx.sizes.b4CapSeconds, Math.floor(left() - RESERVE_SECONDS / 2)));
    // The limit failing (a stalled server) leaves the rebuild's figures standing, without a ratio.
    let limitFailure: string | undefined;
    const limit = await (
      !isMongo
        ? scanLog(source, n)
        : r.covered > 0
          ? rawBulkWrite(ctx, dbName, r.version, r.covered, limitCap, done.length === 1)
          : Promise.resolve(undefined)
    ).catch((error: unknown) => {
      limitFailure = (error as Error).message;
      ctx.log(`B4: the limit for ${workload} failed: ${limitFailure}`);
      return undefined;
    });
    // No document known written by the cap (nothing flushed yet, or the stop stalled): no limit.
    const ratio = limit?.throughput ? r.figures.throughput! / limit.throughput : undefined;
    const notes: string[] = [];
    const ups = limit?.extra?.unguardedUpsertsPerSecond;
    if (isMongo && limit)
      notes.push(
        `raw writes on this server: ${limit.extra?.documentsPerSecond} documents/s as inserts` +
          (ups !== undefined ? `, ${ups} documents/s as unguarded upserts by _id` : ''),
      );
    if (r.capped)
      notes.push(
        `cut short at its ${cap} s cap, every projection past ${r.processed.toLocaleString('en-US')} of ${n.toLocaleString('en-US')} events: the rate is over those, ` +
          (r.stopped
            ? `in the time to the end of the stop (${r.stopSeconds} s after the cap, the writes in flight landed)`
            : `in the time to the cap (the stop had not ended ${r.stopSeconds} s later)`) +
          (isMongo
            ? r.covered > 0
              ? `; the limit wrote the documents written by the stop, which stand for ${r.covered.toLocaleString('en-US')} events (the last changes were not flushed)`
              : r.stopped
                ? '; no limit: no flush of documents had landed by the stop'
                : `; no limit: the stop did not finish within ${STOP_GRACE_SECONDS} s`
            : ''),
      );
    if (limit?.extra?.cappedAfterSeconds !== undefined)
      notes.push(
        `the raw write was cut at ${limit.extra.cappedAfterSeconds} s after ${limit.extra.documentsWritten} of ${limit.extra.documents} documents: its rate is over those`,
      );
    if (limitFailure) notes.push(`no limit: the raw write failed (${limitFailure})`);
    notes.push(`source log in ${source.name}`);
    return {
      id: 'B4',
      workload: r.capped ? `${workload} (capped at ${cap} s)` : workload,
      settle: r.figures,
      limitName: isMongo
        ? 'raw bulkWrite (inserts) of the same final documents, as events/s'
        : 'reading the same log in the same batches, nothing else',
      ...(limit ? { limit } : {}),
      ...(ratio !== undefined ? { ratio: round(ratio, 3) } : {}),
      ...(targetText ? { target: targetText, met: judge(ctx, !r.capped && r.figures.throughput! >= RATE_TARGET) } : {}),
      note: notes.join('; '),
    };
  } finally {
    if (mongo) {
      await mongo.close().catch(() => undefined);
      await dropMongoDatabase(dbName, 1000).catch((error: unknown) =>
        ctx.log(`B4: could not drop ${dbName}: ${(error as Error).message}`),
      );
    } else await readStore.close();
  }
}

/** B4's own time budget inside the harness's 600 s per workload (whatever the machine's load). */
const BUDGET_SECONDS = { quick: 140, full: 540 };
/** Left for the limit, the clean-up and the later sizes when a rebuild's cap is decided. */
const RESERVE_SECONDS = 20;

/**
 * B4: projection rebuild from position 0 into a fresh read store, at growing log sizes, one log
 * (PostgreSQL, else PGlite) seeded up to each size for MongoDB (the target) and then embedded
 * (MemoryReadStore). Every rebuild is capped so the workload ends within its
 * budget: at the configured cap, or less once the budget runs short (its rate is then over the
 * events it did, and the row says so); a size is skipped, saying why, only once the budget is spent.
 */
export async function runB4(ctx: Ctx): Promise<Row[]> {
  const rows: Row[] = [];
  const deadline = now() + (ctx.quick ? BUDGET_SECONDS.quick : BUDGET_SECONDS.full) * 1000;
  const budget = ctx.quick ? BUDGET_SECONDS.quick : BUDGET_SECONDS.full;
  const left = () => (deadline - now()) / 1000;
  const mongoModule = await loadPlatformModule<MongoReadStoreModule>(
    'readStore/mongoReadStore.js',
    'platform/src/readStore/mongoReadStore.ts',
  );
  const mongoProblem = typeof mongoModule === 'string' ? mongoModule : await ctx.problem('mongo');

  const variants = [
    { name: 'MongoDB', sizes: ctx.sizes.b4Mongo, problem: mongoProblem, failure: undefined as string | undefined },
    {
      name: 'embedded (MemoryReadStore)',
      sizes: ctx.sizes.b4Embedded,
      problem: undefined as string | undefined,
      failure: undefined as string | undefined,
    },
  ];
  const done = new Map<string, { n: number; r: Rebuild }[]>(variants.map((v) => [v.name, []]));
  const targetOf = (isMongo: boolean) =>
    isMongo ? { target: `≥ ${RATE_TARGET.toLocaleString('en-US')} events/s` } : {};
  const skip = (workload: string, isMongo: boolean, reason: string) =>
    rows.push({ id: 'B4', workload, skipped: reason, ...targetOf(isMongo) });
  for (const v of variants)
    if (v.problem)
      for (const n of v.sizes)
        skip(`rebuild ${n.toLocaleString('en-US')} events, ${v.name}`, v.name === 'MongoDB', v.problem);
  const sizes = [...new Set(variants.flatMap((v) => (v.problem ? [] : v.sizes)))].sort((a, b) => a - b);
  if (sizes.length === 0) return rows;

  // One log, seeded up to each size in turn, for both variants (PostgreSQL when it is up).
  const source = !(await ctx.problem('postgres')) ? await postgresSource(ctx) : await embeddedSource();
  const generator = new LogGenerator({ expected: Math.max(...sizes), seed: 4 });
  let seedRate: number | undefined;
  try {
    for (const n of sizes) {
      const here = variants.filter((v) => !v.problem && v.sizes.includes(n));
      const name = (v: { name: string }) => `rebuild ${n.toLocaleString('en-US')} events, ${v.name}`;
      const seedSeconds = seedRate ? (n - generator.count) / seedRate : 0;
      if (left() < RESERVE_SECONDS + 10 || seedSeconds > left() - RESERVE_SECONDS - 30) {
        const reason =
          left() < RESERVE_SECONDS + 10
            ? `not run: B4's ${budget} s budget was spent`
            : `not run: seeding the log to ${n.toLocaleString('en-US')} events would take ≈ ${Math.round(seedSeconds)} s at the ${Math.round(seedRate!)} events/s seeded so far, more than what is left of B4's ${budget} s budget`;
        for (const v of here) skip(name(v), v.name === 'MongoDB', v.failure ?? reason);
        continue;
      }
      ctx.log(`B4: seeding ${source.name} to ${n} events`);
      const seedStart = now();
      const seedFrom = generator.count;
      while (generator.count < n)
        await seedEvents(source.client, generator.next(Math.min(SEED_CHUNK, n - generator.count)));
      await source.client.exec('ANALYZE settle_events');
      if (n > seedFrom) seedRate = (n - seedFrom) / Math.max(0.001, (now() - seedStart) / 1000);
      for (const [i, v] of here.entries()) {
        const isMongo = v.name === 'MongoDB';
        if (v.failure) {
          skip(name(v), isMongo, v.failure);
          continue;
        }
        if (left() < RESERVE_SECONDS + 10) {
          skip(name(v), isMongo, `not run: B4's ${budget} s budget was spent`);
          continue;
        }
        // What is left is shared by the rebuilds still to run at this size and their limits
        // (MongoDB's: stopping a capped rebuild, then the raw write, each about as long again).
        const later = here.slice(i + 1).length;
        const share = (left() - RESERVE_SECONDS) / (isMongo ? 3 : 1.4) / (1 + later * 0.5);
        const cap = Math.max(5, Math.min(ctx.sizes.b4CapSeconds, Math.floor(share)));
        try {
          const measured = await measureSize(
            ctx,
            source,
            isMongo ? mongoModule : undefined,
            n,
            cap,
            left,
            done.get(v.name)!,
          );
          rows.push({ ...measured, workload: measured.workload ?? name(v) });
        } catch (error) {
          // A server failing mid-run (FerretDB stalls under load) costs this variant, not the run.
          v.failure = `not run: the rebuild of ${n.toLocaleString('en-US')} events failed (${(error as Error).message})`;
          ctx.log(`B4: ${name(v)} failed: ${(error as Error).message}`);
          skip(name(v), isMongo, `failed: ${(error as Error).message}`);
        }
      }
    }
  } finally {
    await source.close();
  }
  for (const v of variants) {
    if (v.problem) continue;
    // A rebuild cut at the cap still has a rate (over the events it did), at a larger log.
    const measured = done.get(v.name)!.filter((d) => d.r.processed > 0);
    if (measured.length >= 2) {
      const small = measured[0]!;
      const large = measured[measured.length - 1]!;
      // Linear time means a constant rate: the large log's rate against the small one's.
      const ratio = large.r.figures.throughput! / small.r.figures.throughput!;
      rows.push({
        id: 'B4',
        workload: `rebuild time growth ${small.n.toLocaleString('en-US')} → ${large.n.toLocaleString('en-US')} events, ${v.name}`,
        settle: { ...large.r.figures },
        limitName: `the rate at ${small.n.toLocaleString('en-US')} events (linear growth keeps it)`,
        limit: { ...small.r.figures },
        ratio: round(ratio, 3),
        target: `linear: ≥ ${Math.round(100 / LINEAR_TOLERANCE)}% of the small log's rate`,
        met: judge(ctx, ratio >= 1 / LINEAR_TOLERANCE),
        ...(large.r.capped
          ? {
              note: `the ${large.n.toLocaleString('en-US')}-event rebuild was cut at its cap after ${large.r.processed.toLocaleString('en-US')} events; its rate is over those`,
            }
          : {}),
      });
    } else if (v.name === 'MongoDB' || v.sizes.length > 1)
      rows.push({
        id: 'B4',
        workload: `rebuild time growth, ${v.name}`,
        skipped: `needs two rebuilds; this run measured ${measured.length}`,
        target: 'linear',
      });
  }
  return rows;
}
