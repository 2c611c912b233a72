import {
  paymentRequestDecider,
  type AuthorizationOutcome,
  type PaymentAuthorizationRequested,
  type RetryPolicy,
  type StoredEvent,
} from '@settle/domain';
import { handleCommand, loadAggregate, type EventStore, type Logger, type Metrics } from '@settle/platform';
import type { AuthorizeReply, PaymentsClient } from '@settle/proto';
import { inReactionTo } from './context.js';

export interface DispatcherDeps {
  eventStore: EventStore;
  payments: Pick<PaymentsClient, 'authorize'>;
  retry: RetryPolicy;
  logger: Logger;
  metrics?: Metrics;
  /** Deadline of one Authorize call; the payments service answers within it. */
  deadlineMs: number;
  now?: () => Date;
}

/** gRPC status codes that mean "the payments service did not get to decide": redeliver the same attempt. */
const UNREACHED = new Set([14 /* UNAVAILABLE */, 1 /* CANCELLED */]);

function outcomeOf(reply: AuthorizeReply): AuthorizationOutcome {
  switch (reply.outcome) {
    case 'AUTHORIZED':
      return { kind: 'authorized', providerPaymentId: reply.providerPaymentId };
    case 'DECLINED':
      return { kind: 'declined', reason: reply.reason || 'declined' };
    default:
      return {
        kind: 'transient',
        error: { code: reply.errorCode || 'GATEWAY_ERROR', message: reply.errorMessage || 'transient failure' },
      };
  }
}

/**
 * The payment dispatcher. `RequestRegistered` starts attempt 1; every
 * `PaymentAuthorizationRequested` is executed by calling `Payments.Authorize` with the attempt's
 * idempotency key, and its outcome recorded. Appends derive their ids from the trigger, and
 * an attempt whose outcome is already stored is not called again.
 */
export function createDispatcher(deps: DispatcherDeps) {
  const now = deps.now ?? (() => new Date());
  return async function dispatch(event: StoredEvent): Promise<void> {
    if (event.type === 'RequestRegistered') {
      await inReactionTo(event, 'dispatcher', () =>
        handleCommand(
          deps.eventStore,
          event.streamId,
          paymentRequestDecider,
          { type: 'StartAuthorization', data: { attempt: 1, now: now().toISOString() } },
          { causationEventId: event.id },
        ),
      );
      return;
    }
    if (event.type !== 'PaymentAuthorizationRequested') return;
    const requested = event as unknown as PaymentAuthorizationRequested & StoredEvent;
    const { attempt, gatewayIdempotencyKey } = requested.data;
    const loaded = await loadAggregate(deps.eventStore, event.streamId, paymentRequestDecider);
    const { state } = loaded;
    if (!(state.status === 'AUTHORIZING' && state.attemptInFlight && state.attempts === attempt)) return;

    let outcome: AuthorizationOutcome;
    try {
      const reply = await deps.payments.authorize(
        {
          requestId: state.requestId,
          attempt,
          idempotencyKey: gatewayIdempotencyKey,
          amount: state.amount,
          currency: state.currency,
          merchantId: state.merchantId,
          reference: state.reference,
        },
        { deadlineMs: deps.deadlineMs },
      );
      outcome = outcomeOf(reply);
    } catch (error) {
      const code = (error as { code?: number }).code;
      if (code !== undefined && UNREACHED.has(code)) throw error;
      outcome = {
        kind: 'transient',
        error: {
          code: code === 4 ? 'PAYMENTS_DEADLINE_EXCEEDED' : 'PAYMENTS_ERROR',
          message: (error as Error).message.slice(0, 300),
        },
      };
    }
    deps.metrics?.paymentAttempts.inc({ outcome: outcome.kind });
    await inReactionTo(event, 'dispatcher', () =>
      handleCommand(
        deps.eventStore,
        event.streamId,
        paymentRequestDecider,
        { type: 'RecordAuthorizationOutcome', data: { attempt, outcome, now: now().toISOString(), retry: deps.retry } },
        // Decided on the state read before the call; if the stream moved meanwhile, read again.
        { causationEventId: event.id, assume: loaded },
      ),
    );
    deps.logger.info({ requestId: state.requestId, attempt, outcome: outcome.kind }, 'authorisation attempt finished');
  };
}
