import { randomUUID } from 'node:crypto';
import {
  ANY,
  BACKWARDS,
  END,
  EventStoreDBClient,
  FORWARDS,
  NO_STREAM,
  START,
  STREAM_EXISTS,
  StreamNotFoundError,
  WrongExpectedVersionError,
  jsonEvent,
  streamNameFilter,
  type AllStreamResolvedEvent,
  type AppendExpectedRevision,
  type AllStreamSubscription,
  type JSONType,
  type ReadPosition,
  type RecordedEvent,
  type ResolvedEvent,
  type StreamingRead,
} from '@eventstore/db-client';
import { schemaVersionOf, upcast, type EventMetadata, type StoredEvent } from '@settle/domain';
import { ConcurrencyError, StoreUnavailableError } from '../errors.js';
import type { StreamArchive } from './archive.js';
import { EsdbArchive } from './esdbArchive.js';
import type {
  AppendResult,
  EventStore,
  ExpectedRevision,
  NewEvent,
  ReadAllOptions,
  ReadStreamOptions,
  SubscribeOptions,
  Subscription,
  SubscriptionHandler,
} from './port.js';

/**
 * Checkpoints live in ordinary streams (writing `$`-streams needs the `$admins` role) capped at
 * one event with `$maxCount`; the global log hides them like system streams.
 */
const CHECKPOINT_PREFIX = 'settle-checkpoint-';
/** Server-side stream filter for subscriptions without prefixes: no system, no checkpoint streams. */
const USER_STREAMS_REGEX = `^(?!\\$|${CHECKPOINT_PREFIX})`;
/** Metadata keys this adapter adds to every event and strips on read. */
const VERSION_KEY = 'settleVersion';
const APPEND_ID_KEY = 'settleAppendId';

export interface EsdbEventStoreOptions {
  /** How many of a stream's last events an append scans for its own ids (idempotency). */
  idempotencyScan?: number;
  /** Events per page when reading `$all` (readAll, headPosition). */
  pageSize?: number;
}

type AnyRecorded = RecordedEvent | AllStreamResolvedEvent['event'];

const hidden = (streamId: string, type: string) =>
  streamId.startsWith('$') || type.startsWith('$') || streamId.startsWith(CHECKPOINT_PREFIX);

const matches = (streamId: string, prefixes: string[] | undefined) =>
  !prefixes || prefixes.length === 0 || prefixes.some((p) => streamId.startsWith(p));

const toEsdbRevision = (expected: ExpectedRevision): AppendExpectedRevision => {
  if (expected === 'no_stream') return NO_STREAM;
  if (expected === 'stream_exists') return STREAM_EXISTS;
  if (expected === 'any') return ANY;
  return expected < 0 ? NO_STREAM : BigInt(expected);
};

/** `after` positions are exclusive; 0 is the start of the log. */
const toEsdbPosition = (position: number): ReadPosition =>
  position <= 0 ? START : { commit: BigInt(position), prepare: BigInt(position) };

const MAX_POSITION = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * The global position of an event is its commit position in the transaction log. Appends
 * through gRPC (EventStoreDB 20+) write each event as its own committed record, so commit
 * positions are unique and grow with the log; they are byte offsets, so they stay below 2^53
 * (8 PiB of log) and fit a JavaScript number.
 */
function logPosition(e: NonNullable<AllStreamResolvedEvent['event']>): number {
  if (e.position.commit > MAX_POSITION)
    throw new Error(`EventStoreDB log position ${e.position.commit} is beyond 2^53`);
  return Number(e.position.commit);
}

/**
 * The position of an event read from a stream: stream reads carry it from EventStoreDB 22.6 on
 * (older servers send none, or an out-of-range marker); `fallbacks` are other answers that may
 * carry it (an append's result). No user event sits at position 0.
 */
function positionOf(e: NonNullable<AnyRecorded>, ...fallbacks: (bigint | undefined)[]): number {
  const usable = [e.position?.commit, ...fallbacks].find((p) => p !== undefined && p > 0n && p <= MAX_POSITION);
  if (usable === undefined)
    throw new Error(
      `EventStoreDB returned no usable position for event ${e.id} of stream ${e.streamId} ` +
        '(stream reads carry positions from EventStoreDB 22.6 on)',
    );
  return Number(usable);
}

function toStored(e: NonNullable<AnyRecorded>, commitPosition?: bigint): StoredEvent {
  return upcast(toStoredRaw(e, commitPosition));
}

/** An event as stored (no upcasting): what an archive export holds. */
export function toStoredRaw(e: NonNullable<AnyRecorded>, commitPosition?: bigint): StoredEvent {
  const raw = (
    e.metadata && typeof e.metadata === 'object' && !(e.metadata instanceof Uint8Array) ? e.metadata : {}
  ) as Record<string, unknown>;
  const { [VERSION_KEY]: version, [APPEND_ID_KEY]: _appendId, $correlationId: _c, $causationId: _k, ...metadata } = raw;
  return {
    id: e.id,
    type: e.type,
    version: typeof version === 'number' ? version : schemaVersionOf(e.type),
    streamId: e.streamId,
    streamPosition: Number(e.revision),
    globalPosition: positionOf(e, commitPosition),
    occurredAt: e.created.toISOString(),
    data: e.data,
    metadata: metadata as EventMetadata,
  };
}

/**
 * Feeds a read to `take` until the read ends or `take` returns false (a missing stream reads
 * as empty). A call left paused before its end is never released: the client's dispose()
 * then waits for it forever. So after an early stop the read is cancelled and still drained.
 */
export function drain<T>(read: StreamingRead<T>, take: (item: T) => boolean): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let taking = true;
    const finish = (error?: unknown) => {
      if (!taking) return;
      taking = false;
      if (error === undefined || error instanceof StreamNotFoundError) resolve();
      else reject(error);
    };
    read.on('data', (item: T) => {
      if (!taking) return;
      let more: boolean;
      try {
        more = take(item);
      } catch (error) {
        more = false;
        finish(error);
      }
      if (!more) {
        finish();
        void read.cancel().catch(() => undefined);
      }
    });
    read.on('end', () => finish());
    read.on('error', (error) => finish(error));
  });
}

/** Pulls what a subscription has buffered, up to `max` items, waiting for at least one. */
class Puller {
  private error: unknown;
  private ended = false;
  private interrupted = false;
  private waiter: (() => void) | undefined;
  private readonly poke = () => this.waiter?.();

  constructor(private readonly stream: AllStreamSubscription) {
    // Listening for 'error' at all times: an unheard 'error' event would crash the process.
    stream.on('error', (error) => {
      this.error = error;
      this.poke();
    });
    stream.on('end', () => {
      this.ended = true;
      this.poke();
    });
    stream.on('readable', this.poke);
  }

  /** Cancels the call and lets it flow to its end, discarding the rest (see `drain`). */
  async release(): Promise<void> {
    this.interrupt();
    this.stream.off('readable', this.poke);
    this.stream.resume();
    await this.stream.unsubscribe().catch(() => undefined);
  }

  /** Resolves with [] once interrupted; rejects when the subscription failed or ended. */
  async next(max: number): Promise<AllStreamResolvedEvent[]> {
    for (;;) {
      const items: AllStreamResolvedEvent[] = [];
      let item: AllStreamResolvedEvent | null;
      while (items.length < max && (item = this.stream.read() as AllStreamResolvedEvent | null) !== null)
        items.push(item);
      if (items.length > 0 || this.interrupted) return items;
      if (this.error !== undefined) throw this.error;
      if (this.ended || this.stream.destroyed) throw new Error('EventStoreDB ended the subscription');
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
      });
      this.waiter = undefined;
    }
  }

  interrupt(): void {
    this.interrupted = true;
    this.waiter?.();
  }
}

/**
 * The EventStoreDB / KurrentDB event store (gRPC client, server 20+; 22.6+ for positions on
 * stream reads). Expected revisions map to EventStoreDB's; event ids are the caller's
 * (deterministic ids make re-appends no-ops); subscriptions are catch-up subscriptions to
 * `$all` with a server-side stream filter; checkpoints are one-event streams.
 *
 * `$all` excludes system streams and events (`$…`) and checkpoint streams everywhere. The
 * client (6.x) filters `$all` server-side only for subscriptions, so `readAll` and
 * `headPosition` page through `$all` and filter here.
 *
 * @example
 * const store = await EsdbEventStore.create('esdb://admin:changeit@127.0.0.1:2113?tls=false');
 */
export class EsdbEventStore implements EventStore {
  readonly name: string;
  private readonly idempotencyScan: number;
  private readonly pageSize: number;
  private readonly cappedCheckpoints = new Set<string>();
  private readonly subscriptions = new Set<Subscription>();

  private constructor(
    private readonly client: EventStoreDBClient,
    name: string,
    opts: EsdbEventStoreOptions,
  ) {
    this.name = name;
    this.idempotencyScan = opts.idempotencyScan ?? 1000;
    this.pageSize = Math.max(2, opts.pageSize ?? 500);
  }

  /** Connects and checks that `$all` is readable (subscriptions need it; by default only `$admins` may). */
  static async create(connectionString: string, opts: EsdbEventStoreOptions = {}): Promise<EsdbEventStore> {
    const redacted = connectionString.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');
    const part = `EventStoreDB at ${redacted}`;
    let client: EventStoreDBClient;
    try {
      client = EventStoreDBClient.connectionString(connectionString);
    } catch (error) {
      throw new StoreUnavailableError(part, error);
    }
    const store = new EsdbEventStore(client, part, opts);
    try {
      await store.ping();
    } catch (error) {
      await client.dispose().catch(() => undefined);
      throw new StoreUnavailableError(part, error);
    }
    return store;
  }

  async append(
    streamId: string,
    events: NewEvent[],
    opts: { expectedRevision: ExpectedRevision },
  ): Promise<AppendResult> {
    if (events.length === 0) throw new Error('append needs at least one event');
    const ids = events.map((e) => e.id);
    const expected = opts.expectedRevision;
    // EventStoreDB only recognises a re-append as such when it lands on the same revision;
    // the port promises more (an id already in the stream is never appended again).
    const stored = await this.findStored(streamId, ids);
    if (stored.length === ids.length) return duplicateOf(stored);
    if (stored.length > 0)
      throw new ConcurrencyError(streamId, `${String(expected)} (some event ids already stored)`, -3);

    const appendId = randomUUID();
    const data = events.map((e) =>
      jsonEvent({
        id: e.id,
        type: e.type,
        data: e.data as JSONType,
        metadata: {
          ...e.metadata,
          $correlationId: e.metadata.correlationId,
          $causationId: e.metadata.causationId,
          [VERSION_KEY]: e.version ?? schemaVersionOf(e.type),
          [APPEND_ID_KEY]: appendId,
        },
      }),
    );
    const conflict = async (actual: number) => {
      // A concurrent writer may have stored these very events: then this append is a no-op.
      const again = await this.findStored(streamId, ids);
      if (again.length === ids.length) return duplicateOf(again);
      throw new ConcurrencyError(streamId, String(expected), actual);
    };
    let result;
    try {
      result = await this.client.appendToStream(streamId, data, { expectedRevision: toEsdbRevision(expected) });
    } catch (error) {
      if (!(error instanceof WrongExpectedVersionError)) throw error;
      return conflict(error.actualVersion === NO_STREAM ? -1 : Number(error.actualVersion));
    }
    // With `throwOnAppendFailure=false` in the connection string the client answers instead of throwing.
    if (!result.success) return conflict(Number(result.nextExpectedRevision));
    // EventStoreDB also answers "success" to a re-append that raced with the first one; only
    // the append id on the stored event tells whose write it was.
    let last: NonNullable<AnyRecorded> | undefined;
    await drain(
      this.client.readStream(streamId, {
        fromRevision: result.nextExpectedRevision,
        maxCount: 1,
        direction: FORWARDS,
        requiresLeader: true,
      }),
      (r) => {
        last = r.event;
        return false;
      },
    );
    if (!last) throw new Error(`EventStoreDB acknowledged an append to ${streamId} it cannot read back`);
    const meta = last.metadata as Record<string, unknown> | undefined;
    return {
      duplicate: meta?.[APPEND_ID_KEY] !== appendId,
      position: positionOf(last, result.position?.commit),
      nextExpectedRevision: Number(result.nextExpectedRevision),
    };
  }

  /** The stored events among `ids`, scanning the stream's last `idempotencyScan` events. */
  private async findStored(streamId: string, ids: string[]): Promise<{ revision: number; position: number }[]> {
    const wanted = new Set(ids);
    const found: { revision: number; position: number }[] = [];
    await drain(
      this.client.readStream(streamId, { direction: BACKWARDS, fromRevision: END, maxCount: this.idempotencyScan }),
      (r) => {
        if (r.event && wanted.has(r.event.id))
          found.push({ revision: Number(r.event.revision), position: positionOf(r.event, r.commitPosition) });
        return found.length < wanted.size;
      },
    );
    return found;
  }

  async readStream(streamId: string, opts: ReadStreamOptions = {}): Promise<StoredEvent[]> {
    const toTime = opts.toTime === undefined ? undefined : Date.parse(opts.toTime);
    const events: StoredEvent[] = [];
    await drain(this.client.readStream(streamId, { direction: FORWARDS, fromRevision: START }), (r: ResolvedEvent) => {
      if (!r.event || r.event.type.startsWith('$')) return true;
      const e = toStored(r.event, r.commitPosition);
      if (opts.toPosition !== undefined && e.globalPosition > opts.toPosition) return false;
      if (toTime === undefined || Date.parse(e.occurredAt) <= toTime) events.push(e);
      return true;
    });
    return events;
  }

  async readAll(opts: ReadAllOptions): Promise<StoredEvent[]> {
    const events: StoredEvent[] = [];
    let cursor = opts.after;
    while (events.length < opts.limit) {
      let received = 0;
      await drain(
        this.client.readAll({ fromPosition: toEsdbPosition(cursor), maxCount: this.pageSize, direction: FORWARDS }),
        (r) => {
          received++;
          const e = r.event;
          if (!e) return true;
          const position = logPosition(e);
          // The start position is inclusive for reads; `after` is not.
          if (position <= cursor) return true;
          cursor = position;
          if (!hidden(e.streamId, e.type) && matches(e.streamId, opts.streamPrefixes))
            events.push(toStored(e, r.commitPosition));
          return events.length < opts.limit;
        },
      );
      if (received < this.pageSize) break;
    }
    return events;
  }

  subscribe(handler: SubscriptionHandler, opts: SubscribeOptions): Subscription {
    const batchSize = opts.batchSize ?? 500;
    const prefixes = opts.streamPrefixes && opts.streamPrefixes.length > 0 ? opts.streamPrefixes : undefined;
    const filter = prefixes ? streamNameFilter({ prefixes }) : streamNameFilter({ regex: USER_STREAMS_REGEX });
    let position = opts.after;
    let stopped = false;
    let puller: Puller | undefined;
    let cancelBackOff: (() => void) | undefined;
    let rejectFailed!: (error: unknown) => void;
    const failed = new Promise<never>((_, reject) => {
      rejectFailed = reject;
    });
    failed.catch(() => undefined);

    const backOff = (ms: number) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(done, ms);
        function done() {
          clearTimeout(timer);
          cancelBackOff = undefined;
          resolve();
        }
        cancelBackOff = done;
      });

    const loop = async () => {
      let attempt = 0;
      while (!stopped) {
        let current: Puller | undefined;
        try {
          current = new Puller(
            this.client.subscribeToAll(
              { fromPosition: toEsdbPosition(position), filter },
              { highWaterMark: batchSize },
            ),
          );
          puller = current;
          while (!stopped) {
            const received = await current.next(batchSize);
            const batch: StoredEvent[] = [];
            for (const r of received) {
              if (!r.event || hidden(r.event.streamId, r.event.type)) continue;
              const e = toStored(r.event, r.commitPosition);
              if (e.globalPosition > position && matches(e.streamId, prefixes)) batch.push(e);
            }
            if (stopped || batch.length === 0) continue;
            try {
              await handler(batch);
            } catch (error) {
              stopped = true;
              rejectFailed(error);
              return;
            }
            position = batch[batch.length - 1]!.globalPosition;
            attempt = 0;
          }
        } catch {
          // Connection lost, leader changed, server restarted: subscribe again from the last
          // delivered position, after a pause.
          if (!stopped) await backOff(Math.min(250 * 2 ** attempt++, 5000));
        } finally {
          await current?.release();
        }
      }
    };
    const running = loop().catch((error: unknown) => {
      stopped = true;
      rejectFailed(error);
    });
    const subscription: Subscription = {
      failed,
      stop: async () => {
        stopped = true;
        puller?.interrupt();
        cancelBackOff?.();
        await running;
        this.subscriptions.delete(subscription);
      },
    };
    this.subscriptions.add(subscription);
    void failed.catch(() => this.subscriptions.delete(subscription));
    return subscription;
  }

  async headPosition(): Promise<number> {
    let from: ReadPosition = END;
    let before = Number.POSITIVE_INFINITY;
    for (;;) {
      let received = 0;
      let head = 0;
      await drain(this.client.readAll({ fromPosition: from, maxCount: this.pageSize, direction: BACKWARDS }), (r) => {
        received++;
        const e = r.event;
        if (!e) return true;
        const position = logPosition(e);
        if (position >= before) return true;
        before = position;
        if (hidden(e.streamId, e.type)) return true;
        head = position;
        return false;
      });
      if (head > 0) return head;
      if (received < this.pageSize || before === Number.POSITIVE_INFINITY) return 0;
      from = { commit: BigInt(before), prepare: BigInt(before) };
    }
  }

  async getCheckpoint(name: string): Promise<number> {
    let position = 0;
    await drain(
      this.client.readStream(CHECKPOINT_PREFIX + name, { direction: BACKWARDS, fromRevision: END, maxCount: 1 }),
      (r) => {
        const data = r.event?.data as { position?: unknown } | undefined;
        if (typeof data?.position === 'number') position = data.position;
        return false;
      },
    );
    return position;
  }

  async saveCheckpoint(name: string, position: number): Promise<void> {
    const stream = CHECKPOINT_PREFIX + name;
    if (!this.cappedCheckpoints.has(stream)) {
      // Only the last checkpoint matters; older ones become unreadable at once and go at scavenge.
      await this.client.setStreamMetadata(stream, { maxCount: 1 });
      this.cappedCheckpoints.add(stream);
    }
    await this.client.appendToStream(stream, jsonEvent({ type: 'SettleCheckpointStored', data: { position } }), {
      expectedRevision: ANY,
    });
  }

  /** Archiving with `$tb` stream metadata (see EsdbArchive). */
  streamArchive(): StreamArchive {
    return new EsdbArchive(this, this.client);
  }

  async ping(): Promise<void> {
    await drain(this.client.readAll({ fromPosition: END, maxCount: 1, direction: BACKWARDS }), () => false);
  }

  async close(): Promise<void> {
    await Promise.all([...this.subscriptions].map((s) => s.stop()));
    await this.client.dispose();
  }
}

function duplicateOf(stored: { revision: number; position: number }[]): AppendResult {
  return {
    duplicate: true,
    position: Math.max(...stored.map((s) => s.position)),
    nextExpectedRevision: Math.max(...stored.map((s) => s.revision)),
  };
}
