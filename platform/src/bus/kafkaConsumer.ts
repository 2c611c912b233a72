import type { StoredEvent } from '@settle/domain';
import { ExponentialBackoff, type IBackoff } from 'cockatiel';
import type { Batch, Consumer as KafkaJsConsumer, EachBatchPayload, Kafka, KafkaMessage, Message } from 'kafkajs';
import { CRASH_LOOP_ATTEMPTS, decodeMarker, encodeMarker, nextAttempt, type AttemptMarker } from '../attempts.js';
import { SettleError } from '../errors.js';
import type { EventStore } from '../eventStore/port.js';
import type { Logger } from '../logger.js';
import type { Consumer, EventHandler } from './port.js';
import { ERR_BUS_CRASH_LOOP, ERR_BUS_HANDLER_FAILED, ERR_BUS_UNAVAILABLE, type BusMetrics } from './kafkaClient.js';
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
  /**
   * Times the process may die (or be killed) while handling one message before the message goes
   * to `<topic>.dlq` unhandled (error code `SETTLE_ERR_BUS_CRASH_LOOP`); counted only with an
   * attempt store.
   */
  crashLoopAttempts: number;
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
  crashLoopAttempts: CRASH_LOOP_ATTEMPTS,
};

/** Where a group's attempt markers are kept: the event store's durable named checkpoints. */
export type AttemptStore = Pick<EventStore, 'getCheckpoint' | 'saveCheckpoint'>;

/** After a run that stopped with messages of a partition in hand, this many go one at a time, each counted. */
export const CAREFUL_MESSAGES = 32;
/** Idle time before a partition's marker of handled work is cleared (under load the next batch keeps it). */
const MARKER_CLEAR_IDLE_MS = 100;

/** The named checkpoint holding group `groupId`'s attempt marker for one partition. */
export function attemptCheckpointName(groupId: string, topic: string, partition: number): string {
  return `kafka:${groupId}:${topic}:${partition}:attempt`;
}

/** The dead-letter error of a message the consumer's process kept dying on. */
export class CrashLoopError extends Error {
  readonly code = ERR_BUS_CRASH_LOOP;
  constructor(attempts: number) {
    super(`the process stopped ${attempts} times while handling this message (a crash, e.g. out of memory, or a kill)`);
    this.name = 'CrashLoopError';
  }
}

/** What this member knows of one partition's attempt marker (see `KafkaGroupConsumer`). */
interface PartitionAttempts {
  name: string;
  loaded?: Promise<boolean>;
  /** What the checkpoint holds now (as far as this member wrote it). */
  marker?: AttemptMarker | undefined;
  /** What the last run left behind when this member took the partition. */
  leftBehind?: AttemptMarker | undefined;
  /** Messages still to handle one at a time. */
  careful: number;
  /** Batches of the partition running now. */
  busy: number;
  writes: Promise<unknown>;
  clearTimer?: NodeJS.Timeout | undefined;
}

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
  /**
   * Durable attempt markers so that a handler killing the process is counted (crash loops); without
   * one, a message the process dies on is redelivered after every restart.
   */
  attempts?: AttemptStore;
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
 *
 * Crash loops (with an attempt store): a handler that kills the process never gets to throw. While
 * a partition has messages in hand, a marker says so in a named checkpoint of the event store
 * (`kafka:<groupId>:<topic>:<partition>:attempt`, written when a batch starts after idling, cleared
 * 100 ms after the partition goes idle or at a clean stop). A member that takes a partition whose
 * marker is still there knows the last run stopped uncleanly: it handles the next messages one at
 * a time, writing down each one's attempt count before handling it and committing its offset after.
 * A message whose count would pass `crashLoopAttempts` goes to the DLQ unhandled
 * (`SETTLE_ERR_BUS_CRASH_LOOP`) and the partition moves on.
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
  /** Attempt markers of the partitions assigned to this member, by `<topic>:<partition>`. */
  private readonly partitions = new Map<string, PartitionAttempts>();
  private readonly running = new Set<Promise<void>>();

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
      this.keepAttemptsOf(e.payload.memberAssignment);
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
      eachBatch: (payload) => this.track(this.onBatch(payload)),
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

  /** Keeps the batch running until it ends, so that `stop()` can wait for it before leaving the group. */
  private track(run: Promise<void>): Promise<void> {
    this.running.add(run);
    const done = () => this.running.delete(run);
    run.then(done, done);
    return run;
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
    if (batch.messages.length === 0 || this.stopped) return;
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
    const settle = (i: number): void => {
      settled[i] = true;
      const event = items[i]!.event;
      if (event) {
        this.removePending(event.globalPosition);
        this.settledUpTo = Math.max(this.settledUpTo, event.globalPosition);
      }
      const before = next;
      while (next < items.length && settled[next]) next++;
      if (next > before) resolveOffset(items[next - 1]!.message.offset);
    };
    const tails = new Map<string, Promise<void>>();
    const attempts = this.attemptsOf(batch.topic, batch.partition);
    if (attempts) attempts.busy++;
    let finished = false;
    try {
      if (attempts && !(await this.loadAttempts(attempts, signal))) return;
      // After an unclean stop: one message at a time, each attempt written down before it starts.
      for (; attempts && attempts.careful > 0 && next < items.length;) {
        const i = next;
        const item = items[i]!;
        const done = this.handles(item)
          ? await this.processCarefully(attempts, batch, item, signal)
          : await this.process(batch, item, signal);
        if (!done) return;
        settle(i);
        // Committed at once: a death on a later message does not bring this one back.
        await commitOffsetsIfNecessary({
          topics: [
            {
              topic: batch.topic,
              partitions: [{ partition: batch.partition, offset: (BigInt(item.message.offset) + 1n).toString() }],
            },
          ],
        }).catch((error: unknown) =>
          this.deps.logger.warn({ err: error, group: this.deps.group }, 'could not commit a Kafka offset'),
        );
      }
      // Work in hand from now on: written down once per busy period (not per message), cleared when idle.
      if (attempts && next < items.length && attempts.marker?.kind !== 'batch') {
        const first = Number(items[next]!.message.offset);
        if (!(await this.writeMarker(attempts, { kind: 'batch', position: first, attempts: 1 }, signal))) return;
      }
      for (let i = next; i < items.length; i++) {
        const item = items[i]!;
        const key = item.message.key?.toString('utf8') ?? '';
        const run = (tails.get(key) ?? Promise.resolve()).then(async () => {
          if (!(await this.slots.acquire(signal))) return;
          try {
            if (!(await this.process(batch, item, signal))) return;
          } finally {
            this.slots.release();
          }
          settle(i);
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
      finished = !signal.aborted;
    } finally {
      clearInterval(keepAlive);
      this.active.delete(ctrl);
      items.forEach((item, i) => {
        if (!settled[i] && item.event) this.removePending(item.event.globalPosition);
      });
      if (attempts) {
        attempts.busy--;
        // A batch cut short (revoked partition, lost membership) leaves its marker: whoever handles
        // the partition next goes carefully, which is safe. A clean stop clears it in stop().
        if (finished) this.clearMarkerSoon(attempts, batch.topic, batch.partition);
      }
    }
    if (lost) throw lost;
  }

  /** Whether the handler would see this message (not malformed, of this group's streams, not a replay for another group). */
  private handles(item: Item): boolean {
    if (!item.event || !this.matches(item.event.streamId)) return false;
    const replayFor = item.message.headers?.[REPLAY_HEADERS.forGroup]?.toString();
    return replayFor === undefined || replayFor === this.deps.group;
  }

  /** The attempt marker of a partition (undefined without an attempt store). */
  private attemptsOf(topic: string, partition: number): PartitionAttempts | undefined {
    if (!this.deps.attempts) return undefined;
    const key = `${topic}:${partition}`;
    let state = this.partitions.get(key);
    if (!state) {
      state = {
        name: attemptCheckpointName(this.deps.groupId, topic, partition),
        careful: 0,
        busy: 0,
        writes: Promise.resolve(),
      };
      this.partitions.set(key, state);
    }
    return state;
  }

  /**
   * After a rebalance, forgets the markers of partitions this member no longer has: if one comes
   * back, another member may have handled (or died on) it meanwhile, so its marker is read again.
   */
  private keepAttemptsOf(assignment: Record<string, number[]> | undefined): void {
    const kept = new Set<string>();
    for (const [topic, partitions] of Object.entries(assignment ?? {}))
      for (const partition of partitions) kept.add(`${topic}:${partition}`);
    for (const [key, state] of this.partitions)
      if (!kept.has(key)) {
        clearTimeout(state.clearTimer);
        this.partitions.delete(key);
      }
  }

  /** Reads the partition's marker once per assignment; false if aborted before the store answered. */
  private async loadAttempts(state: PartitionAttempts, signal: AbortSignal): Promise<boolean> {
    state.loaded ??= (async () => {
      for (let delay = 200; ; delay = Math.min(delay * 2, 5000)) {
        try {
          const found = decodeMarker(await this.deps.attempts!.getCheckpoint(state.name));
          state.marker = state.leftBehind = found;
          if (found) {
            state.careful = CAREFUL_MESSAGES;
            this.deps.logger.warn(
              { group: this.deps.group, marker: state.name, left: found },
              'the last run stopped with messages of this partition in hand: the next ones are handled one at a time, each attempt counted',
            );
          }
          return true;
        } catch (error) {
          this.deps.logger.warn(
            { err: error, group: this.deps.group, marker: state.name },
            'could not read the attempt marker; retrying',
          );
          if (!(await sleep(delay, signal))) return false;
        }
      }
    })();
    const loaded = await state.loaded;
    if (!loaded) state.loaded = undefined;
    return loaded;
  }

  /**
   * One message after an unclean stop: its attempt is written down before the handler runs, so a
   * handler that kills the process is counted; past the limit, it is dead-lettered unhandled.
   */
  private async processCarefully(
    state: PartitionAttempts,
    batch: Batch,
    item: Item,
    signal: AbortSignal,
  ): Promise<boolean> {
    state.careful--;
    const offset = Number(item.message.offset);
    const attempts = nextAttempt(state.leftBehind, offset);
    const limit = this.deps.settings.crashLoopAttempts;
    if (attempts > limit) {
      this.deps.logger.error(
        { group: this.deps.group, topic: batch.topic, partition: batch.partition, offset, attempts: limit },
        'the process kept dying while handling this message: sending it to the DLQ unhandled',
      );
      return this.deadLetter(batch, item.message, new CrashLoopError(limit), limit, signal);
    }
    if (!(await this.writeMarker(state, { kind: 'event', position: offset, attempts }, signal))) return false;
    return this.process(batch, item, signal);
  }

  /** Writes the partition's marker (in order), retrying until the store takes it; false if aborted first. */
  private async writeMarker(
    state: PartitionAttempts,
    marker: AttemptMarker | undefined,
    signal: AbortSignal,
  ): Promise<boolean> {
    if (marker) clearTimeout(state.clearTimer);
    state.marker = marker;
    for (let delay = 200; ; delay = Math.min(delay * 2, 5000)) {
      const write = state.writes.then(() =>
        this.deps.attempts!.saveCheckpoint(state.name, marker ? encodeMarker(marker) : 0),
      );
      state.writes = write.catch(() => undefined);
      try {
        await write;
        return true;
      } catch (error) {
        this.deps.logger.warn(
          { err: error, group: this.deps.group, marker: state.name },
          'could not write the attempt marker; retrying',
        );
        if (!(await sleep(delay, signal))) return false;
      }
    }
  }

  /** Clears the marker once the partition has been idle a moment (a batch starting meanwhile keeps it). */
  private clearMarkerSoon(state: PartitionAttempts, topic: string, partition: number): void {
    clearTimeout(state.clearTimer);
    state.clearTimer = setTimeout(() => {
      state.clearTimer = undefined;
      if (state.busy > 0 || !state.marker || this.stopped) return;
      if (this.partitions.get(`${topic}:${partition}`) !== state) return; // no longer ours
      void this.writeMarker(state, undefined, AbortSignal.abort()).catch(() => undefined);
    }, MARKER_CLEAR_IDLE_MS);
    state.clearTimer.unref();
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
    // Stopped cleanly once the handlers that were running finished: nothing of ours is in hand any
    // more. Said before leaving the group, while the partitions are still this member's.
    await Promise.allSettled([...this.running]);
    await Promise.all(
      [...this.partitions.values()].map(async (state) => {
        clearTimeout(state.clearTimer);
        if (state.marker && !(await this.writeMarker(state, undefined, AbortSignal.abort())))
          this.deps.logger.warn({ group: this.deps.group, marker: state.name }, 'could not clear the attempt marker');
      }),
    );
    this.partitions.clear();
    await this.consumer?.disconnect();
  }
}
