import type { FindOptions, Filter, IndexSpec, ReadCollection, ReadDoc, ReadStore } from './port.js';
import { applyFind, assertFilter, matches } from './filter.js';
import { DuplicateKeyError } from './errors.js';
import { newestPerId } from './newestPerId.js';

interface UniqueIndex {
  fields: string[];
  /** index key (the JSON of the fields' values, missing = null, as MongoDB indexes it) → _id */
  owners: Map<string, string>;
}

const fieldValue = (doc: Record<string, unknown>, path: string): unknown =>
  path
    .split('.')
    .reduce<unknown>(
      (v, k) => (v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined),
      doc,
    ) ?? null;

const indexKey = (doc: ReadDoc, fields: string[]): string =>
  JSON.stringify(fields.map((f) => fieldValue(doc as unknown as Record<string, unknown>, f)));

/** Index buckets hold only plain scalar values; anything else (arrays, objects) goes to `other`. */
const bucketKey = (v: unknown): string | undefined =>
  v === null
    ? 'null'
    : typeof v === 'string'
      ? `s${v}`
      : typeof v === 'number' || typeof v === 'boolean'
        ? `${typeof v}${String(v)}`
        : undefined;

const RANGE_OPS = new Set(['$lt', '$lte', '$gt', '$gte']);

/**
 * A field's equality index: value → ids, for the leading field of each index the projections
 * declare (what MongoDB would use). It only narrows the documents a find looks at: the whole
 * filter still decides, so it must merely never leave out a document the filter could match.
 */
class FieldIndex {
  readonly buckets = new Map<string, Set<string>>();
  /** Documents whose value is an array or object: always candidates (MongoDB matches inside them). */
  readonly other = new Set<string>();

  constructor(readonly field: string) {}

  add(doc: ReadDoc): void {
    const key = bucketKey(fieldValue(doc as unknown as Record<string, unknown>, this.field));
    if (key === undefined) this.other.add(doc._id);
    else {
      let ids = this.buckets.get(key);
      if (!ids) this.buckets.set(key, (ids = new Set()));
      ids.add(doc._id);
    }
  }

  remove(doc: ReadDoc): void {
    const key = bucketKey(fieldValue(doc as unknown as Record<string, unknown>, this.field));
    if (key === undefined) this.other.delete(doc._id);
    else {
      const ids = this.buckets.get(key);
      ids?.delete(doc._id);
      if (ids?.size === 0) this.buckets.delete(key);
    }
  }

  /**
   * The ids that may match `condition` on this field, or undefined when the index cannot narrow
   * it: an equality or `$in` of scalars (their buckets), or a range with non-null scalar bounds
   * (every bucket but null: missing and null never satisfy such a range).
   */
  candidates(condition: unknown): Set<string>[] | undefined {
    const plain = bucketKey(condition);
    if (plain !== undefined) return [this.buckets.get(plain) ?? new Set(), this.other];
    if (condition === null || typeof condition !== 'object' || Array.isArray(condition)) return undefined;
    const ops = Object.entries(condition as Record<string, unknown>);
    if (ops.length === 0) return undefined;
    if (ops.length === 1 && ops[0]![0] === '$in' && Array.isArray(ops[0]![1])) {
      const keys = (ops[0]![1] as unknown[]).map(bucketKey);
      if (keys.some((k) => k === undefined)) return undefined;
      return [...keys.map((k) => this.buckets.get(k!) ?? new Set<string>()), this.other];
    }
    if (ops.every(([op, v]) => RANGE_OPS.has(op) && v !== null && bucketKey(v) !== undefined))
      return [...[...this.buckets].filter(([k]) => k !== 'null').map(([, ids]) => ids), this.other];
    return undefined;
  }
}

class MemoryCollection<T extends ReadDoc> implements ReadCollection<T> {
  readonly docs = new Map<string, T>();
  private uniques: UniqueIndex[] = [];
  private indexes = new Map<string, FieldIndex>();
  /** Insertion order of each document (the order a find without a sort returns them in). */
  private readonly order = new Map<string, number>();
  private nextOrder = 0;

  constructor(private readonly name: string) {}

  async get(id: string) {
    const d = this.docs.get(id);
    return d ? structuredClone(d) : null;
  }
  async getMany(ids: string[]) {
    const out = new Map<string, T>();
    for (const id of ids) {
      const d = this.docs.get(id);
      if (d) out.set(id, structuredClone(d));
    }
    return out;
  }
  async putMany(docs: T[]) {
    const conflicts: string[] = [];
    for (const doc of newestPerId(docs)) {
      const current = this.docs.get(doc._id);
      if (current && current._position >= doc._position) continue;
      const keys = this.uniques.map((u) => indexKey(doc, u.fields));
      if (this.uniques.some((u, i) => (u.owners.get(keys[i]!) ?? doc._id) !== doc._id)) {
        conflicts.push(doc._id);
        continue;
      }
      if (current) this.unindex(current);
      const copy = structuredClone(doc);
      this.store(copy);
      this.uniques.forEach((u, i) => u.owners.set(keys[i]!, doc._id));
    }
    if (conflicts.length > 0) throw new DuplicateKeyError(this.name, conflicts);
  }
  async replaceMany(docs: T[]) {
    const conflicts: string[] = [];
    for (const doc of docs) {
      const current = this.docs.get(doc._id);
      const keys = this.uniques.map((u) => indexKey(doc, u.fields));
      if (this.uniques.some((u, i) => (u.owners.get(keys[i]!) ?? doc._id) !== doc._id)) {
        conflicts.push(doc._id);
        continue;
      }
      if (current) this.unindex(current);
      this.store(structuredClone(doc));
      this.uniques.forEach((u, i) => u.owners.set(keys[i]!, doc._id));
    }
    if (conflicts.length > 0) throw new DuplicateKeyError(this.name, conflicts);
  }
  async deleteMany(ids: string[]) {
    for (const id of ids) {
      const d = this.docs.get(id);
      if (d) this.unindex(d);
      this.docs.delete(id);
      this.order.delete(id);
    }
  }
  async find(opts: FindOptions = {}) {
    return applyFind(this.candidates(opts) as Iterable<T & Record<string, unknown>>, opts).map((d) =>
      structuredClone(d),
    );
  }

  /**
   * The documents a find must look at: all of them, or, when the filter constrains an indexed
   * field, the smallest set of index buckets (in insertion order, like a full scan).
   */
  private candidates(opts: FindOptions): Iterable<T> {
    assertFilter(opts.filter);
    let best: Set<string>[] | undefined;
    let bestSize = Infinity;
    for (const [field, condition] of Object.entries(opts.filter ?? {})) {
      const found = this.indexes.get(field)?.candidates(condition);
      if (!found) continue;
      const size = found.reduce((n, ids) => n + ids.size, 0);
      if (size < bestSize) [best, bestSize] = [found, size];
    }
    if (!best || bestSize >= this.docs.size / 2) return this.docs.values();
    const ids = new Set<string>();
    for (const set of best) for (const id of set) ids.add(id);
    return [...ids]
      .sort((a, b) => this.order.get(a)! - this.order.get(b)!)
      .map((id) => this.docs.get(id)!)
      .filter((d) => d !== undefined);
  }

  private store(doc: T): void {
    this.docs.set(doc._id, doc);
    if (!this.order.has(doc._id)) this.order.set(doc._id, this.nextOrder++);
    for (const index of this.indexes.values()) index.add(doc);
  }
  async count(filter: Filter = {}) {
    assertFilter(filter);
    let n = 0;
    for (const d of this.docs.values()) if (matches(d as unknown as Record<string, unknown>, filter)) n++;
    return n;
  }
  /** Like MongoDB's drop, this removes the collection's indexes too (`ensureIndexes` recreates them). */
  async drop() {
    this.docs.clear();
    this.order.clear();
    this.uniques = [];
    this.indexes = new Map();
  }

  /** Indexes the leading field of an index spec for finds (see {@link FieldIndex}). */
  addFieldIndex(field: string): void {
    // Top-level fields only: along a dotted path MongoDB also looks inside arrays.
    if (field === '_id' || field.includes('.') || this.indexes.has(field)) return;
    const index = new FieldIndex(field);
    for (const d of this.docs.values()) index.add(d);
    this.indexes.set(field, index);
  }

  addUniqueIndex(fields: string[]): void {
    if (this.uniques.some((u) => u.fields.join('\u0000') === fields.join('\u0000'))) return;
    const owners = new Map<string, string>();
    for (const d of this.docs.values()) {
      const key = indexKey(d, fields);
      const owner = owners.get(key);
      if (owner !== undefined) throw new DuplicateKeyError(this.name, [owner, d._id]);
      owners.set(key, d._id);
    }
    this.uniques.push({ fields, owners });
  }

  private unindex(doc: T): void {
    for (const index of this.indexes.values()) index.remove(doc);
    for (const u of this.uniques) {
      const key = indexKey(doc, u.fields);
      if (u.owners.get(key) === doc._id) u.owners.delete(key);
    }
  }
}

/**
 * The embedded read store: documents in process memory. Not durable by design — projections
 * rebuild it from the event log at start (fast: the log is local), so its checkpoints start at 0.
 * Query, sort and unique-index semantics follow MongoDB's (the same contract suite runs on both).
 */
export class MemoryReadStore implements ReadStore {
  readonly name = 'embedded (in-process)';
  readonly durable = false;
  private readonly collections = new Map<string, MemoryCollection<ReadDoc>>();
  private readonly checkpoints = new Map<string, number>();

  private get(name: string): MemoryCollection<ReadDoc> {
    let c = this.collections.get(name);
    if (!c) this.collections.set(name, (c = new MemoryCollection(name)));
    return c;
  }
  collection<T extends ReadDoc>(name: string): ReadCollection<T> {
    return this.get(name) as unknown as ReadCollection<T>;
  }
  async ensureIndexes(collection: string, indexes: IndexSpec[]) {
    // Unique indexes change what a write may do; every index's leading field narrows finds.
    for (const index of indexes) {
      const c = this.get(collection);
      if (index.unique) c.addUniqueIndex(index.fields.map(([f]) => f));
      if (index.fields[0]) c.addFieldIndex(index.fields[0][0]);
    }
  }
  async getCheckpoint(name: string) {
    return this.checkpoints.get(name) ?? 0;
  }
  async saveCheckpoint(name: string, position: number) {
    this.checkpoints.set(name, position);
  }
  async ping() {}
  async close() {}
}
