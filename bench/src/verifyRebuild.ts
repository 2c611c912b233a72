import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { MongoClient } from 'mongodb';
import { createPgClient, SqlEventStore } from '@settle/platform';
import { REPO_ROOT, startSettleChild, stopAllChildren } from './children.js';
import { cleanupKafkaTopics, cleanupRedisPrefix, dropMongoDatabase } from './cleanup.js';
import { LogGenerator, type EventRow } from './events.js';
import { pool, sleep } from './measure.js';
import { databaseUrl, SERVICES, tempDir, throwawayPostgres } from './services.js';
import { benchSettleEnv } from './settleEnv.js';

/**
 * Issue 5's operator check of a blue-green rebuild, repeatable (`npm run verify:rebuild`): a
 * running Settle on the production parts (PostgreSQL, Kafka, MongoDB wire — FerretDB here —,
 * Redis) with `--events` stored events (100k by default) and its live projections caught up;
 * then `settle replay --projection requests` through it while GraphQL `requests { totalCount edges }`
 * is asked in a loop and requests keep being registered over REST; then the counts; then
 * `settle projections rollback requests`. Prints the figures and writes them to
 * `bench/results/verify-rebuild-<time>.json`; exits 1 when a check fails.
 *
 * Everything lives in its own PostgreSQL database, MongoDB database, Kafka topic prefix and Redis
 * prefix, dropped at the end (`--keep` keeps them). The log is the benchmark's generator (payment
 * requests in their real lifecycles, interleaved as in production) appended through Settle's own
 * event store (`SqlEventStore.append`, one call per event with its expected revision), so the
 * rows are what Settle stores.
 */

const { values: args } = parseArgs({
  options: {
    events: { type: 'string', default: '100000' },
    'catch-up-minutes': { type: 'string', default: '30' },
    'rebuild-minutes': { type: 'string', default: '20' },
    'register-every-ms': { type: 'string', default: '1000' },
    'graphql-timeout-ms': { type: 'string', default: '10000' },
    keep: { type: 'boolean', default: false },
  },
});
const EVENTS = Number(args.events);
const CATCH_UP_MS = Number(args['catch-up-minutes']) * 60_000;
const REBUILD_MS = Number(args['rebuild-minutes']) * 60_000;
const REGISTER_EVERY_MS = Number(args['register-every-ms']);
const SEED_CONCURRENCY = 32;

const runId = `vr${Date.now().toString(36)}`;
const log = (msg: string) => console.log(`[verify-rebuild ${new Date().toISOString().slice(11, 19)}] ${msg}`);

interface Failure {
  check: string;
  detail: string;
}
const failures: Failure[] = [];
const check = (ok: boolean, name: string, detail: string) => {
  log(`${ok ? 'ok  ' : 'FAIL'} ${name}: ${detail}`);
  if (!ok) failures.push({ check: name, detail });
};

/** Appends the generated log through Settle's event store: each stream in order, streams in parallel. */
async function seed(store: SqlEventStore): Promise<number> {
  const generator = new LogGenerator({ expected: EVENTS, seed: 5 });
  const t0 = Date.now();
  let done = 0;
  while (generator.count < EVENTS) {
    const rows = generator.next(Math.min(5000, EVENTS - generator.count));
    const streams = new Map<string, EventRow[]>();
    for (const r of rows) {
      let list = streams.get(r.streamId);
      if (!list) streams.set(r.streamId, (list = []));
      list.push(r);
    }
    await pool([...streams.values()], SEED_CONCURRENCY, async (events) => {
      for (const e of events)
        await store.append(e.streamId, [{ id: e.id, type: e.type, version: 1, data: e.data, metadata: e.metadata }], {
          expectedRevision: e.streamPosition === 0 ? 'no_stream' : e.streamPosition - 1,
        });
    });
    done += rows.length;
    if (done % 20_000 === 0 || done === EVENTS)
      log(`seeded ${done} events (${Math.round(done / ((Date.now() - t0) / 1000))} events/s)`);
  }
  return (Date.now() - t0) / 1000;
}

async function token(url: string, clientId: string): Promise<string> {
  const res = await fetch(`${url}/v1/auth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ grant_type: 'client_credentials', client_id: clientId, client_secret: 'demo-secret' }),
  });
  const body = (await res.json()) as { access_token?: string };
  if (!body.access_token) throw new Error(`token for ${clientId}: ${res.status}`);
  return body.access_token;
}

/** Longest a GraphQL answer may take before it counts as an error. */
const GRAPHQL_TIMEOUT_MS = Number(args['graphql-timeout-ms']);

async function gql<T>(url: string, tok: string, query: string, timeoutMs = GRAPHQL_TIMEOUT_MS): Promise<T> {
  const res = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${tok}` },
    body: JSON.stringify({ query }),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const body = (await res.json()) as { data?: T; errors?: { message: string }[] };
  if (res.status !== 200 || body.errors?.length || !body.data)
    throw new Error(`GraphQL ${res.status}: ${body.errors?.map((e) => e.message).join('; ') ?? 'no data'}`);
  return body.data;
}

/** The first page of GraphQL `requests` (newest first) and its `totalCount`: a short page is an error. */
async function totalCount(url: string, tok: string, timeoutMs?: number): Promise<number> {
  const { requests } = await gql<{ requests: { totalCount: number; edges: { node: { id: string } }[] } }>(
    url,
    tok,
    '{ requests(first: 5) { totalCount edges { node { id } } } }',
    timeoutMs,
  );
  if (requests.edges.length !== Math.min(5, requests.totalCount))
    throw new Error(`a page of ${requests.edges.length} requests of ${requests.totalCount}`);
  return requests.totalCount;
}

interface ProjectionRow {
  name: string;
  version: number;
  state: string;
  position: number;
  headPosition: number;
  lagEvents: number;
}
const projections = async (url: string, tok: string, timeoutMs?: number) =>
  (
    await gql<{ projections: ProjectionRow[] }>(
      url,
      tok,
      '{ projections { name version state position headPosition lagEvents } }',
      timeoutMs,
    )
  ).projections;

/** How long an answer took (the checks around the replay are not timed against the bound). */
async function timed<T>(what: string, fn: () => Promise<T>): Promise<T> {
  const t0 = Date.now();
  const value = await fn();
  log(`${what} answered in ${Date.now() - t0} ms`);
  return value;
}

/**
 * GraphQL `requests { totalCount }` in a loop until stopped: errors, counts, latencies. One query
 * at a time, each waited for (up to 2 min): a client that gave up at the bound and asked again
 * would pile scans onto a slow store; an answer later than the bound is counted as late instead.
 */
function watchCounts(url: string, tok: string) {
  const samples: Sample[] = [];
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const t = Date.now();
      try {
        samples.push({ at: t, ms: Date.now() - t, count: await totalCount(url, tok, 120_000) });
        samples[samples.length - 1]!.ms = Date.now() - t;
      } catch (error) {
        samples.push({ at: t, ms: Date.now() - t, error: (error as Error).message });
      }
      await sleep(100);
    }
  })();
  return {
    samples,
    async stop() {
      stopped = true;
      await loop;
    },
  };
}

type Sample = { at: number; ms: number; count?: number; error?: string };

/** Queries, errors, counts seen and latencies of a GraphQL loop. */
function summary(samples: Sample[]) {
  const counts = samples.filter((s) => s.count !== undefined).map((s) => s.count!);
  const errors = samples.filter((s) => s.error !== undefined);
  const ms = samples.map((s) => s.ms).sort((a, b) => a - b);
  return {
    queries: samples.length,
    errors: errors.length,
    late: samples.filter((s) => s.error === undefined && s.ms > GRAPHQL_TIMEOUT_MS).length,
    firstErrors: errors.slice(0, 5).map((e) => e.error),
    minCount: counts.length > 0 ? Math.min(...counts) : undefined,
    maxCount: counts.length > 0 ? Math.max(...counts) : undefined,
    p50Ms: ms[Math.floor(ms.length / 2)],
    p99Ms: ms[Math.floor(ms.length * 0.99)],
    maxMs: ms[ms.length - 1],
  };
}

/** Registers a request over REST every `everyMs` until stopped (the live version keeps changing). */
function keepRegistering(url: string, tok: string, everyMs: number) {
  let accepted = 0;
  const refused: string[] = [];
  let stopped = false;
  const loop = (async () => {
    for (let i = 0; !stopped; i++) {
      const t = Date.now();
      try {
        const res = await fetch(`${url}/v1/requests`, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            authorization: `Bearer ${tok}`,
            'idempotency-key': `${runId}-${i}`,
          },
          body: JSON.stringify({ amount: 1000 + i, currency: 'EUR', reference: `${runId}-${i}` }),
          signal: AbortSignal.timeout(10_000),
        });
        if (res.status === 202 || res.status === 201) accepted++;
        else refused.push(`${res.status} ${(await res.text()).slice(0, 200)}`);
      } catch (error) {
        refused.push((error as Error).message);
      }
      await sleep(Math.max(0, everyMs - (Date.now() - t)));
    }
  })();
  return {
    get accepted() {
      return accepted;
    },
    refused,
    async stop() {
      stopped = true;
      await loop;
    },
  };
}

/** Runs the CLI (`node cli/bin/settle.js …`) against the running Settle; output kept, time measured. */
function cli(
  argv: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; output: string; seconds: number }> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(REPO_ROOT, 'cli/bin/settle.js'), ...argv], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.once('exit', (code) => resolve({ code, output, seconds: (Date.now() - t0) / 1000 }));
  });
}

async function main(): Promise<void> {
  const pgDb = `settle_bench_${runId}`;
  const mongoDb = `settle_bench_${runId}`;
  const topicPrefix = `settle-bench-${runId}.`;
  const redisPrefix = `settle-bench-${runId}:`;
  const redisUrl = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
  log(
    `world ${runId}: PostgreSQL database ${pgDb}, MongoDB database ${mongoDb}, Kafka ${topicPrefix}*, Redis ${redisPrefix}*`,
  );
  const pg = await throwawayPostgres(pgDb);
  const dataDir = await tempDir('verify-rebuild');
  const figures: Record<string, unknown> = { runId, events: EVENTS, startedAt: new Date().toISOString() };
  try {
    const client = await createPgClient(pg.url);
    const store = await SqlEventStore.create(client);
    log(`appending ${EVENTS} events through SqlEventStore.append`);
    figures.seedSeconds = await seed(store);
    await store.close();

    const env = {
      ...benchSettleEnv(),
      SETTLE_EVENT_STORE: pg.url,
      SETTLE_BUS: `kafka://${SERVICES.kafka.join(',')}`,
      SETTLE_KAFKA_TOPIC_PREFIX: topicPrefix,
      SETTLE_READ_STORE: databaseUrl(SERVICES.mongo, mongoDb),
      SETTLE_REDIS_URL: redisUrl,
      SETTLE_REDIS_PREFIX: redisPrefix,
      SETTLE_LOG_LEVEL: 'info',
    };
    log('starting Settle (every role); ready once its projections have caught up with the log');
    const t0 = Date.now();
    const settle = await startSettleChild({ dataDir: dataDir.path, env, readyTimeoutMs: CATCH_UP_MS });
    const catchUp = (Date.now() - t0) / 1000;
    figures.catchUpSeconds = catchUp;
    figures.catchUpEventsPerSecond = Math.round(EVENTS / catchUp);
    log(`ready after ${catchUp.toFixed(1)} s (${figures.catchUpEventsPerSecond} events/s, start-up included)`);

    const operator = await token(settle.url, 'demo-operator');
    const merchant = await token(settle.url, 'demo-merchant');
    const before = await timed('GraphQL projections', () => projections(settle.url, operator, 120_000));
    const requestsBefore = before.find((p) => p.name === 'requests')!;
    const countBefore = await timed('GraphQL requests totalCount', () => totalCount(settle.url, operator, 300_000));
    figures.before = { requests: requestsBefore, totalCount: countBefore };
    log(
      `requests v${requestsBefore.version} live at ${requestsBefore.position} of ${requestsBefore.headPosition}, totalCount ${countBefore}`,
    );

    // The same GraphQL loop for a while before the replay: the latency to compare with.
    const idle = watchCounts(settle.url, operator);
    await sleep(15_000);
    await idle.stop();
    figures.graphqlBeforeReplay = summary(idle.samples);
    log(`GraphQL before the replay: ${JSON.stringify(figures.graphqlBeforeReplay)}`);

    const cliEnv = { SETTLE_URL: settle.url, SETTLE_CLIENT_ID: 'demo-operator', SETTLE_CLIENT_SECRET: 'demo-secret' };
    const watch = watchCounts(settle.url, operator);
    const writes = keepRegistering(settle.url, merchant, REGISTER_EVERY_MS);
    log('npx settle replay --projection requests');
    const replay = await Promise.race([
      cli(['replay', '--projection', 'requests'], cliEnv),
      sleep(REBUILD_MS).then(() => ({
        code: null,
        output: `no exit within ${REBUILD_MS / 60_000} min`,
        seconds: REBUILD_MS / 1000,
      })),
    ]);
    await sleep(2000);
    await writes.stop();
    await watch.stop();
    const counts = watch.samples.filter((s) => s.count !== undefined).map((s) => s.count!);
    const errors = watch.samples.filter((s) => s.error !== undefined);
    let drops = 0;
    for (let i = 1; i < counts.length; i++) if (counts[i]! < counts[i - 1]!) drops++;
    figures.replay = {
      exitCode: replay.code,
      seconds: replay.seconds,
      eventsPerSecond: Math.round(requestsBefore.headPosition / replay.seconds),
      outputTail: replay.output.split(/\r|\n/).filter(Boolean).slice(-6),
    };
    figures.graphqlDuringReplay = { ...summary(watch.samples), drops };
    figures.registeredDuringReplay = {
      accepted: writes.accepted,
      refused: writes.refused.length,
      firstRefused: writes.refused.slice(0, 3),
    };
    log(
      `replay: exit ${replay.code} after ${replay.seconds.toFixed(1)} s; output ends: ${JSON.stringify(replay.output.slice(-300))}`,
    );
    check(replay.code === 0, 'replay exits 0 after cutover', `exit code ${replay.code}`);
    check(
      /\d+\s*%|events\/s/.test(replay.output),
      'replay shows progress',
      `${replay.output.length} characters of output`,
    );
    const late = watch.samples.filter((s) => s.error === undefined && s.ms > GRAPHQL_TIMEOUT_MS).length;
    check(
      errors.length === 0 && late === 0,
      'GraphQL requests answers throughout',
      `${watch.samples.length} queries, ${errors.length} errors, ${late} later than ${GRAPHQL_TIMEOUT_MS} ms`,
    );
    check(
      counts.length > 0 && drops === 0 && Math.min(...counts) >= countBefore,
      'no drop in totalCount',
      `min ${Math.min(...counts)}, max ${Math.max(...counts)}, ${drops} decreases, before ${countBefore}`,
    );
    log(`GraphQL during the replay: ${JSON.stringify(figures.graphqlDuringReplay)}`);

    // Afterwards: the new version is live and its count is every request in the log.
    const expected = countBefore + writes.accepted;
    const after = await projections(settle.url, operator, 60_000);
    const requestsAfter = after.find((p) => p.name === 'requests')!;
    let countAfter = 0;
    // The requests registered last may still be on their way to the read model.
    for (let i = 0; i < 50 && (countAfter = await totalCount(settle.url, operator, 60_000)) < expected; i++)
      await sleep(200);
    figures.after = { requests: requestsAfter, totalCount: countAfter, expected };
    check(
      requestsAfter.version === requestsBefore.version + 1,
      'the rebuilt version is live',
      `v${requestsBefore.version} → v${requestsAfter.version}`,
    );
    check(
      countAfter === expected,
      'counts match',
      `totalCount ${countAfter}, expected ${countBefore} + ${writes.accepted} registered meanwhile`,
    );
    const mongo = new MongoClient(SERVICES.mongo, { serverSelectionTimeoutMS: 5000 });
    await mongo.connect();
    try {
      const db = mongo.db(mongoDb);
      const named = (v: number) => (v === 1 ? 'requests' : `requests_v${v}`);
      const oldName = named(requestsBefore.version);
      const liveName = named(requestsAfter.version);
      const live = await db.collection(liveName).countDocuments();
      const previous = await db.collection(oldName).countDocuments();
      figures.collections = { [oldName]: previous, [liveName]: live };
      check(live === countAfter, 'the live collection holds them all', `${liveName}: ${live} documents`);
    } finally {
      await mongo.close();
    }

    log('npx settle projections rollback requests');
    const rollback = await cli(['projections', 'rollback', 'requests'], cliEnv);
    const rolled = (await projections(settle.url, operator, 60_000)).find((p) => p.name === 'requests')!;
    // totalCount comes from the merchantStats counters on FerretDB: the documents of the version
    // rolled back to are counted in the collection itself.
    let countRolled = 0;
    const mongoRolled = new MongoClient(SERVICES.mongo, { serverSelectionTimeoutMS: 5000 });
    await mongoRolled.connect();
    try {
      const rolledName = rolled.version === 1 ? 'requests' : `requests_v${rolled.version}`;
      for (let i = 0; i < 50; i++) {
        countRolled = await mongoRolled.db(mongoDb).collection(rolledName).countDocuments();
        if (countRolled >= expected) break;
        await sleep(200);
      }
    } finally {
      await mongoRolled.close();
    }
    const pageRolled = await totalCount(settle.url, operator, 60_000);
    figures.rollback = {
      exitCode: rollback.code,
      seconds: rollback.seconds,
      version: rolled.version,
      documents: countRolled,
      totalCount: pageRolled,
      output: rollback.output.trim().split('\n').slice(-3),
    };
    check(
      rollback.code === 0 &&
        requestsAfter.version !== requestsBefore.version &&
        rolled.version === requestsBefore.version,
      'rollback brings back the previous version',
      `exit ${rollback.code}, v${rolled.version} live`,
    );
    check(
      countRolled === expected && pageRolled === expected,
      'the previous version caught up',
      `${countRolled} documents of ${expected}, totalCount ${pageRolled}`,
    );
    await settle.stop();
  } finally {
    await stopAllChildren();
    figures.failures = failures;
    await mkdir(join(REPO_ROOT, 'bench/results'), { recursive: true });
    const file = join(REPO_ROOT, `bench/results/verify-rebuild-${runId}.json`);
    await writeFile(file, `${JSON.stringify(figures, null, 2)}\n`);
    log(`figures in ${file}`);
    if (args.keep) log(`kept ${pgDb}, ${mongoDb}, ${topicPrefix}*, ${redisPrefix}*, ${dataDir.path}`);
    else {
      await pg.drop().catch((e: unknown) => log(`could not drop ${pgDb}: ${(e as Error).message}`));
      await dropMongoDatabase(mongoDb, 1000).catch((e: unknown) =>
        log(`could not drop ${mongoDb}: ${(e as Error).message}`),
      );
      await cleanupKafkaTopics(topicPrefix).catch((e: unknown) => log(`Kafka cleanup: ${(e as Error).message}`));
      await cleanupRedisPrefix(redisUrl, redisPrefix).catch((e: unknown) =>
        log(`Redis cleanup: ${(e as Error).message}`),
      );
      await dataDir.remove();
    }
  }
}

main().then(
  () => {
    log(failures.length === 0 ? 'every check passed' : `${failures.length} check(s) failed`);
    process.exit(failures.length === 0 ? 0 : 1);
  },
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
