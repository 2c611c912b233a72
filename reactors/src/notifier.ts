import { paymentRequestDecider, requestStreamId, type RequestStatus, type StoredEvent } from '@settle/domain';
import {
  deterministicId,
  handleCommand,
  loadAggregate,
  runWithContext,
  type ClientRegistry,
  type EventStore,
  type LockManager,
  type Logger,
  type Metrics,
} from '@settle/platform';
import { Webhook } from 'standardwebhooks';
import type { WebhookFetch } from './safeFetch.js';

export {
  createSafeAgent,
  createSafeFetch,
  ForbiddenAddressError,
  ERR_WEBHOOK_FORBIDDEN_ADDRESS,
  type SafeFetchOptions,
  type WebhookFetch,
  type WebhookResponse,
} from './safeFetch.js';

/** How long a rotated-out webhook secret keeps signing next to the new one. */
export const WEBHOOK_ROTATION_GRACE_MS = 24 * 60 * 60 * 1000;

/**
 * The signing side of an API client. A rotated-out secret comes either as the registry's
 * `{ secret, validUntil }` or as a bare secret plus `rotatedAt` (valid for 24 h after it).
 */
export interface WebhookSigner {
  webhookSecret?: string;
  previousWebhookSecret?: string | { secret: string; validUntil: string };
  /** When `webhookSecret` replaced a bare-string `previousWebhookSecret` (ISO time or Date). */
  rotatedAt?: string | Date;
}

function previousSecret(signer: WebhookSigner, at: Date): string | undefined {
  const previous = signer.previousWebhookSecret;
  if (!previous) return undefined;
  let secret: string;
  let until: number;
  if (typeof previous === 'string') {
    if (signer.rotatedAt === undefined) return undefined;
    const rotatedAt = new Date(signer.rotatedAt).getTime();
    if (!(rotatedAt <= at.getTime())) return undefined;
    secret = previous;
    until = rotatedAt + WEBHOOK_ROTATION_GRACE_MS;
  } else {
    secret = previous.secret;
    until = new Date(previous.validUntil).getTime();
  }
  return secret && secret !== signer.webhookSecret && at.getTime() < until ? secret : undefined;
}

/**
 * The `webhook-signature` header value: `v1,<sig>` with the current secret, followed (space
 * separated, Standard Webhooks) by `v1,<sig>` with the previous secret during the rotation grace
 * period, so a merchant still verifying with the old secret keeps accepting.
 */
export function signWebhook(signer: WebhookSigner, webhookId: string, at: Date, payload: string): string {
  if (!signer.webhookSecret) throw new Error('no webhook secret');
  const signatures = [new Webhook(signer.webhookSecret).sign(webhookId, at, payload)];
  const previous = previousSecret(signer, at);
  if (previous) signatures.push(new Webhook(previous).sign(webhookId, at, payload));
  return signatures.join(' ');
}

export interface NotifierDeps {
  eventStore: EventStore;
  clients: ClientRegistry;
  locks: LockManager;
  logger: Logger;
  metrics?: Metrics;
  /** Delays between attempts (the last repeats) and attempts in all. */
  delaysMs: number[];
  maxAttempts: number;
  timeoutMs?: number;
  /** Re-checks the target right before sending (SSRF: the host may resolve elsewhere now). */
  checkUrl?(url: string): Promise<void>;
  /**
   * Sends the webhook; give {@link createSafeFetch} in any real deployment so the connect-time
   * address check applies. Defaults to the global fetch (no address check).
   */
  fetch?: WebhookFetch;
  now?: () => Date;
}

const TERMINAL_EVENT: Record<string, RequestStatus> = {
  PaymentSettled: 'SETTLED',
  PaymentDeclined: 'DECLINED',
  PaymentFailed: 'FAILED',
  RequestCancelled: 'CANCELLED',
};

/**
 * The merchant notifier: on every terminal state, POSTs a Standard Webhooks-signed event to the
 * request's callbackUrl. The webhook id is stable across attempts (merchants dedupe on it); the
 * signature is made afresh for each attempt. Redirects are not followed. Outcomes are recorded
 * as events; the scheduler brings back failed deliveries when their retry is due.
 */
export function createNotifier(deps: NotifierDeps) {
  const now = deps.now ?? (() => new Date());
  const send: WebhookFetch = deps.fetch ?? ((url, init) => fetch(url, init));

  async function deliver(requestId: string): Promise<void> {
    await deps.locks.tryWithLock(`notify:${requestId}`, 60_000, async () => {
      const streamId = requestStreamId(requestId);
      const { state } = await loadAggregate(deps.eventStore, streamId, paymentRequestDecider);
      const forStatus = state.status;
      if (!state.exists || !state.callbackUrl || !['SETTLED', 'DECLINED', 'FAILED', 'CANCELLED'].includes(forStatus))
        return;
      if (state.notified === forStatus) return;
      const client = await deps.clients.get(state.merchantId);
      if (!client?.webhookSecret) {
        deps.logger.warn({ requestId, merchantId: state.merchantId }, 'merchant has no webhook secret; not notifying');
        return;
      }
      const attempt = state.notificationAttempts + 1;
      const webhookId = `msg_${deterministicId(`webhook/${requestId}/${forStatus}`).replace(/-/g, '')}`;
      const at = now();
      const payload = JSON.stringify({
        type: `payment_request.${forStatus.toLowerCase()}`,
        timestamp: at.toISOString(),
        data: {
          id: state.requestId,
          authId: state.authId,
          merchantId: state.merchantId,
          status: forStatus,
          amount: state.amount,
          currency: state.currency,
          reference: state.reference,
          attempts: state.attempts,
        },
      });
      let httpStatus = 0;
      let error: string | undefined;
      try {
        await deps.checkUrl?.(state.callbackUrl);
        // Signed afresh for every attempt: its timestamp must be recent when the merchant checks it.
        const signature = signWebhook(client, webhookId, at, payload);
        const response = await send(state.callbackUrl, {
          method: 'POST',
          redirect: 'manual',
          signal: AbortSignal.timeout(deps.timeoutMs ?? 10_000),
          headers: {
            'content-type': 'application/json',
            'user-agent': 'Settle-Webhooks/1',
            'webhook-id': webhookId,
            'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
            'webhook-signature': signature,
          },
          body: payload,
        });
        httpStatus = response.status;
        await response.body?.cancel().catch(() => undefined);
        if (httpStatus < 200 || httpStatus >= 300) error = `merchant answered HTTP ${httpStatus}`;
      } catch (e) {
        error = (e as Error).message.slice(0, 300);
      }
      const ok = error === undefined;
      const final = !ok && attempt >= deps.maxAttempts;
      const delay = deps.delaysMs[Math.min(attempt - 1, deps.delaysMs.length - 1)] ?? 60_000;
      deps.metrics?.webhooks.inc({ outcome: ok ? 'delivered' : final ? 'gave_up' : 'failed' });
      await runWithContext({ correlationId: requestId, actor: 'notifier' }, () =>
        handleCommand(
          deps.eventStore,
          streamId,
          paymentRequestDecider,
          {
            type: 'RecordNotification',
            data: {
              attempt,
              forStatus,
              webhookId,
              httpStatus,
              ok,
              ...(error !== undefined ? { error } : {}),
              final,
              ...(!ok && !final ? { nextAttemptAt: new Date(at.getTime() + delay).toISOString() } : {}),
            },
          },
          { causationEventId: deterministicId(`notify/${requestId}/${forStatus}/${attempt}`) },
        ),
      );
      if (!ok) deps.logger.warn({ requestId, attempt, httpStatus, error, final }, 'merchant webhook failed');
    });
  }

  return {
    deliver,
    async handle(event: StoredEvent): Promise<void> {
      if (!(event.type in TERMINAL_EVENT)) return;
      await deliver(event.streamId.slice('request-'.length));
    },
  };
}

export type Notifier = ReturnType<typeof createNotifier>;
