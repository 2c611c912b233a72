import type { StoredEvent } from '@settle/domain';

export type EventHandler = (event: StoredEvent) => Promise<void>;

export interface ConsumerOptions {
  /** Consumer group: each group sees every event once; replicas of a group share the work. */
  group: string;
  /** Only events of streams with these prefixes (categories). */
  streamPrefixes: string[];
  /** Events handled at once; events of one stream are always handled in order. */
  concurrency?: number;
}

export interface Consumer {
  /** The position below which every event has been handled (for lag figures). */
  readonly position: number;
  stop(): Promise<void>;
}

/**
 * The event bus port: reactors consume stored events through consumer groups, at least once,
 * in order per stream. The embedded bus reads the event store's own log with a durable
 * checkpoint per group; the Kafka bus consumes what the forwarder published.
 *
 * @example
 * await bus.consume({ group: 'dispatcher', streamPrefixes: ['request-'] }, async (event) => { … });
 */
export interface Bus {
  readonly name: string;
  consume(opts: ConsumerOptions, handler: EventHandler): Promise<Consumer>;
  close(): Promise<void>;
}
