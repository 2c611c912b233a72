import mercurius from 'mercurius';

/**
 * GraphQL error codes (`extensions.code`). The generic ones follow the names GraphQL clients
 * already know (Apollo's); Settle's own follow `SETTLE_ERR_<AREA>_<WHAT>`. Stable, never reused.
 *
 * | code | when |
 * |---|---|
 * | `UNAUTHENTICATED` | no bearer token, or one that does not verify (HTTP 401) |
 * | `FORBIDDEN` | the principal's roles do not allow the field or argument |
 * | `BAD_USER_INPUT` | an argument is invalid; `extensions.field` names it |
 * | `NOT_FOUND` | a command named something that does not exist |
 * | `CONFLICT` | a command is not allowed in the current state, or lost a race |
 * | `GRAPHQL_VALIDATION_FAILED` | the document does not parse or validate against the schema |
 * | `INTERNAL_SERVER_ERROR` | anything else; the message is generic and the cause is logged |
 * | `SETTLE_ERR_NOT_IMPLEMENTED` | an operator mutation the projector cannot perform yet |
 * | `SETTLE_ERR_PARKED_ACTION_PENDING` | `retryParked`/`skipParked` was recorded but no projector or consumer carried it out in time |
 */
export const GQL_UNAUTHENTICATED = 'UNAUTHENTICATED';
export const GQL_FORBIDDEN = 'FORBIDDEN';
export const GQL_BAD_USER_INPUT = 'BAD_USER_INPUT';
export const GQL_NOT_FOUND = 'NOT_FOUND';
export const GQL_CONFLICT = 'CONFLICT';
export const GQL_VALIDATION_FAILED = 'GRAPHQL_VALIDATION_FAILED';
export const GQL_INTERNAL = 'INTERNAL_SERVER_ERROR';
/** A part Settle reads from (the read store, the event store) did not answer: retry later. */
export const GQL_UNAVAILABLE = 'SERVICE_UNAVAILABLE';
export const ERR_NOT_IMPLEMENTED = 'SETTLE_ERR_NOT_IMPLEMENTED';

/** An error whose message and extensions are meant for the client. */
export class QueryError extends mercurius.ErrorWithProps {
  readonly code: string;
  constructor(code: string, message: string, extensions: Record<string, unknown> = {}, statusCode = 200) {
    super(message, { code, ...extensions }, statusCode);
    this.name = 'QueryError';
    this.code = code;
  }
}

export const unauthenticated = (message: string): QueryError => new QueryError(GQL_UNAUTHENTICATED, message, {}, 401);

export const forbidden = (message = 'not allowed for this principal'): QueryError =>
  new QueryError(GQL_FORBIDDEN, message);

export const badUserInput = (field: string, message: string): QueryError =>
  new QueryError(GQL_BAD_USER_INPUT, message, { field });

export const notImplemented = (what: string): QueryError =>
  new QueryError(ERR_NOT_IMPLEMENTED, `${what} is not implemented yet`);

export const internalError = (): QueryError => new QueryError(GQL_INTERNAL, 'internal server error');

export const unavailable = (): QueryError =>
  new QueryError(GQL_UNAVAILABLE, 'a part Settle needs did not answer; retry later', {
    reason: 'SETTLE_ERR_UNAVAILABLE',
    retryAfterSeconds: 1,
  });
