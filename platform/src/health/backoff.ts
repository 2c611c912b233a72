import { ExponentialBackoff, type IBackoff } from 'cockatiel';

/** Delays between retries of a loop that waits for a part to come back: exponential, jittered. */
export interface RetryBackoff {
  /** The delay before the next attempt (grows with each call until `reset`). */
  next(): number;
  /** The part answered: start again from the initial delay. */
  reset(): void;
}

/**
 * cockatiel's exponential backoff with decorrelated jitter, as a small stateful helper for restart
 * loops (projector, forwarder) that are not a single call to wrap in a policy.
 *
 * @example
 * const backoff = createRetryBackoff(500, 30_000);
 * setTimeout(restart, backoff.next()); // ... and backoff.reset() after a success
 */
export function createRetryBackoff(initialDelayMs: number, maxDelayMs: number): RetryBackoff {
  const base = new ExponentialBackoff({ initialDelay: initialDelayMs, maxDelay: maxDelayMs });
  let current: IBackoff<unknown> | undefined;
  return {
    next() {
      current = current ? current.next(undefined) : base.next();
      return Math.round(current.duration);
    },
    reset() {
      current = undefined;
    },
  };
}
