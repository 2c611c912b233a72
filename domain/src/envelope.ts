/** Metadata every stored event carries (DESIGN.md, "Every event carries an envelope"). */
export interface EventMetadata {
  correlationId: string;
  causationId: string;
  actor: string;
  traceparent?: string;
  tracestate?: string;
  [key: string]: unknown;
}

/** An event as a decider produces it: a type and its data. */
export interface DomainEvent<Type extends string = string, Data = unknown> {
  type: Type;
  data: Data;
}

/** An event as the store returns it. Positions are numbers: they stay below 2^53. */
export interface StoredEvent<E extends DomainEvent = DomainEvent> {
  id: string;
  type: E['type'];
  version: number;
  streamId: string;
  streamPosition: number;
  globalPosition: number;
  occurredAt: string;
  data: E['data'];
  metadata: EventMetadata;
}

/** A pure decider: decide(command, state) → events (or throws a DomainError); evolve(state, event) → state. */
export interface Decider<State, Command, Event extends DomainEvent> {
  initialState(): State;
  decide(command: Command, state: State): Event[];
  evolve(state: State, event: Event): State;
}

export function fold<State, Event extends DomainEvent>(
  decider: Pick<Decider<State, unknown, Event>, 'initialState' | 'evolve'>,
  events: Iterable<Event>,
): State {
  let state = decider.initialState();
  for (const event of events) state = decider.evolve(state, event);
  return state;
}
