import type { StoredEvent } from '@settle/domain';
import { Partitioners, type Admin, type Kafka, type Message, type Producer } from 'kafkajs';
import type { EventStore, Subscription } from '../eventStore/port.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { createRetryBackoff } from '../health/backoff.js';
import { busMetrics, type BusMetrics } from './kafkaClient.js';
import { encodeEvent } from './kafkaCodec.js';
import { electLeader, type LeaderElection } from './forwarderLeader.js';
import { categoryOf, dlqTopicFor, ensureTopics, topicFor } from './kafkaTopics.js';

export interface ForwarderOptions {
  eventStore: EventStore;
  /** A kafkajs client (see `createKafkaClient`); the forwarder makes its own idempotent producer. */
  kafka: Kafka;
  logger: Logger;
  metrics?: Metrics;
  /** Topic = prefix + category: `settle.request` for stream `request-…`. */
  topicPrefix?: string;
  /** Streams to forward; default every stream. Their topics (and `.dlq`) are created at start, others on first sight. */
  streamPrefixes?: string[];
  partitions?: number;
  replicationFactor?: number;
  /** Events read from the store and published in one `sendBatch`. */
  batchSize?: number;
  /** Durable checkpoint name in the event store. */
  checkpointName?: string;
  /**
   * Replicas elect one forwarder through a Kafka consumer group (default on); the others stand by
   * and take over when it leaves or dies. `false` forwards unconditionally (a single instance).
   */
  exclusive?:
    false | { groupId?: string; sessionTimeoutMs?: number; heartbeatIntervalMs?: number; rebalanceTimeoutMs?: number };
}

export interface Forwarder {
  /** Global position this instance published to Kafka, acknowledged and (best effort) checkpointed. */
  readonly position: number;
  /** Whether this instance is the one forwarding (always true when not exclusive, once started). */
  readonly active: boolean;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * The forwarder: follows the event store's global log from its checkpoint and publishes every
 * event to the topic of its category, in order, through an idempotent producer (`acks: -1`, one
 * request in flight, so broker-side retries never duplicate or reorder). The checkpoint moves only
 * after the broker acknowledged the batch, so a crash republishes (at least once) and never skips.
 * Of several replicas, one forwards at a time (elected through a Kafka consumer group).
 *
 * @example
 * const forwarder = createForwarder({ eventStore, kafka: createKafkaClient({ brokers, logger }), logger });
 * await forwarder.start();
 */
export function createForwarder(opts: ForwarderOptions): Forwarder {
  return new KafkaForwarder(opts);
}

class KafkaForwarder implements Forwarder {
  private readonly topicPrefix: string;
  private readonly checkpointName: string;
  private producer: Producer;
  /** A send failed: the next attempt starts with a new producer (see `restart`). */
  private producerSuspect = false;
  private readonly admin: Admin;
  private readonly known = new Set<string>();
  private readonly metrics?: BusMetrics;
  private subscription?: Subscription | undefined;
  private election?: LeaderElection;
  private forwarding = false;
  private restartTimer?: NodeJS.Timeout;
  /** Between restarts after a failed publish (Kafka down): 500 ms growing to 30 s, reset by an acknowledged batch. */
  private readonly backoff = createRetryBackoff(500, 30_000);
  private published = 0;
  private saved = 0;
  /** The batch being sent (at most one: the idempotent producer's order); never rejects. */
  private sending: Promise<void> = Promise.resolve();
  /** Why the batch in flight failed, for the handler that comes next; cleared by a restart. */
  private sendFailure: { error: unknown } | undefined;
  /** The checkpoint write in flight, if any (they run behind the sends, one at a time). */
  private saving: Promise<void> = Promise.resolve();
  private stopped = false;
  private started = false;

  constructor(private readonly opts: ForwarderOptions) {
    this.topicPrefix = opts.topicPrefix ?? 'settle.';
    this.checkpointName = opts.checkpointName ?? 'forwarder:kafka';
    this.producer = this.newProducer();
    this.admin = opts.kafka.admin();
    if (opts.metrics) this.metrics = busMetrics(opts.metrics.registry);
  }

  private newProducer(): Producer {
    return this.opts.kafka.producer({
      idempotent: true,
      // kafkajs keeps ordering guarantees of the idempotent producer only with one request in flight.
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      createPartitioner: Partitioners.DefaultPartitioner,
      retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 200, maxRetryTime: 5000 },
    });
  }

  /**
   * After a failed send, kafkajs' idempotent producer can be left with sequence numbers the broker
   * refuses for good (OUT_OF_ORDER_SEQUENCE_NUMBER after a broker restart): resume with a new
   * producer (a new producer id, sequences from 0). Republishing from the checkpoint may then
   * publish a batch twice, never skip one — consumers are at-least-once already.
   */
  private async restart(): Promise<void> {
    if (this.stopped || !this.forwarding) return;
    // Resume after the last acknowledged event, once nothing is in flight any more.
    await this.sending;
    this.sendFailure = undefined;
    if (this.producerSuspect) {
      const old = this.producer;
      this.producer = this.newProducer();
      await old.disconnect().catch(() => undefined);
      try {
        await this.producer.connect();
        this.producerSuspect = false;
      } catch (error) {
        const delay = this.backoff.next();
        this.opts.logger.warn({ err: error, retryInMs: delay }, 'Kafka forwarder could not reconnect; retrying');
        this.restartTimer = setTimeout(() => void this.restart(), delay);
        return;
      }
    }
    this.subscribe();
  }

  get position(): number {
    return this.published;
  }

  get active(): boolean {
    return this.forwarding;
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    await this.admin.connect();
    await this.producer.connect();
    if (this.opts.streamPrefixes)
      await this.ensure(this.opts.streamPrefixes.map((p) => topicFor(this.topicPrefix, categoryOf(p))));
    const exclusive = this.opts.exclusive ?? {};
    if (exclusive === false) {
      await this.begin();
      return;
    }
    this.election = await electLeader({
      kafka: this.opts.kafka,
      admin: this.admin,
      logger: this.opts.logger,
      groupId: exclusive.groupId ?? `${this.topicPrefix}forwarder-election`,
      leaseTopic: `${this.topicPrefix}forwarder-lease`,
      replicationFactor: this.opts.replicationFactor ?? 1,
      sessionTimeoutMs: exclusive.sessionTimeoutMs ?? 10_000,
      heartbeatIntervalMs: exclusive.heartbeatIntervalMs ?? 1000,
      rebalanceTimeoutMs: exclusive.rebalanceTimeoutMs ?? 30_000,
      onChange: (leader) => (leader ? this.begin() : this.end()),
    });
  }

  /** Starts following the log from the durable checkpoint. */
  private async begin(): Promise<void> {
    if (this.forwarding || this.stopped) return;
    this.forwarding = true;
    this.backoff.reset();
    this.published = this.saved = await this.opts.eventStore.getCheckpoint(this.checkpointName);
    this.opts.logger.info({ checkpoint: this.published, topicPrefix: this.topicPrefix }, 'Kafka forwarder forwarding');
    await this.restart();
  }

  private async end(): Promise<void> {
    if (!this.forwarding) return;
    this.forwarding = false;
    clearTimeout(this.restartTimer);
    // A send waits for the broker as long as it takes; when stopping, give it a bounded while.
    const drained = (async () => {
      await this.subscription?.stop();
      await this.sending;
    })();
    await Promise.race([drained, new Promise((r) => setTimeout(r, 10_000).unref())]);
    this.subscription = undefined;
    await this.saving;
    await this.saveCheckpoint();
    this.opts.logger.info({ position: this.published }, 'Kafka forwarder paused');
  }

  private subscribe(): void {
    if (this.stopped || !this.forwarding) return;
    const sub = this.opts.eventStore.subscribe((batch) => this.publish(batch), {
      after: this.published,
      batchSize: this.opts.batchSize ?? 500,
      ...(this.opts.streamPrefixes ? { streamPrefixes: this.opts.streamPrefixes } : {}),
    });
    this.subscription = sub;
    sub.failed.catch((error: unknown) => {
      if (this.subscription !== sub) return;
      this.subscription = undefined;
      this.failed(error);
    });
  }

  /** Resumes from the last acknowledged event after a backoff (a new producer if a send failed). */
  private failed(error: unknown): void {
    if (this.stopped || !this.forwarding) return;
    const delay = this.backoff.next();
    this.opts.logger.error(
      { err: error, position: this.published, retryInMs: delay },
      'Kafka forwarder failed to publish; resuming from the last acknowledged event',
    );
    clearTimeout(this.restartTimer);
    this.restartTimer = setTimeout(() => void this.restart(), delay);
  }

  private async ensure(topics: string[]): Promise<void> {
    const missing = topics.filter((t) => !this.known.has(t));
    if (missing.length === 0) return;
    await ensureTopics(
      this.admin,
      missing.flatMap((t) => [t, dlqTopicFor(t)]),
      { partitions: this.opts.partitions ?? 3, replicationFactor: this.opts.replicationFactor ?? 1 },
      this.opts.logger,
    );
    for (const t of missing) this.known.add(t);
  }

  /**
   * The subscription's handler: waits for the previous batch's acknowledgement, then starts this
   * one's send and returns, so the next batch is read from the store while this one travels (one
   * send in flight, in order). A failed send fails the next handler call — or, when the log is
   * quiet and none comes, restarts the forwarder itself — from the last acknowledged event.
   */
  private async publish(batch: StoredEvent[]): Promise<void> {
    if (batch.length === 0) return;
    await this.sending;
    if (this.sendFailure) throw this.sendFailure.error;
    const sub = this.subscription;
    this.sending = this.send(batch).catch((error: unknown) => {
      this.sendFailure = { error };
      // Nobody may call the handler again (a quiet log): give up this subscription here.
      setImmediate(() => {
        if (this.subscription !== sub || !this.sendFailure) return;
        this.subscription = undefined;
        void sub?.stop();
        this.failed(error);
      });
    });
  }

  private async send(batch: StoredEvent[]): Promise<void> {
    const byTopic = new Map<string, Message[]>();
    for (const event of batch) {
      const topic = topicFor(this.topicPrefix, categoryOf(event.streamId));
      let messages = byTopic.get(topic);
      if (!messages) byTopic.set(topic, (messages = []));
      messages.push(encodeEvent(event));
    }
    await this.ensure([...byTopic.keys()]);
    try {
      await this.producer.sendBatch({
        acks: -1,
        topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
      });
    } catch (error) {
      // A topic deleted under us is created again on the retry.
      for (const topic of byTopic.keys()) this.known.delete(topic);
      this.producerSuspect = true;
      throw error;
    }
    this.backoff.reset();
    this.published = Math.max(this.published, batch[batch.length - 1]!.globalPosition);
    for (const [topic, messages] of byTopic) this.metrics?.forwarded.inc({ topic }, messages.length);
    // Recorded behind the sends (one write at a time, the latest position): the next batch does
    // not wait for it. A crash before it lands republishes from the previous one, never skips.
    this.saving = this.saving.then(() => this.saveCheckpoint());
  }

  private async saveCheckpoint(): Promise<void> {
    if (this.published <= this.saved) return;
    const position = this.published;
    try {
      await this.opts.eventStore.saveCheckpoint(this.checkpointName, position);
      this.saved = Math.max(this.saved, position);
      this.metrics?.forwarderPosition.set(position);
    } catch (error) {
      // Published but not recorded: the next batch records it; a crash before that republishes (duplicates, never loss).
      this.opts.logger.warn(
        { err: error, position },
        'forwarder checkpoint save failed; will retry with the next batch',
      );
    }
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    // Finish and checkpoint the batch in hand before leaving the election, so the standby that takes
    // over starts exactly where this one stopped (a clean handover publishes nothing twice).
    await this.end();
    await this.election
      ?.stop()
      .catch((error: unknown) => this.opts.logger.warn({ err: error }, 'leaving the forwarder election failed'));
    await Promise.allSettled([this.producer.disconnect(), this.admin.disconnect()]);
    this.opts.logger.info({ position: this.published }, 'Kafka forwarder stopped');
  }
}
