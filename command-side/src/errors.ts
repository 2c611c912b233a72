/** Command-side error codes (documented in README, never reused). */
export const ERR_VALIDATION = 'SETTLE_ERR_HTTP_VALIDATION';
export const ERR_BODY_TOO_LARGE = 'SETTLE_ERR_HTTP_BODY_TOO_LARGE';
export const ERR_UNSUPPORTED_MEDIA_TYPE = 'SETTLE_ERR_HTTP_UNSUPPORTED_MEDIA_TYPE';
export const ERR_MALFORMED_JSON = 'SETTLE_ERR_HTTP_MALFORMED_JSON';
export const ERR_UNAUTHENTICATED = 'SETTLE_ERR_AUTH_UNAUTHENTICATED';
export const ERR_FORBIDDEN = 'SETTLE_ERR_AUTH_FORBIDDEN';
export const ERR_INVALID_CLIENT = 'SETTLE_ERR_AUTH_INVALID_CLIENT';
export const ERR_INVALID_GRANT = 'SETTLE_ERR_AUTH_INVALID_GRANT';
export const ERR_NOT_FOUND = 'SETTLE_ERR_HTTP_NOT_FOUND';
export const ERR_IDEMPOTENCY_MISMATCH = 'SETTLE_ERR_IDEMPOTENCY_KEY_REUSED';
export const ERR_IDEMPOTENCY_IN_PROGRESS = 'SETTLE_ERR_IDEMPOTENCY_IN_PROGRESS';
export const ERR_PRECONDITION_FAILED = 'SETTLE_ERR_HTTP_PRECONDITION_FAILED';
export const ERR_CALLBACK_SIGNATURE = 'SETTLE_ERR_CALLBACK_SIGNATURE';
export const ERR_CALLBACK_PROVIDER = 'SETTLE_ERR_CALLBACK_UNKNOWN_PROVIDER';
export const ERR_UNAVAILABLE = 'SETTLE_ERR_UNAVAILABLE';
export const ERR_RATE_LIMITED = 'SETTLE_ERR_RATE_LIMITED';
export const ERR_INTERNAL = 'SETTLE_ERR_INTERNAL';

/** An error the edge turns into application/problem+json as it is. */
export class HttpProblem extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    readonly title: string,
    detail: string,
    readonly field?: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(detail);
    this.name = 'HttpProblem';
  }
}
