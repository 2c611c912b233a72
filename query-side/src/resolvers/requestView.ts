import type { RequestStatus } from '@settle/domain';
import type { RequestDoc } from '@settle/projections';

/** A payment request as GraphQL answers it. */
export interface RequestView {
  id: string;
  authId: string;
  merchantId: string;
  amount: string;
  currency: string;
  status: RequestStatus;
  reference: string;
  description: string | null;
  callbackUrl: string | null;
  attempts: number;
  lastError: string | null;
  events: { type: string; position: string; occurredAt: string }[];
  createdAt: string;
  updatedAt: string;
  version: number;
}

/** Read model → GraphQL. Internal fields (scheduling, notification bookkeeping, metadata) stay inside. */
export const toRequestView = (doc: RequestDoc): RequestView => ({
  id: doc.id,
  authId: doc.authId,
  merchantId: doc.merchantId,
  amount: String(doc.amount),
  currency: doc.currency,
  status: doc.status,
  reference: doc.reference,
  description: doc.description ?? null,
  callbackUrl: doc.callbackUrl ?? null,
  attempts: doc.attempts,
  lastError: doc.lastError ? `${doc.lastError.code}: ${doc.lastError.message}` : null,
  events: doc.events.map((e) => ({ type: e.type, position: String(e.position), occurredAt: e.occurredAt })),
  createdAt: doc.createdAt,
  updatedAt: doc.updatedAt,
  version: doc.version,
});
