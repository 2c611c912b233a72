/** Every read-model document records the global position of the last event applied to it. */
export interface ReadDoc {
  _id: string;
  _position: number;
}

export type Scalar = string | number | boolean | null;
export type FieldCondition =
  | Scalar
  | { $in: Scalar[] }
  | { $gt?: Scalar; $gte?: Scalar; $lt?: Scalar; $lte?: Scalar; $ne?: Scalar; $exists?: boolean };
/** A conjunction of field conditions (a subset of MongoDB's query language that FerretDB also serves). */
export type Filter = Record<string, FieldCondition>;

export interface FindOptions {
  filter?: Filter;
  sort?: [field: string, direction: 1 | -1][];
  limit?: number;
  skip?: number;
}

export interface IndexSpec {
  fields: [field: string, direction: 1 | -1][];
  unique?: boolean;
}

export interface ReadCollection<T extends ReadDoc> {
  get(id: string): Promise<T | null>;
  getMany(ids: string[]): Promise<Map<string, T>>;
  /**
   * Upserts whole documents, each only if the stored copy is older (lower `_position`):
   * re-applying a batch after a crash changes nothing.
   * `stored`: the stored copy of each document (null: none) as the caller last read it, a hint
   * that saves a read (a copy that changed since is read again, never trusted).
   */
  putMany(docs: T[], stored?: ReadonlyMap<string, T | null>): Promise<void>;
  /**
   * Upserts whole documents without the position guard, in one bulk: for a collection with a
   * single writer that has already folded each document (a rebuild filling a fresh version).
   * `stored`: the stored copy of each document (null: none), when the writer knows it (saves a read).
   */
  replaceMany(docs: T[], stored?: ReadonlyMap<string, T | null>): Promise<void>;
  deleteMany(ids: string[]): Promise<void>;
  find(opts?: FindOptions): Promise<T[]>;
  count(filter?: Filter): Promise<number>;
  drop(): Promise<void>;
}

/**
 * The read-model port: collections of position-guarded documents plus projection checkpoints.
 *
 * @example
 * const requests = readStore.collection<RequestDoc>('requests');
 * await requests.putMany([{ _id: id, _position: event.globalPosition, status: 'SETTLED' }]);
 */
export interface ReadStore {
  readonly name: string;
  collection<T extends ReadDoc>(name: string): ReadCollection<T>;
  ensureIndexes(collection: string, indexes: IndexSpec[]): Promise<void>;
  getCheckpoint(name: string): Promise<number>;
  saveCheckpoint(name: string, position: number): Promise<void>;
  /** Whether documents survive a restart (the embedded store rebuilds from the log at start). */
  readonly durable: boolean;
  /**
   * True when a sort, a range or a count costs a decode of every candidate document: FerretDB 1.x
   * hands only equality conditions to its backend. Readers then prefer equality queries over few
   * documents and maintained counters. False or absent: served from indexes (MongoDB, embedded).
   */
  readonly scansForSorts?: boolean;
  ping(): Promise<void>;
  close(): Promise<void>;
}
