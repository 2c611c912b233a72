import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { EventStoreDBClient } from '@eventstore/db-client';
import type { StoredEvent } from '@settle/domain';
import { describe, expect, it } from 'vitest';
import { ERR_ARCHIVE_CONFLICT } from './archive.js';
import { EsdbArchive } from './esdbArchive.js';
import type { EsdbEventStore } from './esdbEventStore.js';
import type { ReadAllOptions } from './port.js';

/**
 * EsdbArchive's own logic against a stand-in for the EventStoreDB client that applies `$tb` to
 * stream reads the way the server documents it. This is not EventStoreDB: the adapter has not run
 * against a server here (none runs on the machines this project is built on).
 */
interface Recorded {
  id: string;
  type: string;
  revision: bigint;
  streamId: string;
  created: Date;
  data: unknown;
  metadata: Record<string, unknown>;
  position: { commit: bigint; prepare: bigint };
}

function standIn(streamId: string, types: string[]) {
  const events: Recorded[] = types.map((type, i) => ({
    id: randomUUID(),
    type,
    revision: BigInt(i),
    streamId,
    created: new Date(Date.UTC(2026, 0, 1, 0, i)),
    data: { i },
    metadata: { correlationId: 'c', causationId: 'c', actor: 'test', settleVersion: 1 },
    position: { commit: BigInt(1000 + i * 100), prepare: BigInt(1000 + i * 100) },
  }));
  let metadata: Record<string, unknown> = { custom: 'kept' };
  const setCalls: Record<string, unknown>[] = [];
  const client = {
    readStream(id: string) {
      const read = Object.assign(new EventEmitter(), { cancel: () => Promise.resolve() });
      const tb = typeof metadata.truncateBefore === 'number' ? metadata.truncateBefore : 0;
      setImmediate(() => {
        if (id === streamId)
          for (const e of events)
            if (Number(e.revision) >= tb) read.emit('data', { event: e, commitPosition: e.position.commit });
        read.emit('end');
      });
      return read;
    },
    getStreamMetadata: () => Promise.resolve({ streamName: streamId, metadata: { ...metadata } }),
    setStreamMetadata: (_: string, next: Record<string, unknown>) => {
      setCalls.push(next);
      metadata = { ...next };
      return Promise.resolve({ success: true });
    },
  };
  return {
    client: client as unknown as EventStoreDBClient,
    events,
    setCalls,
    /** A scavenge: events hidden by `$tb` are gone for good. */
    scavenge() {
      const tb = typeof metadata.truncateBefore === 'number' ? metadata.truncateBefore : 0;
      events.splice(0, events.filter((e) => Number(e.revision) < tb).length);
    },
  };
}

const noStore = {} as EsdbEventStore;

describe('EsdbArchive (stand-in client, not a server)', () => {
  it('truncates with $tb at the tombstone, keeping the other metadata, only for the exported ids', async () => {
    const s = standIn('request-1', ['RequestRegistered', 'PaymentSettled', 'RequestArchived']);
    const archive = new EsdbArchive(noStore, s.client);
    const raw = await archive.readRaw('request-1');
    expect(raw.map((e) => [e.type, e.streamPosition, e.globalPosition, e.version])).toEqual([
      ['RequestRegistered', 0, 1000, 1],
      ['PaymentSettled', 1, 1100, 1],
      ['RequestArchived', 2, 1200, 1],
    ]);
    await expect(archive.truncate('request-1', 2, [raw[0]!.id])).rejects.toMatchObject({ code: ERR_ARCHIVE_CONFLICT });
    expect(s.setCalls).toEqual([]);
    expect(await archive.truncate('request-1', 2, [raw[0]!.id, raw[1]!.id])).toBe(2);
    expect(s.setCalls).toEqual([{ custom: 'kept', truncateBefore: 2 }]);
    expect((await archive.readRaw('request-1')).map((e) => e.type)).toEqual(['RequestArchived']);
    expect(await archive.readArchived()).toBeUndefined();
  });

  it('import lifts $tb and checks every archived event is readable again', async () => {
    const s = standIn('request-2', ['RequestRegistered', 'RequestCancelled', 'RequestArchived']);
    const archive = new EsdbArchive(noStore, s.client);
    const exported = await archive.readRaw('request-2');
    await archive.truncate('request-2', 2, [exported[0]!.id, exported[1]!.id]);
    expect(await archive.restore(exported)).toEqual({ restored: 2, present: 1 });
    expect(s.setCalls.at(-1)).toEqual({ custom: 'kept' });
    expect(await archive.restore(exported)).toEqual({ restored: 0, present: 3 });
  });

  it('refuses an import once the server has scavenged the events', async () => {
    const s = standIn('request-3', ['RequestRegistered', 'RequestCancelled', 'RequestArchived']);
    const archive = new EsdbArchive(noStore, s.client);
    const exported = await archive.readRaw('request-3');
    await archive.truncate('request-3', 2, [exported[0]!.id, exported[1]!.id]);
    s.scavenge();
    await expect(archive.restore(exported)).rejects.toMatchObject({
      code: ERR_ARCHIVE_CONFLICT,
      message: expect.stringMatching(/scavenged/) as unknown,
    });
  });

  it('finds candidates in one pass over the log, by last event time or a RequestArchived', async () => {
    const at = (m: number) => new Date(Date.UTC(2026, 0, 1, 0, m)).toISOString();
    const log: StoredEvent[] = [
      ['request-old', 'RequestRegistered', 1],
      ['request-new', 'RequestRegistered', 2],
      ['request-old', 'PaymentSettled', 3],
      ['request-new', 'PaymentSettled', 50],
      ['request-stuck', 'RequestArchived', 60],
    ].map(([streamId, type, minute], i) => ({
      id: randomUUID(),
      type: type as string,
      version: 1,
      streamId: streamId as string,
      streamPosition: 0,
      globalPosition: i + 1,
      occurredAt: at(minute as number),
      data: {},
      metadata: { correlationId: 'c', causationId: 'c', actor: 't' },
    }));
    const pages: ReadAllOptions[] = [];
    const store = {
      readAll: (opts: ReadAllOptions) => {
        pages.push(opts);
        return Promise.resolve(log.filter((e) => e.globalPosition > opts.after).slice(0, opts.limit));
      },
    } as unknown as EsdbEventStore;
    const archive = new EsdbArchive(store, standIn('x', []).client);
    const found: string[] = [];
    for await (const id of archive.candidates({
      prefix: 'request-',
      lastEventBefore: new Date(at(10)),
      orHolding: 'RequestArchived',
      pageSize: 2,
    }))
      found.push(id);
    expect(found.sort()).toEqual(['request-old', 'request-stuck']);
    expect(pages.map((p) => p.after)).toEqual([0, 2, 4, 5]);
    expect(pages.every((p) => p.streamPrefixes?.[0] === 'request-')).toBe(true);
  });
});
