import { DomainError } from '@settle/domain';
import { ConcurrencyError, isUnavailableError, type Logger } from '@settle/platform';
import type { FastifyBaseLogger } from 'fastify';
import { GraphQLError, type ExecutionResult } from 'graphql';
import mercurius, { type MercuriusContext } from 'mercurius';
import {
  GQL_BAD_USER_INPUT,
  GQL_CONFLICT,
  GQL_INTERNAL,
  GQL_NOT_FOUND,
  GQL_VALIDATION_FAILED,
  QueryError,
  internalError,
  unavailable,
} from './errors.js';

type Execution = ExecutionResult & Required<Pick<ExecutionResult, 'errors'>>;

const DOMAIN_CODES: Record<DomainError['kind'], string> = {
  validation: GQL_BAD_USER_INPUT,
  not_found: GQL_NOT_FOUND,
  illegal_state: GQL_CONFLICT,
  conflict: GQL_CONFLICT,
};

/** Errors raised by fastify or mercurius about the request itself (bad body, bad document): safe to show. */
const isFrameworkError = (e: Error & { code?: unknown; statusCode?: unknown }): boolean =>
  typeof e.code === 'string' &&
  /^(MER_ERR_|FST_ERR_)/.test(e.code) &&
  typeof e.statusCode === 'number' &&
  e.statusCode < 500;

function domainToQueryError(e: DomainError): QueryError {
  const code = DOMAIN_CODES[e.kind];
  return new QueryError(code, e.message, { ...(e.field !== undefined ? { field: e.field } : {}), reason: e.code });
}

/**
 * Decides what a client may see of one error: our own coded errors and the GraphQL engine's
 * document errors pass; domain errors are mapped to codes; anything else (a driver's message,
 * a bug) becomes a generic INTERNAL_SERVER_ERROR and is logged with its real cause; a part that did
 * not answer (a driver's connection refused, lost or timed out) is SERVICE_UNAVAILABLE instead.
 */
function sanitize(error: GraphQLError, log: FastifyBaseLogger | Logger): GraphQLError {
  const original = error.originalError as
    (Error & { errors?: unknown; code?: unknown; statusCode?: unknown }) | undefined;
  if (!original) return withDefaultCode(error);
  if (original instanceof mercurius.ErrorWithProps || original instanceof GraphQLError) return withDefaultCode(error);
  // mercurius wraps document errors (syntax, validation, variable coercion) in one error with `errors`
  if (Array.isArray(original.errors) || isFrameworkError(original)) return error;
  let replacement: QueryError;
  if (original instanceof DomainError) replacement = domainToQueryError(original);
  else if (original instanceof ConcurrencyError)
    replacement = new QueryError(GQL_CONFLICT, 'another change won the race; retry', { reason: original.code });
  else if (isUnavailableError(original)) {
    // A driver could not reach its server (refused, lost, timed out): retry later, not a bug.
    log.warn({ err: original, path: error.path }, 'a part did not answer a GraphQL resolver');
    replacement = unavailable();
  } else {
    log.error({ err: original, path: error.path }, 'GraphQL resolver failed');
    replacement = internalError();
  }
  return new GraphQLError(replacement.message, {
    ...(error.nodes ? { nodes: error.nodes } : {}),
    ...(error.path ? { path: error.path } : {}),
    originalError: replacement,
  });
}

function withDefaultCode(error: GraphQLError): GraphQLError {
  if (typeof error.extensions.code === 'string') return error;
  const code = error.path ? GQL_INTERNAL : GQL_VALIDATION_FAILED;
  return new GraphQLError(error.message, {
    ...(error.nodes ? { nodes: error.nodes } : {}),
    ...(error.path ? { path: error.path } : {}),
    ...(error.originalError ? { originalError: error.originalError } : {}),
    extensions: { ...error.extensions, code },
  });
}

/** mercurius `errorFormatter`: sanitises every error, then answers as mercurius would. */
export function createErrorFormatter(fallbackLog: Logger) {
  return (execution: Execution, context: MercuriusContext) => {
    const log = context.reply?.log ?? fallbackLog;
    const errors = execution.errors.map((e) => sanitize(e, log));
    const formatted = mercurius.defaultErrorFormatter({ ...execution, errors }, context);
    for (const e of formatted.response.errors ?? []) {
      const ext = (e as { extensions?: Record<string, unknown> }).extensions;
      if (!ext || typeof ext.code !== 'string')
        (e as { extensions?: unknown }).extensions = { ...ext, code: GQL_VALIDATION_FAILED };
    }
    return formatted;
  };
}
