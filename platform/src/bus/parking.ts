import type { EventMetadata, StoredEvent } from '@settle/domain';
import type { EventStore } from '../eventStore/port.js';
import { newId } from '../ids.js';

export type ParkedAction = 'retry' | 'skip';

/** What operators see of a parked stream, whoever parked it (a projection or a reactor group). */
export interface ParkedStreamView {
  /** The projection name, or `consumer:<group>` for a reactor group. */
  owner: string;
  streamId: string;
  eventId: string;
  eventType: string;
  position: number;
  streamPosition: number;
  error: string;
  attempts: number;
  parkedAt: string;
  /** The operator request waiting to be carried out, if any. */
  pendingAction?: ParkedAction;
}

/**
 * Where operators reach parked streams: the projector's records in the read store, the embedded
 * bus's in the event store. `act` answers null when the stream is not parked there.
 */
export interface ParkedStreamsPort {
  list(): Promise<ParkedStreamView[]>;
  /**
   * Asks for `action` on `streamId` and waits (up to `timeoutMs`) until it was carried out: true
   * once the stream flows again, false if an event failed again (still parked). Throws
   * `ParkedActionPendingError` when nobody carried the request out in time.
   */
  act(streamId: string, action: ParkedAction, actor: string, timeoutMs: number): Promise<boolean | null>;
}

export class ParkedActionPendingError extends Error {
  readonly code = 'SETTLE_ERR_PARKED_ACTION_PENDING';
}

/**
 * The embedded bus keeps each reactor group's parked streams as events on `parking-<group>`
 * (in the event store, durable with the group's checkpoint): parked, unparked, and operators'
 * requests, which the group's consumer picks up (it may run in another process).
 */
export const parkingStreamOf = (group: string): string => `parking-${group}`;

export interface StreamParkedData {
  streamId: string;
  eventId: string;
  eventType: string;
  position: number;
  streamPosition: number;
  error: string;
  attempts: number;
  at: string;
  /** Set when a retry or skip failed again at this event. */
  requestId?: string;
}
export interface StreamUnparkedData {
  streamId: string;
  at: string;
  requestId?: string;
  action?: ParkedAction;
}
export interface ParkedStreamActionRequestedData {
  streamId: string;
  action: ParkedAction;
  requestId: string;
  by: string;
  at: string;
}

export interface BusParkedStream extends StreamParkedData {
  parkedAt: string;
  pending?: { action: ParkedAction; requestId: string; by: string };
}

export interface ParkingState {
  parked: Map<string, BusParkedStream>;
  /** requestId → true (unparked) or false (failed again). */
  outcomes: Map<string, boolean>;
}

export function foldParking(events: StoredEvent[]): ParkingState {
  const parked = new Map<string, BusParkedStream>();
  const outcomes = new Map<string, boolean>();
  for (const e of events) {
    if (e.type === 'StreamParked') {
      const d = e.data as StreamParkedData;
      parked.set(d.streamId, { ...d, parkedAt: parked.get(d.streamId)?.parkedAt ?? d.at });
      if (d.requestId) outcomes.set(d.requestId, false);
    } else if (e.type === 'StreamUnparked') {
      const d = e.data as StreamUnparkedData;
      parked.delete(d.streamId);
      if (d.requestId) outcomes.set(d.requestId, true);
    } else if (e.type === 'ParkedStreamActionRequested') {
      const d = e.data as ParkedStreamActionRequestedData;
      const p = parked.get(d.streamId);
      if (p) p.pending = { action: d.action, requestId: d.requestId, by: d.by };
    }
  }
  return { parked, outcomes };
}

export async function appendParking(
  store: EventStore,
  group: string,
  type: 'StreamParked' | 'StreamUnparked' | 'ParkedStreamActionRequested',
  data: StreamParkedData | StreamUnparkedData | ParkedStreamActionRequestedData,
  actor = `consumer:${group}`,
): Promise<void> {
  const metadata: EventMetadata = { correlationId: newId(), causationId: 'parking', actor };
  await store.append(parkingStreamOf(group), [{ id: newId(), type, data, metadata }], { expectedRevision: 'any' });
}

export async function readParking(store: EventStore, group: string): Promise<ParkingState> {
  return foldParking(await store.readStream(parkingStreamOf(group)));
}

/** Operators' view of the embedded bus's parked streams, for the given reactor groups. */
export class BusParking implements ParkedStreamsPort {
  constructor(
    private readonly store: EventStore,
    private readonly groups: string[],
    private readonly pollMs = 100,
  ) {}

  async list(): Promise<ParkedStreamView[]> {
    const views: ParkedStreamView[] = [];
    for (const group of this.groups)
      for (const p of (await readParking(this.store, group)).parked.values())
        views.push({
          owner: `consumer:${group}`,
          streamId: p.streamId,
          eventId: p.eventId,
          eventType: p.eventType,
          position: p.position,
          streamPosition: p.streamPosition,
          error: p.error,
          attempts: p.attempts,
          parkedAt: p.parkedAt,
          ...(p.pending ? { pendingAction: p.pending.action } : {}),
        });
    return views;
  }

  async act(streamId: string, action: ParkedAction, actor: string, timeoutMs: number): Promise<boolean | null> {
    const requests: [group: string, requestId: string][] = [];
    for (const group of this.groups) {
      if (!(await readParking(this.store, group)).parked.has(streamId)) continue;
      const requestId = newId();
      await appendParking(
        this.store,
        group,
        'ParkedStreamActionRequested',
        { streamId, action, requestId, by: actor, at: new Date().toISOString() },
        actor,
      );
      requests.push([group, requestId]);
    }
    if (requests.length === 0) return null;
    const deadline = Date.now() + timeoutMs;
    let ok = true;
    for (const [group, requestId] of requests)
      for (;;) {
        const outcome = (await readParking(this.store, group)).outcomes.get(requestId);
        if (outcome !== undefined) {
          ok &&= outcome;
          break;
        }
        if (Date.now() >= deadline)
          throw new ParkedActionPendingError(
            `the ${group} consumer has not carried out the ${action} of ${streamId} within ${timeoutMs} ms; the request stays recorded and runs when the consumer does`,
          );
        await new Promise((r) => setTimeout(r, this.pollMs));
      }
    return ok;
  }
}
