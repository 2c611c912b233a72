/**
 * Mutual exclusion across replicas (Redis Redlock in production, in-process otherwise).
 * `tryWithLock` runs `fn` only if the lock was free, and reports whether it ran.
 *
 * @example
 * await locks.tryWithLock(`dispatch:${requestId}`, 30_000, () => dispatch(requestId));
 */
export interface LockManager {
  readonly name: string;
  tryWithLock<T>(
    key: string,
    ttlMs: number,
    fn: () => Promise<T>,
  ): Promise<{ acquired: true; value: T } | { acquired: false }>;
  close(): Promise<void>;
}

export class MemoryLockManager implements LockManager {
  readonly name = 'embedded (in-process)';
  /** A hold does not lapse while its fn runs (one process: it cannot be lost to a crash). */
  private readonly held = new Map<string, symbol>();
  async tryWithLock<T>(key: string, _ttlMs: number, fn: () => Promise<T>) {
    if (this.held.has(key)) return { acquired: false as const };
    const token = Symbol(key);
    this.held.set(key, token);
    try {
      return { acquired: true as const, value: await fn() };
    } finally {
      if (this.held.get(key) === token) this.held.delete(key);
    }
  }
  async close() {}
}
