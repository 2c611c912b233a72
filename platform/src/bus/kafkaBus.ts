import { randomUUID } from 'node:crypto';
import { Partitioners, type Admin, type Kafka, type Message, type Producer } from 'kafkajs';
import type { EventStore } from '../eventStore/port.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { createForwarder, type Forwarder, type ForwarderOptions } from './forwarder.js';
import { REPLAY_HEADERS } from './kafkaCodec.js';
import { BusUnavailableError, busMetrics, createKafkaClient, type BusMetrics } from './kafkaClient.js';
import {
  defaultConsumerSettings,
  KafkaGroupConsumer,
  type AttemptStore,
  type KafkaConsumerSettings,
} from './kafkaConsumer.js';
import { readDeadLetters, type DeadLetter } from './kafkaDlq.js';
import { categoryOf, dlqTopicFor, ensureTopics, topicFor } from './kafkaTopics.js';
import type { Bus, Consumer, ConsumerOptions, EventHandler } from './port.js';

export interface KafkaBusOptions {
  /** `host:port` seeds; `parseKafkaBrokers(SETTLE_BUS)` turns `kafka://a:9092,b:9092` into this. */
  brokers: string[];
  clientId?: string;
  logger: Logger;
  metrics?: Metrics;
  /** Topic = prefix + category (`settle.request`); DLQ = topic + `.dlq`. */
  topicPrefix?: string;
  /** Kafka group id = prefix + the port's group name; default: the topic prefix (`settle.dispatcher`). */
  groupPrefix?: string;
  /** For topics Settle creates (auto-creation is off on the brokers). */
  partitions?: number;
  replicationFactor?: number;
  /** When set, this process also runs the forwarder from this event store to Kafka. */
  eventStore?: EventStore;
  forwarder?: Pick<ForwarderOptions, 'streamPrefixes' | 'batchSize' | 'checkpointName' | 'exclusive'>;
  /**
   * Where consumers write down what they are handling, so a handler that kills the process is
   * counted and the message dead-lettered after `crashLoopAttempts` deaths (named checkpoints
   * `kafka:<group>:<topic>:<partition>:attempt`). Default: `eventStore`; without either, crash
   * loops are not counted.
   */
  attemptStore?: AttemptStore;
  /** Consumer group timings, retry/DLQ policy (defaults in `defaultConsumerSettings`). */
  consumer?: Partial<KafkaConsumerSettings>;
  /** Per-connection timeout, also how long start-up waits before reporting Kafka unreachable. */
  connectionTimeoutMs?: number;
}

/**
 * The Kafka bus: the forwarder (when given an event store) publishes every stored event to the
 * topic of its category; `consume` runs a consumer group that commits offsets only after success,
 * handles streams concurrently and each stream in order, retries with backoff, and dead-letters
 * poison messages to `<topic>.dlq` (and, with an attempt store, messages the process keeps dying on).
 *
 * @example
 * const bus = await KafkaBus.create({ brokers: parseKafkaBrokers(config.bus), logger, metrics, eventStore });
 * await bus.consume({ group: 'dispatcher', streamPrefixes: ['request-'], concurrency: 32 }, dispatch);
 */
export class KafkaBus implements Bus {
  readonly name: string;
  private readonly consumers = new Set<KafkaGroupConsumer>();
  private readonly ensured = new Set<string>();
  private forwarder?: Forwarder;
  private readonly settings: KafkaConsumerSettings;
  private readonly metrics?: BusMetrics;
  private readonly topicPrefix: string;
  private readonly groupPrefix: string;
  private readonly attemptStore: AttemptStore | undefined;
  private closed = false;
  /** A separate admin client without retries for `ping()`: one quick round trip, never the retried ones. */
  private probeAdmin?: Admin | undefined;

  private constructor(
    private readonly opts: KafkaBusOptions,
    private readonly kafka: Kafka,
    private readonly admin: Admin,
    private readonly producer: Producer,
  ) {
    this.name = `Kafka (${opts.brokers.join(',')})`;
    this.topicPrefix = opts.topicPrefix ?? 'settle.';
    this.groupPrefix = opts.groupPrefix ?? this.topicPrefix;
    this.settings = { ...defaultConsumerSettings, ...opts.consumer };
    if (opts.metrics) this.metrics = busMetrics(opts.metrics.registry);
    this.attemptStore = opts.attemptStore ?? opts.eventStore;
  }

  /** Connects (failing fast with the brokers named if Kafka is unreachable) and starts the forwarder if asked. */
  static async create(opts: KafkaBusOptions): Promise<KafkaBus> {
    const logger = opts.logger;
    const kafka = createKafkaClient({
      brokers: opts.brokers,
      logger,
      ...(opts.clientId ? { clientId: opts.clientId } : {}),
      ...(opts.connectionTimeoutMs ? { connectionTimeoutMs: opts.connectionTimeoutMs } : {}),
    });
    // Probe with few retries so a wrong address fails start-up in seconds, not after kafkajs' long backoff.
    const probe = createKafkaClient({
      brokers: opts.brokers,
      logger,
      connectionTimeoutMs: opts.connectionTimeoutMs ?? 3000,
      retries: 2,
    }).admin();
    try {
      await probe.connect();
      await probe.listTopics();
    } catch (error) {
      throw new BusUnavailableError(opts.brokers, error);
    } finally {
      await probe.disconnect().catch(() => undefined);
    }
    const admin = kafka.admin();
    const producer = kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      createPartitioner: Partitioners.DefaultPartitioner,
      retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 200, maxRetryTime: 5000 },
    });
    try {
      await admin.connect();
      await producer.connect();
    } catch (error) {
      await Promise.allSettled([admin.disconnect(), producer.disconnect()]);
      throw new BusUnavailableError(opts.brokers, error);
    }
    const bus = new KafkaBus(opts, kafka, admin, producer);
    if (opts.eventStore) {
      bus.forwarder = createForwarder({
        eventStore: opts.eventStore,
        kafka,
        logger: logger.child({ part: 'forwarder' }),
        topicPrefix: bus.topicPrefix,
        ...(opts.metrics ? { metrics: opts.metrics } : {}),
        ...(opts.partitions ? { partitions: opts.partitions } : {}),
        ...(opts.replicationFactor ? { replicationFactor: opts.replicationFactor } : {}),
        exclusive: {
          groupId: `${bus.groupPrefix}forwarder-election`,
          sessionTimeoutMs: bus.settings.sessionTimeoutMs,
          heartbeatIntervalMs: bus.settings.heartbeatIntervalMs,
          rebalanceTimeoutMs: bus.settings.rebalanceTimeoutMs,
        },
        ...opts.forwarder,
      });
      try {
        await bus.forwarder.start();
      } catch (error) {
        await bus.close();
        // Kafka errors name Kafka; an event store failure (reading the checkpoint) keeps its own error.
        throw String((error as Error)?.name).startsWith('KafkaJS')
          ? new BusUnavailableError(opts.brokers, error)
          : error;
      }
    }
    logger.info(
      { brokers: opts.brokers, topicPrefix: bus.topicPrefix, forwarder: Boolean(opts.eventStore) },
      'Kafka bus connected',
    );
    return bus;
  }

  /** Global position the forwarder of this process has published (undefined without a forwarder). */
  /** One metadata round trip to a broker, without retries (health probes bound it with their own timeout). */
  async ping(): Promise<void> {
    if (this.closed) throw new Error('the Kafka bus is closed');
    const admin = (this.probeAdmin ??= createKafkaClient({
      brokers: this.opts.brokers,
      clientId: 'settle-health',
      // The monitor reports the outage once; kafkajs would warn on every probe.
      logger: this.opts.logger.child({ part: 'health' }, { level: 'error' }),
      connectionTimeoutMs: 1000,
      retries: 0,
    }).admin());
    try {
      await admin.connect();
      await admin.describeCluster();
    } catch (error) {
      // Start over with a fresh connection next time rather than trust kafkajs to notice.
      this.probeAdmin = undefined;
      await admin.disconnect().catch(() => undefined);
      throw error;
    }
  }

  get forwarderPosition(): number | undefined {
    return this.forwarder?.position;
  }

  /** Whether this process's forwarder is the elected one publishing now. */
  get forwarding(): boolean {
    return this.forwarder?.active ?? false;
  }

  /** The topic events of a stream (or stream prefix) are published to. */
  topicOf(streamIdOrPrefix: string): string {
    return topicFor(this.topicPrefix, categoryOf(streamIdOrPrefix));
  }

  private async ensure(topics: string[]): Promise<void> {
    const missing = topics.filter((t) => !this.ensured.has(t));
    if (missing.length === 0) return;
    await ensureTopics(
      this.admin,
      missing,
      { partitions: this.opts.partitions ?? 3, replicationFactor: this.opts.replicationFactor ?? 1 },
      this.opts.logger,
    );
    for (const t of missing) this.ensured.add(t);
  }

  async consume(opts: ConsumerOptions, handler: EventHandler): Promise<Consumer> {
    if (this.closed) throw new Error('the Kafka bus is closed');
    const topics = [...new Set(opts.streamPrefixes.map((p) => this.topicOf(p)))];
    await this.ensure(topics.flatMap((t) => [t, dlqTopicFor(t)]));
    const consumer = new KafkaGroupConsumer({
      kafka: this.kafka,
      groupId: `${this.groupPrefix}${opts.group}`,
      group: opts.group,
      topics,
      streamPrefixes: opts.streamPrefixes,
      concurrency: opts.concurrency ?? 32,
      handler,
      logger: this.opts.logger,
      settings: this.settings,
      sendToDlq: (topic, message) => this.sendToDlq(topic, message),
      ...(this.attemptStore ? { attempts: this.attemptStore } : {}),
      onStop: () => this.consumers.delete(consumer),
      ...(this.metrics ? { metrics: this.metrics } : {}),
    });
    await consumer.start();
    this.consumers.add(consumer);
    return consumer;
  }

  private async sendToDlq(topic: string, message: Message): Promise<void> {
    await this.producer.send({ topic, acks: -1, messages: [message] });
  }

  /** Everything currently in the DLQ of a stream category (`request` or `request-…`), oldest failure first. */
  async readDeadLetters(streamIdOrPrefix: string, opts: { timeoutMs?: number } = {}): Promise<DeadLetter[]> {
    const topic = dlqTopicFor(this.topicOf(streamIdOrPrefix));
    await this.ensure([topic]);
    return readDeadLetters(this.kafka, this.admin, topic, {
      groupId: `${this.groupPrefix}dlq-reader-${randomUUID()}`,
      ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}),
    });
  }

  /**
   * Publishes a dead letter back to the topic it failed on, for the group that failed it only (the
   * other groups skip it). It arrives after later events of its stream: handlers must cope, as
   * Settle's reactors do by checking state before acting.
   */
  async replayDeadLetter(letter: DeadLetter): Promise<void> {
    if (!letter.originalTopic.startsWith(this.topicPrefix) || !letter.group)
      throw new Error(
        `dead letter ${letter.topic}/${letter.partition}/${letter.offset} has no Settle topic or group to replay to`,
      );
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(letter.headers))
      if (!name.startsWith('x-settle-')) headers[name] = value;
    headers[REPLAY_HEADERS.forGroup] = letter.group;
    headers[REPLAY_HEADERS.from] = `${letter.topic}/${letter.partition}/${letter.offset}`;
    await this.producer.send({
      topic: letter.originalTopic,
      acks: -1,
      messages: [{ key: letter.key, value: letter.value, headers }],
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([...this.consumers].map((c) => c.stop()));
    await this.forwarder?.stop();
    await Promise.allSettled([this.producer.disconnect(), this.admin.disconnect(), this.probeAdmin?.disconnect()]);
  }
}
