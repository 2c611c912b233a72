import type { Decider, DomainEvent, EventMetadata, StoredEvent } from '@settle/domain';
import { LRUCache } from 'lru-cache';
import { ConcurrencyError } from './errors.js';
import type { EventStore, ExpectedRevision } from './eventStore/port.js';
import { currentContext } from './context.js';
import { newId, reactionEventId } from './ids.js';

export interface HandleOptions {
  /** Metadata for the new events; defaults come from the current work context. */
  metadata?: Partial<EventMetadata>;
  /**
   * When set, event ids derive from this id (the triggering event), so a redelivered trigger
   * appends nothing new. Otherwise ids are random.
   */
  causationEventId?: string;
  /** Conflicts are retried by re-reading and re-deciding; 0 gives the conflict to the caller. */
  retries?: number;
  /** Only decide if the stream is at this revision (If-Match); a mismatch throws ConcurrencyError. */
  expectedRevision?: number;
  onAppended?(events: DomainEvent[], position: number): void;
  /**
   * Decide the first attempt on this state instead of reading the stream: what the caller loaded
   * a moment ago, or `'new'` for a stream id it just made up (an appended event's expected
   * revision is then "no stream"). If the stream moved meanwhile, the append is refused and the
   * command is decided again on the stream as read (once more, even with `retries: 0`).
   */
  assume?: 'new' | { state: unknown; revision: number; position: number };
  /**
   * `false`: keep no state of this stream in memory after the call. For a command after which the
   * stream's history changes without a new revision (archiving truncates it), where a state
   * remembered from before would no longer be what its events fold to.
   */
  remember?: boolean;
}

export interface HandleResult<State> {
  state: State;
  /** Events this call appended (empty when the decision was a no-op or a duplicate). */
  appended: DomainEvent[];
  /** Revision of the stream after the call (-1: no stream). */
  revision: number;
  /** Global position of the last event written by this call, or of the stream's last event. */
  position: number;
}

/** A stream's state as this process last wrote or read it, with the decider that folded it. */
interface KnownState {
  decider: unknown;
  state: unknown;
  revision: number;
  position: number;
}

/** Streams recently written through each store (most are written again a moment later: a request's lifecycle). */
const known = new WeakMap<EventStore, LRUCache<string, KnownState>>();
const KNOWN_STREAMS = 2000;

function knownStates(store: EventStore): LRUCache<string, KnownState> {
  let cache = known.get(store);
  if (!cache) known.set(store, (cache = new LRUCache({ max: KNOWN_STREAMS })));
  return cache;
}

export async function loadAggregate<State, Event extends DomainEvent>(
  store: EventStore,
  streamId: string,
  decider: Pick<Decider<State, unknown, Event>, 'initialState' | 'evolve'>,
): Promise<{ state: State; revision: number; position: number; events: StoredEvent[] }> {
  const events = await store.readStream(streamId);
  let state = decider.initialState();
  for (const e of events) state = decider.evolve(state, e as unknown as Event);
  const last = events[events.length - 1];
  return { state, revision: last ? last.streamPosition : -1, position: last ? last.globalPosition : 0, events };
}

/**
 * Load → decide → append with the expected revision; on a conflict, load and decide again.
 * Domain errors propagate untouched; nothing is appended for a rejected command.
 */
export async function handleCommand<State, Command, Event extends DomainEvent>(
  store: EventStore,
  streamId: string,
  decider: Decider<State, Command, Event>,
  command: Command | ((state: State) => Command),
  opts: HandleOptions = {},
): Promise<HandleResult<State>> {
  const retries = opts.retries ?? 5;
  const states = knownStates(store);
  const remember = (state: unknown, revision: number, position: number) =>
    revision >= 0 && opts.remember !== false
      ? states.set(streamId, { decider, state, revision, position })
      : states.delete(streamId);
  for (let attempt = 0; ; attempt++) {
    let assumed = attempt === 0 ? opts.assume : undefined;
    // The state this process last saw is tried first, without reading the stream: the append's
    // expected revision proves it current. Whatever it would not append (a no-op, a refusal) is
    // decided again on the stream as read, where a stale state could be wrong.
    let recalled = false;
    if (attempt === 0 && assumed === undefined && opts.expectedRevision === undefined && opts.remember !== false) {
      const hit = states.get(streamId);
      if (hit && hit.decider === decider) {
        assumed = { state: hit.state, revision: hit.revision, position: hit.position };
        recalled = true;
      }
    }
    const loaded = assumed === undefined;
    const { state, revision, position } =
      assumed === 'new'
        ? { state: decider.initialState(), revision: -1, position: 0 }
        : assumed
          ? (assumed as { state: State; revision: number; position: number })
          : await loadAggregate(store, streamId, decider);
    if (loaded) remember(state, revision, position);
    if (opts.expectedRevision !== undefined && opts.expectedRevision !== revision)
      throw new ConcurrencyError(streamId, String(opts.expectedRevision), revision);
    let decided: Event[];
    try {
      const cmd = typeof command === 'function' ? (command as (s: State) => Command)(state) : command;
      decided = decider.decide(cmd, state);
    } catch (error) {
      if (recalled) continue;
      throw error;
    }
    if (decided.length === 0) {
      if (recalled) continue;
      return { state, appended: [], revision, position };
    }
    const ctx = currentContext();
    const metadata: EventMetadata = {
      correlationId: opts.metadata?.correlationId ?? ctx?.correlationId ?? newId(),
      causationId: opts.metadata?.causationId ?? ctx?.causationId ?? ctx?.correlationId ?? 'command',
      actor: opts.metadata?.actor ?? ctx?.actor ?? 'system',
      ...(ctx?.traceparent ? { traceparent: ctx.traceparent } : {}),
      ...(ctx?.tracestate ? { tracestate: ctx.tracestate } : {}),
      ...opts.metadata,
    };
    const expectedRevision: ExpectedRevision = revision === -1 ? 'no_stream' : revision;
    try {
      const result = await store.append(
        streamId,
        decided.map((e, i) => ({
          id: opts.causationEventId ? reactionEventId(opts.causationEventId, i) : newId(),
          type: e.type,
          data: e.data,
          metadata,
        })),
        { expectedRevision },
      );
      let next = state;
      if (!result.duplicate) {
        for (const e of decided) next = decider.evolve(next, e);
        remember(next, result.nextExpectedRevision, result.position);
        opts.onAppended?.(decided, result.position);
        return { state: next, appended: decided, revision: result.nextExpectedRevision, position: result.position };
      }
      const reloaded = await loadAggregate(store, streamId, decider);
      remember(reloaded.state, reloaded.revision, reloaded.position);
      return { state: reloaded.state, appended: [], revision: reloaded.revision, position: result.position };
    } catch (error) {
      if (error instanceof ConcurrencyError) states.delete(streamId);
      if (
        error instanceof ConcurrencyError &&
        opts.expectedRevision === undefined &&
        (attempt < retries || assumed !== undefined)
      )
        continue;
      throw error;
    }
  }
}
