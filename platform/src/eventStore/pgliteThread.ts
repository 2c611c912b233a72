/**
 * The embedded PostgreSQL's own thread (see `createPgliteThreadClient`): PGlite runs its WASM
 * synchronously, so on the main thread every query stopped HTTP, gRPC and timers for as long as
 * it ran. Here it runs beside them, on the other core.
 *
 * Self-contained on purpose (no relative imports): Node runs it as compiled JavaScript from
 * `dist/`, and as TypeScript source under the test runner (type stripping).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { PGlite } from '@electric-sql/pglite';

interface Request {
  id: number;
  op: 'query' | 'exec' | 'close';
  sql?: string;
  params?: unknown[];
}

const port = parentPort;
if (!port) throw new Error('pgliteThread runs as a worker thread');
const { dataDir, startParams, pristine } = workerData as {
  dataDir: string | undefined;
  startParams: string[];
  pristine: ArrayBuffer | undefined;
};

/** What a thrown PostgreSQL error keeps across the thread boundary (SQLSTATE and its details). */
function serialiseError(error: unknown) {
  const e = error as Record<string, unknown>;
  const out: Record<string, unknown> = { message: error instanceof Error ? error.message : String(error) };
  for (const key of ['code', 'detail', 'hint', 'constraint', 'table', 'column', 'schema', 'severity', 'where'])
    if (typeof e?.[key] === 'string') out[key] = e[key];
  return out;
}

const from = pristine ? { loadDataDir: new Blob([pristine]) } : {};
const opening = dataDir
  ? PGlite.create(dataDir, { relaxedDurability: false, startParams, ...from })
  : PGlite.create({ startParams, ...from });

opening.then(
  (db) => {
    port.postMessage({ ready: true });
    port.on('message', (req: Request) => {
      void (async () => {
        try {
          if (req.op === 'query') {
            // Rows as arrays plus the column names once: a much smaller structured clone than
            // one object per row repeating every key (the catch-up at start sends 100k rows).
            const result = await db.query<unknown[]>(req.sql!, req.params, { rowMode: 'array' });
            port.postMessage({ id: req.id, rows: result.rows, fields: result.fields.map((f) => f.name) });
          } else if (req.op === 'exec') {
            await db.exec(req.sql!);
            port.postMessage({ id: req.id, rows: [] });
          } else {
            await db.close();
            port.postMessage({ id: req.id, rows: [] });
            port.close();
          }
        } catch (error) {
          port.postMessage({ id: req.id, error: serialiseError(error) });
        }
      })();
    });
  },
  (error: unknown) => port.postMessage({ ready: false, error: serialiseError(error) }),
);
