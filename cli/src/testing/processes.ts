import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/**
 * Helpers for integration specs that run Settle as real child processes (`settle start --roles …`)
 * on the real parts from `infra/local/services up`. Nothing here is imported by the product.
 */

/** The repository root (this file lives in cli/src/testing or cli/dist/testing). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const SETTLE_BIN = join(REPO_ROOT, 'cli/bin/settle.js');
/** Node 24 from the node@24 devDependency; the machine's plain `node` may be older. */
const NODE_BIN = existsSync(join(REPO_ROOT, 'node_modules/.bin/node'))
  ? join(REPO_ROOT, 'node_modules/.bin/node')
  : process.execPath;

export const PG_ADMIN_URL = process.env.SETTLE_TEST_PG_URL ?? 'postgres://settle:settle@127.0.0.1:5432/settle';
export const KAFKA_URL = process.env.SETTLE_TEST_KAFKA ?? 'kafka://127.0.0.1:9092';
export const MONGO_URL = process.env.SETTLE_TEST_MONGO_URL ?? 'mongodb://127.0.0.1:27017';
export const REDIS_URL = process.env.SETTLE_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/**
 * A port nobody listens on, chosen below the kernel's ephemeral range (32768–60999 on Linux): a
 * port the kernel handed out and took back can be picked again at once as the source port of an
 * outgoing connection (a driver connecting to Kafka, say), and the server that meant to listen
 * on it then fails with EADDRINUSE. Ports handed out here are not handed out twice in a run.
 */
export async function freePort(): Promise<number> {
  for (let tries = 0; tries < 200; tries++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (handedOut.has(port)) continue;
    if (await canListen(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error('no free port between 20000 and 32000 after 200 tries');
}

/**
 * The environment of an in-process Settle (`startSettle`) on the embedded parts under `dataDir`:
 * development, ports of its own, quiet, no rate limits; `extra` adds or overrides.
 */
export async function embeddedTestEnv(
  dataDir: string,
  extra: Record<string, string> = {},
): Promise<Record<string, string>> {
  return {
    SETTLE_ENV: 'development',
    SETTLE_DATA_DIR: dataDir,
    SETTLE_HTTP_PORT: String(await freePort()),
    SETTLE_GRPC_PORT: String(await freePort()),
    SETTLE_SANDBOX_PORT: String(await freePort()),
    SETTLE_LOG_LEVEL: 'silent',
    SETTLE_RATE_LIMIT: '0',
    SETTLE_RATE_LIMIT_IP: '0',
    ...extra,
  };
}

const handedOut = new Set<number>();

function canListen(port: number): Promise<boolean> {
  return new Promise((ok) => {
    const server = createServer();
    server.unref();
    server.once('error', () => ok(false));
    server.listen(port, '127.0.0.1', () => server.close(() => ok(true)));
  });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `fn` until it returns a truthy value or `timeoutMs` passes. */
export async function waitUntil<T>(
  what: string,
  fn: () => Promise<T | undefined | false>,
  timeoutMs: number,
  everyMs = 250,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await fn();
      if (value) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline)
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`,
      );
    await sleep(everyMs);
  }
}

/**
 * A throwaway world on the shared servers: a fresh PostgreSQL database, a MongoDB database
 * name, and Kafka/Redis prefixes; `cleanup()` drops or deletes all of it.
 */
export interface TestWorld {
  id: string;
  env: Record<string, string>;
  pgUrl: string;
  pgDatabase: string;
  mongoDatabase: string;
  topicPrefix: string;
  redisPrefix: string;
  cleanup(): Promise<void>;
}

async function withPg<T>(url: string, fn: (client: import('pg').Client) => Promise<T>): Promise<T> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Where a test world lives: the shared servers by default, or a private set (see privateServices.ts). */
export interface WorldServers {
  pgAdmin: string;
  kafka: string;
  mongo: string;
  redis: string;
}

export async function createTestWorld(
  servers: WorldServers = { pgAdmin: PG_ADMIN_URL, kafka: KAFKA_URL, mongo: MONGO_URL, redis: REDIS_URL },
): Promise<TestWorld> {
  const { pgAdmin, kafka, mongo, redis: redisUrl } = servers;
  const id = randomBytes(5).toString('hex');
  const pgDatabase = `settle_t${id}`;
  await withPg(pgAdmin, (c) => c.query(`CREATE DATABASE ${pgDatabase}`));
  const pgUrl = new URL(pgAdmin);
  pgUrl.pathname = `/${pgDatabase}`;
  const mongoDatabase = `settle_t${id}`;
  const topicPrefix = `settle-t${id}.`;
  const redisPrefix = `settle-t${id}:`;
  const env = {
    SETTLE_EVENT_STORE: pgUrl.toString(),
    SETTLE_BUS: kafka,
    SETTLE_KAFKA_TOPIC_PREFIX: topicPrefix,
    SETTLE_READ_STORE: `${mongo}/${mongoDatabase}`,
    SETTLE_REDIS_URL: redisUrl,
    SETTLE_REDIS_PREFIX: redisPrefix,
    // Every process of one deployment shares the key that seals webhook secrets in client events
    // (development would otherwise generate one per data dir, and replicas could not open them).
    SETTLE_SECRETS_KEY: randomBytes(32).toString('hex'),
  };
  return {
    id,
    env,
    pgUrl: pgUrl.toString(),
    pgDatabase,
    mongoDatabase,
    topicPrefix,
    redisPrefix,
    async cleanup() {
      if (process.env.SETTLE_TEST_KEEP) {
        console.warn(
          `SETTLE_TEST_KEEP: kept PostgreSQL database ${pgDatabase}, MongoDB database ${mongoDatabase}, Kafka prefix ${topicPrefix}, Redis prefix ${redisPrefix}`,
        );
        return;
      }
      const errors: unknown[] = [];
      const attempt = async (fn: () => Promise<unknown>) => {
        try {
          await fn();
        } catch (error) {
          errors.push(error);
        }
      };
      await attempt(() => withPg(pgAdmin, (c) => c.query(`DROP DATABASE IF EXISTS ${pgDatabase} WITH (FORCE)`)));
      await attempt(async () => {
        const { MongoClient } = await import('mongodb');
        const client = new MongoClient(mongo, { serverSelectionTimeoutMS: 5000 });
        try {
          await client.db(mongoDatabase).dropDatabase();
        } finally {
          await client.close();
        }
      });
      await attempt(async () => {
        const { Kafka, logLevel } = await import('kafkajs');
        const admin = new Kafka({
          brokers: [kafka.replace(/^kafka:\/\//, '')],
          logLevel: logLevel.NOTHING,
        }).admin();
        await admin.connect();
        try {
          const topics = (await admin.listTopics()).filter((t) => t.startsWith(topicPrefix));
          if (topics.length > 0) await admin.deleteTopics({ topics });
          const groups = (await admin.listGroups()).groups
            .map((g) => g.groupId)
            .filter((g) => g.startsWith(topicPrefix));
          if (groups.length > 0) await admin.deleteGroups(groups).catch(() => undefined);
        } finally {
          await admin.disconnect();
        }
      });
      await attempt(async () => {
        const { Redis } = await import('ioredis');
        const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 2 });
        await redis.connect();
        try {
          let cursor = '0';
          do {
            const [next, keys] = await redis.scan(cursor, 'MATCH', `${redisPrefix}*`, 'COUNT', 500);
            cursor = next;
            if (keys.length > 0) await redis.del(...keys);
          } while (cursor !== '0');
        } finally {
          redis.disconnect();
        }
      });
      if (errors.length > 0)
        console.warn(
          `test world ${id}: cleanup left something behind:`,
          errors.map((e) => (e as Error).message),
        );
    },
  };
}

/** Runs a SQL query against the world's event store (for assertions on the stored events). */
export function queryEvents<T extends object>(world: TestWorld, sql: string, params: unknown[] = []): Promise<T[]> {
  return withPg(world.pgUrl, async (c) => (await c.query(sql, params)).rows as T[]);
}

/**
 * Attempts the payments role refused because its gateway circuit breaker was open, by request id:
 * they count as attempts (retried, or the last one fails the request) but never reach the gateway.
 */
export async function circuitRefusals(world: TestWorld): Promise<Map<string, number>> {
  const rows = await queryEvents<{ stream_id: string; n: string }>(
    world,
    `SELECT stream_id, count(*) AS n FROM settle_events
      WHERE (type = 'PaymentAttemptFailed' AND data->'error'->>'code' = 'CIRCUIT_OPEN')
         OR (type = 'PaymentFailed' AND data->'lastError'->>'code' = 'CIRCUIT_OPEN')
      GROUP BY stream_id`,
  );
  return new Map(rows.map((r) => [r.stream_id.replace(/^request-/, ''), Number(r.n)]));
}

export interface SettleProcess {
  name: string;
  roles: string[];
  pid: number;
  httpPort: number;
  grpcPort: number;
  sandboxPort: number;
  /** `http://127.0.0.1:<httpPort>`: the APIs with command or query, otherwise health and metrics only. */
  httpUrl: string;
  dataDir: string;
  logFile: string;
  /** The last lines at warn level or above (JSON parsed when possible). */
  problems: string[];
  /** Resolves with the exit code (or signal) once the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGINT, then SIGKILL after `timeoutMs`; resolves once the process is gone. */
  stop(timeoutMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGKILL right away (a crash). */
  kill(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface SpawnOptions {
  name: string;
  roles: string[];
  /** Extra environment (the world's env, payments/gateway URLs, timings). */
  env: Record<string, string>;
  readyTimeoutMs?: number;
  /** Keep the data dir after stop (for debugging). */
  keepDataDir?: boolean;
}

const running = new Set<SettleProcess>();

/**
 * Starts `settle start --roles …` as a child process and waits until it is ready: the log line
 * "Settle is up", then `/health/ready` answering 200 (every process serves it on its HTTP port).
 * Logs go to a file in the process's data dir; warnings and errors are kept in `problems`.
 */
export async function spawnSettle(opts: SpawnOptions): Promise<SettleProcess> {
  if (!existsSync(join(REPO_ROOT, 'cli/dist/main.js')))
    throw new Error('cli/dist/main.js is missing: run `npx tsc -b` before the integration specs');
  const dataDir = mkdtempSync(join(tmpdir(), `settle-${opts.name}-`));
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    NODE_ENV: 'development',
    SETTLE_DATA_DIR: dataDir,
    SETTLE_HTTP_PORT: String(await freePort()),
    SETTLE_GRPC_PORT: String(await freePort()),
    SETTLE_SANDBOX_PORT: String(await freePort()),
    // info, not warn: roles without HTTP announce readiness only with the info line "Settle is up".
    SETTLE_LOG_LEVEL: 'info',
    SETTLE_LOG_FORMAT: 'json',
    SETTLE_RATE_LIMIT: '0',
    SETTLE_RATE_LIMIT_IP: '0',
    ...opts.env,
  };
  // The caller may fix a port in opts.env (e.g. the sandbox behind a proxy); these are the final ones.
  const [httpPort, grpcPort, sandboxPort] = [env.SETTLE_HTTP_PORT, env.SETTLE_GRPC_PORT, env.SETTLE_SANDBOX_PORT].map(
    Number,
  );
  const logFile = join(dataDir, 'settle.log');
  const log = createWriteStream(logFile);
  const child: ChildProcess = spawn(NODE_BIN, [SETTLE_BIN, 'start', '--roles', opts.roles.join(',')], {
    cwd: REPO_ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const problems: string[] = [];
  let up = false;
  let onUp: () => void = () => undefined;
  const upSeen = new Promise<void>((r) => (onUp = r));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.once('exit', (code, signal) => {
      running.delete(proc);
      r({ code, signal });
    }),
  );
  const watch = (stream: NodeJS.ReadableStream) =>
    createInterface({ input: stream }).on('line', (line) => {
      log.write(`${line}\n`);
      let level = 50;
      let msg = line;
      try {
        const parsed = JSON.parse(line) as { level?: number; msg?: string };
        level = parsed.level ?? 30;
        msg = parsed.msg ?? line;
      } catch {
        // not JSON (a stack trace or a warning): keep it as a problem
      }
      if (msg === 'Settle is up' && !up) {
        up = true;
        onUp();
      }
      if (level >= 40) {
        problems.push(line.length > 2000 ? `${line.slice(0, 2000)}…` : line);
        if (problems.length > 500) problems.shift();
      }
    });
  watch(child.stdout!);
  watch(child.stderr!);

  const cleanupDir = () => {
    log.end();
    if (!opts.keepDataDir && !process.env.SETTLE_TEST_KEEP) rmSync(dataDir, { recursive: true, force: true });
  };
  const proc: SettleProcess = {
    name: opts.name,
    roles: opts.roles,
    pid: child.pid!,
    httpPort,
    grpcPort,
    sandboxPort,
    httpUrl: `http://127.0.0.1:${httpPort}`,
    dataDir,
    logFile,
    problems,
    exited,
    async stop(timeoutMs = 20_000) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGINT');
        const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
        const result = await exited;
        clearTimeout(timer);
        cleanupDir();
        return result;
      }
      const result = await exited;
      cleanupDir();
      return result;
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      const result = await exited;
      return result;
    },
  };
  running.add(proc);

  const readyTimeoutMs = opts.readyTimeoutMs ?? 60_000;
  try {
    await Promise.race([
      exited.then((r) => {
        throw new Error(
          `${opts.name} exited before it was ready (${JSON.stringify(r)}):\n${problems.slice(-20).join('\n')}`,
        );
      }),
      (async () => {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          upSeen,
          new Promise(
            (_, fail) =>
              (timer = setTimeout(
                () => fail(new Error(`${opts.name} did not log "Settle is up" within ${readyTimeoutMs} ms`)),
                readyTimeoutMs,
              )),
          ),
        ]).finally(() => clearTimeout(timer));
        await waitUntil(
          `${opts.name} /health/ready`,
          async () => (await fetch(`${proc.httpUrl}/health/ready`, { signal: AbortSignal.timeout(2000) })).ok,
          readyTimeoutMs,
        );
      })(),
    ]);
  } catch (error) {
    await proc.stop(5000);
    throw error;
  }
  return proc;
}

/** Stops every process these helpers started and that is still running (for afterAll). */
export async function stopAllSettle(): Promise<void> {
  await Promise.all([...running].map((p) => p.stop()));
}
