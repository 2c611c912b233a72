import type { EventMetadata, StoredEvent } from '@settle/domain';

/** Expected stream revision: the last stream position (0-based), or a symbolic guard. */
export type ExpectedRevision = number | 'no_stream' | 'stream_exists' | 'any';

export interface NewEvent {
  /** Deterministic ids make appends idempotent: an id already in the stream is not appended again. */
  id: string;
  type: string;
  version?: number;
  data: unknown;
  metadata: EventMetadata;
}

export interface AppendResult {
  /** Revision of the stream after the append (the last event's stream position). */
  nextExpectedRevision: number;
  /** Global position of the last event written, or of the existing duplicate. */
  position: number;
  /** True when every event was already stored (an idempotent re-append). */
  duplicate: boolean;
}

export interface ReadStreamOptions {
  /** Only events at or before this global position (time travel). */
  toPosition?: number;
  /** Only events that occurred at or before this time (ISO). */
  toTime?: string;
}

export interface ReadAllOptions {
  /** Exclusive: events after this global position. */
  after: number;
  limit: number;
  /** Only these stream id prefixes (server-side filter). */
  streamPrefixes?: string[];
}

export type SubscriptionHandler = (events: StoredEvent[]) => Promise<void>;

export interface Subscription {
  /** Resolves once the subscription has stopped and its handler has returned. */
  stop(): Promise<void>;
  /** Settles when the subscription dies (handler error) — never resolves on a clean stop. */
  readonly failed: Promise<never>;
}

export interface SubscribeOptions {
  /** Exclusive start position (a checkpoint). */
  after: number;
  batchSize?: number;
  streamPrefixes?: string[];
}

/**
 * The event store port. Streams are append-only, ordered by stream position; the global log
 * is ordered by global position and a reader never sees a gap that later fills in.
 *
 * @example
 * const { position } = await store.append('request-1', [{ id, type: 'RequestRegistered', data, metadata }],
 *   { expectedRevision: 'no_stream' });
 */
export interface EventStore {
  readonly name: string;
  append(streamId: string, events: NewEvent[], opts: { expectedRevision: ExpectedRevision }): Promise<AppendResult>;
  readStream(streamId: string, opts?: ReadStreamOptions): Promise<StoredEvent[]>;
  readAll(opts: ReadAllOptions): Promise<StoredEvent[]>;
  /** Catch up from `after`, then follow live appends. The handler's batches never overlap. */
  subscribe(handler: SubscriptionHandler, opts: SubscribeOptions): Subscription;
  /** The highest global position a reader can see now. */
  headPosition(): Promise<number>;
  /** Durable named checkpoints (reactors, forwarder). */
  getCheckpoint(name: string): Promise<number>;
  saveCheckpoint(name: string, position: number): Promise<void>;
  ping(): Promise<void>;
  close(): Promise<void>;
}
