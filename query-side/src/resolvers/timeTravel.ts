import { requestStreamId } from '@settle/domain';
import type { EventStore, ReadStreamOptions } from '@settle/platform';
import { applyRequestEvent, type RequestDoc } from '@settle/projections';
import { parsePosition } from '../consistency.js';
import { badUserInput } from '../errors.js';
import { parseInstant } from '../scalars.js';

/**
 * `asOf` → where to stop reading the stream. A time is inclusive to the millisecond shown in
 * the API: the store keeps microseconds, so `…00.123Z` reads up to `…00.123999Z`, and asking
 * for a request `asOf` one of its own `occurredAt` values includes that event.
 */
export function parseAsOf(asOf: string): ReadStreamOptions {
  if (/^\d+$/.test(asOf)) return { toPosition: parsePosition(asOf, 'asOf') };
  const instant = parseInstant(asOf);
  if (instant === null) throw badUserInput('asOf', 'asOf must be a global position (digits) or an ISO 8601 time');
  return { toTime: `${instant.slice(0, -1)}999Z` };
}

/** The request as it was at `asOf`, folded from its stream with the projection's own fold; null before it existed. */
export async function requestAsOf(eventStore: EventStore, id: string, asOf: string): Promise<RequestDoc | null> {
  const events = await eventStore.readStream(requestStreamId(id), parseAsOf(asOf));
  let doc: RequestDoc | null = null;
  for (const event of events) {
    const next = applyRequestEvent(doc, event);
    if (next) doc = { ...next, _position: event.globalPosition };
  }
  return doc;
}
