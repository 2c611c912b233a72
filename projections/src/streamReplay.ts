import {
  CLIENT_STREAM_PREFIX,
  clientDecider,
  preferencesDecider,
  type ClientEvent,
  type PreferencesEvent,
  type StoredEvent,
} from '@settle/domain';
import { SettleError, type EventStore, type ReadStreamOptions } from '@settle/platform';
import { applyRequestEvent, type RequestDoc } from './requests.js';

/** One line of a stream replay (time travel): the state right after `type` was applied. */
export interface StreamReplayLine {
  position: number;
  streamPosition: number;
  type: string;
  occurredAt: string;
  state: unknown;
}

interface StreamFold {
  initial(): unknown;
  apply(state: unknown, event: StoredEvent): unknown;
}

/** Fields of client state an operator's terminal has no business showing. */
const SECRET_FIELD = /(Hash|Ciphertext)$/;

function redact(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redact);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [k, SECRET_FIELD.test(k) ? '[redacted]' : redact(v)]),
  );
}

/**
 * How each known stream is folded: requests with the read model's own fold (what GraphQL shows,
 * and what `request(id, asOf:)` folds), the other aggregates with their domain `evolve`.
 */
const FOLDS: Record<string, StreamFold> = {
  'request-': {
    initial: () => null,
    apply(state, event) {
      const next = applyRequestEvent(state as RequestDoc | null, event);
      return next ? { ...next, _position: event.globalPosition } : state;
    },
  },
  'preferences-': {
    initial: () => preferencesDecider.initialState(),
    apply: (state, event) => preferencesDecider.evolve(state as never, event as unknown as PreferencesEvent),
  },
  [CLIENT_STREAM_PREFIX]: {
    initial: () => clientDecider.initialState(),
    apply: (state, event) => clientDecider.evolve(state as never, event as unknown as ClientEvent),
  },
};

export const REPLAYABLE_STREAM_PREFIXES = Object.keys(FOLDS);

/**
 * `--to POSITION|ISO_TIME` → where the replay stops. Digits are a global position; a time is
 * inclusive to the millisecond (the store keeps microseconds), as `request(id, asOf:)` reads it.
 */
export function parseReplayTo(to: string | undefined): ReadStreamOptions {
  if (to === undefined || to === '') return {};
  if (/^\d+$/.test(to)) {
    const position = Number(to);
    if (!Number.isSafeInteger(position))
      throw new SettleError('SETTLE_ERR_REPLAY_ARGUMENT', `--to ${to}: position too large`, 400);
    return { toPosition: position };
  }
  const ms = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(to) ? Date.parse(to) : NaN;
  if (Number.isNaN(ms))
    throw new SettleError(
      'SETTLE_ERR_REPLAY_ARGUMENT',
      `--to ${to}: expected a global position (digits) or an ISO 8601 time with a zone, e.g. 2026-01-31T12:00:00Z`,
      400,
    );
  return { toTime: `${new Date(ms).toISOString().slice(0, -1)}999Z` };
}

/** Throws SETTLE_ERR_REPLAY_UNKNOWN_STREAM unless the stream is one replays know how to fold. */
export function checkReplayable(streamId: string): void {
  foldFor(streamId);
}

function foldFor(streamId: string): StreamFold {
  const prefix = REPLAYABLE_STREAM_PREFIXES.find((p) => streamId.startsWith(p));
  if (!prefix)
    throw new SettleError(
      'SETTLE_ERR_REPLAY_UNKNOWN_STREAM',
      `don't know how to fold stream ${streamId}: known streams start with ${REPLAYABLE_STREAM_PREFIXES.join(', ')}`,
      400,
    );
  return FOLDS[prefix]!;
}

/**
 * Time travel over one stream: the state after each event up to `opts` (position or time).
 * Events come upcast from the store, so every line shows the current schema's shape.
 */
export async function* replayStream(
  store: EventStore,
  streamId: string,
  opts: ReadStreamOptions = {},
): AsyncGenerator<StreamReplayLine> {
  foldFor(streamId);
  yield* foldStreamEvents(streamId, await store.readStream(streamId, opts));
}

/** Keeps the events at or before `opts` (position or time), as `readStream` would. */
export function withinReplayRange(events: StoredEvent[], opts: ReadStreamOptions): StoredEvent[] {
  const toTime = opts.toTime === undefined ? undefined : Date.parse(opts.toTime);
  return events.filter(
    (e) =>
      (opts.toPosition === undefined || e.globalPosition <= opts.toPosition) &&
      (toTime === undefined || Date.parse(e.occurredAt) <= toTime),
  );
}

/** Time travel over events already read (a stream with its archived part, say). */
export function* foldStreamEvents(streamId: string, events: StoredEvent[]): Generator<StreamReplayLine> {
  const fold = foldFor(streamId);
  let state = fold.initial();
  for (const event of events) {
    state = fold.apply(state, event);
    yield {
      position: event.globalPosition,
      streamPosition: event.streamPosition,
      type: event.type,
      occurredAt: event.occurredAt,
      state: streamId.startsWith(CLIENT_STREAM_PREFIX) ? redact(state) : state,
    };
  }
}
