import { DomainError } from '@settle/domain';
import { ConcurrencyError, isUnavailableError, SettleError } from '@settle/platform';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  ERR_BODY_TOO_LARGE,
  ERR_INTERNAL,
  ERR_MALFORMED_JSON,
  ERR_NOT_FOUND,
  ERR_PRECONDITION_FAILED,
  ERR_UNAVAILABLE,
  ERR_UNSUPPORTED_MEDIA_TYPE,
  ERR_VALIDATION,
  HttpProblem,
} from './errors.js';

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance: string;
  code: string;
  field?: string;
  errors?: { field: string; message: string }[];
  [key: string]: unknown;
}

const TYPE_BASE = 'https://settle.dev/problems/';

/** Seconds a client should wait before retrying after a 503 (parts are probed every second). */
export const RETRY_AFTER_S = 2;

interface AjvError {
  instancePath: string;
  keyword: string;
  message?: string;
  params: Record<string, unknown>;
}

/** Turns an Ajv error into the dotted name of the offending field, e.g. `metadata.colour`. */
export function fieldOf(error: AjvError, context?: string): string {
  const path = error.instancePath.replace(/^\//, '').split('/').filter(Boolean);
  if (error.keyword === 'required' && typeof error.params.missingProperty === 'string')
    path.push(error.params.missingProperty);
  if (error.keyword === 'additionalProperties' && typeof error.params.additionalProperty === 'string')
    path.push(error.params.additionalProperty);
  const field = path.join('.');
  if (context === 'headers' || context === 'params' || context === 'querystring') return field || context;
  return field || 'body';
}

function messageOf(error: AjvError, field: string): string {
  switch (error.keyword) {
    case 'required':
      return `${field} is required`;
    case 'additionalProperties':
      return `${field} is not a known field`;
    default:
      return `${field} ${error.message ?? 'is invalid'}`;
  }
}

export type ProblemInput = {
  title: string;
  status: number;
  code: string;
  detail: string;
  field?: string;
  type?: string;
  [key: string]: unknown;
};

export function sendProblem(reply: FastifyReply, problem: ProblemInput): FastifyReply {
  const body = {
    type:
      problem.type ??
      `${TYPE_BASE}${problem.code
        .replace(/^SETTLE_ERR_/, '')
        .toLowerCase()
        .replace(/_/g, '-')}`,
    instance: reply.request.url,
    ...problem,
  };
  return reply.code(problem.status).type('application/problem+json').send(body);
}

/** Every error leaves as RFC 9457 problem+json; driver messages never reach the client. */
export function installProblemHandler(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    if (error.validation) {
      const errors = (error.validation as AjvError[]).map((e) => {
        const field = fieldOf(e, error.validationContext);
        return { field, message: messageOf(e, field) };
      });
      return sendProblem(reply, {
        title: 'Invalid request',
        status: 400,
        code: ERR_VALIDATION,
        detail: errors.map((e) => e.message).join('; '),
        field: errors[0]?.field ?? 'body',
        errors,
      });
    }
    if (error instanceof HttpProblem)
      return sendProblem(reply, {
        title: error.title,
        status: error.statusCode,
        code: error.code,
        detail: error.message,
        ...(error.field ? { field: error.field } : {}),
        ...error.extra,
      });
    if (error instanceof DomainError) {
      const status = { validation: 422, not_found: 404, illegal_state: 409, conflict: 409 }[error.kind];
      return sendProblem(reply, {
        title: {
          validation: 'Invalid request',
          not_found: 'Not found',
          illegal_state: 'Conflict',
          conflict: 'Conflict',
        }[error.kind],
        status,
        code: error.code,
        detail: error.message,
        ...(error.field ? { field: error.field, errors: [{ field: error.field, message: error.message }] } : {}),
      });
    }
    if (error instanceof ConcurrencyError)
      return sendProblem(reply, {
        title: 'Precondition failed',
        status: 412,
        code: ERR_PRECONDITION_FAILED,
        detail: `the resource changed: it is at revision ${error.actual}, not ${error.expected}`,
        field: 'If-Match',
      });
    switch (error.code) {
      case 'FST_ERR_CTP_BODY_TOO_LARGE':
        return sendProblem(reply, {
          title: 'Payload too large',
          status: 413,
          code: ERR_BODY_TOO_LARGE,
          detail: 'the request body is larger than allowed',
          field: 'body',
        });
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
        return sendProblem(reply, {
          title: 'Unsupported media type',
          status: 415,
          code: ERR_UNSUPPORTED_MEDIA_TYPE,
          detail: 'send the body as application/json',
          field: 'Content-Type',
        });
      case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      case 'FST_ERR_CTP_INVALID_JSON_BODY':
        return sendProblem(reply, {
          title: 'Malformed JSON',
          status: 400,
          code: ERR_MALFORMED_JSON,
          detail: 'the body is not valid JSON',
          field: 'body',
        });
    }
    if (error instanceof SyntaxError || error.statusCode === 400)
      return sendProblem(reply, {
        title: 'Bad request',
        status: 400,
        code: ERR_MALFORMED_JSON,
        detail: 'the request could not be read',
        field: 'body',
      });
    if (error instanceof SettleError && error.statusCode === 503)
      return sendProblem(reply.header('retry-after', String(RETRY_AFTER_S)), {
        title: 'Service unavailable',
        status: 503,
        code: ERR_UNAVAILABLE,
        detail: error.message,
      });
    // A driver could not reach its server (connection refused, lost or timed out): 503, not 500.
    if (isUnavailableError(error)) {
      request.log.warn({ err: error }, 'a part did not answer; 503');
      return sendProblem(reply.header('retry-after', String(RETRY_AFTER_S)), {
        title: 'Service unavailable',
        status: 503,
        code: ERR_UNAVAILABLE,
        detail: 'a part Settle needs did not answer; retry later',
      });
    }
    if (error.statusCode === 429) return reply.send(error);
    request.log.error({ err: error }, 'unhandled error');
    return sendProblem(reply, {
      title: 'Internal error',
      status: 500,
      code: ERR_INTERNAL,
      detail: 'something went wrong; it has been logged',
    });
  });
  app.setNotFoundHandler((request, reply) =>
    sendProblem(reply, {
      title: 'Not found',
      status: 404,
      code: ERR_NOT_FOUND,
      detail: `no route for ${request.method} ${request.url.split('?')[0]}`,
    }),
  );
}
