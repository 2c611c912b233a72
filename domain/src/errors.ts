/**
 * Coded domain errors. Codes are stable, documented and never reused; the edges map
 * them to HTTP statuses and GraphQL `extensions.code`.
 */
export type DomainErrorKind = 'validation' | 'not_found' | 'illegal_state' | 'conflict';

export class DomainError extends Error {
  readonly code: string;
  readonly kind: DomainErrorKind;
  readonly field?: string;
  constructor(code: string, kind: DomainErrorKind, message: string, field?: string) {
    super(message);
    this.name = 'DomainError';
    this.code = code;
    this.kind = kind;
    if (field !== undefined) this.field = field;
  }
}

export const ERR_REQUEST_NOT_FOUND = 'SETTLE_ERR_REQUEST_NOT_FOUND';
export const ERR_REQUEST_ALREADY_EXISTS = 'SETTLE_ERR_REQUEST_ALREADY_EXISTS';
export const ERR_REQUEST_ILLEGAL_STATE = 'SETTLE_ERR_REQUEST_ILLEGAL_STATE';
export const ERR_REQUEST_INVALID = 'SETTLE_ERR_REQUEST_INVALID';
export const ERR_ATTEMPT_MISMATCH = 'SETTLE_ERR_REQUEST_ATTEMPT_MISMATCH';
export const ERR_PREFERENCES_INVALID = 'SETTLE_ERR_PREFERENCES_INVALID';

export const notFound = (what: string): DomainError =>
  new DomainError(ERR_REQUEST_NOT_FOUND, 'not_found', `${what} was not found`);
export const illegalState = (message: string): DomainError =>
  new DomainError(ERR_REQUEST_ILLEGAL_STATE, 'illegal_state', message);
export const invalid = (field: string, message: string, code = ERR_REQUEST_INVALID): DomainError =>
  new DomainError(code, 'validation', message, field);
