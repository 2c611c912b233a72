import { newId } from '../ids.js';
import type { ReadCollection, ReadDoc, ReadStore } from './port.js';

/** Where each projection's pointer record lives (one document per projection, in the read store). */
export const PROJECTION_VERSIONS_COLLECTION = 'settle_projection_versions';
/** Published (with the projection name as payload) whenever a pointer's live version changes. */
export const PROJECTION_VERSIONS_TOPIC = 'settle.projectionVersions';

/** A rebuild in progress: a version being written from position 0 while the live one serves. */
export interface BuildingVersion {
  version: number;
  /** `running` while a runner writes it; `failed` once it stopped with an error (resumable). */
  state: 'running' | 'failed';
  /** A scratch version: never cut over, dropped after the diff. */
  dryRun: boolean;
  startedAt: string;
  /** Refreshed by the runner about once a second; a stale one means the runner is gone. */
  heartbeatAt: string;
  position: number;
  headPosition: number;
  eventsPerSecond: number;
  /** Estimated seconds to reach the head at the current rate (null while unknown). */
  etaSeconds: number | null;
  error?: string;
}

/**
 * The single source of truth for a projection's versions: which one serves (live), which one
 * a rollback goes back to (previous), and which one is being rebuilt. `_position` is the
 * record's revision, so the read store's position guard makes each write a compare-and-set.
 */
export interface ProjectionPointer extends ReadDoc {
  live: number;
  previous: number | null;
  building: BuildingVersion | null;
  updatedAt: string;
  /** Who wrote this revision (a random token): how a writer learns whether it won a race. */
  writer: string;
}

/** Version 1 keeps the original names, so read models written before versioning stay valid. */
export const versionedCollection = (collection: string, version: number): string =>
  version <= 1 ? collection : `${collection}_v${version}`;

/** Checkpoints are per (projection, version); version 1 keeps the original checkpoint name. */
export const versionedCheckpoint = (projection: string, version: number): string =>
  version <= 1 ? projection : `${projection}@v${version}`;

const initialPointer = (name: string): ProjectionPointer => ({
  _id: name,
  _position: 0,
  live: 1,
  previous: null,
  building: null,
  updatedAt: new Date(0).toISOString(),
  writer: '',
});

export class PointerConflictError extends Error {}

/** Reads and updates the pointer records of a read store. */
export class ProjectionVersions {
  private readonly records: ReadCollection<ProjectionPointer>;

  constructor(readStore: ReadStore) {
    this.records = readStore.collection<ProjectionPointer>(PROJECTION_VERSIONS_COLLECTION);
  }

  async get(name: string): Promise<ProjectionPointer> {
    return (await this.records.get(name)) ?? initialPointer(name);
  }

  /** Pointers of these projections (the ones never versioned yet read as live 1). */
  async getMany(names: string[]): Promise<Map<string, ProjectionPointer>> {
    const found = await this.records.getMany(names);
    return new Map(names.map((n) => [n, found.get(n) ?? initialPointer(n)]));
  }

  /**
   * Applies `change` to the current pointer and writes it as the next revision; if another
   * writer got there first, reads again and retries (a few times). `change` may throw to refuse.
   */
  async update(
    name: string,
    change: (current: ProjectionPointer) => Omit<ProjectionPointer, '_id' | '_position' | 'updatedAt' | 'writer'>,
  ): Promise<ProjectionPointer> {
    for (let attempt = 0; attempt < 10; attempt++) {
      const current = await this.get(name);
      const next: ProjectionPointer = {
        ...change(current),
        _id: name,
        _position: current._position + 1,
        updatedAt: new Date().toISOString(),
        writer: newId(),
      };
      await this.records.putMany([next]);
      const stored = await this.records.get(name);
      if (stored?.writer === next.writer) return stored;
      await new Promise((r) => setTimeout(r, 10 + Math.random() * 40));
    }
    throw new PointerConflictError(`the version pointer of ${name} kept changing under this update`);
  }
}

/**
 * A view of a read store whose collection names pass through `route` first: how the query side
 * and the scheduler read the live version of each read model without knowing about versions.
 */
export function routedReadStore(store: ReadStore, route: (collection: string) => string): ReadStore {
  return {
    get name() {
      return store.name;
    },
    get durable() {
      return store.durable;
    },
    get scansForSorts() {
      return store.scansForSorts;
    },
    collection: <T extends ReadDoc>(name: string) => store.collection<T>(route(name)),
    ensureIndexes: (collection, indexes) => store.ensureIndexes(route(collection), indexes),
    getCheckpoint: (name) => store.getCheckpoint(name),
    saveCheckpoint: (name, position) => store.saveCheckpoint(name, position),
    ping: () => store.ping(),
    close: () => store.close(),
  };
}
