import type { StoredEvent } from '@settle/domain';
import { ExponentialBackoff, type IBackoff } from 'cockatiel';
import type { Batch, Consumer as KafkaJsConsumer, EachBatchPayload, Kafka, KafkaMessage, Message } from 'kafkajs';
import { SettleError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Consumer, EventHandler } from './port.js';
import { ERR_BUS_HANDLER_FAILED, ERR_BUS_UNAVAILABLE, type BusMetrics } from './kafkaClient.js';
import { DLQ_HEADERS, decodeEvent, MalformedMessageError, REPLAY_HEADERS } from './kafkaCodec.js';
import { dlqTopicFor } from './kafkaTopics.js';
import { isOutageError } from './outage.js';

export interface KafkaConsumerSettings {
  /** Broker drops a member it has not heard from for this long (broker minimum 6 s by default). */
  sessionTimeoutMs: number;
  heartbeatIntervalMs: number;
  /** How long the group waits for members to rejoin during a rebalance. */
  rebalanceTimeoutMs: number;
  /** Longest a fetch waits at the broker for new messages (latency when idle). */
  maxWaitTimeMs: number;
  /** Attempts in all before a message goes to `<topic>.dlq`. */
  maxAttempts: number;
  retryInitialDelayMs: number;
  retryMaxDelayMs: number;
  /** `consume()` fails if the group has not been joined by then. */
  joinTimeoutMs: number;
  /**
   * Failures that mean a part of Settle is down rather than that the message is poison: retried
   * with backoff without limit, never dead-lettered (default: `isOutageError`).
   */
  isOutage(error: unknown): boolean;
}

export const defaultConsumerSettings: KafkaConsumerSettings = {
  sessionTimeoutMs: 10_000,
  heartbeatIntervalMs: 1000,
  rebalanceTimeoutMs: 30_000,
  maxWaitTimeMs: 500,
  maxAttempts: 10,
  retryInitialDelayMs: 250,
  retryMaxDelayMs: 30_000,
  joinTimeoutMs: 60_000,
  isOutage: isOutageError,
};

export interface GroupConsumerDeps {
  kafka: Kafka;
  /** The Kafka group id (prefixed) and the port's group name (for logs and metrics). */
  groupId: string;
  group: string;
  topics: string[];
  streamPrefixes: string[];
  concurrency: number;
  handler: EventHandler;
  logger: Logger;
  metrics?: BusMetrics;
  settings: KafkaConsumerSettings;
  /** Publishes to a DLQ topic; resolves once the broker acknowledged. */
  sendToDlq(topic: string, message: Message): Promise<void>;
  onStop?(): void;
}

interface Item {
  message: KafkaMessage;
  event?: StoredEvent;
  error?: unknown;
}

/** Resolves true after `ms`, or false as soon as `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** A counting semaphore whose waits give up when the batch is aborted. */
class Slots {
  private readonly waiters: (() => void)[] = [];
  constructor(private free: number) {}
  acquire(signal: AbortSignal): Promise<boolean> {
    if (signal.aborted) return Promise.resolve(false);
    if (this.free > 0) {
      this.free--;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      const waiter = () => {
        signal.removeEventListener('abort', onAbort);
        resolve(true);
      };
      const onAbort = () => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        resolve(false);
      };
      this.waiters.push(waiter);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }
  release(): void {
    const next = this.waiters.shift();
    if (next) next();
    else this.free++;
  }
}

const errorCode = (error: unknown): string => {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.length > 0 ? code : ERR_BUS_HANDLER_FAILED;
};
const errorText = (error: unknown): string => (error instanceof Error ? error.message : String(error)).slice(0, 2000);

/**
 * One member of a Kafka consumer group. Each fetched batch (one partition) is handled with
 * messages of different keys (streams) in parallel and messages of one key strictly in order,
 * at most `concurrency` handlers at once across partitions. The partition's offset is resolved
 * only up to the first message not yet done (a low watermark) and kafkajs commits resolved
 * offsets only, so a crash or rebalance redelivers and never skips. A message whose handler keeps
 * failing is retried with exponential backoff and jitter, then sent to `<topic>.dlq` with the
 * error in headers, and the partition moves on.
 */
export class KafkaGroupConsumer implements Consumer {
  private consumer?: KafkaJsConsumer;
  private readonly slots: Slots;
  private readonly active = new Set<AbortController>();
  /** Global positions fetched and not yet settled (a multiset: the forwarder may republish). */
  private readonly pending = new Map<number, number>();
  private settledUpTo = 0;
  private stopped = false;
  private relaunchTimer: NodeJS.Timeout | undefined;
  private relaunches = 0;
  private readonly backoff: ExponentialBackoff<unknown>;

  constructor(private readonly deps: GroupConsumerDeps) {
    this.slots = new Slots(Math.max(1, deps.concurrency));
    this.backoff = new ExponentialBackoff({
      initialDelay: deps.settings.retryInitialDelayMs,
      maxDelay: deps.settings.retryMaxDelayMs,
    });
  }

  get position(): number {
    if (this.pending.size === 0) return this.settledUpTo;
    let lowest = Infinity;
    for (const position of this.pending.keys()) if (position < lowest) lowest = position;
    return lowest - 1;
  }

  async start(): Promise<void> {
    const { groupId, settings } = this.deps;
    const joined = await this.launch();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>(
      (resolve) => (timer = setTimeout(() => resolve('timeout'), settings.joinTimeoutMs)),
    );
    const outcome = await Promise.race([joined, timedOut]);
    clearTimeout(timer);
    if (outcome === 'timeout') {
      await this.stop();
      throw new SettleError(
        ERR_BUS_UNAVAILABLE,
        `Kafka consumer group ${groupId} did not join within ${settings.joinTimeoutMs} ms`,
        503,
      );
    }
  }

  /** A kafkajs consumer in the group, running; resolves to a promise of its first join. */
  private async launch(): Promise<Promise<void>> {
    const { kafka, groupId, settings, logger } = this.deps;
    const consumer = kafka.consumer({
      groupId,
      sessionTimeout: settings.sessionTimeoutMs,
      heartbeatInterval: settings.heartbeatIntervalMs,
      rebalanceTimeout: settings.rebalanceTimeoutMs,
      maxWaitTimeInMs: settings.maxWaitTimeMs,
      allowAutoTopicCreation: false,
    });
    this.consumer = consumer;
    let onJoin!: () => void;
    const joined = new Promise<void>((resolve) => (onJoin = resolve));
    consumer.on(consumer.events.GROUP_JOIN, (e) => {
      logger.info(
        { group: this.deps.group, assignment: e.payload.memberAssignment, leader: e.payload.isLeader },
        'Kafka consumer joined its group',
      );
      this.relaunches = 0;
      onJoin();
    });
    consumer.on(consumer.events.CRASH, (e) => {
      logger.error(
        { err: e.payload.error, group: this.deps.group, restart: e.payload.restart },
        e.payload.restart ? 'Kafka consumer crashed; kafkajs restarts it' : 'Kafka consumer crashed and stopped',
      );
      // kafkajs restarts a crashed consumer only after a retriable error; after another one (e.g.
      // "Failed to find group coordinator" while Kafka restarts) this member would be gone for good.
      if (!e.payload.restart && consumer === this.consumer) this.relaunchLater(e.payload.error);
    });
    await consumer.connect();
    await consumer.subscribe({ topics: this.deps.topics, fromBeginning: true });
    await consumer.run({
      // kafkajs commits *resolved* offsets only, and we resolve an offset only once that message and
      // every one before it in the partition is done: commits never run ahead of success.
      autoCommit: true,
      autoCommitInterval: 1000,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: Math.max(1, Math.min(this.deps.concurrency, 16)),
      eachBatch: (payload) => this.onBatch(payload),
    });
    return joined;
  }

  /**
   * A new kafkajs consumer after a backoff (1 s doubling up to 30 s), until one runs or `stop()`.
   * Messages the crashed one had fetched and not resolved are redelivered (at least once).
   */
  private relaunchLater(error: unknown): void {
    if (this.stopped || this.relaunchTimer) return;
    const delay = Math.min(30_000, 1000 * 2 ** this.relaunches++);
    this.deps.logger.warn(
      { err: error, group: this.deps.group, retryInMs: delay },
      'starting a new Kafka consumer for the group',
    );
    this.relaunchTimer = setTimeout(() => {
      this.relaunchTimer = undefined;
      if (this.stopped) return;
      void (async () => {
        await this.consumer?.disconnect().catch(() => undefined);
        if (!this.stopped) await this.launch();
      })().catch((failure: unknown) => this.relaunchLater(failure));
    }, delay);
    this.relaunchTimer.unref();
  }

  private addPending(position: number): void {
    this.pending.set(position, (this.pending.get(position) ?? 0) + 1);
  }

  private removePending(position: number): void {
    const n = this.pending.get(position) ?? 0;
    if (n <= 1) this.pending.delete(position);
    else this.pending.set(position, n - 1);
  }

  private async onBatch({
    batch,
    resolveOffset,
    heartbeat,
    commitOffsetsIfNecessary,
    isRunning,
    isStale,
  }: EachBatchPayload): Promise<void> {
    const ctrl = new AbortController();
    const { signal } = ctrl;
    this.active.add(ctrl);
    if (this.stopped) ctrl.abort();
    let lost: unknown;
    // Handlers and retries can outlast the session: keep the membership alive, and stop taking new
    // messages as soon as the partition is revoked or the consumer stops.
    const keepAlive = setInterval(() => {
      if (!isRunning() || isStale()) ctrl.abort();
      heartbeat().catch((error: unknown) => {
        lost ??= error;
        ctrl.abort();
      });
      commitOffsetsIfNecessary().catch(() => undefined);
    }, this.deps.settings.heartbeatIntervalMs);

    const items: Item[] = batch.messages.map((message) => {
      try {
        const event = decodeEvent(message.value);
        this.addPending(event.globalPosition);
        return { message, event };
      } catch (error) {
        return { message, error };
      }
    });
    const settled = new Array<boolean>(items.length).fill(false);
    let next = 0;
    const tails = new Map<string, Promise<void>>();
    try {
      for (let i = 0; i < items.length; i++) {
        const item = items[i]!;
        const key = item.message.key?.toString('utf8') ?? '';
        const run = (tails.get(key) ?? Promise.resolve()).then(async () => {
          if (!(await this.slots.acquire(signal))) return;
          try {
            if (!(await this.process(batch, item, signal))) return;
          } finally {
            this.slots.release();
          }
          settled[i] = true;
          if (item.event) {
            this.removePending(item.event.globalPosition);
            this.settledUpTo = Math.max(this.settledUpTo, item.event.globalPosition);
          }
          const before = next;
          while (next < items.length && settled[next]) next++;
          if (next > before) resolveOffset(items[next - 1]!.message.offset);
        });
        tails.set(
          key,
          run.catch((error: unknown) => {
            // process() never throws; this is a bug guard: stop the batch rather than skip.
            this.deps.logger.error({ err: error, group: this.deps.group }, 'unexpected error in the Kafka batch loop');
            ctrl.abort();
          }),
        );
      }
      await Promise.all(tails.values());
    } finally {
      clearInterval(keepAlive);
      this.active.delete(ctrl);
      items.forEach((item, i) => {
        if (!settled[i] && item.event) this.removePending(item.event.globalPosition);
      });
    }
    if (lost) throw lost;
  }

  private matches(streamId: string): boolean {
    return this.deps.streamPrefixes.some((p) => streamId.startsWith(p));
  }

  /** True once the message is settled (handled, filtered out or dead-lettered); false if aborted first. */
  private async process(batch: Batch, item: Item, signal: AbortSignal): Promise<boolean> {
    const { group, handler, logger, metrics, settings } = this.deps;
    if (signal.aborted) return false;
    if (!item.event) {
      logger.error(
        { err: item.error, group, topic: batch.topic, partition: batch.partition, offset: item.message.offset },
        'malformed message on a Settle topic',
      );
      return this.deadLetter(batch, item.message, item.error ?? new MalformedMessageError('undecodable'), 1, signal);
    }
    const event = item.event;
    const replayFor = item.message.headers?.[REPLAY_HEADERS.forGroup]?.toString();
    if (!this.matches(event.streamId) || (replayFor !== undefined && replayFor !== group)) {
      metrics?.messages.inc({ group, outcome: 'skipped' });
      return true;
    }
    let backoff: IBackoff<unknown> | undefined;
    for (let attempt = 1, counted = 1; ; attempt++) {
      if (signal.aborted) return false;
      try {
        await handler(event);
        metrics?.messages.inc({ group, outcome: 'handled' });
        return true;
      } catch (error) {
        const outage = settings.isOutage(error);
        const where = { group, streamId: event.streamId, type: event.type, position: event.globalPosition, attempt };
        if (!outage && counted >= settings.maxAttempts) {
          logger.error({ err: error, ...where }, 'handler kept failing; sending the message to the DLQ');
          return this.deadLetter(batch, item.message, error, attempt, signal);
        }
        if (!outage) counted++;
        const context = { attempt, signal, result: { error } };
        backoff = backoff ? backoff.next(context) : this.backoff.next();
        logger.warn(
          { err: error, ...where, retryInMs: Math.round(backoff.duration), outage },
          'handler failed; retrying with backoff (later events of this stream wait)',
        );
        metrics?.messages.inc({ group, outcome: 'retried' });
        if (!(await sleep(backoff.duration, signal))) return false;
      }
    }
  }

  private async deadLetter(
    batch: Batch,
    message: KafkaMessage,
    error: unknown,
    attempts: number,
    signal: AbortSignal,
  ): Promise<boolean> {
    const dlq: Message = {
      key: message.key,
      value: message.value,
      timestamp: message.timestamp,
      headers: {
        ...message.headers,
        [DLQ_HEADERS.error]: errorText(error),
        [DLQ_HEADERS.errorCode]: errorCode(error),
        [DLQ_HEADERS.attempts]: String(attempts),
        [DLQ_HEADERS.originalTopic]: batch.topic,
        [DLQ_HEADERS.originalPartition]: String(batch.partition),
        [DLQ_HEADERS.originalOffset]: message.offset,
        [DLQ_HEADERS.group]: this.deps.group,
        [DLQ_HEADERS.failedAt]: new Date().toISOString(),
      },
    };
    const topic = dlqTopicFor(batch.topic);
    // The partition must not move past the message before the DLQ has it: retry until it does.
    for (let delay = 200; ; delay = Math.min(delay * 2, 5000)) {
      try {
        await this.deps.sendToDlq(topic, dlq);
        this.deps.metrics?.messages.inc({ group: this.deps.group, outcome: 'dead_lettered' });
        this.deps.logger.warn(
          { group: this.deps.group, topic, originalOffset: message.offset, partition: batch.partition },
          'message dead-lettered',
        );
        return true;
      } catch (sendError) {
        this.deps.logger.warn({ err: sendError, topic }, 'could not publish to the DLQ; retrying');
        if (!(await sleep(delay, signal))) return false;
      }
    }
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.relaunchTimer);
    // Retries and waiting messages give up at once; handlers already running finish, and kafkajs
    // commits what was resolved before leaving the group (the rest is redelivered to a member).
    for (const ctrl of this.active) ctrl.abort();
    this.deps.onStop?.();
    await this.consumer?.disconnect();
  }
}
