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

class MemoryCollection<T extends ReadDoc> implements ReadCollection<T> {
  readonly docs = new Map<string, T>();
  private uniques: UniqueIndex[] = [];

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
      this.docs.set(doc._id, copy);
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
      this.docs.set(doc._id, structuredClone(doc));
      this.uniques.forEach((u, i) => u.owners.set(keys[i]!, doc._id));
    }
    if (conflicts.length > 0) throw new DuplicateKeyError(this.name, conflicts);
  }
  async deleteMany(ids: string[]) {
    for (const id of ids) {
      const d = this.docs.get(id);
      if (d) this.unindex(d);
      this.docs.delete(id);
    }
  }
  async find(opts: FindOptions = {}) {
    return applyFind(this.docs.values() as Iterable<T & Record<string, unknown>>, opts).map((d) => structuredClone(d));
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
    this.uniques = [];
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
    // Non-unique indexes only speed MongoDB up; unique ones change what a write may do.
    for (const index of indexes) if (index.unique) this.get(collection).addUniqueIndex(index.fields.map(([f]) => f));
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
