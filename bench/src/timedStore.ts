import type { EventStore } from '@settle/platform';
import { now, type Latencies } from './measure.js';

/**
 * The same event store, but every batch a subscriber handles is timed into `latencies`: how the
 * projector's and the forwarder's per-batch latencies are measured without touching their code.
 */
export function timedStore(store: EventStore, latencies: Latencies): EventStore {
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'subscribe')
        return (handler: Parameters<EventStore['subscribe']>[0], opts: Parameters<EventStore['subscribe']>[1]) =>
          target.subscribe(async (batch) => {
            const t = now();
            await handler(batch);
            latencies.add(now() - t);
          }, opts);
      const value = Reflect.get(target, prop, receiver) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}
