import type { StoredEvent } from '@settle/domain';
import {
  REQUEST_UPDATED_TOPIC,
  type Cache,
  type EventStore,
  type Logger,
  type Metrics,
  type MQEmitter,
  type ReadStore,
  type Subscription,
} from '@settle/platform';
import type { Projection } from './projection.js';
import { REQUESTS, type RequestDoc } from './requests.js';
import { UnitOfWork } from './unitOfWork.js';

export interface ProjectorDeps {
  eventStore: EventStore;
  readStore: ReadStore;
  logger: Logger;
  metrics?: Metrics;
  pubsub?: MQEmitter;
  cache?: Cache;
  batchSize?: number;
}

export interface ProjectorStatus {
  name: string;
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

export class Projector {
  private subscription?: Subscription;
  private readonly checkpoints = new Map<string, number>();
  private position = 0;
  private head = 0;
  private state: ProjectorStatus['state'] = 'stopped';
  private readonly waiters = new Set<{ position: number; resolve(): void }>();
  private restartTimer?: NodeJS.Timeout;
  private lagTimer?: NodeJS.Timeout;
  private stopping = false;
  private caughtUpOnce = false;
  private caughtUp!: Promise<void>;
  private markCaughtUp!: () => void;

  constructor(
    private readonly projections: Projection[],
    private readonly deps: ProjectorDeps,
    readonly name = 'readModels',
  ) {
    this.caughtUp = new Promise((r) => (this.markCaughtUp = () => ((this.caughtUpOnce = true), r())));
  }

  async start(): Promise<void> {
    const { readStore } = this.deps;
    for (const p of this.projections) {
      for (const [collection, indexes] of Object.entries(p.collections))
        await readStore.ensureIndexes(collection, indexes);
      this.checkpoints.set(p.name, await readStore.getCheckpoint(p.name));
    }
    this.position = Math.min(...this.checkpoints.values());
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

  private subscribe(): void {
    const prefixes = this.prefixes;
    const sub = this.deps.eventStore.subscribe((batch) => this.handleWithin(batch, BATCH_TIMEOUT_MS), {
      after: this.position,
      batchSize: this.deps.batchSize ?? 5000,
      streamPrefixes: prefixes,
    });
    this.subscription = sub;
    sub.failed.catch((error: unknown) => {
      if (this.stopping) return;
      this.state = 'failed';
      this.deps.logger.error(
        { err: error, projector: this.name, position: this.position },
        'projection failed; retrying',
      );
      this.restartTimer = setTimeout(() => {
        if (this.stopping) return;
        this.state = 'catching_up';
        this.subscribe();
      }, 1000);
    });
  }

  /**
   * A batch that neither finishes nor fails (a read store that stopped answering) must not freeze
   * the projector while it reports itself live: past the bound, the subscription fails and is
   * started again from the last checkpointed position (the guards make the replay harmless).
   */
  private handleWithin(batch: StoredEvent[], ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`a projection batch took longer than ${ms} ms`)), ms);
    });
    return Promise.race([this.handle(batch), timeout]).finally(() => clearTimeout(timer));
  }

  private async handle(batch: StoredEvent[]): Promise<void> {
    // The batch's first event is the oldest one not applied yet: lag as it stands, for free.
    // (The head is the last one seen, not re-read: no extra query on the hot path.)
    this.setLagGauges(batch[0]!, Math.max(this.head, batch[batch.length - 1]!.globalPosition));
    const uow = new UnitOfWork(this.deps.readStore);
    const last = batch[batch.length - 1]!.globalPosition;
    for (const p of this.projections) {
      const from = this.checkpoints.get(p.name) ?? 0;
      const events = batch.filter(
        (e) => e.globalPosition > from && p.streamPrefixes.some((s) => e.streamId.startsWith(s)),
      );
      if (events.length === 0) continue;
      await p.prefetch?.(events, uow);
      for (const e of events) await p.apply(e, uow);
    }
    await uow.commit();
    // Touched, not just changed: after a crash between the writes and the checkpoint, the replayed
    // batch changes nothing, yet its cache entries still need dropping and its updates publishing.
    const touched = uow.current(REQUESTS, uow.touched(REQUESTS)) as RequestDoc[];
    const keys = touched.map((d) => `request:${d._id}`);
    // Dropped before the checkpoint moves (a crash in between replays the batch and drops them
    // again) and once more after the position moves (a reader that loaded the old document
    // while we wrote checks the position before trusting what it cached).
    await this.invalidate(keys);
    for (const p of this.projections) {
      if ((this.checkpoints.get(p.name) ?? 0) >= last) continue;
      await this.deps.readStore.saveCheckpoint(p.name, last);
      this.checkpoints.set(p.name, last);
    }
    // Never backwards: a batch abandoned by the watchdog may still finish after newer ones.
    this.position = Math.max(this.position, last);
    if (last > this.head) this.head = last;
    if (touched.length > 0) {
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
    for (const w of this.waiters)
      if (w.position <= this.position) {
        this.waiters.delete(w);
        w.resolve();
      }
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
    if (position <= this.position) return true;
    if (await this.nothingToProjectUpTo(position)) return true;
    const deadline = Date.now() + timeoutMs;
    // Events of streams no projection reads never move the position: re-check the log now and then.
    const poll = async (): Promise<boolean> => {
      while (Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
        if (position <= this.position || (await this.nothingToProjectUpTo(position))) return true;
      }
      return false;
    };
    return Promise.race([poll(), this.waitForPosition(position, timeoutMs)]);
  }

  /** True when every event up to `position` is visible and none of them is for these projections beyond ours. */
  private async nothingToProjectUpTo(position: number): Promise<boolean> {
    if ((await this.deps.eventStore.headPosition()) < position) return false;
    const next = await this.deps.eventStore.readAll({ after: this.position, limit: 1, streamPrefixes: this.prefixes });
    return next.length === 0 || next[0]!.globalPosition > position;
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
        const position = this.checkpoints.get(p.name) ?? 0;
        // The filtered log may end before the global head: a projection that has read all its events is not behind.
        const [next] = upToDate
          ? []
          : await this.deps.eventStore.readAll({ after: position, limit: 1, streamPrefixes: p.streamPrefixes });
        const behind = next !== undefined && next.globalPosition <= head;
        const lagEvents = behind ? Math.max(0, head - position) : 0;
        const lagSeconds = behind ? ageSeconds(next, now) : 0;
        this.deps.metrics?.projectionLagEvents.set({ projection: p.name }, lagEvents);
        this.deps.metrics?.projectionLagSeconds.set({ projection: p.name }, lagSeconds);
        return { name: p.name, position, headPosition: head, lagEvents, lagSeconds, state: this.state };
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
    clearTimeout(this.restartTimer);
    clearTimeout(this.lagTimer);
    await this.subscription?.stop();
    this.state = 'stopped';
  }
}

function ageSeconds(event: StoredEvent, now: number): number {
  return Math.max(0, (now - Date.parse(event.occurredAt)) / 1000);
}
