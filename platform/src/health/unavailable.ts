import { SettleError } from '../errors.js';

/** Network-level error codes of Node sockets and drivers: the other end is not there (yet). */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ERR_SOCKET_CLOSED',
]);

/** Driver error classes that mean "cannot reach the server", whatever the message. */
const UNREACHABLE_NAMES = new Set([
  'MongoServerSelectionError',
  'MongoNetworkError',
  'MongoNetworkTimeoutError',
  'MongoNotConnectedError',
  'MongoTopologyClosedError',
  'MaxRetriesPerRequestError', // ioredis: gave up while reconnecting
  'KafkaJSConnectionError',
  'KafkaJSConnectionClosedError',
  'KafkaJSBrokerNotFound',
  'KafkaJSRequestTimeoutError',
]);

const UNREACHABLE_MESSAGES =
  /connection terminated|timeout exceeded when trying to connect|connection is closed|client has encountered a connection error|the database system is (shutting down|starting up|in recovery mode)|terminating connection due to administrator command|stream isn't writeable|^query read timeout$/i;

/**
 * Whether an error means a part could not be reached (server down, connection lost, timed out)
 * rather than a bug or a refusal: those become 503 with Retry-After at the edge, not 500.
 * Follows `cause` chains (wrapped driver errors).
 */
export function isUnavailableError(error: unknown, depth = 0): boolean {
  if (!error || typeof error !== 'object' || depth > 5) return false;
  const e = error as { name?: unknown; code?: unknown; message?: unknown; cause?: unknown; errors?: unknown };
  if (error instanceof SettleError) return error.statusCode === 503;
  if (typeof e.code === 'string') {
    if (NETWORK_CODES.has(e.code)) return true;
    // PostgreSQL: class 08 (connection exception), 57P01-57P03 (admin shutdown, crash shutdown, cannot
    // connect now), 57014 (statement cancelled: statement_timeout) and 55P03 (lock_timeout) — a
    // cancelled statement is rolled back, so retrying it is safe.
    if (/^08...$/.test(e.code) || /^57P0[123]$/.test(e.code) || e.code === '57014' || e.code === '55P03') return true;
  }
  if (typeof e.name === 'string' && UNREACHABLE_NAMES.has(e.name)) return true;
  if (typeof e.message === 'string' && UNREACHABLE_MESSAGES.test(e.message)) return true;
  // AggregateError (e.g. a connect to several addresses that all refused)
  if (Array.isArray(e.errors) && e.errors.some((x) => isUnavailableError(x, depth + 1))) return true;
  return isUnavailableError(e.cause, depth + 1);
}
