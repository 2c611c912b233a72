import { BrokenCircuitError, IsolatedCircuitError, type CircuitBreakerPolicy } from 'cockatiel';
import type { Logger } from 'pino';
import { Agent, request } from 'undici';
import { GatewayErrorCode } from './errors.js';
import { createGatewayBreaker } from './gatewayBreaker.js';

export interface GatewayAuthorization {
  idempotencyKey: string;
  requestId: string;
  amount: number;
  currency: string;
  merchantId: string;
  reference: string;
}

export type GatewayResult =
  | { outcome: 'authorized'; providerPaymentId: string }
  | { outcome: 'declined'; reason: string }
  | { outcome: 'transient'; errorCode: GatewayErrorCode; message: string };

export interface GatewayClient {
  /** Never rejects for a gateway failure: every failure is a `transient` result. */
  authorize(req: GatewayAuthorization, opts?: { timeoutMs?: number }): Promise<GatewayResult>;
  readonly breaker: CircuitBreakerPolicy;
  /** Closes the connection pool; the breaker, possibly shared, is left as it is. */
  close(): Promise<void>;
}

export interface GatewayClientOptions {
  /** e.g. `http://127.0.0.1:4010` */
  baseUrl: string;
  /** Per-call budget for connecting, sending and reading the answer. */
  timeoutMs: number;
  /** Defaults to createGatewayBreaker(); pass one to share it or to tune it. */
  breaker?: CircuitBreakerPolicy;
  logger: Logger;
}

/** A failure that counts against the gateway's health (the breaker sees it). */
class GatewayFailure extends Error {
  constructor(
    readonly code: GatewayErrorCode,
    message: string,
  ) {
    super(message);
  }
}

function parseJson(text: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(text);
    return value && typeof value === 'object' ? (value as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/**
 * HTTP client for the payment gateway's `POST /v1/authorizations`, behind a circuit breaker.
 *
 * @example
 * const gateway = createGatewayClient({ baseUrl: 'http://127.0.0.1:4010', timeoutMs: 2_000, logger });
 * const result = await gateway.authorize({ idempotencyKey: 'req-1:1', requestId: 'req-1', amount: 1000, … });
 */
export function createGatewayClient(opts: GatewayClientOptions): GatewayClient {
  const breaker = opts.breaker ?? createGatewayBreaker();
  const url = new URL('v1/authorizations', opts.baseUrl.endsWith('/') ? opts.baseUrl : `${opts.baseUrl}/`);
  const dispatcher = new Agent();
  const log = opts.logger;
  const listeners = [
    breaker.onBreak(() => log.warn({ gateway: url.origin }, 'gateway circuit opened')),
    breaker.onHalfOpen(() => log.info({ gateway: url.origin }, 'gateway circuit half-open')),
    breaker.onReset(() => log.info({ gateway: url.origin }, 'gateway circuit closed')),
  ];

  async function callOnce(req: GatewayAuthorization, timeoutMs: number): Promise<GatewayResult> {
    const timeout = AbortSignal.timeout(timeoutMs);
    let status: number;
    let body: Record<string, unknown>;
    try {
      const res = await request(url, {
        method: 'POST',
        dispatcher,
        signal: timeout,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(req),
      });
      status = res.statusCode;
      body = parseJson(await res.body.text());
    } catch (err) {
      // Judged by our own signal, not the error's shape: undici reports aborts several ways.
      if (timeout.aborted)
        throw new GatewayFailure(GatewayErrorCode.TIMEOUT, `gateway did not answer within ${timeoutMs} ms`);
      const reason = err instanceof Error ? ((err as { code?: string }).code ?? err.message) : String(err);
      throw new GatewayFailure(GatewayErrorCode.UNREACHABLE, `gateway unreachable: ${reason}`);
    }
    if (status === 200 || status === 201) {
      if (typeof body['id'] !== 'string' || body['id'] === '' || body['status'] !== 'authorized') {
        throw new GatewayFailure(
          GatewayErrorCode.BAD_RESPONSE,
          `gateway answered ${status} without an authorised payment id`,
        );
      }
      return { outcome: 'authorized', providerPaymentId: body['id'] };
    }
    if (status === 402) {
      return { outcome: 'declined', reason: typeof body['reason'] === 'string' ? body['reason'] : 'declined' };
    }
    if (status >= 500) throw new GatewayFailure(GatewayErrorCode.FIVE_XX, `gateway answered ${status}`);
    // The gateway is up and refused what we sent: not its health, so the breaker is not told.
    log.error(
      { requestId: req.requestId, httpStatus: status, reason: body['reason'] },
      'gateway refused the authorization request',
    );
    return { outcome: 'transient', errorCode: GatewayErrorCode.FOUR_XX, message: `gateway answered ${status}` };
  }

  return {
    breaker,
    async authorize(req, callOpts = {}) {
      const timeoutMs = Math.max(1, Math.min(callOpts.timeoutMs ?? opts.timeoutMs, opts.timeoutMs));
      try {
        return await breaker.execute(() => callOnce(req, timeoutMs));
      } catch (err) {
        const failure =
          err instanceof GatewayFailure
            ? err
            : err instanceof BrokenCircuitError || err instanceof IsolatedCircuitError
              ? new GatewayFailure(GatewayErrorCode.CIRCUIT_OPEN, 'gateway circuit is open; call not attempted')
              : new GatewayFailure(GatewayErrorCode.UNREACHABLE, err instanceof Error ? err.message : String(err));
        log.warn(
          {
            requestId: req.requestId,
            idempotencyKey: req.idempotencyKey,
            errorCode: failure.code,
            err: failure.message,
          },
          'gateway authorization failed transiently',
        );
        return { outcome: 'transient', errorCode: failure.code, message: failure.message };
      }
    },
    async close() {
      for (const listener of listeners) listener.dispose();
      await dispatcher.close();
    },
  };
}
