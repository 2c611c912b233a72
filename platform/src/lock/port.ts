/**
 * Mutual exclusion across replicas (Redis Redlock in production, in-process otherwise).
 * `tryWithLock` runs `fn` only if the lock was free, and reports whether it ran.
 *
 * @example
 * await locks.tryWithLock(`dispatch:${requestId}`, 30_000, () => dispatch(requestId));
 */
export interface LockManager {
  readonly name: string;
  tryWithLock<T>(key: string, ttlMs: number, fn: () => Promise<T>): Promise<{ acquired: true; value: T } | { acquired: false }>;
  close(): Promise<void>;
}

export class MemoryLockManager implements LockManager {
  readonly name = 'embedded (in-process)';
  private readonly held = new Map<string, number>();
  async tryWithLock<T>(key: string, ttlMs: number, fn: () => Promise<T>) {
    const now = Date.now();
    const until = this.held.get(key);
    if (until !== undefined && until > now) return { acquired: false as const };
    this.held.set(key, now + ttlMs);
    try {
      return { acquired: true as const, value: await fn() };
    } finally {
      this.held.delete(key);
    }
  }
  async close() {}
}
