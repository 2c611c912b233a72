/** Coded platform errors (SETTLE_ERR_<AREA>_<WHAT>): stable, documented, never reused. */
export class SettleError extends Error {
  readonly code: string;
  readonly statusCode: number;
  constructor(code: string, message: string, statusCode = 500, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SettleError';
    this.code = code;
    this.statusCode = statusCode;
  }
}

export const ERR_CONCURRENCY = 'SETTLE_ERR_STORE_CONCURRENCY';
export const ERR_STORE_UNAVAILABLE = 'SETTLE_ERR_STORE_UNAVAILABLE';
export const ERR_CONFIG_INVALID = 'SETTLE_ERR_CONFIG_INVALID';

/** The stream's revision is not the one the writer expected (another writer got there first). */
export class ConcurrencyError extends SettleError {
  readonly streamId: string;
  readonly expected: string;
  readonly actual: number;
  constructor(streamId: string, expected: string, actual: number) {
    super(ERR_CONCURRENCY, `stream ${streamId} is at revision ${actual}, expected ${expected}`, 412);
    this.name = 'ConcurrencyError';
    this.streamId = streamId;
    this.expected = expected;
    this.actual = actual;
  }
}

export class StoreUnavailableError extends SettleError {
  constructor(part: string, cause?: unknown) {
    super(ERR_STORE_UNAVAILABLE, `${part} is unavailable`, 503, { cause });
    this.name = 'StoreUnavailableError';
  }
}
