import type { StoredEvent } from '@settle/domain';
import type { ReadDoc, ReadStore } from '@settle/platform';

const storeFailures = new WeakSet<object>();

/**
 * True when `error` came from the read store (an outage: retry the batch), not from a projection's
 * own code (a poison event: park its stream).
 */
export function isReadStoreFailure(error: unknown): boolean {
  return typeof error === 'object' && error !== null && storeFailures.has(error);
}

async function fromStore<T>(read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (error) {
    const tagged = typeof error === 'object' && error !== null ? error : new Error(String(error));
    storeFailures.add(tagged);
    throw tagged;
  }
}

/**
 * Collects the documents a batch of events changes: each is loaded once, folded in memory,
 * and written back once, guarded by position, when the batch commits.
 */
export class UnitOfWork {
  private readonly loaded = new Map<string, Map<string, ReadDoc | null>>();
  /** The copies as read from the store (untouched by folds): `putMany`'s first round needs no read. */
  private readonly fetched = new Map<string, Map<string, ReadDoc | null>>();
  private readonly dirty = new Map<string, Set<string>>();
  private readonly deleted = new Map<string, Set<string>>();
  private readonly touchedIds = new Map<string, Set<string>>();

  constructor(private readonly store: ReadStore) {}

  private cache(collection: string) {
    let c = this.loaded.get(collection);
    if (!c) this.loaded.set(collection, (c = new Map()));
    return c;
  }

  /** Keeps what the store answered for `id`, and a copy of it that folds cannot change. */
  private remember(collection: string, id: string, doc: ReadDoc | null): void {
    this.cache(collection).set(id, doc);
    let f = this.fetched.get(collection);
    if (!f) this.fetched.set(collection, (f = new Map()));
    f.set(id, doc && structuredClone(doc));
  }

  /**
   * Documents that cannot be stored yet, so need no read: each is keyed by a stream whose first
   * event is among this unit's events (a projection sees a stream's events in order, so nothing
   * before that one made it). They fold from nothing. Should one exist after all (a batch applied
   * again after a crash), the fold is the same and the position guard of the write settles it.
   */
  absent(collection: string, ids: string[]): void {
    const c = this.cache(collection);
    for (const id of ids) if (!c.has(id)) this.remember(collection, id, null);
  }

  /** Loads many documents in one round trip (call before a batch to avoid one read per document). */
  async prefetch(collection: string, ids: string[]): Promise<void> {
    const c = this.cache(collection);
    const missing = [...new Set(ids)].filter((id) => !c.has(id));
    if (missing.length === 0) return;
    const found = await fromStore(() => this.store.collection(collection).getMany(missing));
    for (const id of missing) this.remember(collection, id, found.get(id) ?? null);
  }

  async get<T extends ReadDoc>(collection: string, id: string): Promise<T | null> {
    const c = this.cache(collection);
    if (!c.has(id)) this.remember(collection, id, await fromStore(() => this.store.collection(collection).get(id)));
    return c.get(id) as T | null;
  }

  /**
   * Applies `event` to one document unless the document has already seen it (its `_position`
   * is at or past the event's): the guard that makes replays and redeliveries harmless.
   */
  /** Ids of documents events were applied to in this unit, changed or already up to date (replays). */
  touched(collection: string): string[] {
    return [...(this.touchedIds.get(collection) ?? [])];
  }

  async update<T extends ReadDoc>(
    collection: string,
    id: string,
    event: StoredEvent,
    fn: (doc: T | null) => Omit<T, '_position'> | null,
  ): Promise<T | null> {
    let t = this.touchedIds.get(collection);
    if (!t) this.touchedIds.set(collection, (t = new Set()));
    t.add(id);
    const current = await this.get<T>(collection, id);
    if (current && current._position >= event.globalPosition) return current;
    const next = fn(current);
    if (next === null) return current;
    const doc = { ...next, _id: id, _position: event.globalPosition } as T;
    this.cache(collection).set(id, doc);
    // Written again after a removal in the same unit: the write wins (commit deletes after it puts).
    this.deleted.get(collection)?.delete(id);
    let d = this.dirty.get(collection);
    if (!d) this.dirty.set(collection, (d = new Set()));
    d.add(id);
    return doc;
  }

  remove(collection: string, id: string): void {
    let t = this.touchedIds.get(collection);
    if (!t) this.touchedIds.set(collection, (t = new Set()));
    t.add(id);
    this.cache(collection).set(id, null);
    this.dirty.get(collection)?.delete(id);
    let d = this.deleted.get(collection);
    if (!d) this.deleted.set(collection, (d = new Set()));
    d.add(id);
  }

  /** The current documents of `ids` as this unit sees them. */
  current(collection: string, ids: string[]): ReadDoc[] {
    const c = this.cache(collection);
    return ids.map((id) => c.get(id)).filter((d): d is ReadDoc => d != null);
  }

  /** The documents written by this unit, by collection. */
  changes(collection: string): ReadDoc[] {
    const ids = this.dirty.get(collection);
    if (!ids) return [];
    const c = this.cache(collection);
    return [...ids].map((id) => c.get(id)).filter((d): d is ReadDoc => d != null);
  }

  /**
   * Writes the changes. `fresh`: the collections have one writer that has folded every document
   * itself (a rebuild into a new version), so plain bulk upserts replace the position-guarded ones.
   */
  async commit(opts: { fresh?: boolean } = {}): Promise<void> {
    await Promise.all(
      [...this.dirty.keys()].map((collection) =>
        opts.fresh
          ? this.store.collection(collection).replaceMany(this.changes(collection))
          : this.store.collection(collection).putMany(this.changes(collection), this.fetched.get(collection)),
      ),
    );
    await Promise.all(
      [...this.deleted.entries()].map(([collection, ids]) => this.store.collection(collection).deleteMany([...ids])),
    );
  }
}
