import {
  MongoBulkWriteError,
  MongoClient,
  MongoServerError,
  type AnyBulkWriteOperation,
  type Collection,
  type Db,
  type Document,
  type Filter as MongoFilter,
  type MongoClientOptions,
  type Sort,
} from 'mongodb';
import { ERR_STORE_UNAVAILABLE, SettleError } from '../errors.js';
import type { Logger } from '../logger.js';
import { redactUrl } from '../redis/connection.js';
import { DuplicateKeyError } from './errors.js';
import { MongoClientKeeper } from './mongoClientKeeper.js';
import { assertFilter, assertFindOptions, sortWithTieBreak } from './filter.js';
import { newestPerId } from './newestPerId.js';
import type { Filter, FindOptions, IndexSpec, ReadCollection, ReadDoc, ReadStore } from './port.js';

export const CHECKPOINTS_COLLECTION = 'settle_checkpoints';

/** E11000: an upsert's insert hit an `_id` someone else inserted meanwhile, or another unique index. */
const DUPLICATE_KEY = 11000;
/** How often one document may hit E11000 while the stored copy is still older before it counts as a real conflict. */
const MAX_DUPLICATE_RETRIES = 3;

type Stored = Document & { _id: string };

/** How many read-then-write rounds one putMany may take while other writers keep changing its documents. */
const MAX_WRITE_ROUNDS = 10;

/**
 * On FerretDB, up to this many documents are read (or deleted) by `_id` one at a time rather than
 * with one `$in` (see `byIds`): below it the per-id lookups cost less than one pass over the collection.
 */
const FERRETDB_BY_ID_MAX = 250;
/** How many of those lookups run at once: under the client's pool of 8, leaving room for other reads. */
const FERRETDB_READ_CONCURRENCY = 4;

/** A stored copy's position; a missing copy (or one without a position) is older than anything. */
const positionOf = (stored: Stored | undefined): number =>
  typeof stored?._position === 'number' ? stored._position : -Infinity;

/**
 * The write that makes `doc` the stored copy (see `putMany` for why never a matching `replaceOne`):
 * an insert if nothing is stored, else a compare-and-set on the stored position that
 * sets the document's fields and unsets the stored fields it no longer has.
 */
function writeOf(doc: ReadDoc, stored: Stored | undefined): AnyBulkWriteOperation<Stored> {
  const fields: Document = {};
  for (const [k, v] of Object.entries(doc)) if (k !== '_id' && v !== undefined) fields[k] = v;
  // A top-level name that `$set` would read as a path or an operator: only a replacement stores it
  // as it is (a matching one costs FerretDB a connection until the bulk ends; Settle's read models
  // have none: their dynamic keys are nested).
  if (Object.keys(fields).some((k) => k.includes('.') || k.startsWith('$')))
    return {
      replaceOne: {
        filter: { _id: doc._id, _position: { $lt: doc._position } },
        replacement: doc as Stored,
        upsert: stored === undefined,
      },
    };
  // Nothing stored: a plain insert. An upsert would cost FerretDB 1.24 a query per document (about
  // 9 ms each against 0.03 ms for an insert, measured in a bulk of 200); if someone else inserted
  // the document meanwhile, the insert fails with E11000 and the next round compare-and-sets it.
  if (stored === undefined) return { insertOne: { document: doc as Stored } };
  const unset: Document = {};
  for (const k of Object.keys(stored)) if (k !== '_id' && !(k in fields)) unset[k] = '';
  return {
    updateMany: {
      // `null` matches a stored copy whose position is null or missing, as `positionOf` reads it.
      filter: { _id: doc._id, _position: typeof stored._position === 'number' ? stored._position : null },
      update: Object.keys(unset).length > 0 ? { $set: fields, $unset: unset } : { $set: fields },
    },
  };
}

/** The database named in the URL's path (the driver would default to `test`). */
const databaseInUrl = (url: string): string | undefined => {
  const name = /^mongodb(?:\+srv)?:\/\/[^/?]*\/([^?]+)/.exec(url)?.[1];
  return name ? decodeURIComponent(name) : undefined;
};

const asList = <T>(x: T | readonly T[] | undefined): readonly T[] =>
  x === undefined ? [] : Array.isArray(x) ? (x as readonly T[]) : [x as T];

/**
 * FerretDB (SQLite backend) reports a unique-index violation on the *update* path as an internal
 * error (code 1, "UNIQUE constraint failed") rather than E11000, without saying which write failed.
 */
const isUniqueViolation = (error: unknown): boolean =>
  error instanceof MongoServerError &&
  error.code !== DUPLICATE_KEY &&
  /UNIQUE constraint failed|duplicate key/i.test(error.message);

/** The indexes (into the bulk) of writes that failed with E11000, or null if anything else failed. */
function duplicateKeyFailures(error: unknown): Set<number> | null {
  if (!(error instanceof MongoBulkWriteError) || error.writeConcernError) return null;
  const writeErrors = asList(error.writeErrors);
  if (writeErrors.length === 0 || writeErrors.some((w) => w.code !== DUPLICATE_KEY)) return null;
  return new Set(writeErrors.map((w) => w.index));
}

/**
 * Serialises writes to the same documents within this process. FerretDB 1.x applies an update as
 * "query, then write by _id" without a transaction, so two concurrent guarded replaces of one
 * document can both pass the guard and the older can land last (even `$inc` loses updates).
 * Writers in one process queue per document here; MongoDB itself needs none of this.
 */
class DocumentQueue {
  private readonly tails = new Map<string, Promise<void>>();

  async run<R>(keys: string[], fn: () => Promise<R>): Promise<R> {
    const before = [...new Set(keys.map((k) => this.tails.get(k)).filter((p) => p !== undefined))];
    let done!: () => void;
    const mine = new Promise<void>((resolve) => (done = resolve));
    // Registered synchronously, so each writer waits only for earlier ones: no cycles, no deadlock.
    for (const k of keys) this.tails.set(k, mine);
    try {
      await Promise.all(before);
      return await fn();
    } finally {
      done();
      for (const k of keys) if (this.tails.get(k) === mine) this.tails.delete(k);
    }
  }
}

class MongoReadCollection<T extends ReadDoc> implements ReadCollection<T> {
  constructor(
    /** The collection on the current client (the store may replace its client, see MongoClientKeeper). */
    private readonly collection: () => Collection<Stored>,
    private readonly queue: DocumentQueue,
    /** The server is FerretDB: a few documents are read by `_id` one at a time (see `byIds`). */
    private readonly ferretdb: boolean,
  ) {}

  private get c(): Collection<Stored> {
    return this.collection();
  }

  /**
   * The stored documents with these ids. MongoDB answers `{_id: {$in: ids}}` from the `_id` index.
   * FerretDB 1.24 (PostgreSQL backend) has no indexed path for either form: it does not push `$in`
   * down at all (it fetches and decodes the whole collection, then filters), and it pushes an `_id`
   * equality down as `_jsonb->'_id' @> '"…"'`, which its btree index on `_jsonb->'_id'` cannot
   * serve, so PostgreSQL scans the table (EXPLAIN: Seq Scan, 26 ms at 20k documents) — still far
   * cheaper than decoding every document in FerretDB (5.3 s for one `$in` of 200 ids at 20k
   * documents on this machine, against 0.9–1.2 s for the same 200 `findOne` four at a time).
   * Both grow with the collection; one `$in` costs about as much as ~200 lookups whatever its
   * size, so a few ids (a live projector's small batches, a rebuild's pointer reads) are read one
   * by one and large batches (a catch-up's thousand ids) with one `$in`.
   */
  private async byIds(ids: string[]): Promise<Stored[]> {
    const unique = [...new Set(ids)];
    if (unique.length === 0) return [];
    if (!this.ferretdb || unique.length > FERRETDB_BY_ID_MAX) return this.c.find({ _id: { $in: unique } }).toArray();
    const found: Stored[] = [];
    let next = 0;
    const worker = async () => {
      while (next < unique.length) {
        const doc = await this.c.findOne({ _id: unique[next++]! });
        if (doc) found.push(doc);
      }
    };
    await Promise.all(Array.from({ length: Math.min(FERRETDB_READ_CONCURRENCY, unique.length) }, worker));
    return found;
  }

  private keys(ids: string[]): string[] {
    return ids.map((id) => `${this.c.collectionName}\u0000${id}`);
  }

  async get(id: string): Promise<T | null> {
    return (await this.c.findOne({ _id: id })) as T | null;
  }

  async getMany(ids: string[]): Promise<Map<string, T>> {
    const out = new Map<string, T>();
    for (const d of await this.byIds(ids)) out.set(d._id, d as T);
    return out;
  }

  /**
   * Position-guarded whole-document writes in one unordered bulk, shaped so that FerretDB 1.x holds
   * at most two of its PostgreSQL connections per bulk, however many documents it carries.
   *
   * Root cause of the replicas stall (issue 3, 500 requests): FerretDB 1.24 runs each statement of
   * an `update` command as "query, then write by _id", and closes each statement's query (a pgx
   * Rows holding one backend connection) only when the whole command ends (`defer closer.Close()`
   * inside the statement loop of `updateDocument`). A non-multi statement (`replaceOne`,
   * `updateOne`) that matches a document stops reading after that document, so its Rows stays
   * open: a bulk of N replaceOne that each match holds N connections plus one for the write. Once
   * N reaches the pool (`pool_max_conns`, 120 here) the next statement waits for a connection that
   * only the same command can free, FerretDB stops answering everyone (other commands queue on the
   * pool and then on its metadata lock), and it stays wedged after the client gives up, because it
   * does not read the socket while the command runs. Measured on a private FerretDB 1.24.2 with
   * pool_max_conns=120: one bulk of 110 matching replaceOne used 111 PostgreSQL connections; one
   * of 130 never answered, nor did any later command until FerretDB was restarted. During the
   * 500-request replicas run its debug handler showed 0 open cursors (cursors_created_total equal
   * to the closed count), 120 backend connections idle in PostgreSQL with 120 pgx context
   * watchers, and two `update` commands waiting in `pgxpool.Acquire` under
   * `UpdateAll`/`InTransaction`: no cursor leak, the projector's catch-up bulk alone drained the pool.
   *
   * The SQLite backend wedges the same way on its database/sql pool (100 connections): a bulk of
   * 200 matching replaceOne left 100 `database/sql.(*Rows).awaitDone` goroutines and no answer.
   *
   * So no write here is a matching non-multi statement. A document that exists is rewritten by
   * `updateMany` guarded by the exact stored position (compare-and-set): `$set` of its fields and
   * `$unset` of the stored fields it no longer has, which is the replacement; multi statements read
   * their query to the end, which closes it at once. A document that does not exist yet is
   * inserted (`insertOne`); if someone else inserted it meanwhile, the E11000 sends it to the next
   * round, which reads it again.
   * A round whose counts show that someone else wrote in between reads again too. The same bulk,
   * with the same result, on MongoDB, where `_id` is unique.
   *
   * `stored` (the copies the caller read before folding) replaces the first round's read for the
   * documents it covers: a copy that changed since fails its compare-and-set (or its insert) and
   * is read again in the next round, so a stale one costs a round, never a wrong write.
   */
  async putMany(docs: T[], stored?: ReadonlyMap<string, T | null>): Promise<void> {
    if (docs.length === 0) return;
    const newest = newestPerId(docs);
    await this.queue.run(this.keys(newest.map((d) => d._id)), () => this.write(newest, stored));
  }

  private async write(docs: T[], known?: ReadonlyMap<string, T | null>): Promise<void> {
    let pending = docs;
    const strikes = new Map<string, number>();
    const conflicts: string[] = [];
    for (let round = 1; pending.length > 0; round++) {
      const stored =
        round === 1 && known
          ? await this.knownOrStored(pending, known)
          : await this.storedFields(pending.map((d) => d._id));
      pending = pending.filter((doc) => positionOf(stored.get(doc._id)) < doc._position);
      if (pending.length === 0) break;
      if (round > MAX_WRITE_ROUNDS)
        throw new Error(
          `read store: ${pending.length} document(s) of ${this.c.collectionName} still not written after ${MAX_WRITE_ROUNDS} rounds (concurrent writers?)`,
        );
      const inserts = pending.filter((doc) => !stored.has(doc._id)).length;
      let failed: Set<number> | null;
      try {
        const result = await this.c.bulkWrite(
          pending.map((doc) => writeOf(doc, stored.get(doc._id))),
          { ordered: false },
        );
        // Every insert upserted and every compare-and-set matched: done. Otherwise someone else
        // wrote one of these documents since it was read; the next round reads it again.
        if (result.insertedCount + result.upsertedCount === inserts && result.matchedCount === pending.length - inserts)
          break;
        continue;
      } catch (error) {
        failed = duplicateKeyFailures(error);
        if (failed === null) {
          if (!isUniqueViolation(error)) throw error;
          conflicts.push(...(await this.isolateConflicts(pending)));
          break;
        }
      }
      // E11000 now means two writers inserted the same new document at once (the next round
      // compare-and-sets it) or a clash on another unique index (a real conflict, if it persists).
      const failedIds = new Set([...failed].map((i) => pending[i]!._id));
      const after = await this.storedFields([...failedIds]);
      const unsettled = pending.filter((doc) => {
        if (!failedIds.has(doc._id) || after.has(doc._id)) return true;
        const n = (strikes.get(doc._id) ?? 0) + 1;
        strikes.set(doc._id, n);
        if (n < MAX_DUPLICATE_RETRIES) return true;
        conflicts.push(doc._id);
        return false;
      });
      // Suspects last: FerretDB stops at the first failing write, which must not hold back the rest.
      pending = [...unsettled.filter((d) => !failedIds.has(d._id)), ...unsettled.filter((d) => failedIds.has(d._id))];
    }
    if (conflicts.length > 0) throw new DuplicateKeyError(this.c.collectionName, conflicts);
  }

  /** Writes documents one by one to find which clash on a unique index (FerretDB does not say). */
  private async isolateConflicts(docs: T[]): Promise<string[]> {
    if (docs.length === 1) return [docs[0]!._id];
    const conflicts: string[] = [];
    for (const doc of docs) {
      try {
        await this.write([doc]);
      } catch (error) {
        if (!(error instanceof DuplicateKeyError)) throw error;
        conflicts.push(...error.ids);
      }
    }
    return conflicts;
  }

  /** The caller's copies of these documents, read from the store for those it does not know. */
  private async knownOrStored(docs: T[], known: ReadonlyMap<string, T | null>): Promise<Map<string, Stored>> {
    const stored = await this.storedFields(docs.filter((d) => !known.has(d._id)).map((d) => d._id));
    for (const d of docs) {
      const k = known.get(d._id);
      if (k) stored.set(d._id, k as unknown as Stored);
    }
    return stored;
  }

  /** The stored copies of these documents (whole: a rewrite must know which fields to unset). */
  private async storedFields(ids: string[]): Promise<Map<string, Stored>> {
    return new Map((await this.byIds(ids)).map((r) => [r._id, r]));
  }

  /**
   * Unguarded whole-document writes for a collection with a single writer (a rebuild into a fresh
   * version): one unordered bulk of plain inserts for new documents and, for stored ones,
   * `updateMany` by `_id` with `$set` of the fields and `$unset` of the stored fields they no longer
   * have (never a matching `replaceOne`: see `putMany` for what that costs FerretDB).
   */
  async replaceMany(docs: T[], known?: ReadonlyMap<string, T | null>): Promise<void> {
    if (docs.length === 0) return;
    const newest = newestPerId(docs);
    await this.queue.run(this.keys(newest.map((d) => d._id)), async () => {
      const stored: Map<string, Stored> = new Map();
      const unknown = newest.filter((d) => !known?.has(d._id)).map((d) => d._id);
      for (const [id, doc] of await this.storedFields(unknown)) stored.set(id, doc);
      for (const d of newest) {
        const k = known?.get(d._id);
        if (k) stored.set(d._id, k as unknown as Stored);
      }
      await this.c.bulkWrite(
        newest.map((doc): AnyBulkWriteOperation<Stored> => {
          const current = stored.get(doc._id);
          if (!current) return { insertOne: { document: doc as Stored } };
          const fields: Document = {};
          for (const [k, v] of Object.entries(doc)) if (k !== '_id' && v !== undefined) fields[k] = v;
          const unset: Document = {};
          for (const k of Object.keys(current)) if (k !== '_id' && !(k in fields)) unset[k] = '';
          return {
            updateMany: {
              filter: { _id: doc._id },
              update: Object.keys(unset).length > 0 ? { $set: fields, $unset: unset } : { $set: fields },
            },
          };
        }),
        { ordered: false },
      );
    });
  }

  async deleteMany(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.queue.run(this.keys(ids), async () => {
      if (!this.ferretdb || ids.length > FERRETDB_BY_ID_MAX) await this.c.deleteMany({ _id: { $in: ids } });
      // A few: one `_id` equality per statement (see `byIds`), each a multi statement (see `putMany`).
      else
        await this.c.bulkWrite(
          [...new Set(ids)].map((id) => ({ deleteMany: { filter: { _id: id } } })),
          { ordered: false },
        );
    });
  }

  async find(opts: FindOptions = {}): Promise<T[]> {
    assertFilter(opts.filter);
    assertFindOptions(opts);
    // MongoDB reads limit 0 as "no limit"; the port means "nothing".
    if (opts.limit === 0) return [];
    let cursor = this.c.find((opts.filter ?? {}) as MongoFilter<Stored>);
    if (opts.sort && opts.sort.length > 0) cursor = cursor.sort(sortWithTieBreak(opts.sort) as Sort);
    if (opts.skip) cursor = cursor.skip(opts.skip);
    if (opts.limit !== undefined) cursor = cursor.limit(opts.limit);
    return (await cursor.toArray()) as T[];
  }

  async count(filter: Filter = {}): Promise<number> {
    assertFilter(filter);
    return this.c.countDocuments(filter as MongoFilter<Stored>);
  }

  async drop(): Promise<void> {
    // Drops the collection's indexes too; `ensureIndexes` recreates them.
    await this.c.drop();
  }
}

export interface MongoReadStoreOptions {
  /** Database name; default: the one in the URL, else `settle`. */
  dbName?: string;
  /** How long start-up waits for a server (default 5 s). */
  serverSelectionTimeoutMS?: number;
  clientOptions?: MongoClientOptions;
  /** After how long a stuck server monitor gets the client replaced (see MongoClientKeeper; default 15 s). */
  monitorStallMs?: number;
  logger?: Logger;
}

/**
 * Read models in MongoDB (or anything speaking its wire protocol, such as FerretDB): documents as
 * they are, guarded by `_position`, without transactions, `$lookup`, TTL indexes, change streams
 * or client-level bulk writes, none of which FerretDB serves.
 */
export class MongoReadStore implements ReadStore {
  readonly durable = true;
  private readonly queue = new DocumentQueue();

  private constructor(
    readonly name: string,
    private readonly keeper: MongoClientKeeper,
    readonly databaseName: string,
    /** FerretDB rather than MongoDB (its `buildInfo` says `ferretdbVersion`): see `byIds`. */
    readonly ferretdb: boolean,
  ) {}

  /** FerretDB 1.x sorts, ranges and counts by decoding every candidate document. */
  get scansForSorts(): boolean {
    return this.ferretdb;
  }

  private get db(): Db {
    return this.keeper.db(this.databaseName);
  }

  static async create(url: string, opts: MongoReadStoreOptions = {}): Promise<MongoReadStore> {
    const redacted = redactUrl(url);
    const clientOptions: MongoClientOptions = {
      appName: 'settle',
      serverSelectionTimeoutMS: opts.serverSelectionTimeoutMS ?? 5000,
      // A reply lost with its connection must fail the operation, not hang the projector forever.
      socketTimeoutMS: 30_000,
      // Few connections per process: each command may hold two of FerretDB's PostgreSQL
      // connections (a statement's query plus its write, see `putMany`), and batched projections
      // need few anyway.
      maxPoolSize: 8,
      connectTimeoutMS: 5000,
      // A field set to undefined is left out, as the embedded store reads it (not stored as null).
      ignoreUndefined: true,
      ...opts.clientOptions,
    };
    const client = new MongoClient(url, clientOptions);
    try {
      await client.connect();
      const db = client.db(opts.dbName ?? databaseInUrl(url) ?? 'settle');
      await db.command({ ping: 1 });
      const keeper = new MongoClientKeeper(url, clientOptions, client, {
        ...(opts.monitorStallMs !== undefined ? { stallMs: opts.monitorStallMs } : {}),
        ...(opts.logger ? { logger: opts.logger } : {}),
      });
      // Asked once: MongoDB answers buildInfo to anyone, without `ferretdbVersion`.
      const info = await db
        .admin()
        .command({ buildInfo: 1 })
        .catch(() => ({}) as Document);
      const ferretdb = typeof info.ferretdbVersion === 'string';
      return new MongoReadStore(
        `MongoDB at ${redacted} (database ${db.databaseName}${ferretdb ? `, FerretDB ${info.ferretdbVersion as string}` : ''})`,
        keeper,
        db.databaseName,
        ferretdb,
      );
    } catch (error) {
      await client.close().catch(() => undefined);
      throw new SettleError(
        ERR_STORE_UNAVAILABLE,
        `read store: could not connect to MongoDB at ${redacted}: ${(error as Error).message}`,
        503,
        {
          cause: error,
        },
      );
    }
  }

  collection<T extends ReadDoc>(name: string): ReadCollection<T> {
    // The same driver Collection for as long as the client lasts; a new one on the new client.
    let bound: { client: MongoClient; collection: Collection<Stored> } | undefined;
    return new MongoReadCollection<T>(
      () => {
        const client = this.keeper.client;
        if (bound?.client !== client)
          bound = { client, collection: client.db(this.databaseName).collection<Stored>(name) };
        return bound.collection;
      },
      this.queue,
      this.ferretdb,
    );
  }

  async ensureIndexes(collection: string, indexes: IndexSpec[]): Promise<void> {
    // One at a time: FerretDB 1.24 drops the connection (a server panic) when one createIndexes
    // command names two or more indexes that all exist already, i.e. on every restart.
    for (const ix of indexes)
      await this.db
        .collection(collection)
        .createIndex(Object.fromEntries(ix.fields), ix.unique ? { unique: true } : {});
  }

  async getCheckpoint(name: string): Promise<number> {
    const doc = await this.db
      .collection<{ _id: string; position: number }>(CHECKPOINTS_COLLECTION)
      .findOne({ _id: name });
    return doc?.position ?? 0;
  }

  async saveCheckpoint(name: string, position: number): Promise<void> {
    await this.db
      .collection<{ _id: string; position: number; updatedAt: string }>(CHECKPOINTS_COLLECTION)
      .updateOne({ _id: name }, { $set: { position, updatedAt: new Date().toISOString() } }, { upsert: true });
  }

  async ping(): Promise<void> {
    await this.db.command({ ping: 1 });
  }

  /** Drops the whole database (tests use a throwaway one per run). */
  async dropDatabase(): Promise<void> {
    await this.db.dropDatabase();
  }

  /** How many times the driver's client was replaced after its server monitor got stuck. */
  get clientReplacements(): number {
    return this.keeper.replacements;
  }

  async close(): Promise<void> {
    await this.keeper.close();
  }
}
