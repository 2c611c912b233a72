import { upcast, type StoredEvent } from '@settle/domain';
import { SettleError } from '../errors.js';
import { ERR_ARCHIVE_UNSUPPORTED, isTruncated, type StreamArchive } from './archive.js';
import { archiveFilePath, readArchiveFile } from './archiveFile.js';
import { EsdbEventStore } from './esdbEventStore.js';
import type { EventStore } from './port.js';
import { SqlArchive } from './sqlArchive.js';
import { SqlEventStore } from './sqlEventStore.js';

/** The archive of an event store: the SQL archive table, or EventStoreDB `$tb` metadata. */
export async function streamArchiveOf(store: EventStore): Promise<StreamArchive> {
  if (store instanceof SqlEventStore) return SqlArchive.create(store.client);
  if (store instanceof EsdbEventStore) return store.streamArchive();
  throw new SettleError(ERR_ARCHIVE_UNSUPPORTED, `the event store ${store.name} cannot archive streams`, 500);
}

export interface StreamWithArchive {
  events: StoredEvent[];
  /** Where the archived part came from, when the stream was truncated. */
  archivedFrom?: 'archive table' | 'archive file';
}

/**
 * A stream's whole history: its events in the log and, when it was archived, the truncated ones
 * from the store's archive table or, failing that (EventStoreDB), from `<archiveDir>/<streamId>.jsonl.gz`.
 * Events come upcast, as `readStream` gives them.
 */
export async function readStreamWithArchive(
  store: EventStore,
  streamId: string,
  archiveDir: string,
): Promise<StreamWithArchive> {
  const live = await store.readStream(streamId);
  if (!isTruncated(live)) return { events: live };
  const keepFrom = live[0]!.streamPosition;
  const fromTable = await (await streamArchiveOf(store)).readArchived(streamId);
  let archived: StoredEvent[];
  let archivedFrom: StreamWithArchive['archivedFrom'];
  if (fromTable && fromTable.length > 0) {
    archived = fromTable;
    archivedFrom = 'archive table';
  } else {
    archived = (await readArchiveFile(archiveFilePath(archiveDir, streamId))).map((e) => upcast(e));
    archivedFrom = 'archive file';
  }
  return { events: [...archived.filter((e) => e.streamPosition < keepFrom), ...live], archivedFrom };
}

/**
 * The event store with its archived events put back into `readAll`, in global order: what a
 * rebuild reads to include archived streams (`settle replay --projection … --include-archived`).
 * Only `readAll` changes; appends, stream reads and subscriptions are the store's own. Archived
 * rows are old and committed, so merging them never shows a gap that later fills in. PostgreSQL
 * and PGlite only: EventStoreDB's `$all` keeps truncated events until a scavenge, and then they
 * are gone.
 */
export async function withArchivedEvents(store: EventStore): Promise<EventStore> {
  const archive = await streamArchiveOf(store);
  if (!(archive instanceof SqlArchive))
    throw new SettleError(
      ERR_ARCHIVE_UNSUPPORTED,
      `${store.name}: reading archived events back into the log needs the PostgreSQL/PGlite archive table`,
      400,
    );
  const readAll: EventStore['readAll'] = async (opts) => {
    const live = await store.readAll(opts);
    // A full page ends at its last position: archived events past it belong to a later page. A
    // short one ends at the visible head: past it, live events may still become visible, and an
    // archived event handed out there would move the reader beyond them.
    const upTo = live.length === opts.limit ? live[live.length - 1]!.globalPosition : await store.headPosition();
    const archived = await archive.readArchivedRange({
      after: opts.after,
      limit: opts.limit,
      upTo,
      ...(opts.streamPrefixes ? { streamPrefixes: opts.streamPrefixes } : {}),
    });
    if (archived.length === 0) return live;
    return [...live, ...archived].sort((a, b) => a.globalPosition - b.globalPosition).slice(0, opts.limit);
  };
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'readAll') return readAll;
      const value = Reflect.get(target, prop, receiver) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}
