import type { StoredEvent } from '@settle/domain';
import {
  createRetryBackoff,
  readOperatorActions,
  REQUEST_UPDATED_TOPIC,
  routedReadStore,
  versionedCheckpoint,
  versionedCollection,
  type Cache,
  type EventStore,
  type Logger,
  type Metrics,
  type MQEmitter,
  type ReadStore,
  type Subscription,
} from '@settle/platform';
import { CRASH_LOOP_ATTEMPTS, decodeMarker, encodeMarker, type AttemptMarker } from './attempts.js';
import { errorText, newParkedDoc, PARKED_STREAMS, parkedId, type ParkedStreamDoc } from './parking.js';
import { LiveVersions, nothingToReadUpTo, READER_SWITCH_WAIT_MS } from './liveVersions.js';
import type { Projection } from './projection.js';
import { REQUESTS, type RequestDoc } from './requests.js';
import { isReadStoreFailure, UnitOfWork } from './unitOfWork.js';

export interface ProjectorDeps {
  eventStore: EventStore;
  readStore: ReadStore;
  logger: Logger;
  metrics?: Metrics;
  pubsub?: MQEmitter;
  cache?: Cache;
  batchSize?: number;
  /** Longest a batch may take before the projector gives up on it (a hang counts as a crash). */
  batchTimeoutMs?: number;
  /** Times the process may die or hang on one event before its stream is parked. */
  crashLoopAttempts?: number;
  /** How often operator requests on parked streams are looked for while any stream is parked. */
  parkedPollMs?: number;
  /** Live versions as this process knows them (one is created over `readStore` if not given). */
  versions?: LiveVersions;
}

export interface ProjectorStatus {
  name: string;
  /** The version this projector applies events to (the live one). */
  version: number;
  position: number;
  headPosition: number;
  lagEvents: number;
  /** Seconds the oldest event this projection has not applied has been waiting; 0 when caught up. */
  lagSeconds: number;
  state: 'catching_up' | 'live' | 'stopped' | 'failed';
}

/**
 * Runs projections over the global log: one subscription from the lowest checkpoint, each
 * projection skipping what its own checkpoint covers. A batch's documents are written, then
 * the checkpoints; a crash in between replays the batch, which the position guards make
 * harmless. After a commit, changed requests are published (GraphQL subscriptions) and their
 * cache entries dropped.
 */
/** Longest a batch may take before the projector gives up on it and resubscribes. */
const BATCH_TIMEOUT_MS = 60_000;

/**
 * After a batch that never finished, this many events go one at a time (each counted, each
 * checkpointed), then batches again. A poison event further into the crashed batch is reached by
 * the next death, whose batch marker starts past this window: its stream is parked after at most
 * one more death per window, while a plain kill -9 costs a recovering projector only this many
 * single-event writes instead of a whole batch's (5000 round trips to MongoDB took the read
 * models tens of seconds to catch up after a restart).
 */
const CAREFUL_EVENTS = 32;

/** Idle time after a batch before its attempt marker is cleared (memory read stores; see `clearMarkerSoon`). */
const MARKER_CLEAR_IDLE_MS = 100;

/** A projection threw on an event: its stream gets parked for that projection. */
class ApplyFailure extends Error {
  constructor(
    readonly projection: Projection,
    readonly event: StoredEvent,
    override readonly cause: unknown,
  ) {
    super(errorText(cause));
  }
}

/** Events applied together: a batch (one attempt marker), known-good events, or one event in careful mode. */
interface Chunk {
  events: StoredEvent[];
  mode: 'batch' | 'known' | 'event';
}

export class Projector {
  private subscription?: Subscription;
  private readonly checkpoints = new Map<string, number>();
  private position = 0;
  private head = 0;
  private state: ProjectorStatus['state'] = 'stopped';
  private readonly waiters = new Set<{ position: number; resolve(): void }>();
  private restartTimer?: NodeJS.Timeout;
  /** Between restarts after a failure (a read store outage): 1 s growing to 30 s, reset by a saved batch. */
  private readonly restartBackoff = createRetryBackoff(1000, 30_000);
  private lagTimer?: NodeJS.Timeout;
  private clearTimer?: NodeJS.Timeout;
  private stopping = false;
  private caughtUpOnce = false;
  private caughtUp!: Promise<void>;
  private markCaughtUp!: () => void;
  /** Parked records of this projector's projections, by `<projection>|<streamId>` (mirrors the read store). */
  private readonly parked = new Map<string, ParkedStreamDoc>();
  /** `<projection>|<eventId>` an operator skipped (from the audit trail, so a rebuild skips them too). */
  private readonly skipped = new Set<string>();
  /** The last attempt written down before applying (see `attempts.ts`). */
  private marker?: AttemptMarker;
  /** After a batch that never finished (a crash or a hang): apply the next events one at a time. */
  private careful?: { after: number; remaining: number };
  private lock: Promise<unknown> = Promise.resolve();
  private parkedTimer?: NodeJS.Timeout;
  /** The version of each projection this projector writes; changes only between subscriptions. */
  private readonly applied = new Map<string, number>();
  private readonly owner = new Map<string, string>();
  readonly versions: LiveVersions;
  private readonly ownsVersions: boolean;
  private switching: Promise<void> = Promise.resolve();
  /**
   * Version switches announced and not finished: readers already see the new live version while
   * `position` still says how far the old one got, so it must not answer "projected up to …".
   */
  private switchesPending = 0;
  private unwatch?: () => void;

  constructor(
    private readonly projections: Projection[],
    private readonly deps: ProjectorDeps,
    readonly name = 'readModels',
  ) {
    this.caughtUp = new Promise((r) => (this.markCaughtUp = () => ((this.caughtUpOnce = true), r())));
    this.ownsVersions = deps.versions === undefined;
    this.versions =
      deps.versions ??
      new LiveVersions(deps.readStore, projections, {
        ...(deps.pubsub ? { pubsub: deps.pubsub } : {}),
        logger: deps.logger,
      });
    for (const p of projections) for (const c of Object.keys(p.collections)) this.owner.set(c, p.name);
  }

  /** The read store as this projector writes it: each read model at the version it applies. */
  private target(): ReadStore {
    return routedReadStore(this.deps.readStore, (c) => {
      const p = this.owner.get(c);
      return p === undefined ? c : versionedCollection(c, this.applied.get(p) ?? 1);
    });
  }

  /** Takes the live version of each projection, with its indexes and its checkpoint. */
  private async loadVersions(): Promise<void> {
    const { readStore } = this.deps;
    for (const p of this.projections) {
      const version = this.versions.version(p.name);
      this.applied.set(p.name, version);
      for (const [collection, indexes] of Object.entries(p.collections))
        await readStore.ensureIndexes(versionedCollection(collection, version), indexes);
      this.checkpoints.set(p.name, await readStore.getCheckpoint(versionedCheckpoint(p.name, version)));
    }
  }

  async start(): Promise<void> {
    await this.versions.start();
    await this.loadVersions();
    // A cutover or rollback (here or elsewhere): finish the batch in hand, then continue the new
    // live version from its own checkpoint.
    // Readers in this process stay on the version they read until the new live one has caught up
    // to where it was: a cutover (or rollback) never makes documents disappear for them.
    this.versions.holdReadersUntil(async (projection, version) => {
      const target = this.position;
      await new Promise((r) => setImmediate(r)); // the switch below is announced by then
      await this.switching;
      if (!(await this.waitFor(target, READER_SWITCH_WAIT_MS)))
        this.deps.logger.warn(
          { projector: this.name, projection, version, position: this.position, target },
          'the new live version did not catch up in time; readers switch to it anyway',
        );
    });
    this.unwatch = this.versions.onChange(() => {
      this.switchesPending++;
      this.switching = this.switching
        .then(() => this.switchVersions())
        .catch((error: unknown) =>
          this.deps.logger.error({ err: error, projector: this.name }, 'switching versions failed'),
        )
        .finally(() => {
          this.switchesPending--;
          this.resolveWaiters();
        });
    });
    this.position = Math.min(...this.checkpoints.values());
    await this.loadParking();
    this.head = await this.deps.eventStore.headPosition();
    // The head may be an event no projection reads (a client-… stream, say): the filtered
    // subscription never delivers it, so "position reached the head" alone would never come.
    const caughtUp = this.position >= this.head || (await this.nothingToProjectUpTo(this.head));
    if (caughtUp) this.markCaughtUp();
    this.state = caughtUp ? 'live' : 'catching_up';
    this.subscribe();
  }

  /** Resolves once the projector has applied everything that was in the log when it started. */
  whenCaughtUp(): Promise<void> {
    return this.caughtUp;
  }

  /** True once the start-up catch-up is done (readiness). */
  get isCaughtUp(): boolean {
    return this.state === 'live' || this.caughtUpOnce;
  }

  private get prefixes(): string[] {
    return [...new Set(this.projections.flatMap((p) => p.streamPrefixes))];
  }

  private async switchVersions(): Promise<void> {
    if (this.stopping) return;
    const before = new Map(this.applied);
    const sub = this.subscription;
    this.subscription = undefined;
    clearTimeout(this.restartTimer);
    await sub?.stop();
    if (this.stopping) return;
    await this.exclusive(() => this.loadVersions());
    if (this.stopping) return;
    // May go backwards: a rollback continues an older version from its own checkpoint.
    this.position = Math.min(...this.checkpoints.values());
    this.deps.logger.info(
      {
        projector: this.name,
        versions: Object.fromEntries([...this.applied].map(([p, v]) => [p, `${before.get(p)}→${v}`])),
        position: this.position,
      },
      'projector continues the live versions from their checkpoints',
    );
    this.subscribe();
  }

  private subscribe(): void {
    const prefixes = this.prefixes;
    const sub = this.deps.eventStore.subscribe((batch) => this.handleWithin(batch, this.batchTimeoutMs), {
      after: this.position,
      batchSize: this.deps.batchSize ?? 5000,
      streamPrefixes: prefixes,
    });
    this.subscription = sub;
    sub.failed.catch((error: unknown) => {
      if (this.stopping || this.subscription !== sub) return;
      this.state = 'failed';
      const retryInMs = this.restartBackoff.next();
      this.deps.logger.error(
        { err: error, projector: this.name, position: this.position, retryInMs },
        'projection failed; retrying',
      );
      this.restartTimer = setTimeout(() => {
        if (this.stopping || this.subscription !== sub) return;
        this.state = 'catching_up';
        this.subscribe();
      }, retryInMs);
    });
  }

  /**
   * A batch that neither finishes nor fails (a read store that stopped answering) must not freeze
   * the projector while it reports itself live: past the bound, the subscription fails and is
   * started again from the last checkpointed position (the guards make the replay harmless).
   */
  private handleWithin(batch: StoredEvent[], ms: number): Promise<void> {
    return this.exclusive(() => {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          // A hang is treated like a crash: the next attempts go one event at a time, each counted.
          this.careful = { after: this.position, remaining: CAREFUL_EVENTS };
          reject(new Error(`a projection batch took longer than ${ms} ms`));
        }, ms);
      });
      return Promise.race([this.handle(batch), timeout]).finally(() => clearTimeout(timer));
    });
  }

  /** Batches and operator requests on parked streams run one at a time (a timed-out batch lets go). */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(fn, fn);
    this.lock = run.catch(() => undefined);
    return run;
  }

  private get batchTimeoutMs(): number {
    return this.deps.batchTimeoutMs ?? BATCH_TIMEOUT_MS;
  }

  private get markerName(): string {
    return `${this.name}:attempt`;
  }

  private async handle(batch: StoredEvent[]): Promise<void> {
    // The batch's first event is the oldest one not applied yet: lag as it stands, for free.
    // (The head is the last one seen, not re-read: no extra query on the hot path.)
    this.setLagGauges(batch[0]!, Math.max(this.head, batch[batch.length - 1]!.globalPosition));
    const last = batch[batch.length - 1]!.globalPosition;
    const touchedById = new Map<string, RequestDoc>();
    const touchedIds = new Set<string>();
    for (const chunk of this.plan(batch)) {
      if (chunk.mode === 'batch') await this.beginBatch(chunk.events);
      if (chunk.mode === 'event' && !(await this.beginEvent(chunk.events[0]!))) {
        await this.saveCheckpoints(chunk.events[0]!.globalPosition);
        continue;
      }
      const uow = await this.applyChunk(chunk.events);
      // Touched, not just changed: after a crash between the writes and the checkpoint, the replayed
      // batch changes nothing, yet its cache entries still need dropping and its updates publishing.
      const ids = uow.touched(REQUESTS);
      const docs = uow.current(REQUESTS, ids) as RequestDoc[];
      for (const id of ids) touchedIds.add(id);
      for (const doc of docs) touchedById.set(doc._id, doc);
      // One event at a time, each one checkpointed: a restart resumes at the event that stopped it.
      if (chunk.mode === 'event') {
        await this.invalidate(ids.map((id) => `request:${id}`));
        await this.saveCheckpoints(chunk.events[0]!.globalPosition);
      }
    }
    // A memory read store starts from 0 after a restart: only a marker still there means "unfinished".
    if (!this.deps.readStore.durable && this.marker) this.clearMarkerSoon();
    const touched = [...touchedById.values()];
    // Removed documents (archived requests) are touched too: their cache entries must go.
    const keys = [...touchedIds].map((id) => `request:${id}`);
    // Dropped before the checkpoint moves (a crash in between replays the batch and drops them
    // again) and once more after the position moves (a reader that loaded the old document
    // while we wrote checks the position before trusting what it cached).
    await this.invalidate(keys);
    await this.saveCheckpoints(last);
    if (last > this.head) this.head = last;
    if (keys.length > 0) {
      await this.invalidate(keys);
      if (this.state === 'live' && this.deps.pubsub)
        for (const doc of touched) this.deps.pubsub.emit({ topic: REQUEST_UPDATED_TOPIC, payload: doc });
    }
    if (this.state === 'catching_up' && (this.position >= this.head || (await this.nothingToProjectUpTo(this.head)))) {
      this.state = 'live';
      this.markCaughtUp();
      this.deps.logger.info({ projector: this.name, position: this.position }, 'projections caught up');
    }
    for (const p of this.projections) this.deps.metrics?.projectionPosition.set({ projection: p.name }, this.position);
    this.scheduleLagRefresh();
    this.resolveWaiters();
  }

  /** Read-your-writes waiters whose position the live versions have reached. */
  private resolveWaiters(): void {
    if (this.switchesPending > 0) return;
    for (const w of this.waiters)
      if (w.position <= this.position) {
        this.waiters.delete(w);
        w.resolve();
      }
  }

  /** How far the live versions are projected; undefined while a version switch is under way. */
  private get projectedTo(): number | undefined {
    return this.switchesPending > 0 ? undefined : this.position;
  }

  private async saveCheckpoints(last: number): Promise<void> {
    for (const p of this.projections) {
      if ((this.checkpoints.get(p.name) ?? 0) >= last) continue;
      await this.deps.readStore.saveCheckpoint(versionedCheckpoint(p.name, this.applied.get(p.name) ?? 1), last);
      this.checkpoints.set(p.name, last);
    }
    // Never backwards: a batch abandoned by the watchdog may still finish after newer ones.
    this.position = Math.max(this.position, last);
    this.restartBackoff.reset();
  }

  /**
   * Applies events to every projection in one unit of work. A projection that throws parks the
   * event's stream for itself, and the whole chunk is applied again from scratch without that
   * stream (nothing of the failed attempt was written: no other stream's event is lost or applied
   * twice). A read-store failure is not the event's fault: it fails the batch, which is retried.
   */
  private async applyChunk(events: StoredEvent[]): Promise<UnitOfWork> {
    for (;;) {
      const uow = new UnitOfWork(this.target());
      try {
        for (const p of this.projections) {
          const selected = events.filter((e) => this.applies(p, e));
          if (selected.length === 0) continue;
          await p.prefetch?.(selected, uow);
          for (const e of selected)
            try {
              await p.apply(e, uow);
            } catch (error) {
              if (isReadStoreFailure(error)) throw error;
              throw new ApplyFailure(p, e, error);
            }
        }
        await uow.commit();
        return uow;
      } catch (error) {
        if (!(error instanceof ApplyFailure)) throw error;
        await this.park(error.projection, error.event, error.cause, 1);
      }
    }
  }

  /** Whether `p` applies `e` now: not covered by its checkpoint, its stream not parked there, not skipped. */
  private applies(p: Projection, e: StoredEvent): boolean {
    if (e.globalPosition <= (this.checkpoints.get(p.name) ?? 0)) return false;
    if (!p.streamPrefixes.some((s) => e.streamId.startsWith(s))) return false;
    if (this.skipped.has(`${p.name}|${e.id}`)) return false;
    const parked = this.parked.get(parkedId(p.name, e.streamId));
    return parked === undefined || e.globalPosition < parked.position;
  }

  private get parkedRecords() {
    return this.deps.readStore.collection<ParkedStreamDoc>(PARKED_STREAMS);
  }

  /** Parks `event`'s stream for `p`: the record first, so a crash right after still holds the stream. */
  private async park(p: Projection, event: StoredEvent, error: unknown, attempts: number): Promise<void> {
    const id = parkedId(p.name, event.streamId);
    const doc = newParkedDoc(p.name, event, errorText(error), attempts, this.parked.get(id));
    await this.parkedRecords.putMany([doc]);
    this.parked.set(id, doc);
    this.setParkedGauges();
    this.deps.logger.error(
      {
        err: error,
        projector: this.name,
        projection: p.name,
        streamId: event.streamId,
        eventId: event.id,
        type: event.type,
        position: event.globalPosition,
        attempts,
      },
      'projection failed on an event: stream parked (its later events wait; other streams go on)',
    );
  }

  private setParkedGauges(): void {
    for (const p of this.projections) {
      let n = 0;
      for (const doc of this.parked.values()) if (doc.projection === p.name) n++;
      this.deps.metrics?.parkedStreams.set({ projection: p.name }, n);
    }
  }

  /** Parked records, skipped events and the last attempt marker, at start. */
  private async loadParking(): Promise<void> {
    const names = new Set(this.projections.map((p) => p.name));
    this.parked.clear();
    for (const doc of await this.parkedRecords.find({})) if (names.has(doc.projection)) this.parked.set(doc._id, doc);
    for (const e of await readOperatorActions(this.deps.eventStore)) {
      if (e.data.action !== 'ParkedStreamSkipped') continue;
      const parked = (e.data.detail as { parked?: { owner?: unknown; eventId?: unknown }[] }).parked ?? [];
      for (const r of parked)
        if (typeof r.owner === 'string' && typeof r.eventId === 'string') this.skipped.add(`${r.owner}|${r.eventId}`);
    }
    const marker = decodeMarker(await this.deps.eventStore.getCheckpoint(this.markerName));
    const unfinished =
      marker !== undefined &&
      (!this.deps.readStore.durable ||
        (marker.kind === 'batch' ? this.position <= marker.position : this.position < marker.position));
    if (marker && unfinished) {
      this.marker = marker;
      this.careful = {
        after: marker.kind === 'batch' ? marker.position : marker.position - 1,
        remaining: CAREFUL_EVENTS,
      };
      this.deps.logger.warn(
        { projector: this.name, marker },
        'the last projection attempt did not finish (crash or hang): applying the next events one at a time',
      );
    }
    this.setParkedGauges();
    clearInterval(this.parkedTimer);
    this.parkedTimer = setInterval(() => void this.carryOutRequests(), this.deps.parkedPollMs ?? 500);
    this.parkedTimer.unref();
  }

  /** Splits a batch: in careful mode, events past the unfinished attempt go one at a time. */
  private plan(batch: StoredEvent[]): Chunk[] {
    const careful = this.careful;
    if (!careful) return [{ events: batch, mode: 'batch' }];
    const chunks: Chunk[] = [];
    const known = batch.filter((e) => e.globalPosition <= careful.after);
    if (known.length > 0) chunks.push({ events: known, mode: 'known' });
    let rest = batch.filter((e) => e.globalPosition > careful.after);
    while (rest.length > 0 && careful.remaining > 0) {
      chunks.push({ events: [rest[0]!], mode: 'event' });
      rest = rest.slice(1);
      careful.remaining--;
    }
    if (careful.remaining <= 0) this.careful = undefined;
    if (rest.length > 0) chunks.push({ events: rest, mode: 'batch' });
    return chunks;
  }

  /**
   * Clears the marker of a finished batch once the projector has been idle a moment: under load
   * the next batch's own marker replaces it, so a batch costs one marker write instead of two.
   * A death inside that moment leaves a finished batch's marker behind; the restart then takes the
   * next events one at a time (careful mode), which is slower but counts no attempt against them.
   */
  private clearMarkerSoon(): void {
    clearTimeout(this.clearTimer);
    this.clearTimer = setTimeout(() => {
      void this.exclusive(async () => {
        if (this.marker && !this.stopping) await this.writeMarker(undefined);
      }).catch((error: unknown) =>
        this.deps.logger.warn({ err: error, projector: this.name }, 'could not clear the attempt marker; will retry'),
      );
    }, MARKER_CLEAR_IDLE_MS);
    this.clearTimer.unref();
  }

  private async writeMarker(marker: AttemptMarker | undefined): Promise<void> {
    if (marker) clearTimeout(this.clearTimer);
    await this.deps.eventStore.saveCheckpoint(this.markerName, marker ? encodeMarker(marker) : 0);
    this.marker = marker;
  }

  private async beginBatch(events: StoredEvent[]): Promise<void> {
    const position = events[0]!.globalPosition - 1;
    const m = this.marker;
    const attempts = m?.kind === 'batch' && m.position === position ? m.attempts + 1 : 1;
    await this.writeMarker({ kind: 'batch', position, attempts });
  }

  /**
   * Counts an attempt at one event before applying it; past the limit the process died (or hung)
   * on it every time: its stream is parked in every projection that would apply it, unapplied.
   */
  private async beginEvent(event: StoredEvent): Promise<boolean> {
    const targets = this.projections.filter((p) => this.applies(p, event));
    if (targets.length === 0) return true;
    const m = this.marker;
    const attempts = m?.kind === 'event' && m.position === event.globalPosition ? m.attempts + 1 : 1;
    const limit = this.deps.crashLoopAttempts ?? CRASH_LOOP_ATTEMPTS;
    if (attempts > limit) {
      const error = new Error(
        `the projector stopped ${limit} times while applying this event (a crash, e.g. out of memory, or a hang longer than ${this.batchTimeoutMs} ms)`,
      );
      for (const p of targets) await this.park(p, event, error, limit);
      return false;
    }
    await this.writeMarker({ kind: 'event', position: event.globalPosition, attempts });
    return true;
  }

  /** Carries out operator requests (`retryParked`/`skipParked`) written to the parked records. */
  private async carryOutRequests(): Promise<void> {
    if (this.parked.size === 0 || this.stopping) return;
    await this.exclusive(async () => {
      const requested = await this.parkedRecords.find({ filter: { requestId: { $exists: true } } });
      for (const doc of requested) if (this.parked.has(doc._id)) await this.carryOut(doc);
    }).catch((error: unknown) =>
      this.deps.logger.warn(
        { err: error, projector: this.name },
        'could not carry out parked-stream requests; will retry',
      ),
    );
  }

  /**
   * Re-applies a parked stream's held events in order, from the failed one (retry) or the one
   * after it (skip), each committed on its own; unparks when all went through, or parks again at
   * the event that failed (with its error). Events past the checkpoint arrive through the
   * subscription once the stream is unparked.
   */
  private async carryOut(doc: ParkedStreamDoc): Promise<void> {
    const p = this.projections.find((x) => x.name === doc.projection);
    if (!p) return;
    const upTo = this.checkpoints.get(p.name) ?? 0;
    const held = (await this.deps.eventStore.readStream(doc.streamId)).filter(
      (e) => e.globalPosition >= doc.position && e.globalPosition <= upTo,
    );
    if (doc.requestAction === 'skip') this.skipped.add(`${p.name}|${doc.eventId}`);
    const log = { projector: this.name, projection: p.name, streamId: doc.streamId, by: doc.requestedBy };
    for (const e of held) {
      if (this.skipped.has(`${p.name}|${e.id}`)) continue;
      const uow = new UnitOfWork(this.target());
      try {
        await p.prefetch?.([e], uow);
        await p.apply(e, uow);
      } catch (error) {
        if (isReadStoreFailure(error)) throw error;
        const attempts = e.id === doc.eventId ? doc.attempts + 1 : 1;
        const next: ParkedStreamDoc = {
          ...newParkedDoc(p.name, e, errorText(error), attempts, doc),
          ...(doc.requestId ? { outcomeRequestId: doc.requestId } : {}),
          outcomeError: errorText(error),
        };
        await this.parkedRecords.putMany([next]);
        this.parked.set(doc._id, next);
        this.deps.logger.warn(
          { ...log, err: error, eventId: e.id, position: e.globalPosition, action: doc.requestAction },
          'parked stream failed again: it stays parked',
        );
        return;
      }
      await uow.commit();
      const touched = uow.current(REQUESTS, uow.touched(REQUESTS)) as RequestDoc[];
      await this.invalidate(touched.map((d) => `request:${d._id}`));
      if (this.deps.pubsub)
        for (const t of touched) this.deps.pubsub.emit({ topic: REQUEST_UPDATED_TOPIC, payload: t });
    }
    await this.parkedRecords.deleteMany([doc._id]);
    this.parked.delete(doc._id);
    this.setParkedGauges();
    this.deps.logger.info(
      { ...log, action: doc.requestAction, applied: held.length },
      'parked stream unparked: its events flow again',
    );
  }

  private async invalidate(keys: string[]): Promise<void> {
    if (keys.length === 0 || !this.deps.cache) return;
    try {
      await this.deps.cache.delete(keys);
    } catch (error) {
      this.deps.logger.warn({ err: error }, 'cache invalidation failed; entries expire with their TTL');
    }
  }

  /** Waits until the read models include `position` (read-your-writes); false on timeout. */
  async waitFor(position: number, timeoutMs: number): Promise<boolean> {
    const reached = async () => {
      const at = this.projectedTo;
      return at !== undefined && (position <= at || (await this.nothingToProjectUpTo(position)));
    };
    if (await reached()) return true;
    const deadline = Date.now() + timeoutMs;
    // Events of streams no projection reads never move the position: re-check the log now and then.
    const poll = async (): Promise<boolean> => {
      while (Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
        if (await reached()) return true;
      }
      return false;
    };
    return Promise.race([poll(), this.waitForPosition(position, timeoutMs)]);
  }

  /** True when every event up to `position` is visible and none of them is for these projections beyond ours. */
  private nothingToProjectUpTo(position: number): Promise<boolean> {
    return nothingToReadUpTo(this.deps.eventStore, this.position, position, this.prefixes);
  }

  private waitForPosition(position: number, timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const waiter = { position, resolve: () => (clearTimeout(timer), resolve(true)) };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        resolve(false);
      }, timeoutMs);
      this.waiters.add(waiter);
    });
  }

  async status(): Promise<ProjectorStatus[]> {
    const head = await this.deps.eventStore.headPosition();
    const upToDate = await this.nothingToProjectUpTo(head);
    const now = Date.now();
    return Promise.all(
      this.projections.map(async (p) => {
        // Not started here (a query-only process): the live version's checkpoint, from the store.
        const position =
          this.checkpoints.get(p.name) ??
          (await this.deps.readStore.getCheckpoint(versionedCheckpoint(p.name, this.versions.version(p.name))));
        // The filtered log may end before the global head: a projection that has read all its events is not behind.
        const [next] = upToDate
          ? []
          : await this.deps.eventStore.readAll({ after: position, limit: 1, streamPrefixes: p.streamPrefixes });
        const behind = next !== undefined && next.globalPosition <= head;
        const lagEvents = behind ? Math.max(0, head - position) : 0;
        const lagSeconds = behind ? ageSeconds(next, now) : 0;
        this.deps.metrics?.projectionLagEvents.set({ projection: p.name }, lagEvents);
        this.deps.metrics?.projectionLagSeconds.set({ projection: p.name }, lagSeconds);
        return {
          name: p.name,
          version: this.applied.get(p.name) ?? this.versions.version(p.name),
          position,
          headPosition: head,
          lagEvents,
          lagSeconds,
          state: this.state,
        };
      }),
    );
  }

  /** Lag gauges from the oldest event not applied yet (every projection of a batch shares it). */
  private setLagGauges(next: StoredEvent, head: number): void {
    const metrics = this.deps.metrics;
    if (!metrics) return;
    const lagEvents = Math.max(0, head - next.globalPosition + 1);
    const lagSeconds = ageSeconds(next, Date.now());
    for (const p of this.projections) {
      metrics.projectionLagEvents.set({ projection: p.name }, lagEvents);
      metrics.projectionLagSeconds.set({ projection: p.name }, lagSeconds);
    }
  }

  /**
   * After a batch, the gauges are refreshed from the log at most once a second (a read per
   * projection), so they fall to 0 once the projector is idle and caught up.
   */
  private scheduleLagRefresh(): void {
    if (!this.deps.metrics || this.lagTimer || this.stopping) return;
    this.lagTimer = setTimeout(() => {
      this.lagTimer = undefined;
      if (this.stopping) return;
      this.status().catch((error: unknown) =>
        this.deps.logger.debug({ err: error, projector: this.name }, 'lag refresh failed'),
      );
    }, 1000);
    this.lagTimer.unref();
  }

  get currentPosition(): number {
    return this.position;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.versions.holdReadersUntil(undefined);
    this.unwatch?.();
    if (this.ownsVersions) this.versions.stop();
    clearTimeout(this.restartTimer);
    clearInterval(this.parkedTimer);
    await this.switching;
    clearTimeout(this.lagTimer);
    await this.subscription?.stop();
    // A clean stop leaves no marker of a finished batch behind (the next start needs no care).
    clearTimeout(this.clearTimer);
    await this.exclusive(async () => {
      if (!this.deps.readStore.durable && this.marker) await this.writeMarker(undefined);
    }).catch((error: unknown) =>
      this.deps.logger.warn({ err: error, projector: this.name }, 'could not clear the attempt marker'),
    );
    this.state = 'stopped';
  }
}

function ageSeconds(event: StoredEvent, now: number): number {
  return Math.max(0, (now - Date.parse(event.occurredAt)) / 1000);
}
