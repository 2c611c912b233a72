import type { StoredEvent } from '@settle/domain';
import { describe, expect, it } from 'vitest';
import { applyRequestEvent, type RequestDoc } from './requests.js';

let position = 0;
const event = (type: string, data: unknown): StoredEvent => ({
  id: `e${++position}`,
  type,
  version: 1,
  streamId: 'request-r1',
  streamPosition: position - 1,
  globalPosition: position,
  occurredAt: new Date(Date.UTC(2026, 0, 1, 0, 0, position)).toISOString(),
  data,
  metadata: { correlationId: 'c', causationId: 'c', actor: 'test' },
});

describe('requests read model: pending merchant webhook retries', () => {
  it('flags a document while a webhook retry is scheduled, and clears the flag once delivered or given up', () => {
    let doc: RequestDoc | null = null;
    const apply = (type: string, data: unknown) =>
      (doc = { ...applyRequestEvent(doc, event(type, data))!, _position: position } as RequestDoc);
    apply('RequestRegistered', {
      requestId: 'r1',
      authId: 'a1',
      merchantId: 'm',
      amount: 100,
      currency: 'EUR',
      reference: 'x',
      registeredAt: '2026-01-01T00:00:00.000Z',
    });
    expect(doc!.notifyPending).toBe(false);
    apply('MerchantNotificationFailed', {
      attempt: 1,
      forStatus: 'SETTLED',
      nextAttemptAt: '2026-01-01T00:01:00.000Z',
    });
    expect(doc).toMatchObject({ notifyPending: true, notifyNextAttemptAt: '2026-01-01T00:01:00.000Z' });
    apply('MerchantNotified', { attempt: 2, httpStatus: 200, forStatus: 'SETTLED', webhookId: 'w' });
    expect(doc).toMatchObject({ notifyPending: false, notifyNextAttemptAt: null });
    apply('MerchantNotificationFailed', {
      attempt: 3,
      forStatus: 'SETTLED',
      nextAttemptAt: '2026-01-01T00:02:00.000Z',
    });
    apply('MerchantNotificationFailed', { attempt: 4, forStatus: 'SETTLED', final: true });
    expect(doc).toMatchObject({ notifyPending: false, notifyNextAttemptAt: null });
  });
});
