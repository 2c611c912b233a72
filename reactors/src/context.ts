import type { StoredEvent } from '@settle/domain';
import { runWithContext } from '@settle/platform';

/** Runs a reaction in the triggering event's context: same correlation id, caused by that event. */
export const inReactionTo = <T>(event: StoredEvent, actor: string, fn: () => Promise<T>): Promise<T> =>
  runWithContext(
    {
      correlationId: event.metadata.correlationId,
      causationId: event.id,
      actor,
      ...(event.metadata.traceparent ? { traceparent: event.metadata.traceparent } : {}),
    },
    fn,
  );
