import type { EventMetadata } from '@settle/domain';
import {
  createPgliteClient,
  newId,
  ProjectionVersions,
  readOperatorActions,
  silentLogger,
  SqlEventStore,
  versionedCollection,
  type ReadDoc,
  type ReadStore,
} from '@settle/platform';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LiveVersions } from '../liveVersions.js';
import { MERCHANT_STATS, MERCHANT_STATS_REQUESTS, merchantStatsProjection } from '../merchantStats.js';
import type { Projection } from '../projection.js';
import { Projector } from '../projector.js';
import { ProjectionOperations, ProjectionStateError } from '../rebuild.js';
import { REQUESTS, requestsProjection, type RequestDoc } from '../requests.js';

const meta: EventMetadata = { correlationId: 'c', causationId: 'c', actor: 'test' };

export async function registerRequests(store: SqlEventStore, n: number, prefix = newId().slice(0, 8)): Promise<number> {
  let position = 0;
  for (let i = 0; i < n; i++) {
    const id = `${prefix}-${i}`;
    const data = {
      requestId: id,
      authId: `a-${id}`,
      merchantId: `m-${i % 3}`,
      amount: 100 + i,
      currency: 'EUR',
      reference: id,
      registeredAt: new Date().toISOString(),
    };
    const events = [{ id: newId(), type: 'RequestRegistered', data, metadata: meta }];
    if (i % 4 === 0)
      events.push({
        id: newId(),
        type: 'RequestCancelled',
        data: { reason: 'test', by: 'tester' } as never,
        metadata: meta,
      });
    position = (await store.append(`request-${id}`, events, { expectedRevision: 'no_stream' })).position;
  }
  return position;
}

const until = async (what: string, ok: () => Promise<boolean> | boolean, ms = 30_000) => {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

/**
 * Blue-green rebuild scenarios, run on every read store (the embedded one in unit tests,
 * MongoDB/FerretDB in integration tests).
 */
export function describeRebuildScenarios(
  label: string,
  factory: () => Promise<ReadStore>,
  opts: { teardown?: (store: ReadStore) => Promise<void>; requests?: number } = {},
) {
  const n = opts.requests ?? 200;
  describe(`blue-green rebuilds on ${label}`, () => {
    let eventStore: SqlEventStore;
    let readStore: ReadStore;
    let projector: Projector;
    let readers: LiveVersions;
    let ops: ProjectionOperations;
    const projections: Projection[] = [requestsProjection, merchantStatsProjection];
    const stores: ReadStore[] = [];
    let writing = false;
    let writer: Promise<void> | undefined;

    beforeEach(async () => {
      eventStore = await SqlEventStore.create(await createPgliteClient(undefined), { pollMs: 50 });
      readStore = await factory();
      stores.push(readStore);
      projector = new Projector(projections, { eventStore, readStore, logger: silentLogger(), batchSize: 200 });
      readers = new LiveVersions(readStore, projections, { eventStore });
      ops = new ProjectionOperations({ eventStore, readStore, projections, logger: silentLogger(), batchSize: 100 });
    });
    afterEach(async () => {
      writing = false;
      await writer;
      await ops.stop();
      readers.stop();
      await projector.stop();
      await eventStore.close();
    });
    afterAll(async () => {
      for (const s of stores) {
        await opts.teardown?.(s);
        await s.close();
      }
    });

    const served = () => readers.readStore.collection<RequestDoc>(REQUESTS);
    const caughtUp = async () => {
      const head = await eventStore.headPosition();
      await until('the projector to reach the head', () => projector.waitFor(head, 200));
    };

    it('rebuilds while writes continue, keeps serving the old version, then cuts over with matching counts', async () => {
      await registerRequests(eventStore, n);
      await projector.start();
      await readers.start();
      await projector.whenCaughtUp();
      expect(await served().count()).toBe(n);

      writing = true;
      let written = n;
      // Bounded, so a slow store still catches up: the rebuild must reach a head that keeps moving.
      writer = (async () => {
        while (writing && written < n * 2) {
          await registerRequests(eventStore, 5);
          written += 5;
          await new Promise((r) => setTimeout(r, 5));
        }
      })();
      // The rebuild's second page of events waits until readers have read the live version three
      // times, so the reads below happen mid-rebuild however fast the store is (a fast rebuild once
      // finished within the first count on FerretDB, and the test proved nothing).
      let reads = 0;
      let pages = 0;
      const readAll = eventStore.readAll.bind(eventStore);
      const gated = Object.create(eventStore) as SqlEventStore;
      gated.readAll = async (...args: Parameters<SqlEventStore['readAll']>) => {
        if (++pages === 2) await until('three reads during the rebuild', () => reads >= 3);
        return readAll(...args);
      };
      const gatedOps = new ProjectionOperations({
        eventStore: gated,
        readStore,
        projections,
        logger: silentLogger(),
        batchSize: 100,
      });
      const handle = await gatedOps.rebuild('requests', { actor: 'tester' });
      expect(handle.version).toBe(2);
      // While it runs, readers see the old version: never an error, never fewer documents.
      let last = n;
      let finished = false;
      void handle.done.finally(() => (finished = true));
      while (!finished) {
        const count = await served().count();
        expect(count).toBeGreaterThanOrEqual(last);
        last = count;
        reads++;
        await new Promise((r) => setTimeout(r, 5));
      }
      const result = await handle.done;
      await gatedOps.stop();
      writing = false;
      await writer;
      expect(pages).toBeGreaterThan(2);
      expect(reads).toBeGreaterThanOrEqual(3);
      expect(result).toMatchObject({ cutOver: true, version: 2, previous: 1 });
      expect(result.events).toBeGreaterThan(n);

      const pointer = await new ProjectionVersions(readStore).get('requests');
      expect(pointer).toMatchObject({ live: 2, previous: 1, building: null });
      // Readers in a process without the projector switch once v2's checkpoint has reached v1's.
      await readers.refresh();
      await until('readers to switch to v2', () => readers.collectionName(REQUESTS) === 'requests_v2');
      await until('the projector to take v2', async () => (await projector.status())[0]!.version === 2);
      await caughtUp();
      expect(await served().count()).toBe(written);
      expect(await readStore.collection(versionedCollection(REQUESTS, 2)).count()).toBe(written);
      // The version rolled forward from is kept (for rollback), not updated any more.
      expect(await readStore.collection(REQUESTS).count()).toBeGreaterThanOrEqual(n);
      // merchantStats was not rebuilt: still version 1.
      expect(readers.version('merchantStats')).toBe(1);
      const audit = (await readOperatorActions(eventStore)).map((e) => [
        e.data.action,
        e.data.target,
        e.metadata.actor,
      ]);
      expect(audit).toEqual([
        ['ProjectionRebuildStarted', 'requests', 'tester'],
        ['ProjectionCutOver', 'requests', 'tester'],
      ]);
    });

    it('rolls back to the previous version, which catches up with what happened since', async () => {
      await registerRequests(eventStore, 20);
      await projector.start();
      await readers.start();
      await (
        await ops.rebuild('requests')
      ).done;
      await until('the projector to take v2', async () => (await projector.status())[0]!.version === 2);
      await registerRequests(eventStore, 7);
      await caughtUp();
      expect(await readStore.collection(versionedCollection(REQUESTS, 2)).count()).toBe(27);
      expect(await readStore.collection(REQUESTS).count()).toBe(20);

      const pointer = await ops.rollback('requests', { actor: 'tester' });
      expect(pointer).toMatchObject({ live: 1, previous: 2 });
      // Readers stay on v2 (27 documents) until v1, 7 behind, has caught up: never fewer.
      await readers.refresh();
      await until('readers to switch to v1', async () => {
        expect(await served().count()).toBe(27);
        return readers.collectionName(REQUESTS) === 'requests';
      });
      await until('the projector to take v1', async () => (await projector.status())[0]!.version === 1);
      await registerRequests(eventStore, 3);
      await caughtUp();
      expect(await served().count()).toBe(30);
      // The version rolled back from is the previous one now: kept, frozen.
      expect(await readStore.collection(versionedCollection(REQUESTS, 2)).count()).toBe(27);
      expect((await readOperatorActions(eventStore)).map((e) => e.data.action)).toContain('ProjectionRolledBack');
      await expect(ops.rollback('merchantStats')).rejects.toThrow(ProjectionStateError);
    });

    it('keeps the live version serving when a rebuild crashes, and resumes the rebuild from its checkpoint', async () => {
      await registerRequests(eventStore, 60);
      await projector.start();
      await readers.start();
      await projector.whenCaughtUp();
      let applied = 0;
      const crashing: Projection = {
        ...requestsProjection,
        async apply(event, uow) {
          if (++applied === 40) throw new Error('projection crashed on purpose');
          await requestsProjection.apply(event, uow);
        },
      };
      const failing = new ProjectionOperations({
        eventStore,
        readStore,
        projections: [crashing],
        logger: silentLogger(),
        batchSize: 25,
        flushEvents: 25,
      });
      const first = await failing.rebuild('requests');
      await expect(first.done).rejects.toThrow('crashed on purpose');
      const failed = await new ProjectionVersions(readStore).get('requests');
      expect(failed).toMatchObject({ live: 1, building: { version: 2, state: 'failed' } });
      expect(failed.building!.error).toContain('crashed on purpose');
      expect(await served().count()).toBe(60);
      // One batch (25 events) made it before the crash: that is where the rebuild resumes.
      expect(await readStore.getCheckpoint('requests@v2')).toBeGreaterThan(0);

      const again = await new ProjectionOperations({
        eventStore,
        readStore,
        projections,
        logger: silentLogger(),
        batchSize: 25,
      }).rebuild('requests');
      expect(again).toMatchObject({ version: 2, resumed: true });
      const result = await again.done;
      expect(result.events).toBeLessThan(75);
      await readers.refresh();
      await caughtUp();
      await until('readers to switch to v2', () => readers.collectionName(REQUESTS) === 'requests_v2');
      expect(await served().count()).toBe(60);
    });

    it('writes behind across many flushes and a resumed crash: the rebuilt documents equal the live ones, nothing lost or counted twice', async () => {
      // Lifecycles that straddle flushes: some requests are cancelled long after they were registered.
      await registerRequests(eventStore, 40, 'wb');
      for (let i = 1; i < 40; i += 4)
        await eventStore.append(
          `request-wb-${i}`,
          [{ id: newId(), type: 'RequestCancelled', data: { reason: 'late', by: 'tester' } as never, metadata: meta }],
          { expectedRevision: 0 },
        );
      await registerRequests(eventStore, 20, 'wb2');
      await projector.start();
      await projector.whenCaughtUp();
      let applied = 0;
      const crashing = (p: Projection): Projection => ({
        ...p,
        async apply(event, uow) {
          if (p.name === 'merchantStats' && ++applied === 45) throw new Error('projection crashed on purpose');
          await p.apply(event, uow);
        },
      });
      const small = { logger: silentLogger(), batchSize: 7, flushEvents: 10 };
      const first = await new ProjectionOperations({
        eventStore,
        readStore,
        projections: projections.map(crashing),
        ...small,
      }).rebuild('merchantStats');
      await expect(first.done).rejects.toThrow('crashed on purpose');
      // Some flushes landed before the crash: the rebuild resumes past position 0, not from the start.
      expect(await readStore.getCheckpoint('merchantStats@v2')).toBeGreaterThan(0);
      const resumedOps = new ProjectionOperations({ eventStore, readStore, projections, ...small });
      const again = await resumedOps.rebuild('merchantStats');
      expect(again).toMatchObject({ version: 2, resumed: true });
      await again.done;
      await (
        await resumedOps.rebuild('requests')
      ).done;
      for (const name of [REQUESTS, MERCHANT_STATS, MERCHANT_STATS_REQUESTS]) {
        const byId = (docs: ReadDoc[]) => [...docs].sort((a, b) => a._id.localeCompare(b._id));
        const live = byId(await readStore.collection(versionedCollection(name, 1)).find());
        const rebuilt = byId(await readStore.collection(versionedCollection(name, 2)).find());
        expect(live.length, name).toBeGreaterThan(0);
        expect(rebuilt, name).toEqual(live);
      }
    });

    it('refuses a second rebuild of the same projection while one runs', async () => {
      await registerRequests(eventStore, 30);
      const handle = await ops.rebuild('requests');
      await expect(ops.rebuild('requests')).rejects.toThrow(ProjectionStateError);
      await handle.done;
    });

    it('dry run: rebuilds into a scratch version, diffs it against the live one, drops it, changes nothing', async () => {
      await registerRequests(eventStore, 30, 'dry');
      await projector.start();
      await readers.start();
      await projector.whenCaughtUp();
      const clean = await (await ops.rebuild('requests', { dryRun: true })).done;
      expect(clean.cutOver).toBe(false);
      expect(clean.diff![0]).toMatchObject({
        collection: 'requests',
        liveCount: 30,
        rebuiltCount: 30,
        onlyLiveCount: 0,
        onlyRebuiltCount: 0,
        differingCount: 0,
      });
      // Damage the live version: the diff finds it.
      const live = readStore.collection<RequestDoc>(REQUESTS);
      const doc = (await live.get('dry-1'))!;
      await live.replaceMany([{ ...doc, amount: 1 }]);
      await live.deleteMany(['dry-2']);
      const damaged = await (await ops.rebuild('requests', { dryRun: true })).done;
      expect(damaged.diff![0]).toMatchObject({ differing: ['dry-1'], onlyRebuilt: ['dry-2'], liveCount: 29 });
      expect(await new ProjectionVersions(readStore).get('requests')).toMatchObject({
        live: 1,
        previous: null,
        building: null,
      });
      expect(await readStore.collection(versionedCollection(REQUESTS, damaged.version)).count()).toBe(0);
    });

    it('keeps one previous version: a second rebuild drops the oldest', async () => {
      await registerRequests(eventStore, 10);
      await projector.start();
      await projector.whenCaughtUp();
      expect(await readStore.collection(REQUESTS).count()).toBe(10);
      await (
        await ops.rebuild('requests')
      ).done;
      await until('the projector to take v2', async () => (await projector.status())[0]!.version === 2);
      await (
        await ops.rebuild('requests')
      ).done;
      expect(await new ProjectionVersions(readStore).get('requests')).toMatchObject({ live: 3, previous: 2 });
      expect(await readStore.collection(REQUESTS).count()).toBe(0);
      expect(await readStore.collection(versionedCollection(REQUESTS, 3)).count()).toBe(10);
    });
  });
}
