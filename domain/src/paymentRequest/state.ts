import type { AttemptError, PaymentRequestEvent, RequestStatus } from './events.js';

export interface PaymentRequestState {
  exists: boolean;
  requestId: string;
  authId: string;
  merchantId: string;
  amount: number;
  currency: string;
  reference: string;
  callbackUrl?: string;
  status: RequestStatus;
  /** Number of authorisation attempts started. */
  attempts: number;
  /** True between PaymentAuthorizationRequested and its outcome. */
  attemptInFlight: boolean;
  nextAttemptAt?: string;
  lastError?: AttemptError;
  providerPaymentId?: string;
  /** A capture callback that arrived before the authorisation answer was recorded. */
  earlyCapture?: { settledAt: string; providerPaymentId: string };
  callbackEventIds: string[];
  /** The terminal status the merchant was (or finally failed to be) notified of. */
  notified?: RequestStatus;
  notificationAttempts: number;
  statusBeforeArchive?: RequestStatus;
}

export const initialState = (): PaymentRequestState => ({
  exists: false,
  requestId: '',
  authId: '',
  merchantId: '',
  amount: 0,
  currency: '',
  reference: '',
  status: 'REGISTERED',
  attempts: 0,
  attemptInFlight: false,
  callbackEventIds: [],
  notificationAttempts: 0,
});

export function evolve(state: PaymentRequestState, event: PaymentRequestEvent): PaymentRequestState {
  switch (event.type) {
    case 'RequestRegistered': {
      const d = event.data;
      return {
        ...initialState(),
        exists: true,
        requestId: d.requestId,
        authId: d.authId,
        merchantId: d.merchantId,
        amount: d.amount,
        currency: d.currency,
        reference: d.reference,
        ...(d.callbackUrl !== undefined ? { callbackUrl: d.callbackUrl } : {}),
        status: 'REGISTERED',
      };
    }
    case 'PaymentAuthorizationRequested':
      return {
        ...state,
        status: 'AUTHORIZING',
        attempts: event.data.attempt,
        attemptInFlight: true,
        nextAttemptAt: undefined,
      };
    case 'PaymentAuthorized':
      return {
        ...state,
        status: 'AUTHORIZED',
        attemptInFlight: false,
        providerPaymentId: event.data.providerPaymentId,
        nextAttemptAt: undefined,
      };
    case 'PaymentAttemptFailed':
      return {
        ...state,
        status: 'AUTHORIZING',
        attemptInFlight: false,
        lastError: event.data.error,
        nextAttemptAt: event.data.nextAttemptAt,
      };
    case 'PaymentDeclined':
      return { ...state, status: 'DECLINED', attemptInFlight: false, nextAttemptAt: undefined };
    case 'PaymentFailed':
      return {
        ...state,
        status: 'FAILED',
        attemptInFlight: false,
        nextAttemptAt: undefined,
        lastError: event.data.lastError,
      };
    case 'CallbackReceived': {
      const next = { ...state, callbackEventIds: [...state.callbackEventIds, event.data.providerEventId] };
      if (event.data.type === 'payment.captured' && state.status === 'AUTHORIZING') {
        // The capture can overtake the authorisation answer; remember it so the answer settles.
        next.earlyCapture = { settledAt: event.data.receivedAt, providerPaymentId: event.data.providerPaymentId ?? '' };
      }
      return next;
    }
    case 'PaymentSettled':
      return { ...state, status: 'SETTLED', providerPaymentId: event.data.providerPaymentId, earlyCapture: undefined };
    case 'RequestCancelled':
      return { ...state, status: 'CANCELLED', nextAttemptAt: undefined };
    case 'MerchantNotified':
      return { ...state, notified: event.data.forStatus, notificationAttempts: event.data.attempt };
    case 'MerchantNotificationFailed':
      return {
        ...state,
        notificationAttempts: event.data.attempt,
        ...(event.data.final ? { notified: event.data.forStatus } : {}),
      };
    case 'RequestArchived':
      return { ...state, statusBeforeArchive: state.status, status: 'ARCHIVED' };
    default:
      return state;
  }
}

export const isTerminal = (status: RequestStatus): boolean =>
  status === 'SETTLED' || status === 'DECLINED' || status === 'FAILED' || status === 'CANCELLED';
