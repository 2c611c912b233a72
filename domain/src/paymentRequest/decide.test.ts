import { describe, it, expect } from 'vitest';
import {
  DomainError,
  ERR_REQUEST_ALREADY_EXISTS,
  ERR_REQUEST_ILLEGAL_STATE,
  ERR_REQUEST_INVALID,
  ERR_REQUEST_NOT_FOUND,
  type DomainErrorKind,
} from '../errors.js';
import { specFor } from '../testing.js';
import {
  gatewayIdempotencyKey,
  paymentRequestDecider,
  type AttemptError,
  type PaymentRequestEvent,
  type RegisterRequest,
  type RequestStatus,
  type RetryPolicy,
} from './index.js';

const spec = specFor(paymentRequestDecider);

const REQUEST_ID = 'req-0001';
const T0 = '2026-03-01T10:00:00.000Z';
const T1 = '2026-03-01T10:00:02.000Z';
const T2 = '2026-03-01T10:00:07.000Z';
const T3 = '2026-03-01T10:05:00.000Z';

const RETRY: RetryPolicy = { maxAttempts: 3, delaysMs: [1_000, 5_000, 30_000] };
const TIMEOUT: AttemptError = { code: 'GATEWAY_TIMEOUT', message: 'the gateway did not answer in time' };
const UNAVAILABLE: AttemptError = { code: 'GATEWAY_UNAVAILABLE', message: 'HTTP 503 from the gateway' };

// --- events, spelled out so the expected data is visible in each test ---------------------

const registered: PaymentRequestEvent = {
  type: 'RequestRegistered',
  data: {
    requestId: REQUEST_ID,
    authId: 'auth-9f8e7d',
    merchantId: 'merchant-1',
    amount: 12_500,
    currency: 'EUR',
    reference: 'INV-2026-001',
    callbackUrl: 'https://merchant.example/hooks/settle',
    registeredAt: T0,
  },
};
const requested = (attempt: number, requestedAt = T0): PaymentRequestEvent => ({
  type: 'PaymentAuthorizationRequested',
  data: { attempt, gatewayIdempotencyKey: `${REQUEST_ID}:${attempt}`, requestedAt },
});
const authorized = (attempt: number, providerPaymentId = 'pp-1'): PaymentRequestEvent => ({
  type: 'PaymentAuthorized',
  data: { attempt, providerPaymentId },
});
const attemptFailed = (attempt: number, nextAttemptAt = T3, error = TIMEOUT): PaymentRequestEvent => ({
  type: 'PaymentAttemptFailed',
  data: { attempt, error, nextAttemptAt },
});
const declined = (attempt: number): PaymentRequestEvent => ({
  type: 'PaymentDeclined',
  data: { attempt, reason: 'insufficient_funds' },
});
const failed = (attempts: number): PaymentRequestEvent => ({
  type: 'PaymentFailed',
  data: { attempts, lastError: UNAVAILABLE },
});
const callbackReceived = (
  providerEventId: string,
  type = 'payment.captured',
  receivedAt = T1,
  providerPaymentId: string | null = 'pp-1',
): PaymentRequestEvent => ({
  type: 'CallbackReceived',
  data: {
    provider: 'sandbox',
    providerEventId,
    type,
    ...(providerPaymentId !== null ? { providerPaymentId } : {}),
    receivedAt,
  },
});
const settled = (settledAt = T1, providerPaymentId = 'pp-1'): PaymentRequestEvent => ({
  type: 'PaymentSettled',
  data: { settledAt, providerPaymentId },
});
const cancelled: PaymentRequestEvent = {
  type: 'RequestCancelled',
  data: { reason: 'customer changed their mind', by: 'merchant-1' },
};
const notified = (attempt: number, forStatus: RequestStatus): PaymentRequestEvent => ({
  type: 'MerchantNotified',
  data: { attempt, httpStatus: 200, forStatus, webhookId: `wh-${attempt}` },
});
const notificationFailed = (attempt: number, forStatus: RequestStatus, final: boolean): PaymentRequestEvent => ({
  type: 'MerchantNotificationFailed',
  data: { attempt, httpStatus: 500, forStatus, webhookId: `wh-${attempt}`, error: 'HTTP 500', final },
});
const archived: PaymentRequestEvent = { type: 'RequestArchived', data: { archivedAt: T3 } };

// --- histories that reach each status -------------------------------------------------------

const AUTHORIZING_IN_FLIGHT = [registered, requested(1)];
const WAITING_FOR_RETRY = [registered, requested(1), attemptFailed(1)];
const AUTHORIZED = [registered, requested(1), authorized(1)];
const SETTLED = [...AUTHORIZED, callbackReceived('evt-1'), settled()];
const DECLINED = [registered, requested(1), declined(1)];
const FAILED = [registered, requested(1), attemptFailed(1), requested(2), attemptFailed(2), requested(3), failed(3)];
const CANCELLED = [registered, cancelled];

/** A predicate for thenThrows: a DomainError of this kind (and code, and field when given). */
const rejectedWith =
  (kind: DomainErrorKind, code: string, field?: string) =>
  (error: unknown): boolean =>
    error instanceof DomainError &&
    error.kind === kind &&
    error.code === code &&
    (field === undefined || error.field === field);
const invalidField = (field: string) => rejectedWith('validation', ERR_REQUEST_INVALID, field);
const illegalState = rejectedWith('illegal_state', ERR_REQUEST_ILLEGAL_STATE);
const notFound = rejectedWith('not_found', ERR_REQUEST_NOT_FOUND);

describe('the rejectedWith predicate', () => {
  it('tells the kind, code and field of a DomainError apart', () => {
    const error = new DomainError(ERR_REQUEST_INVALID, 'validation', 'bad amount', 'amount');
    expect(invalidField('amount')(error)).toBe(true);
    expect(invalidField('currency')(error)).toBe(false);
    expect(illegalState(error)).toBe(false);
    expect(notFound(new Error('not a domain error'))).toBe(false);
  });
});

describe('RegisterRequest', () => {
  const command = (overrides: Partial<RegisterRequest['data']> = {}): RegisterRequest => ({
    type: 'RegisterRequest',
    data: {
      requestId: REQUEST_ID,
      authId: 'auth-9f8e7d',
      merchantId: 'merchant-1',
      amount: 12_500,
      currency: 'EUR',
      reference: 'INV-2026-001',
      ...overrides,
      now: T0,
    },
  });

  it('registers a valid request with only the required fields', () => {
    spec([])
      .when(command())
      .then([
        {
          type: 'RequestRegistered',
          data: {
            requestId: REQUEST_ID,
            authId: 'auth-9f8e7d',
            merchantId: 'merchant-1',
            amount: 12_500,
            currency: 'EUR',
            reference: 'INV-2026-001',
            registeredAt: T0,
          },
        },
      ]);
  });

  it('registers a valid request with description, callbackUrl and metadata', () => {
    spec([])
      .when(
        command({
          description: 'Order 42',
          callbackUrl: 'https://merchant.example/hooks/settle',
          metadata: { orderId: '42' },
        }),
      )
      .then([
        {
          type: 'RequestRegistered',
          data: {
            requestId: REQUEST_ID,
            authId: 'auth-9f8e7d',
            merchantId: 'merchant-1',
            amount: 12_500,
            currency: 'EUR',
            reference: 'INV-2026-001',
            description: 'Order 42',
            callbackUrl: 'https://merchant.example/hooks/settle',
            metadata: { orderId: '42' },
            registeredAt: T0,
          },
        },
      ]);
  });

  it.each([1, 1_000_000_000_000])('accepts the amount bound %d', (amount) => {
    spec([])
      .when(command({ amount }))
      .then([
        {
          type: 'RequestRegistered',
          data: {
            requestId: REQUEST_ID,
            authId: 'auth-9f8e7d',
            merchantId: 'merchant-1',
            amount,
            currency: 'EUR',
            reference: 'INV-2026-001',
            registeredAt: T0,
          },
        },
      ]);
  });

  it('accepts a 128-character reference and a 1000-character description', () => {
    const reference = 'r'.repeat(128);
    const description = 'd'.repeat(1000);
    spec([])
      .when(command({ reference, description }))
      .then([
        {
          type: 'RequestRegistered',
          data: {
            requestId: REQUEST_ID,
            authId: 'auth-9f8e7d',
            merchantId: 'merchant-1',
            amount: 12_500,
            currency: 'EUR',
            reference,
            description,
            registeredAt: T0,
          },
        },
      ]);
  });

  it.each([
    ['zero', 0],
    ['negative', -100],
    ['fractional', 12.5],
    ['above 10^12', 1_000_000_000_001],
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
  ])('rejects a %s amount, naming the field amount', (_label, amount) => {
    spec([]).when(command({ amount })).thenThrows(invalidField('amount'));
  });

  it.each([
    ['an unknown code', 'XYZ'],
    ['a lowercase code', 'eur'],
    ['an empty string', ''],
    ['a fund code', 'XAU'],
  ])('rejects %s as currency, naming the field currency', (_label, currency) => {
    spec([]).when(command({ currency })).thenThrows(invalidField('currency'));
  });

  it('rejects an empty reference, naming the field reference', () => {
    spec([])
      .when(command({ reference: '' }))
      .thenThrows(invalidField('reference'));
  });

  it('rejects a reference longer than 128 characters, naming the field reference', () => {
    spec([])
      .when(command({ reference: 'r'.repeat(129) }))
      .thenThrows(invalidField('reference'));
  });

  it('rejects a description longer than 1000 characters, naming the field description', () => {
    spec([])
      .when(command({ description: 'd'.repeat(1001) }))
      .thenThrows(invalidField('description'));
  });

  it('rejects registering a request that already exists as a conflict', () => {
    spec([registered]).when(command()).thenThrows(rejectedWith('conflict', ERR_REQUEST_ALREADY_EXISTS));
  });

  it('reports the conflict with the existing request id in the message', () => {
    let thrown: unknown;
    try {
      paymentRequestDecider.decide(
        command(),
        paymentRequestDecider.evolve(paymentRequestDecider.initialState(), registered),
      );
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(DomainError);
    expect((thrown as DomainError).kind).toBe('conflict');
    expect((thrown as DomainError).message).toContain(REQUEST_ID);
  });
});

describe('StartAuthorization', () => {
  const start = (attempt: number, now = T1) => ({ type: 'StartAuthorization' as const, data: { attempt, now } });

  it('starts the first attempt from REGISTERED', () => {
    spec([registered])
      .when(start(1))
      .then([
        {
          type: 'PaymentAuthorizationRequested',
          data: { attempt: 1, gatewayIdempotencyKey: 'req-0001:1', requestedAt: T1 },
        },
      ]);
  });

  it('derives the gateway idempotency key from the request id and the attempt', () => {
    expect(gatewayIdempotencyKey('req-7f3a', 3)).toBe('req-7f3a:3');
    spec([{ ...registered, data: { ...registered.data, requestId: 'req-7f3a' } } as PaymentRequestEvent])
      .when(start(1))
      .then([
        {
          type: 'PaymentAuthorizationRequested',
          data: { attempt: 1, gatewayIdempotencyKey: 'req-7f3a:1', requestedAt: T1 },
        },
      ]);
  });

  it('decides nothing when the same attempt is started again while it is in flight', () => {
    spec(AUTHORIZING_IN_FLIGHT).when(start(1)).then([]);
  });

  it('decides nothing when an already started attempt is redelivered after its outcome', () => {
    spec(WAITING_FOR_RETRY).when(start(1)).then([]);
    spec(AUTHORIZED).when(start(1)).then([]);
  });

  it('rejects an attempt that skips a number as illegal_state', () => {
    spec([registered]).when(start(2)).thenThrows(illegalState);
    spec(WAITING_FOR_RETRY).when(start(3)).thenThrows(illegalState);
  });

  it('decides nothing for the next attempt while the current one is in flight', () => {
    spec(AUTHORIZING_IN_FLIGHT).when(start(2)).then([]);
  });

  it('starts the next attempt after a PaymentAttemptFailed, with its own idempotency key', () => {
    spec(WAITING_FOR_RETRY)
      .when(start(2, T3))
      .then([
        {
          type: 'PaymentAuthorizationRequested',
          data: { attempt: 2, gatewayIdempotencyKey: 'req-0001:2', requestedAt: T3 },
        },
      ]);
  });

  it('starts nothing once the request is cancelled, declined or failed', () => {
    spec(CANCELLED).when(start(1)).then([]);
    spec([registered, requested(1), attemptFailed(1), cancelled])
      .when(start(2))
      .then([]);
    spec(DECLINED).when(start(2)).then([]);
    spec(FAILED).when(start(4)).then([]);
  });

  it('rejects starting an attempt on a request that does not exist as not_found', () => {
    spec([]).when(start(1)).thenThrows(notFound);
  });
});

describe('RecordAuthorizationOutcome', () => {
  const outcome = (
    attempt: number,
    o:
      | { kind: 'authorized'; providerPaymentId: string }
      | { kind: 'declined'; reason: string }
      | { kind: 'transient'; error: AttemptError },
    retry: RetryPolicy = RETRY,
    now = T2,
  ) => ({ type: 'RecordAuthorizationOutcome' as const, data: { attempt, outcome: o, now, retry } });

  it('records an authorisation', () => {
    spec(AUTHORIZING_IN_FLIGHT)
      .when(outcome(1, { kind: 'authorized', providerPaymentId: 'pp-77' }))
      .then([{ type: 'PaymentAuthorized', data: { attempt: 1, providerPaymentId: 'pp-77' } }]);
  });

  it('records a decline', () => {
    spec(AUTHORIZING_IN_FLIGHT)
      .when(outcome(1, { kind: 'declined', reason: 'card_declined' }))
      .then([{ type: 'PaymentDeclined', data: { attempt: 1, reason: 'card_declined' } }]);
  });

  it('records a transient failure of attempt 1 with the retry due after the first delay', () => {
    spec(AUTHORIZING_IN_FLIGHT)
      .when(outcome(1, { kind: 'transient', error: TIMEOUT }, RETRY, '2026-03-01T10:00:00.000Z'))
      .then([
        {
          type: 'PaymentAttemptFailed',
          data: { attempt: 1, error: TIMEOUT, nextAttemptAt: '2026-03-01T10:00:01.000Z' },
        },
      ]);
  });

  it('records a transient failure of attempt 2 with the retry due after the second delay', () => {
    spec([...WAITING_FOR_RETRY, requested(2)])
      .when(outcome(2, { kind: 'transient', error: UNAVAILABLE }, RETRY, '2026-03-01T10:00:00.000Z'))
      .then([
        {
          type: 'PaymentAttemptFailed',
          data: { attempt: 2, error: UNAVAILABLE, nextAttemptAt: '2026-03-01T10:00:05.000Z' },
        },
      ]);
  });

  it('repeats the last delay for attempts beyond the schedule', () => {
    const longPolicy: RetryPolicy = { maxAttempts: 6, delaysMs: [1_000, 5_000, 30_000] };
    const history = [
      registered,
      requested(1),
      attemptFailed(1),
      requested(2),
      attemptFailed(2),
      requested(3),
      attemptFailed(3),
      requested(4),
    ];
    spec(history)
      .when(outcome(4, { kind: 'transient', error: TIMEOUT }, longPolicy, '2026-03-01T23:59:45.000Z'))
      .then([
        {
          type: 'PaymentAttemptFailed',
          data: { attempt: 4, error: TIMEOUT, nextAttemptAt: '2026-03-02T00:00:15.000Z' },
        },
      ]);
    spec([...history, attemptFailed(4), requested(5)])
      .when(outcome(5, { kind: 'transient', error: TIMEOUT }, longPolicy, '2026-03-01T10:00:00.000Z'))
      .then([
        {
          type: 'PaymentAttemptFailed',
          data: { attempt: 5, error: TIMEOUT, nextAttemptAt: '2026-03-01T10:00:30.000Z' },
        },
      ]);
  });

  it('fails the payment when the last allowed attempt fails transiently', () => {
    spec([registered, requested(1), attemptFailed(1), requested(2), attemptFailed(2), requested(3)])
      .when(outcome(3, { kind: 'transient', error: UNAVAILABLE }))
      .then([{ type: 'PaymentFailed', data: { attempts: 3, lastError: UNAVAILABLE } }]);
  });

  it('fails the payment on the first transient failure when only one attempt is allowed', () => {
    spec(AUTHORIZING_IN_FLIGHT)
      .when(outcome(1, { kind: 'transient', error: TIMEOUT }, { maxAttempts: 1, delaysMs: [1_000] }))
      .then([{ type: 'PaymentFailed', data: { attempts: 1, lastError: TIMEOUT } }]);
  });

  it('decides nothing for a stale attempt number', () => {
    spec([...WAITING_FOR_RETRY, requested(2)])
      .when(outcome(1, { kind: 'authorized', providerPaymentId: 'pp-1' }))
      .then([]);
    spec(AUTHORIZING_IN_FLIGHT)
      .when(outcome(2, { kind: 'authorized', providerPaymentId: 'pp-1' }))
      .then([]);
  });

  it('decides nothing when no attempt is in flight', () => {
    spec([registered])
      .when(outcome(1, { kind: 'authorized', providerPaymentId: 'pp-1' }))
      .then([]);
    spec(WAITING_FOR_RETRY)
      .when(outcome(1, { kind: 'transient', error: TIMEOUT }))
      .then([]);
    spec(AUTHORIZED)
      .when(outcome(1, { kind: 'authorized', providerPaymentId: 'pp-1' }))
      .then([]);
    spec(DECLINED)
      .when(outcome(1, { kind: 'declined', reason: 'card_declined' }))
      .then([]);
    spec([registered, requested(1), attemptFailed(1), cancelled])
      .when(outcome(1, { kind: 'authorized', providerPaymentId: 'pp-1' }))
      .then([]);
  });

  it('authorises and settles at once when the capture callback arrived before the authorisation', () => {
    spec([...AUTHORIZING_IN_FLIGHT, callbackReceived('evt-1', 'payment.captured', T1, 'pp-1')])
      .when(outcome(1, { kind: 'authorized', providerPaymentId: 'pp-1' }))
      .then([
        { type: 'PaymentAuthorized', data: { attempt: 1, providerPaymentId: 'pp-1' } },
        { type: 'PaymentSettled', data: { settledAt: T1, providerPaymentId: 'pp-1' } },
      ]);
  });

  it('rejects an outcome for a request that does not exist as not_found', () => {
    spec([])
      .when(outcome(1, { kind: 'authorized', providerPaymentId: 'pp-1' }))
      .thenThrows(notFound);
  });
});

describe('ReceiveCallback', () => {
  /** providerPaymentId null: the callback carries none. */
  const callback = (
    providerEventId: string,
    eventType = 'payment.captured',
    providerPaymentId: string | null = 'pp-1',
    now = T2,
  ) => ({
    type: 'ReceiveCallback' as const,
    data: {
      provider: 'sandbox',
      providerEventId,
      eventType,
      ...(providerPaymentId !== null ? { providerPaymentId } : {}),
      now,
    },
  });

  it('settles an AUTHORIZED request on a capture callback', () => {
    spec(AUTHORIZED)
      .when(callback('evt-1'))
      .then([
        {
          type: 'CallbackReceived',
          data: {
            provider: 'sandbox',
            providerEventId: 'evt-1',
            type: 'payment.captured',
            providerPaymentId: 'pp-1',
            receivedAt: T2,
          },
        },
        { type: 'PaymentSettled', data: { settledAt: T2, providerPaymentId: 'pp-1' } },
      ]);
  });

  it('settles with the authorised provider payment id when the callback carries none', () => {
    spec([registered, requested(1), authorized(1, 'pp-42')])
      .when(callback('evt-1', 'payment.captured', null))
      .then([
        {
          type: 'CallbackReceived',
          data: { provider: 'sandbox', providerEventId: 'evt-1', type: 'payment.captured', receivedAt: T2 },
        },
        { type: 'PaymentSettled', data: { settledAt: T2, providerPaymentId: 'pp-42' } },
      ]);
  });

  it('decides nothing for a providerEventId already received', () => {
    spec(SETTLED).when(callback('evt-1')).then([]);
    spec([...AUTHORIZING_IN_FLIGHT, callbackReceived('evt-1')])
      .when(callback('evt-1'))
      .then([]);
  });

  it('only records a capture callback that arrives while AUTHORIZING, and the following authorisation settles', () => {
    const decided = spec(AUTHORIZING_IN_FLIGHT)
      .when(callback('evt-1', 'payment.captured', 'pp-1', T1))
      .then([
        {
          type: 'CallbackReceived',
          data: {
            provider: 'sandbox',
            providerEventId: 'evt-1',
            type: 'payment.captured',
            providerPaymentId: 'pp-1',
            receivedAt: T1,
          },
        },
      ]);
    spec([...AUTHORIZING_IN_FLIGHT, ...decided])
      .when({
        type: 'RecordAuthorizationOutcome',
        data: { attempt: 1, outcome: { kind: 'authorized', providerPaymentId: 'pp-1' }, now: T2, retry: RETRY },
      })
      .then([
        { type: 'PaymentAuthorized', data: { attempt: 1, providerPaymentId: 'pp-1' } },
        { type: 'PaymentSettled', data: { settledAt: T1, providerPaymentId: 'pp-1' } },
      ]);
  });

  it('only records a callback that is not a capture', () => {
    spec(AUTHORIZED)
      .when(callback('evt-2', 'payment.updated'))
      .then([
        {
          type: 'CallbackReceived',
          data: {
            provider: 'sandbox',
            providerEventId: 'evt-2',
            type: 'payment.updated',
            providerPaymentId: 'pp-1',
            receivedAt: T2,
          },
        },
      ]);
  });

  it('does not settle twice when a second capture callback arrives for a SETTLED request', () => {
    spec(SETTLED)
      .when(callback('evt-2'))
      .then([
        {
          type: 'CallbackReceived',
          data: {
            provider: 'sandbox',
            providerEventId: 'evt-2',
            type: 'payment.captured',
            providerPaymentId: 'pp-1',
            receivedAt: T2,
          },
        },
      ]);
  });

  it('rejects a callback for a request that does not exist as not_found', () => {
    spec([]).when(callback('evt-1')).thenThrows(notFound);
  });
});

describe('CancelRequest', () => {
  const cancel = { type: 'CancelRequest' as const, data: { reason: 'customer changed their mind', by: 'merchant-1' } };

  it('cancels a REGISTERED request', () => {
    spec([registered])
      .when(cancel)
      .then([{ type: 'RequestCancelled', data: { reason: 'customer changed their mind', by: 'merchant-1' } }]);
  });

  it('cancels a request waiting for a retry', () => {
    spec(WAITING_FOR_RETRY)
      .when(cancel)
      .then([{ type: 'RequestCancelled', data: { reason: 'customer changed their mind', by: 'merchant-1' } }]);
  });

  it('rejects cancelling while an attempt is in flight as illegal_state', () => {
    spec(AUTHORIZING_IN_FLIGHT).when(cancel).thenThrows(illegalState);
    spec([...WAITING_FOR_RETRY, requested(2)])
      .when(cancel)
      .thenThrows(illegalState);
  });

  it.each([
    ['AUTHORIZED', AUTHORIZED],
    ['SETTLED', SETTLED],
    ['DECLINED', DECLINED],
    ['FAILED', FAILED],
    ['ARCHIVED', [...SETTLED, archived]],
  ])('rejects cancelling a %s request as illegal_state', (_status, history) => {
    spec(history).when(cancel).thenThrows(illegalState);
  });

  it('decides nothing when the request is already cancelled', () => {
    spec(CANCELLED).when(cancel).then([]);
  });

  it('rejects cancelling a request that does not exist as not_found', () => {
    spec([]).when(cancel).thenThrows(notFound);
  });
});

describe('RecordNotification', () => {
  const notification = (
    attempt: number,
    forStatus: RequestStatus,
    result:
      | { ok: true; httpStatus?: number }
      | { ok: false; httpStatus?: number; error?: string; final?: boolean; nextAttemptAt?: string },
  ) => ({
    type: 'RecordNotification' as const,
    data: {
      attempt,
      forStatus,
      webhookId: `wh-${attempt}`,
      httpStatus: result.httpStatus ?? (result.ok ? 200 : 500),
      ...result,
    },
  });

  it('records a successful notification of a terminal status', () => {
    spec(SETTLED)
      .when(notification(1, 'SETTLED', { ok: true, httpStatus: 204 }))
      .then([
        { type: 'MerchantNotified', data: { attempt: 1, httpStatus: 204, forStatus: 'SETTLED', webhookId: 'wh-1' } },
      ]);
  });

  it('records a failed notification that will be retried', () => {
    spec(DECLINED)
      .when(notification(1, 'DECLINED', { ok: false, httpStatus: 503, error: 'HTTP 503', nextAttemptAt: T3 }))
      .then([
        {
          type: 'MerchantNotificationFailed',
          data: {
            attempt: 1,
            httpStatus: 503,
            forStatus: 'DECLINED',
            webhookId: 'wh-1',
            error: 'HTTP 503',
            final: false,
            nextAttemptAt: T3,
          },
        },
      ]);
  });

  it('records the final failed notification with final: true', () => {
    spec([...FAILED, notificationFailed(1, 'FAILED', false)])
      .when(notification(2, 'FAILED', { ok: false, httpStatus: 0, error: 'connection refused', final: true }))
      .then([
        {
          type: 'MerchantNotificationFailed',
          data: {
            attempt: 2,
            httpStatus: 0,
            forStatus: 'FAILED',
            webhookId: 'wh-2',
            error: 'connection refused',
            final: true,
          },
        },
      ]);
  });

  it('records a failure without an error message as "unknown error"', () => {
    spec(CANCELLED)
      .when(notification(1, 'CANCELLED', { ok: false, httpStatus: 500 }))
      .then([
        {
          type: 'MerchantNotificationFailed',
          data: {
            attempt: 1,
            httpStatus: 500,
            forStatus: 'CANCELLED',
            webhookId: 'wh-1',
            error: 'unknown error',
            final: false,
          },
        },
      ]);
  });

  it('decides nothing for a request that is not in a terminal status', () => {
    spec([registered])
      .when(notification(1, 'SETTLED', { ok: true }))
      .then([]);
    spec(AUTHORIZING_IN_FLIGHT)
      .when(notification(1, 'SETTLED', { ok: true }))
      .then([]);
    spec(WAITING_FOR_RETRY)
      .when(notification(1, 'SETTLED', { ok: false }))
      .then([]);
    spec(AUTHORIZED)
      .when(notification(1, 'SETTLED', { ok: true }))
      .then([]);
  });

  it('decides nothing for an attempt already recorded', () => {
    spec([...SETTLED, notificationFailed(1, 'SETTLED', false)])
      .when(notification(1, 'SETTLED', { ok: true }))
      .then([]);
    spec([...SETTLED, notificationFailed(1, 'SETTLED', false), notificationFailed(2, 'SETTLED', false)])
      .when(notification(1, 'SETTLED', { ok: false }))
      .then([]);
  });

  it('decides nothing once the merchant was notified, or finally failed to be, of that status', () => {
    spec([...SETTLED, notified(1, 'SETTLED')])
      .when(notification(2, 'SETTLED', { ok: true }))
      .then([]);
    spec([...SETTLED, notificationFailed(1, 'SETTLED', true)])
      .when(notification(2, 'SETTLED', { ok: true }))
      .then([]);
  });

  it('records the next attempt after a non-final failure', () => {
    spec([...SETTLED, notificationFailed(1, 'SETTLED', false)])
      .when(notification(2, 'SETTLED', { ok: true }))
      .then([
        { type: 'MerchantNotified', data: { attempt: 2, httpStatus: 200, forStatus: 'SETTLED', webhookId: 'wh-2' } },
      ]);
  });

  it('still records a notification outcome after the request was archived', () => {
    spec([...SETTLED, archived])
      .when(notification(1, 'SETTLED', { ok: true }))
      .then([
        { type: 'MerchantNotified', data: { attempt: 1, httpStatus: 200, forStatus: 'SETTLED', webhookId: 'wh-1' } },
      ]);
  });

  it('rejects a notification for a request that does not exist as not_found', () => {
    spec([])
      .when(notification(1, 'SETTLED', { ok: true }))
      .thenThrows(notFound);
  });
});

describe('ArchiveRequest', () => {
  const archive = { type: 'ArchiveRequest' as const, data: { now: T3 } };

  it.each([
    ['SETTLED', SETTLED],
    ['DECLINED', DECLINED],
    ['FAILED', FAILED],
    ['CANCELLED', CANCELLED],
  ])('archives a %s request', (_status, history) => {
    spec(history)
      .when(archive)
      .then([{ type: 'RequestArchived', data: { archivedAt: T3 } }]);
  });

  it.each([
    ['REGISTERED', [registered]],
    ['AUTHORIZING (in flight)', AUTHORIZING_IN_FLIGHT],
    ['AUTHORIZING (waiting for a retry)', WAITING_FOR_RETRY],
    ['AUTHORIZED', AUTHORIZED],
  ])('rejects archiving a %s request as illegal_state', (_status, history) => {
    spec(history).when(archive).thenThrows(illegalState);
  });

  it('decides nothing when the request is already archived', () => {
    spec([...SETTLED, archived])
      .when(archive)
      .then([]);
  });

  it('rejects archiving a request that does not exist as not_found', () => {
    spec([]).when(archive).thenThrows(notFound);
  });
});
