import { LRUCache } from 'lru-cache';

/**
 * Cache-aside store for query results. Values are JSON-serialisable.
 *
 * @example
 * const hit = await cache.get<Request>(`request:${id}`) ?? await load(id);
 */
export interface Cache {
  readonly name: string;
  get<T>(key: string): Promise<T | undefined>;
  set(key: string, value: unknown, ttlMs: number): Promise<void>;
  delete(keys: string[]): Promise<void>;
  close(): Promise<void>;
}

export class MemoryCache implements Cache {
  readonly name = 'embedded (in-process LRU)';
  private readonly lru = new LRUCache<string, { v: string }>({ max: 10_000 });
  async get<T>(key: string) {
    const hit = this.lru.get(key);
    return hit ? (JSON.parse(hit.v) as T) : undefined;
  }
  async set(key: string, value: unknown, ttlMs: number) {
    this.lru.set(key, { v: JSON.stringify(value) }, { ttl: ttlMs });
  }
  async delete(keys: string[]) {
    for (const k of keys) this.lru.delete(k);
  }
  async close() {}
}
