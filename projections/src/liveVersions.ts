import {
  PROJECTION_VERSIONS_TOPIC,
  ProjectionVersions,
  routedReadStore,
  versionedCheckpoint,
  versionedCollection,
  type EventStore,
  type Logger,
  type MQEmitter,
  type ReadStore,
} from '@settle/platform';
import type { Projection } from './projection.js';

/**
 * Whether a reader of `prefixes` that has read the log up to `after` holds everything up to
 * `upTo`: the log reaches `upTo` and none of its events there and before, after `after`, are
 * ones it reads (a checkpoint moves with batches, which may end on other streams' events).
 */
export async function nothingToReadUpTo(
  eventStore: Pick<EventStore, 'readAll' | 'headPosition'>,
  after: number,
  upTo: number,
  prefixes: string[],
): Promise<boolean> {
  if ((await eventStore.headPosition()) < upTo) return false;
  const [next] = await eventStore.readAll({ after, limit: 1, streamPrefixes: prefixes });
  return next === undefined || next.globalPosition > upTo;
}

/** How often a process re-reads the pointers (a missed pub/sub message costs at most this long). */
export const POINTER_POLL_MS = 1000;
/** Longest readers stay on the previous version after a switch while the new one catches up. */
export const READER_SWITCH_WAIT_MS = 30_000;
/** How often a process without a projector looks at the new version's checkpoint meanwhile. */
const CHECKPOINT_POLL_MS = 100;

/**
 * Which version of each projection is live, as this process knows it: read from the pointer
 * records at start, re-read every second and whenever a switch is published. Readers (the query
 * side, the scheduler) go through `readStore`, which maps each read model's collection to the
 * live version's, so they never see a version that is still being built.
 */
export class LiveVersions {
  private readonly live = new Map<string, number>();
  /** The version readers are routed to: the live one, or the previous one while a gate holds it back. */
  private readonly served = new Map<string, number>();
  private gate?: (projection: string, version: number) => Promise<void>;
  private readonly owner = new Map<string, string>();
  private readonly prefixes = new Map<string, string[]>();
  private readonly versions: ProjectionVersions;
  private timer?: NodeJS.Timeout;
  private readonly listeners = new Set<(changed: string[]) => void>();
  private readonly onMessage = (_: unknown, done: () => void) => {
    void this.refresh().catch(() => undefined);
    done();
  };

  constructor(
    private readonly store: ReadStore,
    projections: readonly Projection[],
    private readonly deps: {
      pubsub?: MQEmitter;
      logger?: Logger;
      /** Lets a process without the projector see that no event is left between two checkpoints. */
      eventStore?: Pick<EventStore, 'readAll' | 'headPosition'>;
    } = {},
  ) {
    this.versions = new ProjectionVersions(store);
    for (const p of projections) {
      this.prefixes.set(p.name, p.streamPrefixes);
      this.live.set(p.name, 1);
      this.served.set(p.name, 1);
      for (const c of Object.keys(p.collections)) this.owner.set(c, p.name);
    }
  }

  /** The name readers use for a read-model collection: its served version's (others pass through). */
  collectionName(collection: string): string {
    const projection = this.owner.get(collection);
    return projection === undefined ? collection : versionedCollection(collection, this.served.get(projection) ?? 1);
  }

  /** The live version (the pointer): what projectors write. */
  version(projection: string): number {
    return this.live.get(projection) ?? 1;
  }

  /** The version readers are routed to (the live one once any gate let it through). */
  servedVersion(projection: string): number {
    return this.served.get(projection) ?? 1;
  }

  /**
   * Holds readers on the version they were reading after a switch until `gate` resolves: a
   * projector in this process catches the new live version up to where the old one was, so
   * readers never see documents disappear (a cutover while writes go on, a rollback). Without a
   * gate of its own (a process that only reads), a process holds them until the new version's
   * checkpoint in the read store has reached the old one's (`caughtUpInStore`).
   */
  holdReadersUntil(gate: ((projection: string, version: number) => Promise<void>) | undefined): void {
    this.gate = gate;
  }

  /**
   * The gate of a process without a projector: the projector that writes the new live version
   * runs elsewhere, so its progress is read from the checkpoints both versions keep in the read
   * store. Bounded by READER_SWITCH_WAIT_MS; a newer switch ends the wait.
   */
  private async caughtUpInStore(projection: string, version: number): Promise<void> {
    const target = await this.store.getCheckpoint(versionedCheckpoint(projection, this.servedVersion(projection)));
    const deadline = Date.now() + READER_SWITCH_WAIT_MS;
    while (this.live.get(projection) === version) {
      if (await this.reached(projection, version, target)) return;
      if (Date.now() >= deadline) {
        this.deps.logger?.warn(
          { projection, version, target },
          'the new live version did not catch up in time; readers switch to it anyway',
        );
        return;
      }
      await new Promise((r) => setTimeout(r, CHECKPOINT_POLL_MS));
    }
  }

  private serve(name: string, version: number): void {
    if (this.live.get(name) !== version || this.served.get(name) === version) return;
    this.served.set(name, version);
    this.deps.logger?.info({ projection: name, version }, 'readers switched to the live version');
  }

  /** The read store as readers should see it: every read model at its live version. */
  get readStore(): ReadStore {
    return routedReadStore(this.store, (c) => this.collectionName(c));
  }

  /**
   * Whether `version` of `projection` holds everything up to `target`: its checkpoint is there, or
   * no event it reads lies between (checkpoints move with batches, which may end on events of
   * other projections: an idle projector would never write the one that closes the gap).
   */
  private async reached(projection: string, version: number, target: number): Promise<boolean> {
    const at = await this.store.getCheckpoint(versionedCheckpoint(projection, version));
    if (at >= target) return true;
    const prefixes = this.prefixes.get(projection);
    if (!this.deps.eventStore || !prefixes?.length) return false;
    return nothingToReadUpTo(this.deps.eventStore, at, target, prefixes);
  }

  /** Called with the names of projections whose live version changed. */
  onChange(listener: (changed: string[]) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Reads the pointers; `initial`: readers take the live versions at once (nothing to catch up yet). */
  async refresh(initial = false): Promise<string[]> {
    const pointers = await this.versions.getMany([...this.live.keys()]);
    const changed: string[] = [];
    for (const [name, pointer] of pointers)
      if (this.live.get(name) !== pointer.live) {
        this.live.set(name, pointer.live);
        changed.push(name);
        const version = pointer.live;
        const gate = this.gate ?? ((p: string, v: number) => this.caughtUpInStore(p, v));
        if (initial) this.serve(name, version);
        else
          void gate(name, version)
            .catch((error: unknown) =>
              this.deps.logger?.warn({ err: error, projection: name }, 'reader gate failed; switching readers now'),
            )
            .finally(() => this.serve(name, version));
      }
    if (changed.length > 0) {
      this.deps.logger?.info({ projections: changed.map((n) => `${n}@v${this.version(n)}`) }, 'live versions switched');
      for (const l of this.listeners) l(changed);
    }
    return changed;
  }

  /** Reads the pointers and keeps following them (calling it again only refreshes). */
  async start(): Promise<void> {
    await this.refresh(this.timer === undefined);
    if (this.timer) return;
    this.deps.pubsub?.on(PROJECTION_VERSIONS_TOPIC, this.onMessage);
    const poll = () => {
      this.timer = setTimeout(() => {
        this.refresh()
          .catch((error: unknown) => this.deps.logger?.debug({ err: error }, 'version pointer refresh failed'))
          .finally(() => {
            if (this.timer) poll();
          });
      }, POINTER_POLL_MS);
      this.timer.unref();
    };
    poll();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.deps.pubsub?.removeListener(PROJECTION_VERSIONS_TOPIC, this.onMessage);
  }
}
