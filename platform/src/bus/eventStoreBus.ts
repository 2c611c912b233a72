import type { StoredEvent } from '@settle/domain';
import { ExponentialBackoff, type IBackoff } from 'cockatiel';
import { CRASH_LOOP_ATTEMPTS, decodeMarker, encodeMarker, nextAttempt, type AttemptMarker } from '../attempts.js';
import type { EventStore, Subscription } from '../eventStore/port.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { isOutageError } from './outage.js';
import { appendParking, readParking, type BusParkedStream, type ParkedAction } from './parking.js';
import type { Bus, Consumer, ConsumerOptions, EventHandler } from './port.js';

export interface EventStoreBusSettings {
  /** Attempts in all before a failing event parks its stream for the group (outages retry without limit). */
  maxAttempts: number;
  retryInitialDelayMs: number;
  retryMaxDelayMs: number;
  /** How often operators' retry/skip requests are looked for while a stream is parked. */
  parkedPollMs: number;
  /**
   * Failures that mean a part is down rather than that the event is poison: retried with backoff
   * without limit, never parked (503-class errors, `*_UNAVAILABLE` codes, gRPC UNAVAILABLE, refused
   * or reset connections, Redis out of reach). An event store that does not answer a ping counts
   * as an outage too.
   */
  isOutage(error: unknown): boolean;
  /** Times the process may die (or be killed) while handling one event before its stream is parked. */
  crashLoopAttempts: number;
}

export const defaultBusSettings: EventStoreBusSettings = {
  maxAttempts: 8,
  retryInitialDelayMs: 200,
  retryMaxDelayMs: 30_000,
  parkedPollMs: 500,
  isOutage: isOutageError,
  crashLoopAttempts: CRASH_LOOP_ATTEMPTS,
};

/** After a run that stopped with events in hand, this many events go one at a time, each counted. */
const CAREFUL_EVENTS = 32;
/** Idle time before the marker of handled work is cleared (under load the next marker replaces it). */
const MARKER_CLEAR_IDLE_MS = 100;

const errorText = (error: unknown): string =>
  (error instanceof Error ? error.message : String(error)).slice(0, 2000) || 'unknown error';

/**
 * The embedded bus: each consumer group follows the event store's global log from its own
 * durable checkpoint. Events of different streams are handled concurrently, events of one
 * stream strictly in order; the checkpoint only moves past an event once it and everything
 * before it are done (a low watermark), so a crash redelivers and never skips.
 */
export class EventStoreBus implements Bus {
  readonly name = 'embedded (event store log)';
  private readonly consumers = new Set<GroupConsumer>();
  private readonly settings: EventStoreBusSettings;
  constructor(
    private readonly store: EventStore,
    private readonly logger: Logger,
    /** When given, each group's lag is kept in `settle_projection_lag_*{projection="consumer:<group>"}`. */
    private readonly metrics?: Metrics,
    settings: Partial<EventStoreBusSettings> = {},
  ) {
    this.settings = { ...defaultBusSettings, ...settings };
  }

  async consume(opts: ConsumerOptions, handler: EventHandler): Promise<Consumer> {
    const consumer = new GroupConsumer(this.store, this.logger, opts, handler, this.settings, this.metrics);
    await consumer.start();
    this.consumers.add(consumer);
    return consumer;
  }

  /** Every group's lag behind the log (see `GroupConsumer.lag`). */
  async lag(): Promise<ConsumerLag[]> {
    return Promise.all([...this.consumers].map((c) => c.lag()));
  }

  async close(): Promise<void> {
    await Promise.all([...this.consumers].map((c) => c.stop()));
  }
}

export interface ConsumerLag {
  /** `consumer:<group>`, the checkpoint's name and the gauges' label. */
  name: string;
  position: number;
  headPosition: number;
  /** Global positions between the watermark and the head, when an event of this group's streams waits; else 0. */
  lagEvents: number;
  /** Seconds the oldest event not completely handled has been waiting; 0 when caught up. */
  lagSeconds: number;
}

class GroupConsumer implements Consumer {
  private lagTimer?: NodeJS.Timeout;
  private subscription?: Subscription;
  private readonly inFlight = new Set<number>();
  private readonly tails = new Map<string, Promise<void>>();
  private dispatched = 0;
  private saved = 0;
  private slots: (() => void)[] = [];
  private flushTimer?: NodeJS.Timeout;
  private stopped = false;
  private readonly concurrency: number;
  private readonly checkpointName: string;
  private readonly backoff: ExponentialBackoff<unknown>;
  /** Parked streams of this group (mirrors `parking-<group>`), with the highest held position seen. */
  private readonly parked = new Map<string, BusParkedStream & { lastHeld: number }>();
  private readonly carrying = new Set<string>();
  private parkedTimer?: NodeJS.Timeout;
  /**
   * Crash loops (a handler that kills the process): while events are in hand, a marker says so
   * in the event store (`consumer:<group>:attempt`, see `attempts.ts`). A start that finds one
   * takes the next events one at a time, each written down before it is handled, so an event
   * the process keeps dying on is parked after `crashLoopAttempts` deaths, not retried forever.
   */
  private marker?: AttemptMarker;
  private markerWrites: Promise<void> = Promise.resolve();
  private clearTimer?: NodeJS.Timeout;
  private careful = 0;
  /** The marker the last run left behind: its single event is the one it may have died on. */
  private leftBehind?: AttemptMarker;

  constructor(
    private readonly store: EventStore,
    private readonly logger: Logger,
    private readonly opts: ConsumerOptions,
    private readonly handler: EventHandler,
    private readonly settings: EventStoreBusSettings,
    private readonly metrics?: Metrics,
  ) {
    this.concurrency = opts.concurrency ?? 32;
    this.checkpointName = `consumer:${opts.group}`;
    this.backoff = new ExponentialBackoff({
      initialDelay: settings.retryInitialDelayMs,
      maxDelay: settings.retryMaxDelayMs,
    });
  }

  get position(): number {
    return this.watermark();
  }

  private get markerName(): string {
    return `${this.checkpointName}:attempt`;
  }

  async start(): Promise<void> {
    this.saved = await this.store.getCheckpoint(this.checkpointName);
    this.dispatched = this.saved;
    this.marker = this.leftBehind = decodeMarker(await this.store.getCheckpoint(this.markerName));
    if (this.marker) {
      this.careful = CAREFUL_EVENTS;
      this.logger.warn(
        { group: this.opts.group, checkpoint: this.saved, marker: this.marker },
        'the last run stopped with events in hand: the next ones are handled one at a time, each attempt counted',
      );
    }
    for (const p of (await readParking(this.store, this.opts.group)).parked.values())
      this.parked.set(p.streamId, { ...p, lastHeld: p.position });
    this.setParkedGauge();
    this.parkedTimer = setInterval(() => void this.carryOutRequests(), this.settings.parkedPollMs);
    this.parkedTimer.unref();
    this.subscribe();
    this.flushTimer = setInterval(() => void this.flush(), 250);
    if (this.metrics) {
      this.lagTimer = setInterval(() => void this.lag().catch(() => undefined), 1000);
      this.lagTimer.unref();
    }
  }

  /** How far behind the log this group is (and the gauges, when metrics were given). */
  async lag(): Promise<ConsumerLag> {
    const position = this.watermark();
    const head = await this.store.headPosition();
    const [next] = await this.store.readAll({ after: position, limit: 1, streamPrefixes: this.opts.streamPrefixes });
    const behind = next !== undefined && next.globalPosition <= head;
    const lag: ConsumerLag = {
      name: this.checkpointName,
      position,
      headPosition: head,
      lagEvents: behind ? head - position : 0,
      lagSeconds: behind ? Math.max(0, (Date.now() - Date.parse(next.occurredAt)) / 1000) : 0,
    };
    this.metrics?.projectionLagEvents.set({ projection: this.checkpointName }, lag.lagEvents);
    this.metrics?.projectionLagSeconds.set({ projection: this.checkpointName }, lag.lagSeconds);
    return lag;
  }

  private subscribe(): void {
    const sub = this.store.subscribe((batch) => this.dispatch(batch), {
      after: this.dispatched,
      batchSize: 256,
      streamPrefixes: this.opts.streamPrefixes,
    });
    this.subscription = sub;
    sub.failed.catch((error: unknown) => {
      if (this.stopped) return;
      this.logger.error({ err: error, group: this.opts.group }, 'consumer subscription failed; resubscribing');
      setTimeout(() => !this.stopped && this.subscribe(), 1000);
    });
  }

  private watermark(): number {
    if (this.inFlight.size === 0) return this.dispatched;
    return Math.min(...this.inFlight) - 1;
  }

  private async acquire(): Promise<void> {
    while (this.inFlight.size >= this.concurrency) await new Promise<void>((r) => this.slots.push(r));
  }

  private async dispatch(batch: StoredEvent[]): Promise<void> {
    for (const event of batch) {
      if (this.stopped) return;
      if (this.careful > 0) {
        await this.handleCarefully(event);
        continue;
      }
      await this.acquire();
      if (this.stopped) return;
      // Work in hand from now on: written down first (once, not per event), cleared when idle.
      if (this.inFlight.size === 0 && this.marker?.kind !== 'batch')
        await this.writeMarker({ kind: 'batch', position: event.globalPosition - 1, attempts: 1 });
      this.launch(event);
    }
  }

  private launch(event: StoredEvent): Promise<void> {
    const position = event.globalPosition;
    this.inFlight.add(position);
    this.dispatched = position;
    const previous = this.tails.get(event.streamId) ?? Promise.resolve();
    const run = previous.then(() => this.handle(event));
    const tail = run.finally(() => {
      this.inFlight.delete(position);
      if (this.tails.get(event.streamId) === tail) this.tails.delete(event.streamId);
      this.slots.shift()?.();
      if (this.inFlight.size === 0) this.clearMarkerSoon();
    });
    this.tails.set(event.streamId, tail);
    return tail;
  }

  /**
   * After a run that died with events in hand: one event at a time, its attempt written down
   * before it is handled and its checkpoint after; past the limit, the stream is parked unhandled.
   */
  private async handleCarefully(event: StoredEvent): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.tails.values()]);
    this.careful--;
    const attempts = nextAttempt(this.leftBehind, event.globalPosition);
    const parked = this.parked.get(event.streamId);
    const held = parked !== undefined && event.globalPosition >= parked.position;
    if (!held && attempts > this.settings.crashLoopAttempts) {
      const limit = this.settings.crashLoopAttempts;
      await this.park(
        event,
        new Error(
          `the process stopped ${limit} times while handling this event (a crash, e.g. out of memory, or a kill)`,
        ),
        limit,
      );
      this.dispatched = event.globalPosition;
    } else {
      await this.writeMarker({ kind: 'event', position: event.globalPosition, attempts: held ? 1 : attempts });
      await this.launch(event);
      await this.flush();
    }
    if (this.careful === 0) this.clearMarkerSoon();
  }

  private writeMarker(marker: AttemptMarker | undefined): Promise<void> {
    if (marker) clearTimeout(this.clearTimer);
    this.marker = marker;
    const write = this.markerWrites.then(() =>
      this.store.saveCheckpoint(this.markerName, marker ? encodeMarker(marker) : 0),
    );
    this.markerWrites = write.catch(() => undefined);
    return write;
  }

  private clearMarkerSoon(): void {
    clearTimeout(this.clearTimer);
    this.clearTimer = setTimeout(() => {
      if (this.inFlight.size > 0 || !this.marker || this.stopped) return;
      this.writeMarker(undefined).catch((error: unknown) =>
        this.logger.warn({ err: error, group: this.opts.group }, 'could not clear the attempt marker; will retry'),
      );
    }, MARKER_CLEAR_IDLE_MS);
    this.clearTimer.unref();
  }

  /**
   * Handles one event, retrying with backoff; past `maxAttempts` (outages aside) the stream is
   * parked for this group: the event and the stream's later ones are held (the watermark moves on,
   * other streams flow) until an operator retries or skips it.
   */
  private async handle(event: StoredEvent): Promise<void> {
    const parked = this.parked.get(event.streamId);
    if (parked && event.globalPosition >= parked.position) {
      parked.lastHeld = Math.max(parked.lastHeld, event.globalPosition);
      return;
    }
    let backoff: IBackoff<unknown> | undefined;
    for (let attempt = 1, counted = 1; ; attempt++) {
      if (this.stopped) return;
      try {
        await this.handler(event);
        return;
      } catch (error) {
        const outage = this.settings.isOutage(error);
        const where = { group: this.opts.group, streamId: event.streamId, position: event.globalPosition, attempt };
        // The last straw is checked against the event store too: while it is down, nothing is poison.
        if (!outage && counted >= this.settings.maxAttempts && (await this.storeAnswers())) {
          await this.park(event, error, counted);
          return;
        }
        if (!outage) counted++;
        backoff = backoff
          ? backoff.next({ attempt, signal: new AbortController().signal, result: { error } })
          : this.backoff.next();
        this.logger.warn(
          { err: error, ...where, outage, retryInMs: Math.round(backoff.duration) },
          'handler failed; retrying with backoff (later events of this stream wait)',
        );
        await new Promise((r) => setTimeout(r, backoff!.duration));
      }
    }
  }

  private async storeAnswers(): Promise<boolean> {
    try {
      await this.store.ping();
      return true;
    } catch {
      return false;
    }
  }

  /** Records the parking durably before the event counts as done (a crash in between retries it). */
  private async park(event: StoredEvent, error: unknown, attempts: number, requestId?: string): Promise<void> {
    const data = {
      streamId: event.streamId,
      eventId: event.id,
      eventType: event.type,
      position: event.globalPosition,
      streamPosition: event.streamPosition,
      error: errorText(error),
      attempts,
      at: new Date().toISOString(),
      ...(requestId ? { requestId } : {}),
    };
    for (let delay = 200; ; delay = Math.min(delay * 2, 5000)) {
      try {
        await appendParking(this.store, this.opts.group, 'StreamParked', data);
        break;
      } catch (appendError) {
        if (this.stopped) throw appendError;
        this.logger.warn({ err: appendError, group: this.opts.group }, 'could not record a parked stream; retrying');
        await new Promise((r) => setTimeout(r, delay));
      }
    }
    const previous = this.parked.get(event.streamId);
    this.parked.set(event.streamId, {
      ...data,
      parkedAt: previous?.parkedAt ?? data.at,
      lastHeld: Math.max(previous?.lastHeld ?? 0, event.globalPosition),
    });
    this.setParkedGauge();
    this.logger.error(
      {
        err: error,
        group: this.opts.group,
        streamId: event.streamId,
        type: event.type,
        position: event.globalPosition,
        attempts,
      },
      'handler kept failing: stream parked for this group (its later events wait; other streams go on)',
    );
  }

  private setParkedGauge(): void {
    this.metrics?.parkedStreams.set({ projection: this.checkpointName }, this.parked.size);
  }

  /** Operators' retry/skip requests (`parking-<group>`), each run in its stream's turn. */
  private async carryOutRequests(): Promise<void> {
    if (this.parked.size === 0 || this.stopped) return;
    let state;
    try {
      state = await readParking(this.store, this.opts.group);
    } catch (error) {
      this.logger.warn({ err: error, group: this.opts.group }, 'could not read parked-stream requests; will retry');
      return;
    }
    for (const p of state.parked.values()) {
      const pending = p.pending;
      if (!pending || this.carrying.has(pending.requestId) || !this.parked.has(p.streamId)) continue;
      this.carrying.add(pending.requestId);
      const run = (this.tails.get(p.streamId) ?? Promise.resolve())
        .then(() => this.carryOut(p.streamId, pending.action, pending.requestId, pending.by))
        .catch((error: unknown) =>
          this.logger.warn(
            { err: error, group: this.opts.group, streamId: p.streamId },
            'parked-stream request failed; will retry',
          ),
        )
        .finally(() => this.carrying.delete(pending.requestId));
      const tail = run.finally(() => {
        if (this.tails.get(p.streamId) === tail) this.tails.delete(p.streamId);
      });
      this.tails.set(p.streamId, tail);
    }
  }

  /**
   * Runs in the stream's turn, so no event of it is handled meanwhile: the held events (from the
   * failed one, or the one after it for a skip, up to the last one held) are handled in order;
   * all through, the stream is unparked, else it is parked again at the event that failed.
   */
  private async carryOut(streamId: string, action: ParkedAction, requestId: string, by: string): Promise<void> {
    const parked = this.parked.get(streamId);
    if (!parked) return;
    const upTo = Math.max(parked.lastHeld, this.saved);
    let held = (await this.store.readStream(streamId)).filter(
      (e) => e.globalPosition >= parked.position && e.globalPosition <= upTo,
    );
    if (action === 'skip') held = held.filter((e) => e.id !== parked.eventId);
    for (const event of held) {
      try {
        await this.handler(event);
      } catch (error) {
        const attempts = event.id === parked.eventId ? parked.attempts + 1 : 1;
        await this.park(event, error, attempts, requestId);
        return;
      }
    }
    await appendParking(this.store, this.opts.group, 'StreamUnparked', {
      streamId,
      at: new Date().toISOString(),
      requestId,
      action,
    });
    this.parked.delete(streamId);
    this.setParkedGauge();
    this.logger.info(
      { group: this.opts.group, streamId, action, by, handled: held.length },
      'parked stream unparked: its events flow again',
    );
  }

  private async flush(): Promise<void> {
    const mark = this.watermark();
    if (mark <= this.saved) return;
    try {
      await this.store.saveCheckpoint(this.checkpointName, mark);
      this.saved = mark;
    } catch (error) {
      this.logger.warn({ err: error, group: this.opts.group }, 'checkpoint save failed; will retry');
    }
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    await this.subscription?.stop();
    // Let handlers in flight finish (bounded), then record how far we got.
    await Promise.race([Promise.allSettled([...this.tails.values()]), new Promise((r) => setTimeout(r, 5000))]);
    const finished = this.inFlight.size === 0;
    this.stopped = true;
    clearInterval(this.flushTimer);
    clearInterval(this.parkedTimer);
    clearInterval(this.lagTimer);
    clearTimeout(this.clearTimer);
    await this.flush();
    // A clean stop with nothing in hand leaves no marker: the next start needs no care.
    if (finished && this.marker)
      await this.writeMarker(undefined).catch((error: unknown) =>
        this.logger.warn({ err: error, group: this.opts.group }, 'could not clear the attempt marker'),
      );
  }
}
