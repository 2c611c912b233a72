import type { StoredEvent } from '@settle/domain';
import type { Subscription, SubscriptionHandler } from './port.js';

export interface PollingSubscriptionOptions {
  after: number;
  batchSize: number;
  /** Longest wait between reads when nothing signals new events. */
  idleMs: number;
  read(after: number, limit: number): Promise<StoredEvent[]>;
  /** Registers a wake-up callback (local appends, LISTEN/NOTIFY); returns an unregister function. */
  onWake(listener: () => void): () => void;
  onError?(error: unknown): void;
}

/**
 * Catch-up-then-live subscription over any store that can read its global log from a
 * position. Batches are handed to the handler one at a time, in order; if the handler
 * throws, the subscription stops and `failed` rejects (the caller decides to restart,
 * park or crash — never to skip).
 */
export function pollingSubscription(handler: SubscriptionHandler, opts: PollingSubscriptionOptions): Subscription {
  let stopped = false;
  let position = opts.after;
  let wake: (() => void) | undefined;
  let woken = false;
  const unregister = opts.onWake(() => {
    woken = true;
    wake?.();
  });
  let rejectFailed!: (e: unknown) => void;
  const failed = new Promise<never>((_, reject) => {
    rejectFailed = reject;
  });
  failed.catch(() => undefined);

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      if (woken || stopped) return resolve();
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        wake = undefined;
        resolve();
      }
      wake = done;
    });

  let cancelBackOff: (() => void) | undefined;
  const backOff = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        cancelBackOff = undefined;
        resolve();
      }
      cancelBackOff = done;
    });

  const loop = (async () => {
    let transientErrors = 0;
    while (!stopped) {
      woken = false;
      let batch: StoredEvent[];
      try {
        batch = await opts.read(position, opts.batchSize);
        transientErrors = 0;
      } catch (error) {
        // The store may be briefly unreachable: back off and read again from the same position.
        // Appends do not cut the back-off short (they would turn it into a busy loop); stop does.
        opts.onError?.(error);
        transientErrors++;
        await backOff(Math.min(100 * 2 ** transientErrors, 5000));
        continue;
      }
      if (stopped) break;
      if (batch.length === 0) {
        await sleep(opts.idleMs);
        continue;
      }
      try {
        await handler(batch);
      } catch (error) {
        stopped = true;
        unregister();
        rejectFailed(error);
        break;
      }
      position = batch[batch.length - 1]!.globalPosition;
    }
  })();

  return {
    failed,
    async stop() {
      stopped = true;
      unregister();
      wake?.();
      cancelBackOff?.();
      await loop;
    },
  };
}
