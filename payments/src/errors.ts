/**
 * Coded errors of the payments workspace. Codes are stable, documented and never reused.
 * They appear in gRPC status details, in AuthorizeReply.errorCode and in log lines.
 */

/** An Authorize request failed validation; gRPC status INVALID_ARGUMENT, details name the fields. */
export const ERR_INVALID_REQUEST = 'SETTLE_ERR_PAYMENTS_INVALID_REQUEST';
/** Authorize failed for a reason that is a bug, not a gateway failure; gRPC status INTERNAL. */
export const ERR_INTERNAL = 'SETTLE_ERR_PAYMENTS_INTERNAL';
/** The sandbox gave up delivering a callback to Settle after its retry schedule (logged). */
export const ERR_CALLBACK_UNDELIVERED = 'SETTLE_ERR_PAYMENTS_CALLBACK_UNDELIVERED';
/** The gRPC server did not drain in time and was shut down forcibly (logged). */
export const ERR_SHUTDOWN_FORCED = 'SETTLE_ERR_PAYMENTS_SHUTDOWN_FORCED';

/**
 * Why a gateway call failed transiently, as sent in AuthorizeReply.errorCode. The
 * dispatcher retries all of them with a new attempt; they differ only for operators.
 */
export const GatewayErrorCode = {
  /** The gateway answered 5xx. */
  FIVE_XX: 'GATEWAY_5XX',
  /** No answer within the client timeout (or the caller's remaining deadline). */
  TIMEOUT: 'GATEWAY_TIMEOUT',
  /** Connection refused, reset, DNS failure: the request may not have reached the gateway. */
  UNREACHABLE: 'GATEWAY_UNREACHABLE',
  /** The circuit breaker is open; the gateway was not called. */
  CIRCUIT_OPEN: 'CIRCUIT_OPEN',
  /** The gateway answered 2xx with a body we cannot read. */
  BAD_RESPONSE: 'GATEWAY_BAD_RESPONSE',
  /** The gateway refused the request itself (4xx other than 402): a bug on one side. */
  FOUR_XX: 'GATEWAY_4XX',
} as const;
export type GatewayErrorCode = (typeof GatewayErrorCode)[keyof typeof GatewayErrorCode];
