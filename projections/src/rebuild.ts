import { setImmediate as yieldToLoop } from 'node:timers/promises';
import {
  PROJECTION_VERSIONS_TOPIC,
  ProjectionVersions,
  readOperatorActions,
  recordOperatorAction,
  routedReadStore,
  versionedCheckpoint,
  versionedCollection,
  type BuildingVersion,
  type EventStore,
  type Logger,
  type MQEmitter,
  type IndexSpec,
  type ProjectionPointer,
  type ReadCollection,
  type ReadDoc,
  type ReadStore,
} from '@settle/platform';
import type { Projection } from './projection.js';
import { UnitOfWork } from './unitOfWork.js';

/** A runner that has not refreshed its heartbeat for this long is gone (crashed): its rebuild may be resumed. */
export const REBUILD_STALE_MS = 15_000;
const HEARTBEAT_MS = 1000;
const YIELD_EVERY = 500;

export class UnknownProjectionError extends Error {
  constructor(
    readonly projection: string,
    known: string[],
  ) {
    super(`unknown projection "${projection}" (known: ${known.join(', ')})`);
  }
}
/** A rebuild is running already, or there is no previous version to roll back to. */
export class ProjectionStateError extends Error {}

export interface CollectionDiff {
  collection: string;
  liveCount: number;
  rebuiltCount: number;
  /** Ids in the live version only / in the rebuilt version only (at most 20 of each listed). */
  onlyLive: string[];
  onlyRebuilt: string[];
  onlyLiveCount: number;
  onlyRebuiltCount: number;
  /** Ids present in both whose documents differ (ignoring `_position`), at most 20 listed. */
  differing: string[];
  differingCount: number;
}

export interface RebuildResult {
  projection: string;
  version: number;
  /** The version that served before (and is kept for rollback); null for a dry run. */
  previous: number | null;
  cutOver: boolean;
  events: number;
  seconds: number;
  eventsPerSecond: number;
  position: number;
  /** Dry runs only: rebuilt vs live, per collection. */
  diff?: CollectionDiff[];
}

export interface RebuildHandle {
  projection: string;
  version: number;
  resumed: boolean;
  done: Promise<RebuildResult>;
}

export interface ProjectionOperationsDeps {
  eventStore: EventStore;
  /** The raw read store (not the live-routed view): rebuilds write versions by name. */
  readStore: ReadStore;
  projections: readonly Projection[];
  logger: Logger;
  pubsub?: MQEmitter;
  /** Events read per batch (default 5000). */
  batchSize?: number;
  /**
   * Events applied between writes of the held-back changes (each followed by a checkpoint; default
   * 100 000, sooner once 10 000 documents changed): what a crash costs a resumed rebuild.
   */
  flushEvents?: number;
  /** Called after each batch (CLI progress bars). */
  onProgress?: (progress: BuildingVersion & { projection: string }) => void;
}

/**
 * Blue-green rebuilds and rollbacks of projections. A rebuild writes version n+1 of a
 * projection's collections from position 0 with plain bulk upserts (the collections are fresh
 * and this runner is their only writer), checkpointing each batch under (projection, n+1),
 * while the live projector keeps serving and updating version n. Once it has read everything
 * up to the head, the pointer is switched in one write: live n+1, previous n; anything older is
 * dropped. The live projector then continues n+1 from its checkpoint. A crash leaves the live
 * version serving; the building version is resumable from its checkpoint by starting the
 * rebuild again (after `REBUILD_STALE_MS` without a heartbeat, or at once once marked failed).
 */
export class ProjectionOperations {
  private readonly versions: ProjectionVersions;
  private readonly running = new Map<string, BuildingVersion>();
  private readonly runs = new Set<Promise<unknown>>();
  private stopping = false;

  constructor(private readonly deps: ProjectionOperationsDeps) {
    this.versions = new ProjectionVersions(deps.readStore);
  }

  get names(): string[] {
    return this.deps.projections.map((p) => p.name);
  }

  /** The stream prefixes a projection reads (its lag counts only those). */
  prefixes(name: string): string[] {
    return this.projection(name).streamPrefixes;
  }

  private projection(name: string): Projection {
    const p = this.deps.projections.find((x) => x.name === name);
    if (!p) throw new UnknownProjectionError(name, this.names);
    return p;
  }

  pointer(name: string): Promise<ProjectionPointer> {
    this.projection(name);
    return this.versions.get(name);
  }

  pointers(): Promise<Map<string, ProjectionPointer>> {
    return this.versions.getMany(this.names);
  }

  /** Progress of a rebuild this process runs (fresher than the pointer, which is written once a second). */
  localProgress(name: string): BuildingVersion | undefined {
    return this.running.get(name);
  }

  /** Starts a rebuild (or resumes a crashed one); resolves once it is registered, with `done` for the outcome. */
  async rebuild(name: string, opts: { dryRun?: boolean; actor?: string } = {}): Promise<RebuildHandle> {
    const projection = this.projection(name);
    const dryRun = opts.dryRun ?? false;
    if (this.stopping) throw new ProjectionStateError('shutting down');
    if (this.running.has(name)) throw new ProjectionStateError(`${name} is already being rebuilt by this process`);
    let resumed = false;
    let discarded: number | null = null;
    const now = new Date().toISOString();
    const pointer = await this.versions.update(name, (current) => {
      resumed = false;
      discarded = null;
      const b = current.building;
      if (b && b.state === 'running' && Date.now() - Date.parse(b.heartbeatAt) < REBUILD_STALE_MS)
        throw new ProjectionStateError(
          `${name} is already being rebuilt (version ${b.version}, at ${b.position} of ${b.headPosition})`,
        );
      let version: number;
      if (b && b.dryRun === dryRun) {
        version = b.version;
        resumed = true;
      } else {
        if (b) discarded = b.version;
        version = Math.max(current.live, current.previous ?? 0, b?.version ?? 0) + 1;
      }
      const building: BuildingVersion = {
        version,
        state: 'running',
        dryRun,
        startedAt: resumed && b ? b.startedAt : now,
        heartbeatAt: now,
        position: resumed && b ? b.position : 0,
        headPosition: resumed && b ? b.headPosition : 0,
        eventsPerSecond: 0,
        etaSeconds: null,
      };
      return { live: current.live, previous: current.previous, building };
    });
    const version = pointer.building!.version;
    this.running.set(name, pointer.building!);
    try {
      if (discarded !== null) await this.dropVersion(projection, discarded);
      if (!resumed) await this.dropVersion(projection, version);
      for (const [collection, indexes] of Object.entries(projection.collections))
        await this.deps.readStore.ensureIndexes(versionedCollection(collection, version), indexes);
      await recordOperatorAction(this.deps.eventStore, {
        action: 'ProjectionRebuildStarted',
        target: name,
        detail: { version, live: pointer.live, dryRun, resumed },
        ...(opts.actor ? { actor: opts.actor } : {}),
      });
    } catch (error) {
      this.running.delete(name);
      await this.markFailed(name, version, error);
      throw error;
    }
    this.deps.logger.info({ projection: name, version, dryRun, resumed }, 'projection rebuild started');
    const done = this.run(projection, version, dryRun, resumed, opts.actor).then(
      (result) => {
        this.running.delete(name);
        return result;
      },
      async (error: unknown) => {
        this.running.delete(name);
        this.deps.logger.error({ err: error, projection: name, version }, 'projection rebuild failed');
        await this.markFailed(name, version, error).catch(() => undefined);
        throw error;
      },
    );
    // The caller may only look at the pointer; the failure is logged and recorded there.
    const settled = done.catch(() => undefined);
    this.runs.add(settled);
    void settled.finally(() => this.runs.delete(settled));
    return { projection: name, version, resumed, done };
  }

  private async run(
    projection: Projection,
    version: number,
    dryRun: boolean,
    resumed: boolean,
    actor?: string,
  ): Promise<RebuildResult> {
    const { eventStore, readStore } = this.deps;
    const owned = new Set(Object.keys(projection.collections));
    const checkpoint = versionedCheckpoint(projection.name, version);
    const startAt = await readStore.getCheckpoint(checkpoint);
    // Not resumed: the version's collections were just dropped, so documents the cache has not seen
    // do not exist and need no read. (A resumed rebuild may have written documents past its
    // checkpoint, even at checkpoint 0: it reads what it does not know.)
    const target = new RebuildCache(
      routedReadStore(readStore, (c) => (owned.has(c) ? versionedCollection(c, version) : c)),
      !resumed,
      (at) => readStore.saveCheckpoint(checkpoint, at),
    );
    const batchSize = this.deps.batchSize ?? 5000;
    let position = startAt;
    const startPosition = position;
    const started = Date.now();
    let events = 0;
    let flushedAt = 0;
    let heartbeat = 0;
    let head = await eventStore.headPosition();
    const skipped = await this.skippedEvents(projection.name);
    // The next page is read while this one is folded (and while held-back documents are written).
    const readPage = (after: number) => {
      const page = (async () => {
        const visible = await eventStore.headPosition();
        const batch = await eventStore.readAll({ after, limit: batchSize, streamPrefixes: projection.streamPrefixes });
        return { visible, batch };
      })();
      page.catch(() => undefined);
      return page;
    };
    let next = readPage(position);
    try {
      for (;;) {
        if (this.stopping)
          throw new Error('interrupted: the process is shutting down (run the rebuild again to resume it)');
        const { visible, batch } = await next;
        if (batch.length === 0) {
          // Nothing of this projection up to what was visible: the checkpoint may move there, so the
          // live projector does not read the whole log again for a projection with few events.
          position = Math.max(position, visible);
          break;
        }
        const last = batch[batch.length - 1]!.globalPosition;
        next = readPage(last);
        const uow = new UnitOfWork(target);
        await projection.prefetch?.(batch, uow);
        for (const [i, e] of batch.entries()) {
          if (skipped.has(e.id)) continue;
          // An in-process store does all of this synchronously: let requests in now and then.
          if (i % YIELD_EVERY === YIELD_EVERY - 1) await yieldToLoop();
          try {
            await projection.apply(e, uow);
          } catch (error) {
            throw new Error(
              `${projection.name} failed on event ${e.id} (${e.type}, stream ${e.streamId}, position ${e.globalPosition}): ${(error as Error).message}`,
              { cause: error },
            );
          }
        }
        await uow.commit({ fresh: true });
        position = last;
        events += batch.length;
        if (target.wantsFlush || events - flushedAt >= (this.deps.flushEvents ?? FLUSH_EVENTS)) {
          // Written in the background while the next batches are folded; the checkpoint follows the write.
          await target.flush(position);
          flushedAt = events;
        }
        if (position > head || batch.length < batchSize) head = Math.max(position, await eventStore.headPosition());
        const seconds = Math.max(0.001, (Date.now() - started) / 1000);
        const positionRate = (position - startPosition) / seconds;
        const progress: BuildingVersion = {
          ...this.running.get(projection.name)!,
          position,
          headPosition: head,
          eventsPerSecond: Math.round(events / seconds),
          etaSeconds: positionRate > 0 ? Math.max(0, head - position) / positionRate : null,
          heartbeatAt: new Date().toISOString(),
        };
        this.running.set(projection.name, progress);
        this.deps.onProgress?.({ ...progress, projection: projection.name });
        if (Date.now() - heartbeat >= HEARTBEAT_MS) {
          heartbeat = Date.now();
          await this.saveProgress(projection.name, progress);
        }
        // Let the live projector and the API run between batches: a rebuild must not starve them.
        await yieldToLoop();
      }
      await target.flush(position, { final: true });
    } finally {
      // Interrupted or failed: a write still in flight ends (or fails) before the rebuild does.
      await target.settled();
    }
    const seconds = (Date.now() - started) / 1000;
    const summary = {
      projection: projection.name,
      version,
      events,
      seconds,
      eventsPerSecond: Math.round(events / Math.max(0.001, seconds)),
      position,
    };
    this.deps.logger.info(summary, 'projection rebuild reached the head');
    if (dryRun) {
      const live = (await this.versions.get(projection.name)).live;
      const diff = await this.diff(projection, live, version, position);
      await this.dropVersion(projection, version);
      await this.versions.update(projection.name, (current) => ({
        live: current.live,
        previous: current.previous,
        building: current.building?.version === version ? null : current.building,
      }));
      return { ...summary, previous: null, cutOver: false, diff };
    }
    let older: number | null = null;
    let previous = 0;
    await this.versions.update(projection.name, (current) => {
      if (current.building?.version !== version)
        throw new ProjectionStateError(`the rebuild of ${projection.name} v${version} was discarded meanwhile`);
      previous = current.live;
      older = current.previous !== null && current.previous !== version ? current.previous : null;
      return { live: version, previous: current.live, building: null };
    });
    this.publish(projection.name);
    if (older !== null) await this.dropVersion(projection, older);
    await recordOperatorAction(eventStore, {
      action: 'ProjectionCutOver',
      target: projection.name,
      detail: { from: previous, to: version, position, dropped: older },
      ...(actor ? { actor } : {}),
    });
    this.deps.logger.info(
      { projection: projection.name, from: previous, to: version, position },
      'projection cut over',
    );
    return { ...summary, previous, cutOver: true };
  }

  /** Interrupts running rebuilds at their next batch (marked failed: resumable) and waits for them. */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all([...this.runs]);
  }

  /** Events an operator skipped for this projection (`skipParked`): a rebuild leaves them out too. */
  private async skippedEvents(projection: string): Promise<Set<string>> {
    const ids = new Set<string>();
    for (const e of await readOperatorActions(this.deps.eventStore)) {
      if (e.data.action !== 'ParkedStreamSkipped') continue;
      const parked = (e.data.detail as { parked?: { owner?: unknown; eventId?: unknown }[] }).parked ?? [];
      for (const r of parked) if (r.owner === projection && typeof r.eventId === 'string') ids.add(r.eventId);
    }
    return ids;
  }

  /**
   * Switches back to the previous version; the version rolled back from becomes the previous one
   * (kept, not updated any more: a second rollback goes forward to it again and catches it up).
   * The live projectors continue the restored version from its own checkpoint, so it catches up
   * with what happened since it stopped serving.
   */
  async rollback(name: string, opts: { actor?: string } = {}): Promise<ProjectionPointer> {
    this.projection(name);
    let from = 0;
    const pointer = await this.versions.update(name, (current) => {
      if (current.previous === null)
        throw new ProjectionStateError(`${name} has no previous version to roll back to (live is v${current.live})`);
      from = current.live;
      return { live: current.previous, previous: current.live, building: current.building };
    });
    this.publish(name);
    await recordOperatorAction(this.deps.eventStore, {
      action: 'ProjectionRolledBack',
      target: name,
      detail: { from, to: pointer.live },
      ...(opts.actor ? { actor: opts.actor } : {}),
    });
    this.deps.logger.info({ projection: name, from, to: pointer.live }, 'projection rolled back');
    return pointer;
  }

  private publish(name: string): void {
    this.deps.pubsub?.emit({ topic: PROJECTION_VERSIONS_TOPIC, payload: name });
  }

  private async saveProgress(name: string, progress: BuildingVersion): Promise<void> {
    await this.versions.update(name, (current) => ({
      live: current.live,
      previous: current.previous,
      building: current.building?.version === progress.version ? progress : current.building,
    }));
  }

  private async markFailed(name: string, version: number, error: unknown): Promise<void> {
    await this.versions.update(name, (current) => ({
      live: current.live,
      previous: current.previous,
      building:
        current.building?.version === version
          ? { ...current.building, state: 'failed', error: (error as Error).message ?? String(error) }
          : current.building,
    }));
  }

  /** Drops a version's collections and checkpoint (never the live one). */
  private async dropVersion(projection: Projection, version: number): Promise<void> {
    const pointer = await this.versions.get(projection.name);
    if (version === pointer.live)
      throw new ProjectionStateError(`refusing to drop the live version of ${projection.name}`);
    for (const collection of Object.keys(projection.collections))
      await this.deps.readStore.collection(versionedCollection(collection, version)).drop();
    await this.deps.readStore.saveCheckpoint(versionedCheckpoint(projection.name, version), 0);
  }

  /**
   * Rebuilt vs live, per collection: counts, ids on one side only, documents that differ (ignoring
   * `_position`). Live documents changed after `position` (the rebuild's end) are not compared:
   * the live projector has simply applied more.
   */
  private async diff(
    projection: Projection,
    live: number,
    rebuilt: number,
    position: number,
  ): Promise<CollectionDiff[]> {
    const out: CollectionDiff[] = [];
    for (const collection of Object.keys(projection.collections)) {
      const a = await this.deps.readStore.collection(versionedCollection(collection, live)).find();
      const b = await this.deps.readStore.collection(versionedCollection(collection, rebuilt)).find();
      const liveDocs = new Map(a.map((d) => [d._id, d]));
      const rebuiltDocs = new Map(b.map((d) => [d._id, d]));
      const comparable = a.filter((d) => d._position <= position).map((d) => d._id);
      const onlyLive = comparable.filter((id) => !rebuiltDocs.has(id));
      const onlyRebuilt = [...rebuiltDocs.keys()].filter((id) => !liveDocs.has(id));
      const differing = comparable.filter(
        (id) => rebuiltDocs.has(id) && canonical(liveDocs.get(id)!) !== canonical(rebuiltDocs.get(id)!),
      );
      out.push({
        collection,
        liveCount: a.length,
        rebuiltCount: b.length,
        onlyLive: onlyLive.slice(0, 20),
        onlyRebuilt: onlyRebuilt.slice(0, 20),
        onlyLiveCount: onlyLive.length,
        onlyRebuiltCount: onlyRebuilt.length,
        differing: differing.slice(0, 20),
        differingCount: differing.length,
      });
    }
    return out;
  }
}

/** Documents a rebuild keeps in memory per collection (most lifecycles finish within far fewer). */
const REBUILD_CACHE_DOCS = 50_000;
/** Changed documents held back before they are written and the checkpoint moves. */
const FLUSH_DIRTY_DOCS = 10_000;
/** Events applied before the changes are written and the checkpoint moves, however few documents changed. */
const FLUSH_EVENTS = 100_000;
/** Documents per bulk write, and bulk writes in flight at once, when held-back changes are written. */
const WRITE_CHUNK = 1000;
const WRITES_IN_FLIGHT = 3;

interface CacheEntry {
  /** The document as the rebuild has folded it (null: none). */
  current: ReadDoc | null;
  /** What the store holds (null: nothing; undefined: not known). */
  stored: ReadDoc | null | undefined;
  dirty: boolean;
}

interface CollectionWrite {
  name: string;
  writes: ReadDoc[];
  stored: Map<string, ReadDoc | null>;
  deletes: string[];
}

/**
 * The rebuild's view of its fresh collections, write-behind: it is their only writer, so it keeps
 * what it folded in memory and writes changed documents only at a flush, in the background while
 * the next batches are folded, after which the checkpoint moves. A document folded several times
 * between flushes is written once, mostly as a plain insert (FerretDB takes about 0.3 ms per
 * inserted document and 6 ms per updated one). It reads only what it does not know: in a fresh
 * version a document it never saw does not exist, and it remembers which documents it wrote and
 * forgot (past `REBUILD_CACHE_DOCS`), so a large log costs no reads either.
 *
 * Every flush writes every change (no document is held back past it: a projection may read one
 * document to update another, so what is stored must be the fold up to one position), and the
 * checkpoint moves to that position once the write has landed. A crash loses the unwritten
 * changes only: the rebuild resumes at the last checkpoint, where the documents' own positions
 * skip what was written.
 */
class RebuildCache implements ReadStore {
  private readonly docs = new Map<string, Map<string, CacheEntry>>();
  /** Fresh version only: ids written and then forgotten (trimmed), per collection; the rest do not exist. */
  private readonly forgotten = new Map<string, Set<string>>();
  private readonly views = new Map<string, ReadCollection<ReadDoc>>();
  private dirtyCount = 0;
  private pending: Promise<void> | undefined;

  constructor(
    private readonly store: ReadStore,
    private readonly fresh: boolean,
    private readonly saveCheckpoint_: (position: number) => Promise<void>,
  ) {}

  get name() {
    return this.store.name;
  }
  get durable() {
    return this.store.durable;
  }

  /** Whether enough changes are held back to write them now. */
  get wantsFlush(): boolean {
    return this.dirtyCount >= FLUSH_DIRTY_DOCS;
  }

  private cache(name: string) {
    let c = this.docs.get(name);
    if (!c) this.docs.set(name, (c = new Map()));
    return c;
  }

  private knowsAbsent(name: string, id: string): boolean {
    return this.fresh && !this.forgotten.get(name)?.has(id);
  }

  private entry(name: string, id: string): CacheEntry {
    const c = this.cache(name);
    let e = c.get(id);
    if (e) {
      c.delete(id);
      c.set(id, e);
      return e;
    }
    e = { current: null, stored: this.knowsAbsent(name, id) ? null : undefined, dirty: false };
    c.set(id, e);
    return e;
  }

  private trim(name: string): void {
    const c = this.cache(name);
    if (c.size <= REBUILD_CACHE_DOCS) return;
    let forgotten = this.forgotten.get(name);
    if (!forgotten) this.forgotten.set(name, (forgotten = new Set()));
    for (const [id, e] of c) {
      if (c.size <= REBUILD_CACHE_DOCS) break;
      if (e.dirty) continue;
      c.delete(id);
      if (e.stored !== null) forgotten.add(id);
      else forgotten.delete(id);
    }
  }

  private change(name: string, id: string, doc: ReadDoc | null): void {
    const e = this.entry(name, id);
    e.current = doc;
    if (!e.dirty) this.dirtyCount++;
    e.dirty = true;
  }

  /** Waits for the write in flight, if any; rethrows its failure. */
  private async awaitPending(): Promise<void> {
    const p = this.pending;
    this.pending = undefined;
    if (p) await p;
  }

  /** Waits for the write in flight, if any, ignoring its failure (already reported, or moot). */
  async settled(): Promise<void> {
    await this.pending?.catch(() => undefined);
  }

  /**
   * Writes the held-back changes (the fold up to `position`), then moves the checkpoint there. Not
   * final: the write runs in the background (the next flush, or a read of the store, waits for it).
   */
  async flush(position: number, opts: { final?: boolean } = {}): Promise<void> {
    await this.awaitPending();
    const final = opts.final ?? false;
    const plan: CollectionWrite[] = [];
    for (const [name, c] of this.docs) {
      const w: CollectionWrite = { name, writes: [], stored: new Map(), deletes: [] };
      for (const [id, e] of c) {
        if (!e.dirty) continue;
        if (e.current) {
          w.writes.push(e.current);
          if (e.stored !== undefined) w.stored.set(id, e.stored);
        } else if (e.stored !== null) w.deletes.push(id);
        // What the store will hold once this write lands (a later read of the store waits for it).
        e.stored = e.current;
        e.dirty = false;
      }
      if (w.writes.length > 0 || w.deletes.length > 0) plan.push(w);
      this.trim(name);
    }
    this.dirtyCount = 0;
    const work = this.write(plan).then(() => this.saveCheckpoint_(position));
    if (final) return work;
    work.catch(() => undefined);
    this.pending = work;
  }

  /** The planned writes, `WRITES_IN_FLIGHT` bulks of `WRITE_CHUNK` documents at a time. */
  private async write(plan: CollectionWrite[]): Promise<void> {
    const jobs: (() => Promise<void>)[] = [];
    for (const w of plan) {
      const inner = this.store.collection(w.name);
      for (let i = 0; i < w.writes.length; i += WRITE_CHUNK) {
        const docs = w.writes.slice(i, i + WRITE_CHUNK);
        jobs.push(() => inner.replaceMany(docs, w.stored));
      }
      if (w.deletes.length > 0) jobs.push(() => inner.deleteMany(w.deletes));
    }
    let next = 0;
    const worker = async () => {
      while (next < jobs.length) await jobs[next++]!();
    };
    await Promise.all(Array.from({ length: Math.min(WRITES_IN_FLIGHT, jobs.length) }, worker));
  }

  collection<T extends ReadDoc>(name: string): ReadCollection<T> {
    let view = this.views.get(name);
    if (!view) this.views.set(name, (view = this.view(name)));
    return view as unknown as ReadCollection<T>;
  }

  /**
   * One view per collection: a projection asks for it for every document it touches. The store's
   * own collection is asked for only when the store is used (it may follow a reconnected client).
   */
  private view<T extends ReadDoc>(name: string): ReadCollection<T> {
    const inner = () => this.store.collection<T>(name);
    const c = this.cache(name);
    const getMany = async (ids: string[]): Promise<Map<string, T>> => {
      const out = new Map<string, T>();
      const missing: string[] = [];
      for (const id of new Set(ids)) {
        const e = c.get(id);
        if (e && (e.stored !== undefined || e.dirty)) {
          if (e.current) out.set(id, structuredClone(e.current) as T);
        } else if (!this.knowsAbsent(name, id)) missing.push(id);
      }
      if (missing.length > 0) {
        // The store must hold what was last flushed before it is read.
        await this.awaitPending();
        const found = await inner().getMany(missing);
        for (const id of missing) {
          const d = found.get(id) ?? null;
          const e = this.entry(name, id);
          e.current = d;
          e.stored = d;
          if (d) out.set(id, d);
        }
      }
      return out;
    };
    return {
      get: async (id) => (await getMany([id])).get(id) ?? null,
      getMany,
      putMany: (docs, stored) => inner().putMany(docs, stored),
      replaceMany: async (docs) => {
        for (const d of docs) this.change(name, d._id, d);
      },
      deleteMany: async (ids) => {
        for (const id of ids) this.change(name, id, null);
      },
      find: (opts) => inner().find(opts),
      count: (filter) => inner().count(filter),
      drop: () => inner().drop(),
    };
  }

  ensureIndexes(collection: string, indexes: IndexSpec[]) {
    return this.store.ensureIndexes(collection, indexes);
  }
  getCheckpoint(name: string) {
    return this.store.getCheckpoint(name);
  }
  saveCheckpoint(name: string, position: number) {
    return this.store.saveCheckpoint(name, position);
  }
  ping() {
    return this.store.ping();
  }
  close() {
    return this.store.close();
  }
}

/** A document as comparable JSON: keys sorted, `_position` left out. */
function canonical(doc: ReadDoc): string {
  const sort = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(sort)
      : v !== null && typeof v === 'object'
        ? Object.fromEntries(
            Object.keys(v)
              .filter((k) => k !== '_position')
              .sort()
              .map((k) => [k, sort((v as Record<string, unknown>)[k])]),
          )
        : v;
  return JSON.stringify(sort(doc));
}
