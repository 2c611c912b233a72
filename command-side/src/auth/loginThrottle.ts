/** The few ioredis calls the throttles need (an `ioredis` instance fits). */
export interface RedisLike {
  multi(): RedisPipeline;
  decr(key: string): Promise<number>;
}
interface RedisPipeline {
  incr(key: string): RedisPipeline;
  pexpire(key: string, ms: number, mode: 'NX'): RedisPipeline;
  pttl(key: string): RedisPipeline;
  exec(): Promise<[Error | null, unknown][] | null>;
}

/** A fixed-window counter shared by replicas when it lives in Redis. */
export interface CounterStore {
  /** Adds one; returns the count in the current window and the ms until it ends. */
  hit(key: string, windowMs: number): Promise<{ count: number; ttlMs: number }>;
  /** Takes one back (an attempt that turned out to be a success). */
  refund(key: string): Promise<void>;
}

export class MemoryCounterStore implements CounterStore {
  private readonly windows = new Map<string, { count: number; endsAt: number }>();
  constructor(private readonly now: () => number = Date.now) {}

  async hit(key: string, windowMs: number) {
    const now = this.now();
    let w = this.windows.get(key);
    if (!w || w.endsAt <= now) {
      if (this.windows.size > 100_000) this.sweep(now);
      w = { count: 0, endsAt: now + windowMs };
      this.windows.set(key, w);
    }
    w.count++;
    return { count: w.count, ttlMs: w.endsAt - now };
  }
  async refund(key: string) {
    const w = this.windows.get(key);
    if (w && w.count > 0) w.count--;
  }
  private sweep(now: number) {
    for (const [k, w] of this.windows) if (w.endsAt <= now) this.windows.delete(k);
  }
}

export class RedisCounterStore implements CounterStore {
  constructor(
    private readonly redis: RedisLike,
    private readonly prefix = 'settle:login:',
  ) {}

  async hit(key: string, windowMs: number) {
    const k = this.prefix + key;
    const results = await this.redis.multi().incr(k).pexpire(k, windowMs, 'NX').pttl(k).exec();
    const count = Number(results?.[0]?.[1] ?? 1);
    const ttl = Number(results?.[2]?.[1] ?? windowMs);
    return { count, ttlMs: ttl > 0 ? ttl : windowMs };
  }
  async refund(key: string) {
    await this.redis.decr(this.prefix + key);
  }
}

export interface LoginThrottleOptions {
  /** Failed attempts allowed per window, per client_id and per IP. */
  maxFailures: number;
  windowMs?: number;
  store?: CounterStore;
}

/**
 * Throttles failed logins on the token endpoint per client_id and per IP. Each attempt takes a
 * slot before the secret is checked — so a concurrent burst cannot slip past while the first
 * attempts are still hashing — and a successful one gives its slots back, so only failures count.
 */
export class LoginThrottle {
  private readonly windowMs: number;
  private readonly store: CounterStore;

  constructor(private readonly opts: LoginThrottleOptions) {
    this.windowMs = opts.windowMs ?? 60_000;
    this.store = opts.store ?? new MemoryCounterStore();
  }

  /**
   * Takes a slot for each key; `retryAfterS` is set when any key is over the limit (the attempt
   * must then be refused without checking the secret).
   */
  async begin(keys: string[]): Promise<{ retryAfterS?: number; release(): Promise<void> }> {
    const hits = await Promise.all(keys.map((k) => this.store.hit(k, this.windowMs)));
    const release = async () => {
      await Promise.all(keys.map((k) => this.store.refund(k)));
    };
    const over = hits.filter((h) => h.count > this.opts.maxFailures);
    if (over.length === 0) return { release };
    return { retryAfterS: Math.max(1, ...over.map((h) => Math.ceil(h.ttlMs / 1000))), release };
  }
}
