import { createHash, randomBytes } from 'node:crypto';
import { paymentRequestDecider, requestStreamId, type PaymentRequestState, type RegisterRequest } from '@settle/domain';
import {
  deterministicId,
  handleCommand,
  hasRole,
  isUnavailableError,
  loadAggregate,
  newId,
  type EventStore,
  type IdempotencyStore,
  type Metrics,
  type Principal,
} from '@settle/platform';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { requireRole } from '../auth/plugin.js';
import {
  ERR_IDEMPOTENCY_IN_PROGRESS,
  ERR_IDEMPOTENCY_MISMATCH,
  ERR_NOT_FOUND,
  ERR_PRECONDITION_FAILED,
  HttpProblem,
} from '../errors.js';
import {
  REQUEST_BODY_LIMIT,
  acceptedResponse,
  cancelBody,
  cancelHeaders,
  idempotencyHeaders,
  idParams,
  readHeaders,
  registerBody,
  requestView,
} from './schemas.js';
import type { CallbackUrlPolicy } from './callbackUrl.js';

export interface RequestRoutesDeps {
  eventStore: EventStore;
  idempotency: IdempotencyStore;
  metrics?: Metrics;
  callbackUrls: CallbackUrlPolicy;
  now?: () => Date;
}

type RegisterBody = {
  amount: number;
  currency: string;
  reference: string;
  description?: string;
  callbackUrl?: string;
  metadata?: Record<string, string>;
};

const fingerprint = (body: unknown): string => createHash('sha256').update(canonicalJson(body)).digest('base64url');

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object')
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  return JSON.stringify(value ?? null);
}

const notFound = (id: string) =>
  new HttpProblem(404, ERR_NOT_FOUND, 'Not found', `payment request ${id} was not found`, 'id');

function view(state: PaymentRequestState, revision: number, position: number) {
  return {
    id: state.requestId,
    authId: state.authId,
    merchantId: state.merchantId,
    amount: state.amount,
    currency: state.currency,
    reference: state.reference,
    ...(state.callbackUrl ? { callbackUrl: state.callbackUrl } : {}),
    status: state.status,
    attempts: state.attempts,
    ...(state.nextAttemptAt ? { nextAttemptAt: state.nextAttemptAt } : {}),
    ...(state.lastError ? { lastError: state.lastError } : {}),
    ...(state.providerPaymentId ? { providerPaymentId: state.providerPaymentId } : {}),
    version: revision,
    position: String(position),
  };
}

/** Parses `If-Match: "3"` (or `3`, or `W/"3"`) into a stream revision. */
function parseIfMatch(header: string | undefined): number | undefined {
  if (header === undefined || header.trim() === '*') return undefined;
  const m = /^\s*(?:W\/)?"?(-?\d+)"?\s*$/.exec(header);
  if (!m)
    throw new HttpProblem(
      400,
      ERR_PRECONDITION_FAILED,
      'Invalid If-Match',
      'If-Match must be an ETag returned by GET',
      'If-Match',
    );
  return Number(m[1]);
}

export async function requestRoutes(app: FastifyInstance, deps: RequestRoutesDeps): Promise<void> {
  const now = deps.now ?? (() => new Date());
  const auth = { onRequest: [app.authenticate] };

  app.post(
    '/v1/requests',
    {
      ...auth,
      bodyLimit: REQUEST_BODY_LIMIT,
      schema: {
        tags: ['requests'],
        summary: 'Register a payment request',
        security: [{ bearer: [] }],
        body: registerBody,
        headers: idempotencyHeaders,
        response: { 202: acceptedResponse },
      },
    },
    async (request: FastifyRequest, reply: FastifyReply) => {
      const principal = requireRole(request, 'merchant');
      const body = request.body as RegisterBody;
      const key = request.headers['idempotency-key'] as string | undefined;
      if (key === undefined) return register(principal.merchantId ?? principal.clientId, body, newId(), reply);

      const scope = `${principal.clientId}:POST /v1/requests`;
      const begun = await deps.idempotency.begin(scope, key, fingerprint(body));
      if (begun.state === 'mismatch')
        throw new HttpProblem(
          422,
          ERR_IDEMPOTENCY_MISMATCH,
          'Idempotency key reused',
          'this Idempotency-Key was used with a different body',
          'Idempotency-Key',
        );
      if (begun.state === 'in_progress')
        throw new HttpProblem(
          409,
          ERR_IDEMPOTENCY_IN_PROGRESS,
          'Request in progress',
          'a request with this Idempotency-Key is still being processed',
          'Idempotency-Key',
        );
      if (begun.state === 'completed') {
        const r = begun.response;
        for (const [h, v] of Object.entries(r.headers ?? {})) reply.header(h, v);
        reply.header('idempotent-replayed', 'true');
        return reply.code(r.statusCode).send(r.body);
      }
      // The id derives from the key: a retry after a crash re-appends the same event, which the store ignores.
      const requestId = deterministicId(`${scope}/${key}`);
      try {
        return await register(principal.merchantId ?? principal.clientId, body, requestId, reply, scope, key);
      } catch (error) {
        const status = (error as { statusCode?: number }).statusCode;
        if (status !== undefined && status < 500) await deps.idempotency.abandon(scope, key);
        else if (isUnavailableError(error))
          // 503 (a part did not answer, a statement timed out): the client is told to retry, so the
          // key must let it. Whether or not the event was stored, the retry derives the same request
          // and event ids, and the store answers it as a duplicate. If even this fails (the part is
          // still down), the key is taken again once stale.
          await deps.idempotency.abandon(scope, key).catch(() => undefined);
        else
          await deps.idempotency.complete(scope, key, {
            statusCode: 500,
            body: {
              type: 'https://settle.dev/problems/internal',
              title: 'Internal error',
              status: 500,
              code: 'SETTLE_ERR_INTERNAL',
              detail: 'the first attempt failed',
            },
          });
        throw error;
      }
    },
  );

  async function register(
    merchantId: string,
    body: RegisterBody,
    requestId: string,
    reply: FastifyReply,
    scope?: string,
    key?: string,
  ) {
    if (body.callbackUrl !== undefined) await deps.callbackUrls.check(body.callbackUrl, 'callbackUrl');
    const command: RegisterRequest = {
      type: 'RegisterRequest',
      data: {
        requestId,
        authId: `auth_${randomBytes(18).toString('base64url')}`,
        merchantId,
        amount: body.amount,
        currency: body.currency,
        reference: body.reference,
        ...(body.description !== undefined ? { description: body.description } : {}),
        ...(body.callbackUrl !== undefined ? { callbackUrl: body.callbackUrl } : {}),
        ...(body.metadata !== undefined ? { metadata: body.metadata } : {}),
        now: now().toISOString(),
      },
    };
    const streamId = requestStreamId(requestId);
    let result;
    try {
      result = await handleCommand(store(), streamId, paymentRequestDecider, command, {
        retries: 0,
        // A fresh id (or the key's, first time): nothing to read. A retried key's stream exists,
        // and its register event is then a duplicate or the command is decided on what is stored.
        assume: 'new',
        ...(key ? { causationEventId: deterministicId(`${scope}/${key}/registered`) } : {}),
      });
    } catch (error) {
      deps.metrics?.commands.inc({ command: 'RegisterRequest', outcome: 'rejected' });
      throw error;
    }
    deps.metrics?.commands.inc({ command: 'RegisterRequest', outcome: 'accepted' });
    const response = {
      id: requestId,
      authId: result.state.authId,
      status: 'REGISTERED',
      position: String(result.position),
    };
    const location = `/v1/requests/${requestId}`;
    if (scope && key)
      await deps.idempotency.complete(scope, key, { statusCode: 202, body: response, headers: { location } });
    return reply.code(202).header('location', location).send(response);
  }
  const store = () => deps.eventStore;

  app.get(
    '/v1/requests/:id',
    {
      ...auth,
      schema: {
        tags: ['requests'],
        summary: 'A payment request, from its events',
        security: [{ bearer: [] }],
        params: idParams,
        headers: readHeaders,
        response: { 200: requestView, 304: { type: 'null' } },
      },
    },
    async (request, reply) => {
      const principal = requireRole(request, 'merchant', 'operator', 'admin');
      const { id } = request.params as { id: string };
      const { state, revision, position } = await loadAggregate(
        deps.eventStore,
        requestStreamId(id),
        paymentRequestDecider,
      );
      if (!state.exists || !canSee(principal, state)) throw notFound(id);
      const etag = `"${revision}"`;
      reply.header('etag', etag).header('cache-control', 'private, no-cache');
      if (request.headers['if-none-match'] === etag) return reply.code(304).send();
      return view(state, revision, position);
    },
  );

  app.post(
    '/v1/requests/:id/cancel',
    {
      ...auth,
      bodyLimit: REQUEST_BODY_LIMIT,
      schema: {
        tags: ['requests'],
        summary: 'Cancel a payment request before it is authorised',
        security: [{ bearer: [] }],
        params: idParams,
        body: cancelBody,
        headers: cancelHeaders,
        response: { 202: acceptedResponse },
      },
    },
    async (request, reply) => {
      const principal = requireRole(request, 'merchant', 'operator', 'admin');
      const { id } = request.params as { id: string };
      const reason = (request.body as { reason?: string } | null)?.reason ?? 'cancelled by client';
      const expectedRevision = parseIfMatch(request.headers['if-match'] as string | undefined);
      const streamId = requestStreamId(id);
      const result = await handleCommand(
        deps.eventStore,
        streamId,
        paymentRequestDecider,
        (state: PaymentRequestState) => {
          if (!state.exists || !canSee(principal, state)) throw notFound(id);
          return { type: 'CancelRequest' as const, data: { reason, by: principal.clientId } };
        },
        { ...(expectedRevision !== undefined ? { expectedRevision } : {}), metadata: { actor: principal.clientId } },
      );
      deps.metrics?.commands.inc({ command: 'CancelRequest', outcome: 'accepted' });
      reply.header('etag', `"${result.revision}"`);
      return reply
        .code(202)
        .send({ id, authId: result.state.authId, status: result.state.status, position: String(result.position) });
    },
  );
}

/** Operators and admins see every request; a merchant only its own (docs/security.md). */
function canSee(principal: Principal, state: PaymentRequestState): boolean {
  if (hasRole(principal, 'operator', 'admin')) return true;
  return hasRole(principal, 'merchant') && state.merchantId === (principal.merchantId ?? principal.clientId);
}
