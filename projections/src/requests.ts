import type { PaymentRequestEvent, RequestStatus, StoredEvent } from '@settle/domain';
import type { ReadDoc } from '@settle/platform';
import type { Projection } from './projection.js';

export const REQUESTS = 'requests';

export interface TimelineEntry {
  type: string;
  position: number;
  occurredAt: string;
}

export interface RequestDoc extends ReadDoc {
  id: string;
  authId: string;
  merchantId: string;
  amount: number;
  currency: string;
  reference: string;
  description?: string;
  callbackUrl?: string;
  metadata?: Record<string, string>;
  status: RequestStatus;
  attempts: number;
  attemptInFlight: boolean;
  /** When the scheduler should start the next attempt (null when none is due). */
  nextAttemptAt: string | null;
  lastError?: { code: string; message: string };
  providerPaymentId?: string;
  /** Merchant webhook delivery: terminal status notified, attempts, next retry. */
  notifiedStatus?: RequestStatus;
  notificationAttempts: number;
  notifyNextAttemptAt: string | null;
  /**
   * Whether a webhook retry is pending (`notifyNextAttemptAt` set): an equality the scheduler can
   * filter on that FerretDB hands to PostgreSQL (it cannot push down `$lte`, so a filter on
   * `notifyNextAttemptAt` alone decodes every document of the collection on every tick).
   * Documents written before it existed lack it: rebuild `requests` after upgrading.
   */
  notifyPending?: boolean;
  events: TimelineEntry[];
  createdAt: string;
  updatedAt: string;
  /** Stream revision (the REST ETag). */
  version: number;
  /** Global position of the registration: a stable, unique pagination key. */
  seq: number;
  /**
   * `seq` / REQUEST_SEQ_PAGE, rounded down: lets a reader on FerretDB 1.x take the newest requests
   * a page at a time with equality queries (it decodes the whole collection for a sort on `seq`).
   * Documents written before it existed get it with their next event, or by rebuilding `requests`.
   */
  seqPage?: number;
}

/** How many global positions one `seqPage` spans (about 170 requests at ~6 events each). */
export const REQUEST_SEQ_PAGE = 1024;
export const seqPageOf = (seq: number): number => Math.floor(seq / REQUEST_SEQ_PAGE);

const requestIdOf = (e: StoredEvent): string => e.streamId.slice('request-'.length);

export function applyRequestEvent(doc: RequestDoc | null, stored: StoredEvent): Omit<RequestDoc, '_position'> | null {
  const event = stored as unknown as PaymentRequestEvent & StoredEvent;
  const entry: TimelineEntry = { type: stored.type, position: stored.globalPosition, occurredAt: stored.occurredAt };
  if (event.type === 'RequestRegistered') {
    const d = event.data;
    return {
      _id: d.requestId,
      id: d.requestId,
      authId: d.authId,
      merchantId: d.merchantId,
      amount: d.amount,
      currency: d.currency,
      reference: d.reference,
      ...(d.description !== undefined ? { description: d.description } : {}),
      ...(d.callbackUrl !== undefined ? { callbackUrl: d.callbackUrl } : {}),
      ...(d.metadata !== undefined ? { metadata: d.metadata } : {}),
      status: 'REGISTERED',
      attempts: 0,
      attemptInFlight: false,
      nextAttemptAt: null,
      notificationAttempts: 0,
      notifyNextAttemptAt: null,
      notifyPending: false,
      events: [entry],
      createdAt: stored.occurredAt,
      updatedAt: stored.occurredAt,
      version: stored.streamPosition,
      seq: stored.globalPosition,
      seqPage: seqPageOf(stored.globalPosition),
    };
  }
  if (!doc) return null;
  const next: Omit<RequestDoc, '_position'> = {
    ...doc,
    seqPage: seqPageOf(doc.seq),
    events: [...doc.events, entry],
    updatedAt: stored.occurredAt,
    version: stored.streamPosition,
  };
  switch (event.type) {
    case 'PaymentAuthorizationRequested':
      return {
        ...next,
        status: 'AUTHORIZING',
        attempts: event.data.attempt,
        attemptInFlight: true,
        nextAttemptAt: null,
      };
    case 'PaymentAuthorized':
      return { ...next, status: 'AUTHORIZED', attemptInFlight: false, providerPaymentId: event.data.providerPaymentId };
    case 'PaymentAttemptFailed':
      return {
        ...next,
        status: 'AUTHORIZING',
        attemptInFlight: false,
        nextAttemptAt: event.data.nextAttemptAt,
        lastError: event.data.error,
      };
    case 'PaymentDeclined':
      return { ...next, status: 'DECLINED', attemptInFlight: false, nextAttemptAt: null };
    case 'PaymentFailed':
      return {
        ...next,
        status: 'FAILED',
        attemptInFlight: false,
        nextAttemptAt: null,
        lastError: event.data.lastError,
      };
    case 'PaymentSettled':
      return { ...next, status: 'SETTLED', providerPaymentId: event.data.providerPaymentId };
    case 'RequestCancelled':
      return { ...next, status: 'CANCELLED', nextAttemptAt: null };
    case 'MerchantNotified':
      return {
        ...next,
        notifiedStatus: event.data.forStatus,
        notificationAttempts: event.data.attempt,
        notifyNextAttemptAt: null,
        notifyPending: false,
      };
    case 'MerchantNotificationFailed': {
      const notifyNextAttemptAt = event.data.final ? null : (event.data.nextAttemptAt ?? null);
      return {
        ...next,
        notificationAttempts: event.data.attempt,
        notifyNextAttemptAt,
        notifyPending: notifyNextAttemptAt !== null,
        ...(event.data.final ? { notifiedStatus: event.data.forStatus } : {}),
      };
    }
    case 'RequestArchived':
      return { ...next, status: 'ARCHIVED' };
    default:
      return next;
  }
}

/** The `requests` read model: one document per payment request, with its event timeline. */
export const requestsProjection: Projection = {
  name: 'requests',
  collections: {
    [REQUESTS]: [
      { fields: [['seq', -1]] },
      {
        fields: [
          ['merchantId', 1],
          ['seq', -1],
        ],
      },
      {
        fields: [
          ['status', 1],
          ['nextAttemptAt', 1],
        ],
      },
      { fields: [['authId', 1]], unique: true },
      // The scheduler's due merchant notifications (only requests with one pending have the field).
      { fields: [['notifyNextAttemptAt', 1]] },
    ],
  },
  streamPrefixes: ['request-'],
  async prefetch(events, uow) {
    // A request's document is created by its stream's first event: none to read before that.
    uow.absent(REQUESTS, events.filter((e) => e.streamPosition === 0).map(requestIdOf));
    await uow.prefetch(REQUESTS, events.map(requestIdOf));
  },
  async apply(event, uow) {
    // An archived request leaves the read model (its history is in the archive); time travel
    // (`applyRequestEvent`) still shows it ARCHIVED. Only the tombstone stays in the log, so a
    // rebuild that meets it after the truncation ends in the same place: no document.
    if (event.type === 'RequestArchived') return uow.remove(REQUESTS, requestIdOf(event));
    await uow.update<RequestDoc>(REQUESTS, requestIdOf(event), event, (doc) => applyRequestEvent(doc, event));
  },
};
