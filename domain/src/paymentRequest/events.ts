import type { DomainEvent } from '../envelope.js';

export type RequestStatus =
  'REGISTERED' | 'AUTHORIZING' | 'AUTHORIZED' | 'SETTLED' | 'DECLINED' | 'FAILED' | 'CANCELLED' | 'ARCHIVED';

export const TERMINAL_STATUSES: readonly RequestStatus[] = ['SETTLED', 'DECLINED', 'FAILED', 'CANCELLED'];

/** Every status, in lifecycle order. */
export const REQUEST_STATUSES: readonly RequestStatus[] = [
  'REGISTERED',
  'AUTHORIZING',
  'AUTHORIZED',
  ...TERMINAL_STATUSES,
  'ARCHIVED',
];

export interface AttemptError {
  code: string;
  message: string;
}

export type RequestRegistered = DomainEvent<
  'RequestRegistered',
  {
    requestId: string;
    authId: string;
    merchantId: string;
    amount: number;
    currency: string;
    reference: string;
    description?: string;
    callbackUrl?: string;
    metadata?: Record<string, string>;
    registeredAt: string;
  }
>;
export type PaymentAuthorizationRequested = DomainEvent<
  'PaymentAuthorizationRequested',
  { attempt: number; gatewayIdempotencyKey: string; requestedAt: string }
>;
export type PaymentAuthorized = DomainEvent<'PaymentAuthorized', { attempt: number; providerPaymentId: string }>;
export type PaymentAttemptFailed = DomainEvent<
  'PaymentAttemptFailed',
  { attempt: number; error: AttemptError; nextAttemptAt: string }
>;
export type PaymentDeclined = DomainEvent<'PaymentDeclined', { attempt: number; reason: string }>;
export type PaymentFailed = DomainEvent<'PaymentFailed', { attempts: number; lastError: AttemptError }>;
export type CallbackReceived = DomainEvent<
  'CallbackReceived',
  { provider: string; providerEventId: string; type: string; providerPaymentId?: string; receivedAt: string }
>;
export type PaymentSettled = DomainEvent<'PaymentSettled', { settledAt: string; providerPaymentId: string }>;
export type RequestCancelled = DomainEvent<'RequestCancelled', { reason: string; by: string }>;
export type MerchantNotified = DomainEvent<
  'MerchantNotified',
  { attempt: number; httpStatus: number; forStatus: RequestStatus; webhookId: string }
>;
export type MerchantNotificationFailed = DomainEvent<
  'MerchantNotificationFailed',
  {
    attempt: number;
    httpStatus: number;
    forStatus: RequestStatus;
    webhookId: string;
    error: string;
    final: boolean;
    nextAttemptAt?: string;
  }
>;
export type RequestArchived = DomainEvent<'RequestArchived', { archivedAt: string }>;

export type PaymentRequestEvent =
  | RequestRegistered
  | PaymentAuthorizationRequested
  | PaymentAuthorized
  | PaymentAttemptFailed
  | PaymentDeclined
  | PaymentFailed
  | CallbackReceived
  | PaymentSettled
  | RequestCancelled
  | MerchantNotified
  | MerchantNotificationFailed
  | RequestArchived;

export const PAYMENT_REQUEST_EVENT_TYPES: readonly PaymentRequestEvent['type'][] = [
  'RequestRegistered',
  'PaymentAuthorizationRequested',
  'PaymentAuthorized',
  'PaymentAttemptFailed',
  'PaymentDeclined',
  'PaymentFailed',
  'CallbackReceived',
  'PaymentSettled',
  'RequestCancelled',
  'MerchantNotified',
  'MerchantNotificationFailed',
  'RequestArchived',
];

export const requestStreamId = (requestId: string): string => `request-${requestId}`;
export const REQUEST_STREAM_PREFIX = 'request-';
