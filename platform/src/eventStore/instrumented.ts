import type { Metrics } from '../metrics.js';
import type { EventStore } from './port.js';

/** Counts appended events by type and times appends (group-commit wait included). */
export function instrumentEventStore<S extends EventStore>(store: S, metrics: Metrics): S {
  const append: EventStore['append'] = async (streamId, events, opts) => {
    const end = metrics.appendDuration.startTimer();
    try {
      const result = await store.append(streamId, events, opts);
      if (!result.duplicate) for (const e of events) metrics.eventsAppended.inc({ type: e.type });
      return result;
    } finally {
      end();
    }
  };
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'append') return append;
      const value = Reflect.get(target, prop, receiver) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}
