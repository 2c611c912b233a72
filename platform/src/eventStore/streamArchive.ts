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
