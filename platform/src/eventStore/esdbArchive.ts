import { FORWARDS, START, type EventStoreDBClient, type ResolvedEvent } from '@eventstore/db-client';
import type { StoredEvent } from '@settle/domain';
import { archiveConflict, type ArchiveCandidateQuery, type StreamArchive } from './archive.js';
import { drain, toStoredRaw, type EsdbEventStore } from './esdbEventStore.js';

/**
 * Archiving on EventStoreDB: `$tb` (truncate-before) stream metadata hides a stream's events
 * before the tombstone from stream reads at once; the server deletes them at its next scavenge.
 * Until then `$all` still carries them (a rebuild from the start still reads them, and then the
 * tombstone: the projections end in the same state), and an import can make them readable again
 * by lifting `$tb`. After a scavenge they exist only in the export file, and EventStoreDB cannot
 * write events back at their original positions: such an import is refused.
 *
 * Not tested against a server here (none runs on the machines this project is built on).
 */
export class EsdbArchive implements StreamArchive {
  readonly kind = 'truncate-before';

  constructor(
    private readonly store: EsdbEventStore,
    private readonly client: EventStoreDBClient,
  ) {}

  /**
   * `$all` has no per-stream aggregate: one pass over the request streams' events, keeping one
   * small summary per stream (not the events).
   */
  async *candidates(query: ArchiveCandidateQuery): AsyncIterable<string> {
    const summary = new Map<string, { last: number; holding: boolean }>();
    const before = query.lastEventBefore.getTime();
    let after = 0;
    for (;;) {
      const page = await this.store.readAll({ after, limit: query.pageSize ?? 1000, streamPrefixes: [query.prefix] });
      for (const e of page) {
        const s = summary.get(e.streamId) ?? { last: 0, holding: false };
        s.last = Math.max(s.last, Date.parse(e.occurredAt));
        s.holding ||= e.type === query.orHolding;
        summary.set(e.streamId, s);
      }
      if (page.length === 0) break;
      after = page[page.length - 1]!.globalPosition;
    }
    for (const [streamId, s] of summary) if (s.last < before || s.holding) yield streamId;
  }

  async readRaw(streamId: string): Promise<StoredEvent[]> {
    const events: StoredEvent[] = [];
    await drain(this.client.readStream(streamId, { direction: FORWARDS, fromRevision: START }), (r: ResolvedEvent) => {
      if (r.event && !r.event.type.startsWith('$')) events.push(toStoredRaw(r.event, r.commitPosition));
      return true;
    });
    return events;
  }

  async truncate(streamId: string, keepFrom: number, expectedIds: string[]): Promise<number> {
    const before = (await this.readRaw(streamId)).filter((e) => e.streamPosition < keepFrom);
    const expected = new Set(expectedIds);
    if (before.length !== expected.size || before.some((e) => !expected.has(e.id)))
      throw archiveConflict(
        `${streamId}: the events before position ${keepFrom} are not the ${expected.size} exported ones (found ${before.length}); nothing truncated`,
      );
    const { metadata } = await this.client.getStreamMetadata(streamId);
    await this.client.setStreamMetadata(streamId, { ...metadata, truncateBefore: keepFrom });
    return before.length;
  }

  readArchived(): Promise<undefined> {
    return Promise.resolve(undefined);
  }

  async restore(events: StoredEvent[]): Promise<{ restored: number; present: number }> {
    if (events.length === 0) return { restored: 0, present: 0 };
    const streamId = events[0]!.streamId;
    const visible = new Set((await this.readRaw(streamId)).map((e) => e.id));
    const hidden = events.filter((e) => !visible.has(e.id));
    if (hidden.length === 0) return { restored: 0, present: events.length };
    const { metadata } = await this.client.getStreamMetadata(streamId);
    const rest = { ...metadata };
    delete rest.truncateBefore;
    await this.client.setStreamMetadata(streamId, rest);
    const after = new Map((await this.readRaw(streamId)).map((e) => [e.id, e]));
    const lost = hidden.filter((e) => after.get(e.id)?.streamPosition !== e.streamPosition);
    if (lost.length > 0)
      throw archiveConflict(
        `cannot import ${streamId}: EventStoreDB no longer holds ${lost.length} of its archived events (scavenged), ` +
          'and it cannot write events back at their original positions',
      );
    return { restored: hidden.length, present: events.length - hidden.length };
  }
}
