import { ISO_4217_CURRENCIES, MAX_AMOUNT } from '../currencies.js';
import { illegalState, invalid, DomainError, ERR_REQUEST_ALREADY_EXISTS, notFound } from '../errors.js';
import type { AttemptError, PaymentRequestEvent, RequestStatus } from './events.js';
import { isTerminal, type PaymentRequestState } from './state.js';

export interface RetryPolicy {
  /** Attempts in all, the first included. */
  maxAttempts: number;
  /** Delay before attempt n+1 after attempt n failed; the last entry repeats. */
  delaysMs: number[];
}

export type RegisterRequest = {
  type: 'RegisterRequest';
  data: {
    requestId: string;
    authId: string;
    merchantId: string;
    amount: number;
    currency: string;
    reference: string;
    description?: string;
    callbackUrl?: string;
    metadata?: Record<string, string>;
    now: string;
  };
};
export type StartAuthorization = { type: 'StartAuthorization'; data: { attempt: number; now: string } };
export type AuthorizationOutcome =
  | { kind: 'authorized'; providerPaymentId: string }
  | { kind: 'declined'; reason: string }
  | { kind: 'transient'; error: AttemptError };
export type RecordAuthorizationOutcome = {
  type: 'RecordAuthorizationOutcome';
  data: { attempt: number; outcome: AuthorizationOutcome; now: string; retry: RetryPolicy };
};
export type ReceiveCallback = {
  type: 'ReceiveCallback';
  data: { provider: string; providerEventId: string; eventType: string; providerPaymentId?: string; now: string };
};
export type CancelRequest = { type: 'CancelRequest'; data: { reason: string; by: string } };
export type RecordNotification = {
  type: 'RecordNotification';
  data: {
    attempt: number;
    forStatus: RequestStatus;
    webhookId: string;
    httpStatus: number;
    ok: boolean;
    error?: string;
    final?: boolean;
    nextAttemptAt?: string;
  };
};
export type ArchiveRequest = { type: 'ArchiveRequest'; data: { now: string } };

export type PaymentRequestCommand =
  | RegisterRequest
  | StartAuthorization
  | RecordAuthorizationOutcome
  | ReceiveCallback
  | CancelRequest
  | RecordNotification
  | ArchiveRequest;

const REFERENCE_MAX = 128;
const DESCRIPTION_MAX = 1000;

function validateRegistration(d: RegisterRequest['data']): void {
  if (!Number.isSafeInteger(d.amount) || d.amount < 1 || d.amount > MAX_AMOUNT)
    throw invalid('amount', `amount must be an integer number of minor units from 1 to ${MAX_AMOUNT}`);
  if (!ISO_4217_CURRENCIES.has(d.currency))
    throw invalid('currency', `currency must be an ISO 4217 code, got "${d.currency}"`);
  if (d.reference.length < 1 || d.reference.length > REFERENCE_MAX)
    throw invalid('reference', `reference must be 1 to ${REFERENCE_MAX} characters`);
  if (d.description !== undefined && d.description.length > DESCRIPTION_MAX)
    throw invalid('description', `description must be at most ${DESCRIPTION_MAX} characters`);
}

export const gatewayIdempotencyKey = (requestId: string, attempt: number): string => `${requestId}:${attempt}`;

function nextAttemptAt(now: string, attempt: number, retry: RetryPolicy): string {
  const delays = retry.delaysMs.length > 0 ? retry.delaysMs : [1000];
  const delay = delays[Math.min(attempt - 1, delays.length - 1)] ?? 1000;
  return new Date(Date.parse(now) + delay).toISOString();
}

function requireExisting(state: PaymentRequestState): void {
  if (!state.exists) throw notFound('payment request');
}

/**
 * decide(command, state) → events. Reactor commands are idempotent: a command whose effect
 * is already in the state decides nothing, so a redelivered trigger appends nothing.
 */
export function decide(command: PaymentRequestCommand, state: PaymentRequestState): PaymentRequestEvent[] {
  switch (command.type) {
    case 'RegisterRequest': {
      if (state.exists)
        throw new DomainError(
          ERR_REQUEST_ALREADY_EXISTS,
          'conflict',
          `payment request ${state.requestId} already exists`,
        );
      validateRegistration(command.data);
      const { now, ...rest } = command.data;
      return [{ type: 'RequestRegistered', data: { ...rest, registeredAt: now } }];
    }
    case 'StartAuthorization': {
      requireExisting(state);
      const { attempt, now } = command.data;
      if (attempt <= state.attempts) return [];
      if (attempt !== state.attempts + 1)
        throw illegalState(`attempt ${attempt} cannot follow attempt ${state.attempts}`);
      const canStart = state.status === 'REGISTERED' || (state.status === 'AUTHORIZING' && !state.attemptInFlight);
      if (!canStart) return [];
      return [
        {
          type: 'PaymentAuthorizationRequested',
          data: { attempt, gatewayIdempotencyKey: gatewayIdempotencyKey(state.requestId, attempt), requestedAt: now },
        },
      ];
    }
    case 'RecordAuthorizationOutcome': {
      requireExisting(state);
      const { attempt, outcome, now, retry } = command.data;
      if (state.status !== 'AUTHORIZING' || !state.attemptInFlight || attempt !== state.attempts) return [];
      switch (outcome.kind) {
        case 'authorized': {
          const events: PaymentRequestEvent[] = [
            { type: 'PaymentAuthorized', data: { attempt, providerPaymentId: outcome.providerPaymentId } },
          ];
          if (state.earlyCapture)
            events.push({
              type: 'PaymentSettled',
              data: { settledAt: state.earlyCapture.settledAt, providerPaymentId: outcome.providerPaymentId },
            });
          return events;
        }
        case 'declined':
          return [{ type: 'PaymentDeclined', data: { attempt, reason: outcome.reason } }];
        case 'transient':
          if (attempt >= retry.maxAttempts)
            return [{ type: 'PaymentFailed', data: { attempts: attempt, lastError: outcome.error } }];
          return [
            {
              type: 'PaymentAttemptFailed',
              data: { attempt, error: outcome.error, nextAttemptAt: nextAttemptAt(now, attempt, retry) },
            },
          ];
      }
      return [];
    }
    case 'ReceiveCallback': {
      requireExisting(state);
      const d = command.data;
      if (state.callbackEventIds.includes(d.providerEventId)) return [];
      const received: PaymentRequestEvent = {
        type: 'CallbackReceived',
        data: {
          provider: d.provider,
          providerEventId: d.providerEventId,
          type: d.eventType,
          ...(d.providerPaymentId !== undefined ? { providerPaymentId: d.providerPaymentId } : {}),
          receivedAt: d.now,
        },
      };
      if (d.eventType === 'payment.captured' && state.status === 'AUTHORIZED')
        return [
          received,
          {
            type: 'PaymentSettled',
            data: { settledAt: d.now, providerPaymentId: d.providerPaymentId ?? state.providerPaymentId ?? '' },
          },
        ];
      return [received];
    }
    case 'CancelRequest': {
      requireExisting(state);
      if (state.status === 'CANCELLED') return [];
      const waitingForRetry = state.status === 'AUTHORIZING' && !state.attemptInFlight;
      if (state.status !== 'REGISTERED' && !waitingForRetry)
        throw illegalState(
          state.status === 'AUTHORIZING'
            ? 'the payment request cannot be cancelled while an authorisation attempt is in flight'
            : `a payment request in status ${state.status} cannot be cancelled`,
        );
      return [{ type: 'RequestCancelled', data: { reason: command.data.reason, by: command.data.by } }];
    }
    case 'RecordNotification': {
      requireExisting(state);
      const d = command.data;
      if (!isTerminal(state.status) && state.status !== 'ARCHIVED') return [];
      if (state.notified === d.forStatus || d.attempt <= state.notificationAttempts) return [];
      if (d.ok)
        return [
          {
            type: 'MerchantNotified',
            data: { attempt: d.attempt, httpStatus: d.httpStatus, forStatus: d.forStatus, webhookId: d.webhookId },
          },
        ];
      return [
        {
          type: 'MerchantNotificationFailed',
          data: {
            attempt: d.attempt,
            httpStatus: d.httpStatus,
            forStatus: d.forStatus,
            webhookId: d.webhookId,
            error: d.error ?? 'unknown error',
            final: d.final ?? false,
            ...(d.nextAttemptAt !== undefined ? { nextAttemptAt: d.nextAttemptAt } : {}),
          },
        },
      ];
    }
    case 'ArchiveRequest': {
      requireExisting(state);
      if (state.status === 'ARCHIVED') return [];
      if (!isTerminal(state.status))
        throw illegalState(`a payment request in status ${state.status} cannot be archived`);
      return [{ type: 'RequestArchived', data: { archivedAt: command.data.now } }];
    }
  }
}
