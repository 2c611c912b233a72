/** Times a projector or consumer may die (or hang) on one event before it parks the event's stream. */
export const CRASH_LOOP_ATTEMPTS = 3;

/**
 * What a projector (or an embedded-bus consumer) was handling when it last wrote down an attempt: a batch of events after
 * `position`, or the single event at `position` (careful mode, after a batch that never finished).
 */
export interface AttemptMarker {
  kind: 'batch' | 'event';
  position: number;
  attempts: number;
}

/**
 * Kept in one durable named checkpoint of the event store (durable on every store, even when the
 * read store is in memory): position × 1000 + 100 for a single event + attempts (at most 99).
 */
export function encodeMarker(marker: AttemptMarker): number {
  return marker.position * 1000 + (marker.kind === 'event' ? 100 : 0) + Math.min(Math.max(marker.attempts, 1), 99);
}

export function decodeMarker(value: number): AttemptMarker | undefined {
  if (!Number.isSafeInteger(value) || value <= 0) return undefined;
  const low = value % 1000;
  return { position: Math.floor(value / 1000), kind: low >= 100 ? 'event' : 'batch', attempts: low % 100 };
}

/**
 * The attempt at `position` that is about to start (one at a time, after an unclean stop), given
 * the marker the last run left behind: one more than it counted if it died on that very event
 * or message, else the first. Past `limit`, the caller gives up on it (parks or dead-letters it
 * unhandled) instead.
 */
export function nextAttempt(leftBehind: AttemptMarker | undefined, position: number): number {
  return leftBehind?.kind === 'event' && leftBehind.position === position ? leftBehind.attempts + 1 : 1;
}
