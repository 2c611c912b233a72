import {
  createPgliteClient,
  MemoryReadStore,
  newId,
  ProjectionVersions,
  silentLogger,
  SqlEventStore,
} from '@settle/platform';
import { afterEach, describe, expect, it } from 'vitest';
import { LiveVersions } from './liveVersions.js';
import { merchantStatsProjection } from './merchantStats.js';
import { Projector } from './projector.js';
import { REQUESTS, requestsProjection } from './requests.js';
import { registerRequests } from './testing/rebuildScenarios.js';

const PROJECTIONS = [requestsProjection, merchantStatsProjection];

describe('readers across a version switch', () => {
  let stop: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await stop?.();
    stop = undefined;
  });

  /** 50 requests projected into version 1; then a version 2 with nothing in it yet becomes live. */
  async function switchToEmptyVersion(readersOf: (projector: Projector, readStore: MemoryReadStore) => LiveVersions) {
    const eventStore = await SqlEventStore.create(await createPgliteClient(undefined));
    const readStore = new MemoryReadStore();
    const projector = new Projector(PROJECTIONS, { eventStore, readStore, logger: silentLogger() });
    const readers = readersOf(projector, readStore);
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
    // As a rollback to a stale version or a cutover racing new writes would make it.
    await new ProjectionVersions(readStore).update('requests', () => ({ live: 2, previous: 1, building: null }));
    await readers.refresh();
    expect(readers.version('requests')).toBe(2);
    // Readers still see every document of version 1.
    expect(readers.collectionName(REQUESTS)).toBe('requests');
    expect(await readers.readStore.collection(REQUESTS).count()).toBe(50);
    return { projector, readers };
  }

  it('in a process that runs the projector, stay on the version they read until the new live one has caught up to it', async () => {
    const { readers } = await switchToEmptyVersion((projector) => projector.versions);
    // The projector writes version 2 now; once it has caught up, readers switch, nothing missing.
    await expect.poll(() => readers.collectionName(REQUESTS), { timeout: 10_000 }).toBe('requests_v2');
    expect(await readers.readStore.collection(REQUESTS).count()).toBe(50);
  });

  it('in a process that only reads, stay on it until the new version’s checkpoint in the read store has caught up', async () => {
    // The projector runs "elsewhere": readers have their own LiveVersions and no projector.
    const { projector, readers } = await switchToEmptyVersion(
      (_, readStore) => new LiveVersions(readStore, PROJECTIONS),
    );
    // The projector's process hears of the switch later, and fills version 2.
    await new Promise((r) => setTimeout(r, 300));
    expect(readers.collectionName(REQUESTS)).toBe('requests');
    await projector.versions.refresh();
    await expect.poll(() => readers.collectionName(REQUESTS), { timeout: 10_000 }).toBe('requests_v2');
    expect(await readers.readStore.collection(REQUESTS).count()).toBe(50);
  });
});

describe('readers in a process that only reads, when checkpoints differ by events of other streams', () => {
  it('switch at once when no event of the projection lies between the two checkpoints', async () => {
    const eventStore = await SqlEventStore.create(await createPgliteClient(undefined));
    try {
      const readStore = new MemoryReadStore();
      const lastRequest = await registerRequests(eventStore, 5);
      // Events of other streams after the last request event: a projector batch that ended on them
      // left version 1's checkpoint there, while the rebuilt version 2 stopped at the last request event.
      let head = lastRequest;
      for (let i = 0; i < 3; i++)
        head = (
          await eventStore.append(
            `client-gate-${i}`,
            [
              {
                id: newId(),
                type: 'ClientRegistered',
                data: {},
                metadata: { correlationId: 'c', causationId: 'c', actor: 't' },
              },
            ],
            { expectedRevision: 'no_stream' },
          )
        ).position;
      await readStore.saveCheckpoint('requests', head);
      await readStore.saveCheckpoint('requests@v2', lastRequest);
      const blind = new LiveVersions(readStore, PROJECTIONS);
      const seeing = new LiveVersions(readStore, PROJECTIONS, { eventStore });
      await blind.start();
      await seeing.start();
      await new ProjectionVersions(readStore).update('requests', () => ({ live: 2, previous: 1, building: null }));
      await Promise.all([blind.refresh(), seeing.refresh()]);
      await expect.poll(() => seeing.collectionName(REQUESTS), { timeout: 5_000 }).toBe('requests_v2');
      // Without the event store, the checkpoints alone keep readers waiting (up to the 30 s bound).
      expect(blind.collectionName(REQUESTS)).toBe('requests');
      blind.stop();
      seeing.stop();
    } finally {
      await eventStore.close();
    }
  });
});
