import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { StoredEvent } from '@settle/domain';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { decodeMarker, encodeMarker, type AttemptMarker } from '../attempts.js';
import { createPgliteClient } from '../eventStore/pgliteClient.js';
import { SqlEventStore } from '../eventStore/sqlEventStore.js';
import { newId } from '../ids.js';
import { silentLogger } from '../logger.js';
import { createMetrics } from '../metrics.js';
import { EventStoreBus } from './eventStoreBus.js';
import { BusParking } from './parking.js';

const meta = { correlationId: 'c', causationId: 'c', actor: 'test' };
const fast = { maxAttempts: 2, retryInitialDelayMs: 5, retryMaxDelayMs: 10, parkedPollMs: 20 };

describe('embedded bus: per-stream parking for a reactor group', () => {
  let store: SqlEventStore;
  let bus: EventStoreBus | undefined;
  const handled: string[] = [];
  /** `<streamId>/<type>` that fail, and how. */
  const failing = new Map<string, Error>();
  const handler = async (e: StoredEvent) => {
    const error = failing.get(`${e.streamId}/${e.type}`);
    if (error) throw error;
    handled.push(`${e.streamId}/${e.type}`);
  };
  const append = (stream: string, ...types: string[]) =>
    store.append(
      stream,
      types.map((type) => ({ id: newId(), type, data: {}, metadata: meta })),
      { expectedRevision: 'any' },
    );
  const of = (stream: string) => handled.filter((h) => h.startsWith(`${stream}/`)).map((h) => h.split('/')[1]);

  beforeEach(async () => {
    store = await SqlEventStore.create(await createPgliteClient(undefined));
    handled.length = 0;
    failing.clear();
  });
  afterEach(async () => {
    await bus?.close();
    bus = undefined;
    await store.close();
  });

  it('parks the failing stream after its retries, holds its later events, lets others flow; retry and skip resume it in order', async () => {
    const metrics = createMetrics();
    bus = new EventStoreBus(store, silentLogger(), metrics, fast);
    const consumer = await bus.consume({ group: 'g', streamPrefixes: ['request-'] }, handler);
    failing.set('request-bad/B', new Error('handler bug'));
    await append('request-bad', 'A', 'B', 'C');
    const { position } = await append('request-good', 'A', 'B', 'C');
    await expect.poll(() => consumer.position).toBeGreaterThanOrEqual(position);
    expect(of('request-good')).toEqual(['A', 'B', 'C']);
    expect(of('request-bad')).toEqual(['A']);

    const parking = new BusParking(store, ['g'], 10);
    expect(await parking.list()).toMatchObject([
      { owner: 'consumer:g', streamId: 'request-bad', eventType: 'B', error: 'handler bug', attempts: 2 },
    ]);
    const gauge = async () =>
      (await metrics.registry.getSingleMetric('settle_parked_streams')!.get()).values.find(
        (v) => v.labels.projection === 'consumer:g',
      )?.value;
    expect(await gauge()).toBe(1);

    // Held: a later event of the parked stream waits too, and the watermark still moves on.
    const later = await append('request-bad', 'D');
    await expect.poll(() => consumer.position).toBeGreaterThanOrEqual(later.position);
    expect(of('request-bad')).toEqual(['A']);

    expect(await parking.act('request-bad', 'retry', 'op', 5000)).toBe(false);
    expect(await parking.list()).toMatchObject([{ streamId: 'request-bad', eventType: 'B', attempts: 3 }]);

    failing.clear(); // fixed
    expect(await parking.act('request-bad', 'retry', 'op', 5000)).toBe(true);
    expect(of('request-bad')).toEqual(['A', 'B', 'C', 'D']);
    expect(await parking.list()).toEqual([]);
    expect(await gauge()).toBe(0);
    // Flowing again.
    await append('request-bad', 'E');
    await expect.poll(() => of('request-bad')).toEqual(['A', 'B', 'C', 'D', 'E']);

    failing.set('request-other/A', new Error('poison'));
    await append('request-other', 'A', 'B');
    await expect.poll(async () => (await parking.list()).map((p) => p.streamId)).toEqual(['request-other']);
    expect(await parking.act('request-other', 'skip', 'op', 5000)).toBe(true);
    expect(of('request-other')).toEqual(['B']);
    expect(await parking.act('request-nope', 'skip', 'op', 1000)).toBeNull();
  });

  it('keeps retrying an outage instead of parking; parked streams survive a restart', async () => {
    bus = new EventStoreBus(store, silentLogger(), undefined, fast);
    await bus.consume({ group: 'g', streamPrefixes: ['request-'] }, handler);
    failing.set('request-a/A', Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }));
    failing.set('request-b/A', new Error('handler bug'));
    await append('request-a', 'A');
    await append('request-b', 'A', 'B');
    const parking = new BusParking(store, ['g'], 10);
    await expect.poll(async () => (await parking.list()).map((p) => p.streamId)).toEqual(['request-b']);
    await new Promise((r) => setTimeout(r, 200)); // many more attempts than maxAttempts
    expect((await parking.list()).map((p) => p.streamId)).toEqual(['request-b']);
    failing.delete('request-a/A'); // the part is back
    await expect.poll(() => of('request-a')).toEqual(['A']);

    await bus.close();
    failing.clear();
    bus = new EventStoreBus(store, silentLogger(), undefined, fast);
    const consumer = await bus.consume({ group: 'g', streamPrefixes: ['request-'] }, handler);
    const { position } = await append('request-b', 'C');
    await expect.poll(() => consumer.position).toBeGreaterThanOrEqual(position);
    expect(of('request-b')).toEqual([]); // still parked after the restart: held, not handled
    expect(await parking.act('request-b', 'retry', 'op', 5000)).toBe(true);
    expect(of('request-b')).toEqual(['A', 'B', 'C']);
  });

  describe('crash loops: a handler that kills the process', () => {
    const markerOf = async () => decodeMarker(await store.getCheckpoint('consumer:g:attempt'));

    it('parks, unhandled, an event the process kept dying on; the other streams flow', async () => {
      await append('request-bad', 'A');
      const bad = await append('request-bad', 'B');
      const { position } = await append('request-good', 'A', 'B');
      // Earlier events are handled again (at least once) before the one it died on.
      // What three runs that died on B left behind: its attempt, written down three times.
      await store.saveCheckpoint(
        'consumer:g:attempt',
        encodeMarker({ kind: 'event', position: bad.position, attempts: 3 }),
      );
      bus = new EventStoreBus(store, silentLogger(), undefined, fast);
      const consumer = await bus.consume({ group: 'g', streamPrefixes: ['request-'] }, handler);
      await expect.poll(() => consumer.position).toBeGreaterThanOrEqual(position);
      expect(of('request-bad')).toEqual(['A']);
      expect(of('request-good')).toEqual(['A', 'B']);
      await expect.poll(markerOf).toBeUndefined();
      expect(await new BusParking(store, ['g'], 10).list()).toMatchObject([
        {
          owner: 'consumer:g',
          streamId: 'request-bad',
          eventType: 'B',
          attempts: 3,
          error: expect.stringMatching(/stopped 3 times/),
        },
      ]);
    });

    it('after a run that died with events in hand, writes each attempt down before handling it', async () => {
      const { position } = await append('request-x', 'A', 'B');
      // An unfinished run: a marker of work in hand, checkpoint still at 0.
      await store.saveCheckpoint('consumer:g:attempt', encodeMarker({ kind: 'batch', position: 0, attempts: 1 }));
      const seen: (AttemptMarker | undefined)[] = [];
      bus = new EventStoreBus(store, silentLogger(), undefined, fast);
      const consumer = await bus.consume({ group: 'g', streamPrefixes: ['request-'] }, async (e) => {
        seen.push(await markerOf());
        await handler(e);
      });
      await expect.poll(() => consumer.position).toBeGreaterThanOrEqual(position);
      expect(seen).toEqual([
        { kind: 'event', position: position - 1, attempts: 1 },
        { kind: 'event', position, attempts: 1 },
      ]);
      // Done and idle: nothing in hand any more.
      await expect.poll(markerOf).toBeUndefined();
    });

    it('says work is in hand while handlers run, and leaves nothing after a clean stop', async () => {
      const seen: (AttemptMarker | undefined)[] = [];
      bus = new EventStoreBus(store, silentLogger(), undefined, fast);
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      const consumer = await bus.consume({ group: 'g', streamPrefixes: ['request-'] }, async (e) => {
        seen.push(await markerOf());
        await gate;
        await handler(e);
      });
      const { position } = await append('request-y', 'A');
      await expect.poll(() => seen.length).toBe(1);
      expect(seen[0]).toMatchObject({ kind: 'batch', attempts: 1 });
      release();
      await expect.poll(() => consumer.position).toBeGreaterThanOrEqual(position);
      await bus.close();
      bus = undefined;
      expect(await markerOf()).toBeUndefined();
    });

    it('a real crash loop: the process exits inside the handler every time until the event is parked', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'settle-crashloop-'));
      try {
        const disk = await SqlEventStore.create(await createPgliteClient(join(dir, 'events')));
        const put = (stream: string, ...types: string[]) =>
          disk.append(
            stream,
            types.map((type) => ({ id: newId(), type, data: {}, metadata: meta })),
            {
              expectedRevision: 'any',
            },
          );
        await put('request-bad', 'A', 'B', 'C');
        await put('request-good', 'A', 'B');
        await disk.close();
        // A consumer process whose handler kills the process on request-bad/B (the compiled platform).
        const platform = fileURLToPath(new URL('../../dist/index.js', import.meta.url));
        const script = `
          const { appendFileSync } = await import('node:fs');
          const p = await import(${JSON.stringify(platform)});
          const [dir] = process.argv.slice(1);
          const store = await p.SqlEventStore.create(await p.createPgliteClient(dir + '/events'));
          const bus = new p.EventStoreBus(store, p.silentLogger(), undefined, ${JSON.stringify(fast)});
          const consumer = await bus.consume({ group: 'g', streamPrefixes: ['request-'] }, async (e) => {
            if (e.streamId === 'request-bad' && e.type === 'B') process.exit(9);
            appendFileSync(dir + '/handled', e.streamId + '/' + e.type + '\\n');
          });
          const head = await store.headPosition();
          while (consumer.position < head) await new Promise((r) => setTimeout(r, 20));
          await bus.close();
          await store.close();`;
        const exits: number[] = [];
        for (let run = 0; run < 6 && exits.at(-1) !== 0; run++)
          exits.push(
            await new Promise<number>((resolve) =>
              execFile(process.execPath, ['--input-type=module', '-e', script, dir], (error) =>
                resolve(error ? Number((error as { code?: number }).code ?? 1) : 0),
              ),
            ),
          );
        // Died in normal running, then on B three times counted (careful mode), then parked it.
        expect(exits).toEqual([9, 9, 9, 9, 0]);
        const handled = (await readFile(join(dir, 'handled'), 'utf8')).trim().split('\n');
        expect(handled).not.toContain('request-bad/B');
        expect(handled).not.toContain('request-bad/C'); // held behind B, in order
        expect(handled).toEqual(expect.arrayContaining(['request-bad/A', 'request-good/A', 'request-good/B']));
        const after = await SqlEventStore.create(await createPgliteClient(join(dir, 'events')));
        expect(await new BusParking(after, ['g'], 10).list()).toMatchObject([
          { streamId: 'request-bad', eventType: 'B', attempts: 3 },
        ]);
        await after.close();
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    }, 120_000);
  });
});
