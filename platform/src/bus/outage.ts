import { isUnavailableError } from '../health/unavailable.js';

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN']);

/**
 * A failure that means a part of Settle is down rather than that the event is poison: consumers
 * retry these with backoff without limit, and never park or dead-letter for them. 503-class Settle
 * errors, `SETTLE_ERR_*_UNAVAILABLE` codes, gRPC `UNAVAILABLE` (the payments service is down),
 * refused or reset connections, Redis out of reach, and whatever `isUnavailableError` knows as a
 * server out of reach (lost PostgreSQL, MongoDB or Kafka connections; PostgreSQL statement and
 * lock timeouts: a statement held up by a lock is cancelled, not poison).
 */
export function isOutageError(error: unknown): boolean {
  const e = error as { code?: unknown; statusCode?: unknown; name?: unknown } | null;
  return (
    e?.statusCode === 503 ||
    e?.code === 14 /* gRPC UNAVAILABLE */ ||
    e?.name === 'MaxRetriesPerRequestError' /* ioredis: Redis out of reach */ ||
    (typeof e?.code === 'string' &&
      (NETWORK_CODES.has(e.code) || (e.code.startsWith('SETTLE_ERR_') && e.code.endsWith('_UNAVAILABLE')))) ||
    isUnavailableError(error)
  );
}
