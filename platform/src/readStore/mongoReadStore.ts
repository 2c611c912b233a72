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
import { redactUrl } from '../redis/connection.js';
import { DuplicateKeyError } from './errors.js';
import { assertFilter, assertFindOptions, sortWithTieBreak } from './filter.js';
import { newestPerId } from './newestPerId.js';
import type { Filter, FindOptions, IndexSpec, ReadCollection, ReadDoc, ReadStore } from './port.js';

export const CHECKPOINTS_COLLECTION = 'settle_checkpoints';

/** E11000: an upsert's insert hit an existing `_id` (the stored copy is newer) or another unique index. */
const DUPLICATE_KEY = 11000;
/** How often one document may hit E11000 while the stored copy is still older before it counts as a real conflict. */
const MAX_DUPLICATE_RETRIES = 3;

type Stored = Document & { _id: string };

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
    private readonly c: Collection<Stored>,
    private readonly queue: DocumentQueue,
  ) {}

  private keys(ids: string[]): string[] {
    return ids.map((id) => `${this.c.collectionName}\u0000${id}`);
  }

  async get(id: string): Promise<T | null> {
    return (await this.c.findOne({ _id: id })) as T | null;
  }

  async getMany(ids: string[]): Promise<Map<string, T>> {
    const out = new Map<string, T>();
    if (ids.length === 0) return out;
    for (const d of await this.c.find({ _id: { $in: [...new Set(ids)] } }).toArray()) out.set(d._id, d as T);
    return out;
  }

  /**
   * One unordered bulk of position-guarded upserts. An upsert whose guard fails because the stored
   * copy is newer tries to insert and fails with E11000: that is success. Every E11000 is checked
   * by reading the stored positions back, because the same code also means a concurrent insert
   * (retry) or a clash on another unique index (a real conflict). FerretDB stops an unordered bulk
   * at its first error, so the unsettled rest is simply sent again: the guards make it harmless.
   */
  async putMany(docs: T[]): Promise<void> {
    if (docs.length === 0) return;
    const newest = newestPerId(docs);
    await this.queue.run(this.keys(newest.map((d) => d._id)), () => this.write(newest));
  }

  private async write(docs: T[]): Promise<void> {
    let pending = docs;
    const strikes = new Map<string, number>();
    const conflicts: string[] = [];
    while (pending.length > 0) {
      let failed: Set<number> | null;
      // Read the stored positions first: only documents that do not exist yet are upserted, so the
      // guard failing on a newer copy is a plain "matched nothing", not a duplicate-key error
      // (FerretDB 1.24 leaks a PostgreSQL connection per such error and stalls once its pool is gone).
      const known = await this.positions(pending.map((d) => d._id));
      pending = pending.filter((doc) => (known.get(doc._id) ?? -Infinity) < doc._position);
      if (pending.length === 0) break;
      try {
        await this.c.bulkWrite(
          pending.map((doc): AnyBulkWriteOperation<Stored> => ({
            replaceOne: {
              filter: { _id: doc._id, _position: { $lt: doc._position } },
              replacement: doc as Stored,
              upsert: !known.has(doc._id),
            },
          })),
          { ordered: false },
        );
        break;
      } catch (error) {
        failed = duplicateKeyFailures(error);
        if (failed === null) {
          if (!isUniqueViolation(error)) throw error;
          conflicts.push(...(await this.isolateConflicts(pending)));
          break;
        }
      }
      const failedIds = new Set([...failed].map((i) => pending[i]!._id));
      const stored = await this.positions(pending.map((d) => d._id));
      const unsettled = pending.filter((doc) => {
        if ((stored.get(doc._id) ?? -Infinity) >= doc._position) return false;
        if (!failedIds.has(doc._id)) return true;
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

  private async positions(ids: string[]): Promise<Map<string, number>> {
    const rows = await this.c.find({ _id: { $in: ids } }, { projection: { _position: 1 } }).toArray();
    return new Map(rows.map((r) => [r._id, r._position as number]));
  }

  /** Plain unordered upserts by `_id` (no position read, no guard): the rebuild path into a fresh collection. */
  async replaceMany(docs: T[]): Promise<void> {
    if (docs.length === 0) return;
    const newest = newestPerId(docs);
    await this.queue.run(this.keys(newest.map((d) => d._id)), () =>
      this.c.bulkWrite(
        newest.map((doc): AnyBulkWriteOperation<Stored> => ({
          replaceOne: { filter: { _id: doc._id }, replacement: doc as Stored, upsert: true },
        })),
        { ordered: false },
      ),
    );
  }

  async deleteMany(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.queue.run(this.keys(ids), () => this.c.deleteMany({ _id: { $in: ids } }));
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
    private readonly client: MongoClient,
    private readonly db: Db,
  ) {}

  static async create(url: string, opts: MongoReadStoreOptions = {}): Promise<MongoReadStore> {
    const redacted = redactUrl(url);
    const client = new MongoClient(url, {
      appName: 'settle',
      serverSelectionTimeoutMS: opts.serverSelectionTimeoutMS ?? 5000,
      // A reply lost with its connection must fail the operation, not hang the projector forever.
      socketTimeoutMS: 30_000,
      // Few connections per process: FerretDB 1.24 deadlocks once concurrent operations from all
      // clients exhaust its own PostgreSQL pool (50), and batched projections need few anyway.
      maxPoolSize: 8,
      connectTimeoutMS: 5000,
      // A field set to undefined is left out, as the embedded store reads it (not stored as null).
      ignoreUndefined: true,
      ...opts.clientOptions,
    });
    try {
      await client.connect();
      const db = client.db(opts.dbName ?? databaseInUrl(url) ?? 'settle');
      await db.command({ ping: 1 });
      return new MongoReadStore(`MongoDB at ${redacted} (database ${db.databaseName})`, client, db);
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

  get databaseName(): string {
    return this.db.databaseName;
  }

  collection<T extends ReadDoc>(name: string): ReadCollection<T> {
    return new MongoReadCollection<T>(this.db.collection<Stored>(name), this.queue);
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

  async close(): Promise<void> {
    await this.client.close();
  }
}
