import { createPgliteClient, MemoryReadStore, ProjectionVersions, silentLogger, SqlEventStore } from '@settle/platform';
import { afterEach, describe, expect, it } from 'vitest';
import { LiveVersions } from './liveVersions.js';
import { merchantStatsProjection } from './merchantStats.js';
import { Projector } from './projector.js';
import { REQUESTS, requestsProjection } from './requests.js';
import { registerRequests } from './testing/rebuildScenarios.js';

describe('readers across a version switch, in a process that runs the projector', () => {
  let stop: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await stop?.();
    stop = undefined;
  });

  it('stay on the version they read until the new live one has caught up to it', async () => {
    const eventStore = await SqlEventStore.create(await createPgliteClient(undefined));
    const readStore = new MemoryReadStore();
    const projector = new Projector([requestsProjection, merchantStatsProjection], {
      eventStore,
      readStore,
      logger: silentLogger(),
    });
    stop = async () => {
      await projector.stop();
      await eventStore.close();
    };
    await registerRequests(eventStore, 50);
    await projector.start();
    await projector.whenCaughtUp();
    const readers = projector.versions;
    expect(await readers.readStore.collection(REQUESTS).count()).toBe(50);

    // A version 2 that holds nothing yet (checkpoint 0) becomes live, as a rollback to a stale
    // version or a cutover racing new writes would make it.
    await new ProjectionVersions(readStore).update('requests', () => ({ live: 2, previous: 1, building: null }));
    await readers.refresh();
    // The projector writes version 2 now; readers still see every document of version 1.
    expect(readers.version('requests')).toBe(2);
    expect(readers.collectionName(REQUESTS)).toBe('requests');
    expect(await readers.readStore.collection(REQUESTS).count()).toBe(50);
    // Once version 2 has caught up, readers switch to it, and nothing went missing.
    await expect.poll(() => readers.collectionName(REQUESTS), { timeout: 10_000 }).toBe('requests_v2');
    expect(await readers.readStore.collection(REQUESTS).count()).toBe(50);
  });
});

describe('readers across a version switch, in a process that only reads', () => {
  let stop: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await stop?.();
    stop = undefined;
  });

  it('stay on the version they read until the new one’s checkpoint in the read store has caught up', async () => {
    const eventStore = await SqlEventStore.create(await createPgliteClient(undefined));
    const readStore = new MemoryReadStore();
    // The projector runs "elsewhere": its own LiveVersions; the readers below have no projector.
    const projector = new Projector([requestsProjection, merchantStatsProjection], {
      eventStore,
      readStore,
      logger: silentLogger(),
    });
    const readers = new LiveVersions(readStore, [requestsProjection, merchantStatsProjection]);
    stop = async () => {
      readers.stop();
      await projector.stop();
      await eventStore.close();
    };
    await registerRequests(eventStore, 50);
    await projector.start();
    await projector.whenCaughtUp();
    await readers.start();
    expect(await readers.readStore.collection(REQUESTS).count()).toBe(50);

    // Version 2 becomes live with nothing in it yet; this process hears of it first.
    await new ProjectionVersions(readStore).update('requests', () => ({ live: 2, previous: 1, building: null }));
    await readers.refresh();
    expect(readers.version('requests')).toBe(2);
    expect(readers.collectionName(REQUESTS)).toBe('requests');
    expect(await readers.readStore.collection(REQUESTS).count()).toBe(50);
    // The projector process follows the pointer and fills version 2; readers switch once its
    // checkpoint has reached version 1's, and nothing went missing.
    await projector.versions.refresh();
    await expect.poll(() => readers.collectionName(REQUESTS), { timeout: 10_000 }).toBe('requests_v2');
    expect(await readers.readStore.collection(REQUESTS).count()).toBe(50);
  });
});
