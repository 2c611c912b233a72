import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { EventMetadata, StoredEvent } from '@settle/domain';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERR_ARCHIVE_CONFLICT, ERR_ARCHIVE_FILE_INVALID, isTruncated } from '../eventStore/archive.js';
import { readArchiveFile, writeArchiveFile } from '../eventStore/archiveFile.js';
import type { EventStore, NewEvent } from '../eventStore/port.js';
import { SqlArchive } from '../eventStore/sqlArchive.js';
import type { SqlEventStore } from '../eventStore/sqlEventStore.js';
import { readStreamWithArchive, withArchivedEvents } from '../eventStore/streamArchive.js';

const meta: EventMetadata = { correlationId: 'c', causationId: 'c', actor: 'test' };
const ev = (type: string, data: unknown = {}): NewEvent => ({ id: randomUUID(), type, data, metadata: meta });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what: string, fn: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/**
 * Archiving on a SQL event store (PGlite or PostgreSQL): the move to the archive table, the
 * file round trip, import, and log readers across a truncation. `open` returns a store on a
 * fresh database; `openAnother` (optional) a second store on the same one, as another process.
 */
export function describeSqlArchive(name: string, open: () => Promise<SqlEventStore>): void {
  describe(`SQL archive: ${name}`, () => {
    let store: SqlEventStore;
    let archive: SqlArchive;
    let dir: string;

    beforeAll(async () => {
      store = await open();
      archive = await SqlArchive.create(store.client);
      dir = await mkdtemp(join(tmpdir(), 'settle-archive-'));
    });
    afterAll(async () => {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    });

    /** A request-like stream: three events, the last the tombstone. */
    async function streamOf(id = randomUUID()): Promise<{ streamId: string; events: StoredEvent[] }> {
      const streamId = `request-${id}`;
      await store.append(streamId, [ev('RequestRegistered', { requestId: id }), ev('RequestCancelled')], {
        expectedRevision: 'no_stream',
      });
      await store.append(streamId, [ev('RequestArchived', { archivedAt: new Date().toISOString() })], {
        expectedRevision: 1,
      });
      return { streamId, events: await archive.readRaw(streamId) };
    }

    it('moves the events before the tombstone to the archive table, in one go, and only the exported ones', async () => {
      const { streamId, events } = await streamOf();
      const file = await writeArchiveFile(dir, events);
      expect(await readArchiveFile(file)).toEqual(events);
      // Lines are the stored envelopes, positions and metadata included.
      const lines = gunzipSync(await readFile(file))
        .toString()
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as StoredEvent);
      expect(lines.map((l) => [l.id, l.streamPosition, l.globalPosition, l.metadata.actor])).toEqual(
        events.map((e) => [e.id, e.streamPosition, e.globalPosition, 'test']),
      );

      // Not the exported ids: refused, nothing moved.
      await expect(archive.truncate(streamId, 2, [events[0]!.id])).rejects.toMatchObject({
        code: ERR_ARCHIVE_CONFLICT,
      });
      expect(await store.readStream(streamId)).toHaveLength(3);

      expect(await archive.truncate(streamId, 2, [events[0]!.id, events[1]!.id])).toBe(2);
      const left = await store.readStream(streamId);
      expect(left.map((e) => e.type)).toEqual(['RequestArchived']);
      expect(isTruncated(left)).toBe(true);
      expect((await archive.readArchived(streamId)).map((e) => e.id)).toEqual([events[0]!.id, events[1]!.id]);
      const whole = await readStreamWithArchive(store, streamId, dir);
      expect(whole.archivedFrom).toBe('archive table');
      expect(whole.events.map((e) => e.id)).toEqual(events.map((e) => e.id));
      // The stream's revision stays: its old positions can never be taken again.
      await expect(
        store.append(streamId, [ev('RequestRegistered')], { expectedRevision: 'no_stream' }),
      ).rejects.toThrow();
    });

    it('finds candidates page by page, leaving truncated streams and recent ones out', async () => {
      const done = await streamOf();
      await archive.truncate(
        done.streamId,
        2,
        done.events.slice(0, 2).map((e) => e.id),
      );
      const interrupted = await streamOf();
      const recent = `request-${randomUUID()}`;
      await store.append(recent, [ev('RequestRegistered')], { expectedRevision: 'no_stream' });
      await store.append(`preferences-${randomUUID()}`, [ev('PreferencesRegistered')], {
        expectedRevision: 'no_stream',
      });
      const found: string[] = [];
      for await (const id of archive.candidates({
        prefix: 'request-',
        lastEventBefore: new Date(Date.now() - 3_600_000),
        orHolding: 'RequestArchived',
        pageSize: 1,
      }))
        found.push(id);
      expect(found).toContain(interrupted.streamId);
      expect(found).not.toContain(done.streamId);
      expect(found).not.toContain(recent);
      expect(found.every((id) => id.startsWith('request-'))).toBe(true);
      const all: string[] = [];
      for await (const id of archive.candidates({
        prefix: 'request-',
        lastEventBefore: new Date(Date.now() + 60_000),
        orHolding: 'RequestArchived',
        pageSize: 2,
      }))
        all.push(id);
      expect(all).toContain(recent);
      expect(new Set(all).size).toBe(all.length);
    });

    it('imports an export back with its original ids and positions, idempotently', async () => {
      const { streamId, events } = await streamOf();
      const file = await writeArchiveFile(dir, events);
      await archive.truncate(
        streamId,
        2,
        events.slice(0, 2).map((e) => e.id),
      );
      const exported = await readArchiveFile(file);
      expect(await archive.restore(exported)).toEqual({ restored: 2, present: 1 });
      const back = await store.readStream(streamId);
      expect(back.map((e) => [e.id, e.streamPosition, e.globalPosition])).toEqual(
        events.map((e) => [e.id, e.streamPosition, e.globalPosition]),
      );
      expect(await archive.readArchived(streamId)).toEqual([]);
      expect(await archive.restore(exported)).toEqual({ restored: 0, present: 3 });
      // Appends go on past the restored positions.
      const next = await store.append(streamId, [ev('MerchantNotified')], { expectedRevision: 2 });
      expect(next.position).toBeGreaterThan(Math.max(...events.map((e) => e.globalPosition)));
    });

    it('refuses an import whose positions hold other events, and a damaged file', async () => {
      const { events } = await streamOf();
      const forged = events.map((e) => ({ ...e, id: randomUUID() }));
      await expect(archive.restore(forged)).rejects.toMatchObject({ code: ERR_ARCHIVE_CONFLICT });
      const file = await writeArchiveFile(dir, events);
      const bytes = await readFile(file);
      await writeFile(file, bytes.subarray(0, bytes.length - 9));
      await expect(readArchiveFile(file)).rejects.toMatchObject({ code: ERR_ARCHIVE_FILE_INVALID });
    });

    it('withArchivedEvents puts archived events back into readAll, in global order, page by page', async () => {
      const { streamId, events } = await streamOf();
      await archive.truncate(
        streamId,
        2,
        events.slice(0, 2).map((e) => e.id),
      );
      const withArchived = await withArchivedEvents(store);
      const read = async (s: EventStore, prefixes?: string[]) => {
        const out: StoredEvent[] = [];
        for (let after = 0; ;) {
          const page = await s.readAll({ after, limit: 2, ...(prefixes ? { streamPrefixes: prefixes } : {}) });
          if (page.length === 0) return out;
          out.push(...page);
          after = page[page.length - 1]!.globalPosition;
        }
      };
      const all = await read(withArchived, ['request-']);
      const positions = all.map((e) => e.globalPosition);
      expect(positions).toEqual([...new Set(positions)].sort((a, b) => a - b));
      expect(all.filter((e) => e.streamId === streamId).map((e) => e.id)).toEqual(events.map((e) => e.id));
      const plain = await read(store, ['request-']);
      expect(plain.filter((e) => e.streamId === streamId).map((e) => e.id)).toEqual([events[2]!.id]);
      const archivedRows = (
        await Promise.all([...new Set(all.map((e) => e.streamId))].map((id) => archive.readArchived(id)))
      ).flat();
      expect(all).toHaveLength(plain.length + archivedRows.length);
    });

    it('log readers are not confused by rows leaving the log: nothing skipped, nothing stalled', async () => {
      const a = await streamOf();
      const seen: StoredEvent[] = [];
      let gate: (() => void) | undefined;
      const sub = store.subscribe(
        async (batch) => {
          seen.push(...batch);
          // Hold the reader after its first batch (all of a), so b is truncated ahead of it.
          if (gate === undefined) await new Promise<void>((r) => (gate = r));
        },
        // From just before a, not from headPosition(): on a shared server another database's
        // long transaction holds the visible head back, and the reader would start earlier.
        { after: a.events[0]!.globalPosition - 1, batchSize: 3 },
      );
      await waitFor('the reader to hold', () => gate !== undefined);
      const b = await streamOf();
      await archive.truncate(
        b.streamId,
        2,
        b.events.slice(0, 2).map((e) => e.id),
      );
      gate!();
      // a's rows leave after the reader passed them.
      await archive.truncate(
        a.streamId,
        2,
        a.events.slice(0, 2).map((e) => e.id),
      );
      const after = await store.append(`request-${randomUUID()}`, [ev('RequestRegistered')], {
        expectedRevision: 'no_stream',
      });
      await waitFor('the reader to reach the append after the truncations', () =>
        seen.some((e) => e.globalPosition === after.position),
      );
      await sub.stop();
      const ids = seen.map((e) => e.id);
      // Every event of a (read before its truncation), only b's tombstone, then the later append.
      expect(ids).toEqual([...a.events.map((e) => e.id), b.events[2]!.id, ids[4]]);
      expect(ids).toContain(b.events[2]!.id);
      expect(ids).not.toContain(b.events[0]!.id);
      expect(ids).not.toContain(b.events[1]!.id);
      for (let i = 1; i < seen.length; i++)
        expect(seen[i]!.globalPosition).toBeGreaterThan(seen[i - 1]!.globalPosition);
      expect(await store.headPosition()).toBeGreaterThanOrEqual(after.position);
    });
  });
}
