import type {
  Cache,
  DeadLetter,
  ClientRegistry,
  EventStore,
  Logger,
  MQEmitter,
  Principal,
  ReadStore,
  TokenService,
} from '@settle/platform';
import type { ParkedStreamsPort, ProjectionOperations, Projector } from '@settle/projections';
import type { RebuildProgressExtension } from './resolvers/operations.js';
import type { MercuriusContext } from 'mercurius';

/** Kafka `<topic>.dlq` messages, for operators (the Kafka bus only; the embedded bus parks streams instead). */
export interface DeadLetterPort {
  list(): Promise<DeadLetter[]>;
  /** Publishes the message back to its original topic, for the group that failed it. */
  replay(letter: DeadLetter): Promise<void>;
}

/** What the query side needs; the composition root (`cli/`) chooses the adapters. */
export interface QueryDeps {
  readStore: ReadStore;
  eventStore: EventStore;
  /** Read-your-writes waits and the operators' `projections` view. */
  projector: Pick<Projector, 'waitFor' | 'status' | 'currentPosition'>;
  /** Blue-green rebuilds and rollbacks (`rebuildProjection`, `rollbackProjection`); NOT_IMPLEMENTED without. */
  operations?: Pick<
    ProjectionOperations,
    'rebuild' | 'rollback' | 'pointer' | 'pointers' | 'localProgress' | 'prefixes'
  >;
  tokens: Pick<TokenService, 'verify'>;
  /** When given, tokens of unknown or disabled clients are refused (as the REST API does). */
  clients?: Pick<ClientRegistry, 'get'>;
  /** Where the projector publishes changed requests (`REQUEST_UPDATED_TOPIC`). */
  pubsub: MQEmitter;
  cache: Cache;
  logger: Logger;
  /** Serve GraphiQL at /graphiql. */
  graphiql: boolean;
  /** Longest wait for a `minPosition` before answering with `extensions.stale`. */
  readWaitMs: number;
  now?: () => Date;
  /**
   * Where parked streams are listed and retried or skipped: by default the projector's records in
   * the read store; the composition root adds the embedded bus's reactor groups.
   */
  parking?: ParkedStreamsPort[];
  /** Longest `retryParked`/`skipParked` wait for the projector or consumer to carry them out (default 10 s). */
  parkedActionWaitMs?: number;
  deadLetters?: DeadLetterPort;
}

/** The resolver context: mercurius' own plus the verified principal. */
export interface QueryContext extends MercuriusContext {
  principal: Principal;
  /** Set when a `minPosition` wait timed out: the answer may not include the caller's writes yet. */
  stale?: boolean;
  /** Set by `projections` while rebuilds run: served in `extensions.rebuilds` (events/s, ETA). */
  rebuilds?: RebuildProgressExtension[];
}
