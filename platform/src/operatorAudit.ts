import {
  OPERATOR_AUDIT_STREAM,
  type EventMetadata,
  type OperatorAction,
  type OperatorActionRecorded,
  type StoredEvent,
} from '@settle/domain';
import { currentContext } from './context.js';
import type { EventStore } from './eventStore/port.js';
import { newId } from './ids.js';

export interface OperatorActionInput {
  action: OperatorAction;
  target: string;
  detail?: Record<string, unknown>;
  /** The operator's client id (`cli` for offline runs); defaults to the work context's actor. */
  actor?: string;
  /** A deterministic UUID (e.g. `reactionEventId`) when the action may be retried (an idempotent re-record appends nothing). */
  eventId?: string;
}

/**
 * Records an operator action on the `operator-audit` stream (append-only, expected revision
 * `any`: actions from several operators never conflict). Returns the event's global position.
 *
 * @example
 * await recordOperatorAction(eventStore, { action: 'ParkedStreamSkipped', target: 'request-42', actor: 'demo-operator' });
 */
export async function recordOperatorAction(store: EventStore, input: OperatorActionInput): Promise<number> {
  const ctx = currentContext();
  const metadata: EventMetadata = {
    correlationId: ctx?.correlationId ?? newId(),
    causationId: ctx?.causationId ?? ctx?.correlationId ?? 'operator',
    actor: input.actor ?? ctx?.actor ?? 'operator',
    ...(ctx?.traceparent ? { traceparent: ctx.traceparent } : {}),
  };
  const event: OperatorActionRecorded = {
    type: 'OperatorActionRecorded',
    data: { action: input.action, target: input.target, detail: input.detail ?? {}, at: new Date().toISOString() },
  };
  const result = await store.append(
    OPERATOR_AUDIT_STREAM,
    [{ id: input.eventId ?? newId(), type: event.type, data: event.data, metadata }],
    { expectedRevision: 'any' },
  );
  return result.position;
}

/** The audit trail, oldest first. */
export async function readOperatorActions(store: EventStore): Promise<StoredEvent<OperatorActionRecorded>[]> {
  const events = await store.readStream(OPERATOR_AUDIT_STREAM);
  return events.filter((e) => e.type === 'OperatorActionRecorded') as unknown as StoredEvent<OperatorActionRecorded>[];
}
