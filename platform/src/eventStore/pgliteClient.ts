import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Worker } from 'node:worker_threads';
import { PGlite } from '@electric-sql/pglite';
import type { SqlClient, SqlExecutor } from './sqlClient.js';

const execFileAsync = promisify(execFile);

/** PGlite's own start parameters, with 16 MB of shared buffers instead of PostgreSQL's 128 MB. */
const START_PARAMS = [...PGlite.defaultStartParams, '-c', 'shared_buffers=16MB'];

/** Runs initdb for a new data folder in a child process, whose memory goes away with it. */
async function initialiseInChild(dataDir: string): Promise<void> {
  const pglite = import.meta.resolve('@electric-sql/pglite');
  const code = `const { PGlite } = await import(${JSON.stringify(pglite)});
const db = await PGlite.create(process.argv[1], { relaxedDurability: false });
await db.close();`;
  await execFileAsync(process.execPath, ['--input-type=module', '-e', code, dataDir], { timeout: 300_000 });
}

let pristineCluster: Blob | undefined;

/**
 * A dump of a freshly initialised, empty PGlite cluster (see {@link dumpPristineCluster}) that
 * every later new database — in memory, or a folder without one yet — starts from instead of
 * running initdb again, which is most of what creating a PGlite costs. The unit-test harness sets
 * it once per worker; unset (the default, and always in production), every new database runs initdb.
 */
export function usePristineCluster(dump: Blob | undefined): void {
  pristineCluster = dump;
}

/** Runs initdb once in memory and returns the resulting data folder as a tarball. */
export async function dumpPristineCluster(): Promise<Blob> {
  const db = await PGlite.create({ startParams: START_PARAMS });
  try {
    return await db.dumpDataDir('none');
  } finally {
    await db.close();
  }
}

/**
 * The embedded PostgreSQL: PGlite (Postgres compiled to WASM) persisted to a folder. One
 * connection, so transactions run one at a time; the store's group commit keeps throughput up.
 * Every query is synced to the filesystem before it resolves, so an answered append survives
 * a `kill -9`.
 *
 * Memory: PostgreSQL's shared buffers live in the WASM heap, so they are kept small (the OS page
 * cache holds the files anyway), and a new data folder is initialised (initdb, which peaks near
 * 1 GB of WASM heap that is never given back) by a short-lived child process, so the server
 * process only ever opens an existing folder.
 */
export async function createPgliteClient(dataDir: string | undefined): Promise<SqlClient> {
  const fresh = !dataDir || !existsSync(join(dataDir, 'PG_VERSION'));
  // A pristine cluster, when the harness set one, stands in for initdb (in this process or a child).
  const from = fresh && pristineCluster ? { loadDataDir: pristineCluster } : {};
  if (dataDir) {
    await mkdir(dataDir, { recursive: true });
    if (fresh && !pristineCluster) await initialiseInChild(dataDir);
  }
  const db = dataDir
    ? await PGlite.create(dataDir, { relaxedDurability: false, startParams: START_PARAMS, ...from })
    : await PGlite.create({ startParams: START_PARAMS, ...from });
  const wrap = (q: Pick<PGlite, 'query'>): SqlExecutor => ({
    async query<T>(sql: string, params?: unknown[]) {
      const result = await q.query<T>(sql, params);
      return { rows: result.rows };
    },
  });
  return {
    name: dataDir ? `embedded (PGlite at ${dataDir})` : 'embedded (PGlite in memory)',
    maxConcurrency: 1,
    ...wrap(db),
    transaction: (fn) => db.transaction((tx) => fn(wrap(tx))),
    async exec(sql) {
      await db.exec(sql);
    },
    async close() {
      await db.close();
    },
  };
}

/** The thread's entry: compiled JavaScript beside this module, or its TypeScript source under the test runner. */
const threadEntry = () =>
  new URL(import.meta.url.endsWith('.ts') ? './pgliteThread.ts' : './pgliteThread.js', import.meta.url);

/** A PostgreSQL error rebuilt from what the thread sent: message, SQLSTATE `code` and details. */
function threadError(e: Record<string, unknown>): Error {
  return Object.assign(new Error(String(e.message)), e);
}

/** The thread's rows (arrays, with the column names once) as the row objects every caller reads. */
function rowObjects(fields: string[], rows: unknown[][]): Record<string, unknown>[] {
  return rows.map((row) => {
    const o: Record<string, unknown> = {};
    for (let i = 0; i < fields.length; i++) o[fields[i]!] = row[i];
    return o;
  });
}

/**
 * The embedded PostgreSQL on its own worker thread: the same PGlite, the same data folder and
 * durability as {@link createPgliteClient}, but its WASM no longer runs on the main thread, where
 * every query held up HTTP, gRPC, timers and the gateway sandbox for as long as it ran (under
 * load the sandbox missed its 1.5 s deadline and the retries fed the load). `settle start` uses
 * this one.
 *
 * One connection, as before: statements run in the order they are sent. A transaction holds the
 * thread for its statements (`BEGIN` … `COMMIT`), other callers waiting their turn here. If the
 * thread dies, every call fails from then on (the part monitor reports the event store down).
 */
export async function createPgliteThreadClient(dataDir: string | undefined): Promise<SqlClient> {
  const fresh = !dataDir || !existsSync(join(dataDir, 'PG_VERSION'));
  const pristine = fresh && pristineCluster ? await pristineCluster.arrayBuffer() : undefined;
  if (dataDir) {
    await mkdir(dataDir, { recursive: true });
    if (fresh && !pristine) await initialiseInChild(dataDir);
  }
  const worker = new Worker(threadEntry(), {
    workerData: { dataDir, startParams: START_PARAMS, pristine },
    ...(pristine ? { transferList: [pristine] } : {}),
  });
  const pending = new Map<number, { resolve: (rows: unknown[]) => void; reject: (e: Error) => void }>();
  let nextId = 0;
  let dead: Error | undefined;
  const die = (error: Error) => {
    dead ??= error;
    for (const p of pending.values()) p.reject(dead);
    pending.clear();
  };
  await new Promise<void>((resolve, reject) => {
    const onError = (error: Error) => reject(error);
    worker.once('error', onError);
    worker.once('message', (m: { ready: boolean; error?: Record<string, unknown> }) => {
      worker.off('error', onError);
      if (m.ready) resolve();
      else reject(threadError(m.error ?? { message: 'PGlite did not start' }));
    });
  }).catch(async (error: unknown) => {
    await worker.terminate();
    throw error;
  });
  worker.on('message', (m: { id: number; rows?: unknown[][]; fields?: string[]; error?: Record<string, unknown> }) => {
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    if (m.error) p.reject(threadError(m.error));
    else p.resolve(m.fields && m.rows ? rowObjects(m.fields, m.rows) : []);
  });
  worker.on('error', (error) => die(new Error(`the embedded PostgreSQL thread failed: ${error.message}`)));
  worker.on('exit', (code) => die(new Error(`the embedded PostgreSQL thread exited (code ${code})`)));

  const send = (op: 'query' | 'exec' | 'close', sql?: string, params?: unknown[]) =>
    new Promise<unknown[]>((resolve, reject) => {
      if (dead) return reject(dead);
      const id = nextId++;
      pending.set(id, { resolve, reject });
      worker.postMessage({ id, op, sql, params });
    });

  // Statements are sent at once (the thread runs them in order); while a transaction runs, other
  // callers' statements wait for it to end (sent meanwhile, they would land inside it).
  let gate: Promise<void> | undefined;
  const turn = async () => {
    while (gate) await gate;
  };
  const direct: SqlExecutor = {
    async query<T>(sql: string, params?: unknown[]) {
      return { rows: (await send('query', sql, params)) as T[] };
    },
  };
  return {
    name: dataDir ? `embedded (PGlite at ${dataDir}, own thread)` : 'embedded (PGlite in memory, own thread)',
    maxConcurrency: 1,
    async query(sql, params) {
      if (gate) await turn();
      return direct.query(sql, params);
    },
    async transaction(fn) {
      await turn();
      let open!: () => void;
      gate = new Promise((r) => (open = r));
      try {
        await send('query', 'BEGIN');
        try {
          const result = await fn(direct);
          await send('query', 'COMMIT');
          return result;
        } catch (error) {
          if (!dead) await send('query', 'ROLLBACK').catch(() => undefined);
          throw error;
        }
      } finally {
        gate = undefined;
        open();
      }
    },
    async exec(sql) {
      await turn();
      await send('exec', sql);
    },
    async close() {
      if (dead) return;
      await turn();
      await send('close');
      await worker.terminate();
    },
  };
}
