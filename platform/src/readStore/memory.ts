import type { FindOptions, Filter, IndexSpec, ReadCollection, ReadDoc, ReadStore } from './port.js';
import { applyFind, matches } from './filter.js';

class MemoryCollection<T extends ReadDoc> implements ReadCollection<T> {
  readonly docs = new Map<string, T>();
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
    for (const doc of docs) {
      const current = this.docs.get(doc._id);
      if (!current || current._position < doc._position) this.docs.set(doc._id, structuredClone(doc));
    }
  }
  async deleteMany(ids: string[]) {
    for (const id of ids) this.docs.delete(id);
  }
  async find(opts: FindOptions = {}) {
    return applyFind(this.docs.values() as Iterable<T & Record<string, unknown>>, opts).map((d) => structuredClone(d));
  }
  async count(filter: Filter = {}) {
    let n = 0;
    for (const d of this.docs.values()) if (matches(d as unknown as Record<string, unknown>, filter)) n++;
    return n;
  }
  async drop() {
    this.docs.clear();
  }
}

/**
 * The embedded read store: documents in process memory. Not durable by design — projections
 * rebuild it from the event log at start (fast: the log is local), so its checkpoints start at 0.
 */
export class MemoryReadStore implements ReadStore {
  readonly name = 'embedded (in-process)';
  readonly durable = false;
  private readonly collections = new Map<string, MemoryCollection<ReadDoc>>();
  private readonly checkpoints = new Map<string, number>();

  collection<T extends ReadDoc>(name: string): ReadCollection<T> {
    let c = this.collections.get(name);
    if (!c) this.collections.set(name, (c = new MemoryCollection()));
    return c as unknown as ReadCollection<T>;
  }
  async ensureIndexes(_collection: string, _indexes: IndexSpec[]) {}
  async getCheckpoint(name: string) {
    return this.checkpoints.get(name) ?? 0;
  }
  async saveCheckpoint(name: string, position: number) {
    this.checkpoints.set(name, position);
  }
  async ping() {}
  async close() {}
}
