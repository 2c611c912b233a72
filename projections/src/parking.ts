import type { StoredEvent } from '@settle/domain';
import {
  newId,
  ParkedActionPendingError,
  type ParkedAction,
  type ParkedStreamsPort,
  type ParkedStreamView,
  type ReadDoc,
  type ReadStore,
} from '@settle/platform';

/** The read-store collection of parked streams (durable on MongoDB). */
export const PARKED_STREAMS = 'parked_streams';

export type { ParkedAction, ParkedStreamsPort, ParkedStreamView } from '@settle/platform';
export { ParkedActionPendingError } from '@settle/platform';

/**
 * A stream a projection stopped applying: the event that failed, why, and (while an operator's
 * request waits for the projector) what to do about it. Later events of the stream are held:
 * they stay in the log and are not applied to that projection until the stream is unparked.
 */
export interface ParkedStreamDoc extends ReadDoc {
  /** `<projection>|<streamId>`. `_position` is the record's revision, not an event's position. */
  projection: string;
  streamId: string;
  eventId: string;
  eventType: string;
  /** Global position of the failing event: the stream's events from here on are held. */
  position: number;
  streamPosition: number;
  error: string;
  /** Times this event failed (a crash loop counts each time the process died while applying it). */
  attempts: number;
  parkedAt: string;
  updatedAt: string;
  /** An operator's request, picked up by the projector (which may run in another process). */
  requestId?: string;
  requestAction?: ParkedAction;
  requestedBy?: string;
  /** The last request the projector carried out that left the stream parked, and why. */
  outcomeRequestId?: string;
  outcomeError?: string;
}

export const parkedId = (projection: string, streamId: string): string => `${projection}|${streamId}`;

export const errorText = (error: unknown): string =>
  (error instanceof Error ? error.message : String(error)).slice(0, 2000) || 'unknown error';

export function toView(doc: ParkedStreamDoc): ParkedStreamView {
  return {
    owner: doc.projection,
    streamId: doc.streamId,
    eventId: doc.eventId,
    eventType: doc.eventType,
    position: doc.position,
    streamPosition: doc.streamPosition,
    error: doc.error,
    attempts: doc.attempts,
    parkedAt: doc.parkedAt,
    ...(doc.requestAction ? { pendingAction: doc.requestAction } : {}),
  };
}

export function newParkedDoc(
  projection: string,
  event: StoredEvent,
  error: string,
  attempts: number,
  previous?: ParkedStreamDoc,
): ParkedStreamDoc {
  const now = new Date().toISOString();
  return {
    _id: parkedId(projection, event.streamId),
    _position: (previous?._position ?? 0) + 1,
    projection,
    streamId: event.streamId,
    eventId: event.id,
    eventType: event.type,
    position: event.globalPosition,
    streamPosition: event.streamPosition,
    error,
    attempts,
    parkedAt: previous?.parkedAt ?? now,
    updatedAt: now,
  };
}

/**
 * The projector's parked records, as the query side sees them (possibly from another process
 * than the projector's): requests are written to the record and carried out by the projector.
 */
export class ProjectorParking implements ParkedStreamsPort {
  constructor(
    private readonly readStore: ReadStore,
    private readonly pollMs = 100,
  ) {}

  private get records() {
    return this.readStore.collection<ParkedStreamDoc>(PARKED_STREAMS);
  }

  async list(): Promise<ParkedStreamView[]> {
    const docs = await this.records.find({ sort: [['parkedAt', 1]] });
    return docs.map(toView);
  }

  async act(streamId: string, action: ParkedAction, actor: string, timeoutMs: number): Promise<boolean | null> {
    const docs = await this.records.find({ filter: { streamId } });
    if (docs.length === 0) return null;
    const requests = new Map<string, string>();
    for (const doc of docs) {
      const requestId = newId();
      // The projector also writes the record (revision + 1): a lost race is seen on the re-read.
      for (let tries = 0; tries < 5; tries++) {
        const current = await this.records.get(doc._id);
        if (!current) break;
        await this.records.putMany([
          {
            ...current,
            _position: current._position + 1,
            requestId,
            requestAction: action,
            requestedBy: actor,
          },
        ]);
        if ((await this.records.get(doc._id))?.requestId === requestId) {
          requests.set(doc._id, requestId);
          break;
        }
      }
    }
    const deadline = Date.now() + timeoutMs;
    let ok = true;
    for (const [id, requestId] of requests) {
      for (;;) {
        const doc = await this.records.get(id);
        if (!doc) break; // unparked: the stream flows again
        if (doc.outcomeRequestId === requestId) {
          ok = false;
          break;
        }
        if (doc.requestId !== requestId) {
          // Ours is gone without an outcome of its own: replaced by another operator's request
          // (which decides), or carried out and the stream parked again since.
          if (doc.requestId !== undefined) ok = false;
          break;
        }
        if (Date.now() >= deadline)
          throw new ParkedActionPendingError(
            `the projector has not carried out the ${action} of ${streamId} within ${timeoutMs} ms; the request stays recorded and runs when the projector does`,
          );
        await new Promise((r) => setTimeout(r, this.pollMs));
      }
    }
    return ok;
  }
}
