import { describe, it, expect } from 'vitest';
import { fold } from '../envelope.js';
import {
  evolve,
  initialState,
  isTerminal,
  paymentRequestDecider,
  type PaymentRequestEvent,
  type PaymentRequestState,
} from './index.js';

const T0 = '2026-03-01T10:00:00.000Z';
const T1 = '2026-03-01T10:00:02.000Z';
const T2 = '2026-03-01T10:00:07.000Z';
const RETRY_AT = '2026-03-01T10:00:03.000Z';
const TIMEOUT = { code: 'GATEWAY_TIMEOUT', message: 'the gateway did not answer in time' };

const registered: PaymentRequestEvent = {
  type: 'RequestRegistered',
  data: {
    requestId: 'req-0001',
    authId: 'auth-9f8e7d',
    merchantId: 'merchant-1',
    amount: 12_500,
    currency: 'EUR',
    reference: 'INV-2026-001',
    description: 'Order 42',
    callbackUrl: 'https://merchant.example/hooks/settle',
    registeredAt: T0,
  },
};
const requested = (attempt: number): PaymentRequestEvent => ({
  type: 'PaymentAuthorizationRequested',
  data: { attempt, gatewayIdempotencyKey: `req-0001:${attempt}`, requestedAt: T0 },
});
const attemptFailed = (attempt: number): PaymentRequestEvent => ({
  type: 'PaymentAttemptFailed',
  data: { attempt, error: TIMEOUT, nextAttemptAt: RETRY_AT },
});
const authorized = (attempt: number): PaymentRequestEvent => ({
  type: 'PaymentAuthorized',
  data: { attempt, providerPaymentId: 'pp-1' },
});
const captured: PaymentRequestEvent = {
  type: 'CallbackReceived',
  data: {
    provider: 'sandbox',
    providerEventId: 'evt-1',
    type: 'payment.captured',
    providerPaymentId: 'pp-1',
    receivedAt: T1,
  },
};
const settled: PaymentRequestEvent = { type: 'PaymentSettled', data: { settledAt: T2, providerPaymentId: 'pp-1' } };

/** Every intermediate state of a fold, so a test can follow the status machine step by step. */
function states(events: PaymentRequestEvent[]): PaymentRequestState[] {
  const out: PaymentRequestState[] = [];
  let state = initialState();
  for (const event of events) out.push((state = evolve(state, event)));
  return out;
}

describe('evolve', () => {
  it('starts from a state that does not exist', () => {
    const state = initialState();
    expect(state.exists).toBe(false);
    expect(state.attempts).toBe(0);
    expect(state.attemptInFlight).toBe(false);
    expect(state.callbackEventIds).toEqual([]);
  });

  it('folds the happy path to SETTLED with one attempt counted', () => {
    const history = [registered, requested(1), authorized(1), captured, settled];
    expect(states(history).map((s) => s.status)).toEqual([
      'REGISTERED',
      'AUTHORIZING',
      'AUTHORIZED',
      'AUTHORIZED',
      'SETTLED',
    ]);

    const state = fold(paymentRequestDecider, history);
    expect(state).toMatchObject({
      exists: true,
      requestId: 'req-0001',
      authId: 'auth-9f8e7d',
      merchantId: 'merchant-1',
      amount: 12_500,
      currency: 'EUR',
      reference: 'INV-2026-001',
      callbackUrl: 'https://merchant.example/hooks/settle',
      status: 'SETTLED',
      attempts: 1,
      attemptInFlight: false,
      providerPaymentId: 'pp-1',
      callbackEventIds: ['evt-1'],
      notificationAttempts: 0,
    });
    expect(state.earlyCapture).toBeUndefined();
    expect(state.nextAttemptAt).toBeUndefined();
    expect(isTerminal(state.status)).toBe(true);
  });

  it('marks an attempt in flight between its request and its outcome', () => {
    const [, inFlight, done] = states([registered, requested(1), authorized(1)]);
    expect(inFlight?.attemptInFlight).toBe(true);
    expect(done?.attemptInFlight).toBe(false);
  });

  it('folds the retry path: a transient failure waits for the retry, the next attempt is counted and settles', () => {
    const history = [registered, requested(1), attemptFailed(1), requested(2), authorized(2), captured, settled];
    const [, , waiting, retrying] = states(history);

    expect(waiting).toMatchObject({
      status: 'AUTHORIZING',
      attempts: 1,
      attemptInFlight: false,
      nextAttemptAt: RETRY_AT,
      lastError: TIMEOUT,
    });
    expect(retrying).toMatchObject({ status: 'AUTHORIZING', attempts: 2, attemptInFlight: true });
    expect(retrying?.nextAttemptAt).toBeUndefined();

    const final = fold(paymentRequestDecider, history);
    expect(final).toMatchObject({ status: 'SETTLED', attempts: 2, attemptInFlight: false, providerPaymentId: 'pp-1' });
    expect(final.nextAttemptAt).toBeUndefined();
  });

  it('folds exhausted retries to FAILED with the last error', () => {
    const unavailable = { code: 'GATEWAY_UNAVAILABLE', message: 'HTTP 503' };
    const state = fold(paymentRequestDecider, [
      registered,
      requested(1),
      attemptFailed(1),
      requested(2),
      { type: 'PaymentFailed', data: { attempts: 2, lastError: unavailable } },
    ]);
    expect(state).toMatchObject({ status: 'FAILED', attempts: 2, attemptInFlight: false, lastError: unavailable });
    expect(state.nextAttemptAt).toBeUndefined();
  });

  it('keeps a capture callback that arrives while AUTHORIZING as an early capture until settlement', () => {
    const [, , early] = states([registered, requested(1), captured]);
    expect(early?.status).toBe('AUTHORIZING');
    expect(early?.earlyCapture).toEqual({ settledAt: T1, providerPaymentId: 'pp-1' });
    const final = fold(paymentRequestDecider, [registered, requested(1), captured, authorized(1), settled]);
    expect(final.status).toBe('SETTLED');
    expect(final.earlyCapture).toBeUndefined();
  });

  it('does not treat a capture callback outside AUTHORIZING as an early capture', () => {
    const late = { ...captured, data: { ...captured.data, providerEventId: 'evt-2' } } as PaymentRequestEvent;
    const authorizedState = fold(paymentRequestDecider, [registered, requested(1), authorized(1), late]);
    expect(authorizedState.callbackEventIds).toEqual(['evt-2']);
    expect(authorizedState.earlyCapture).toBeUndefined();
    const settledState = fold(paymentRequestDecider, [
      registered,
      requested(1),
      authorized(1),
      captured,
      settled,
      late,
    ]);
    expect(settledState.callbackEventIds).toEqual(['evt-1', 'evt-2']);
    expect(settledState.earlyCapture).toBeUndefined();
  });

  it('folds a cancellation while waiting for a retry to CANCELLED and forgets the retry time', () => {
    const state = fold(paymentRequestDecider, [
      registered,
      requested(1),
      attemptFailed(1),
      { type: 'RequestCancelled', data: { reason: 'no longer needed', by: 'merchant-1' } },
    ]);
    expect(state.status).toBe('CANCELLED');
    expect(state.nextAttemptAt).toBeUndefined();
  });

  it('counts notification attempts and remembers the status notified, or finally failed', () => {
    const base = [registered, requested(1), authorized(1), captured, settled];
    const failedOnce = fold(paymentRequestDecider, [
      ...base,
      {
        type: 'MerchantNotificationFailed',
        data: { attempt: 1, httpStatus: 500, forStatus: 'SETTLED', webhookId: 'wh-1', error: 'HTTP 500', final: false },
      },
    ]);
    expect(failedOnce.notificationAttempts).toBe(1);
    expect(failedOnce.notified).toBeUndefined();

    const finallyFailed = fold(paymentRequestDecider, [
      ...base,
      {
        type: 'MerchantNotificationFailed',
        data: { attempt: 3, httpStatus: 500, forStatus: 'SETTLED', webhookId: 'wh-3', error: 'HTTP 500', final: true },
      },
    ]);
    expect(finallyFailed).toMatchObject({ notificationAttempts: 3, notified: 'SETTLED' });

    const notified = fold(paymentRequestDecider, [
      ...base,
      { type: 'MerchantNotified', data: { attempt: 2, httpStatus: 200, forStatus: 'SETTLED', webhookId: 'wh-2' } },
    ]);
    expect(notified).toMatchObject({ notificationAttempts: 2, notified: 'SETTLED' });
  });

  it('archives a terminal request and remembers the status it had', () => {
    const state = fold(paymentRequestDecider, [
      registered,
      requested(1),
      authorized(1),
      captured,
      settled,
      { type: 'RequestArchived', data: { archivedAt: T2 } },
    ]);
    expect(state.status).toBe('ARCHIVED');
    expect(state.statusBeforeArchive).toBe('SETTLED');
    expect(isTerminal(state.status)).toBe(false);
  });

  it('does not mutate the state it is given', () => {
    const before = fold(paymentRequestDecider, [registered, requested(1)]);
    const snapshot: unknown = JSON.parse(JSON.stringify(before));
    evolve(before, captured);
    evolve(before, authorized(1));
    expect(before).toEqual(snapshot);
  });
});
