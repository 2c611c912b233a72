import type { StoredEvent } from '@settle/domain';
import { ExponentialBackoff, handleAll, retry } from 'cockatiel';
import type { EventStore, Subscription } from '../eventStore/port.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { Bus, Consumer, ConsumerOptions, EventHandler } from './port.js';

/**
 * The embedded bus: each consumer group follows the event store's global log from its own
 * durable checkpoint. Events of different streams are handled concurrently, events of one
 * stream strictly in order; the checkpoint only moves past an event once it and everything
 * before it are done (a low watermark), so a crash redelivers and never skips.
 */
export class EventStoreBus implements Bus {
  readonly name = 'embedded (event store log)';
  private readonly consumers = new Set<GroupConsumer>();
  constructor(
    private readonly store: EventStore,
    private readonly logger: Logger,
    /** When given, each group's lag is kept in `settle_projection_lag_*{projection="consumer:<group>"}`. */
    private readonly metrics?: Metrics,
  ) {}

  async consume(opts: ConsumerOptions, handler: EventHandler): Promise<Consumer> {
    const consumer = new GroupConsumer(this.store, this.logger, opts, handler, this.metrics);
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
  private readonly retryPolicy = retry(handleAll, {
    maxAttempts: Number.MAX_SAFE_INTEGER,
    backoff: new ExponentialBackoff({ initialDelay: 200, maxDelay: 30_000 }),
  });

  constructor(
    private readonly store: EventStore,
    private readonly logger: Logger,
    private readonly opts: ConsumerOptions,
    private readonly handler: EventHandler,
    private readonly metrics?: Metrics,
  ) {
    this.concurrency = opts.concurrency ?? 32;
    this.checkpointName = `consumer:${opts.group}`;
  }

  get position(): number {
    return this.watermark();
  }

  async start(): Promise<void> {
    this.saved = await this.store.getCheckpoint(this.checkpointName);
    this.dispatched = this.saved;
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
      await this.acquire();
      const position = event.globalPosition;
      this.inFlight.add(position);
      this.dispatched = position;
      const previous = this.tails.get(event.streamId) ?? Promise.resolve();
      const run = previous.then(() => this.handle(event));
      const tail = run.finally(() => {
        this.inFlight.delete(position);
        if (this.tails.get(event.streamId) === tail) this.tails.delete(event.streamId);
        this.slots.shift()?.();
      });
      this.tails.set(event.streamId, tail);
    }
  }

  private async handle(event: StoredEvent): Promise<void> {
    await this.retryPolicy.execute(async ({ attempt }) => {
      if (this.stopped) return;
      try {
        await this.handler(event);
      } catch (error) {
        this.logger.warn(
          { err: error, group: this.opts.group, streamId: event.streamId, position: event.globalPosition, attempt },
          'handler failed; retrying with backoff (later events of this stream wait)',
        );
        throw error;
      }
    });
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
    this.stopped = true;
    clearInterval(this.flushTimer);
    clearInterval(this.lagTimer);
    await this.flush();
  }
}
