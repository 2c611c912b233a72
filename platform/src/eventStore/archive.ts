import type { StoredEvent } from '@settle/domain';
import { SettleError } from '../errors.js';

export const ERR_ARCHIVE_CONFLICT = 'SETTLE_ERR_ARCHIVE_CONFLICT';
export const ERR_ARCHIVE_FILE_INVALID = 'SETTLE_ERR_ARCHIVE_FILE_INVALID';
export const ERR_ARCHIVE_UNSUPPORTED = 'SETTLE_ERR_ARCHIVE_UNSUPPORTED';

export interface ArchiveCandidateQuery {
  /** Stream id prefix, e.g. `request-`. */
  prefix: string;
  /** Streams whose last event occurred before this instant… */
  lastEventBefore: Date;
  /** …or whose stream holds this event type (an archive interrupted before truncation). */
  orHolding: string;
  /** Streams read per round trip. */
  pageSize?: number;
}

/**
 * Archiving on an event store: move a stream's old events out of the live log while keeping
 * them recoverable. A truncated stream keeps its events from `keepFrom` on (the `RequestArchived`
 * tombstone), so every reader of the log (projectors, reactors, rebuilds) still sees the
 * archival, whenever it gets there.
 *
 * @example
 * const archive = streamArchiveOf(store);
 * for await (const streamId of archive.candidates({ prefix: 'request-', lastEventBefore, orHolding: 'RequestArchived' })) …
 * await archive.truncate('request-1', 5, idsOfEventsZeroToFour);
 */
export interface StreamArchive {
  /** How truncated events are kept: `table` (SQL: readable with `readArchived`) or `truncate-before` (EventStoreDB `$tb`). */
  readonly kind: 'table' | 'truncate-before';
  /** Streams that may be due for archiving, streamed in pages (never the whole log in memory). Truncated streams are left out where the store can tell. */
  candidates(query: ArchiveCandidateQuery): AsyncIterable<string>;
  /** The stream's events exactly as stored (no upcasting): what an export file holds. */
  readRaw(streamId: string): Promise<StoredEvent[]>;
  /**
   * Removes the events before stream position `keepFrom` from the live log, atomically and only
   * if they are exactly `expectedIds` (what was exported and verified). Returns how many moved.
   */
  truncate(streamId: string, keepFrom: number, expectedIds: string[]): Promise<number>;
  /** Truncated events still held by the store (SQL archive table), upcast; undefined when the store cannot read them. */
  readArchived(streamId: string): Promise<StoredEvent[] | undefined>;
  /** Puts exported events back with their original ids and positions; events already in the log are skipped. */
  restore(events: StoredEvent[]): Promise<{ restored: number; present: number }>;
}

/** True when the stream's first events were archived (what is left starts past position 0). */
export const isTruncated = (events: StoredEvent[]): boolean => events.length > 0 && events[0]!.streamPosition > 0;

export function archiveConflict(message: string): SettleError {
  return new SettleError(ERR_ARCHIVE_CONFLICT, message, 409);
}

/** Checks that events read from a file form one stream's consecutive run, ordered by stream position. */
export function checkArchivedRun(events: StoredEvent[]): void {
  if (events.length === 0) throw new SettleError(ERR_ARCHIVE_FILE_INVALID, 'the archive holds no events', 422);
  const streamId = events[0]!.streamId;
  events.forEach((e, i) => {
    if (e.streamId !== streamId)
      throw new SettleError(
        ERR_ARCHIVE_FILE_INVALID,
        `event ${e.id} belongs to ${e.streamId}, not ${streamId}: an archive holds one stream`,
        422,
      );
    if (i > 0 && e.streamPosition !== events[i - 1]!.streamPosition + 1)
      throw new SettleError(
        ERR_ARCHIVE_FILE_INVALID,
        `stream positions must be consecutive: ${events[i - 1]!.streamPosition} is followed by ${e.streamPosition}`,
        422,
      );
    if (i > 0 && e.globalPosition <= events[i - 1]!.globalPosition)
      throw new SettleError(ERR_ARCHIVE_FILE_INVALID, `global positions must grow: event ${e.id}`, 422);
  });
}
