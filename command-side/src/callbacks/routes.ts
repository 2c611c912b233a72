import { paymentRequestDecider, requestStreamId, type PaymentRequestState } from '@settle/domain';
import { deterministicId, handleCommand, type EventStore, type Metrics } from '@settle/platform';
import type { FastifyInstance } from 'fastify';
import { Webhook, WebhookVerificationError } from 'standardwebhooks';
import { ERR_CALLBACK_PROVIDER, ERR_CALLBACK_SIGNATURE, ERR_NOT_FOUND, HttpProblem } from '../errors.js';

export interface CallbackRoutesDeps {
  eventStore: EventStore;
  /** Standard Webhooks secret per gateway provider. */
  providers: Record<string, string>;
  metrics?: Metrics;
  now?: () => Date;
}

interface GatewayEvent {
  type: string;
  id?: string;
  data: { paymentId?: string; requestId?: string };
}

/**
 * Gateway webhooks. The signature is checked on the raw bytes before anything is parsed or
 * stored (Standard Webhooks: ±5 min tolerance, constant-time compare); a repeated webhook-id
 * is acknowledged and changes nothing.
 */
export async function callbackRoutes(app: FastifyInstance, deps: CallbackRoutesDeps): Promise<void> {
  const verifiers = new Map(Object.entries(deps.providers).map(([p, secret]) => [p, new Webhook(secret)]));
  const now = deps.now ?? (() => new Date());

  // Keep the raw body: the signature covers the exact bytes sent.
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => done(null, body));

  app.post(
    '/v1/callbacks/:provider',
    {
      // Gateway events are small; nothing bigger is read, let alone verified.
      bodyLimit: 64 * 1024,
      schema: {
        tags: ['callbacks'],
        summary: 'Gateway webhooks (Standard Webhooks signed)',
        params: {
          type: 'object',
          required: ['provider'],
          properties: { provider: { type: 'string', minLength: 1, maxLength: 40, pattern: '^[a-z0-9-]+$' } },
        },
        // Not `required`: a callback without its signature headers is unauthenticated, so the
        // verifier below answers 401 for it rather than schema validation answering 400.
        headers: {
          type: 'object',
          properties: {
            'webhook-id': { type: 'string', minLength: 1, maxLength: 200 },
            'webhook-timestamp': { type: 'string', pattern: '^[0-9]{1,12}$' },
            'webhook-signature': { type: 'string', minLength: 1, maxLength: 2048 },
          },
        },
      },
    },
    async (request, reply) => {
      const { provider } = request.params as { provider: string };
      const verifier = verifiers.get(provider);
      if (!verifier)
        throw new HttpProblem(
          404,
          ERR_CALLBACK_PROVIDER,
          'Unknown provider',
          `no gateway provider named ${provider}`,
          'provider',
        );
      const raw = typeof request.body === 'string' ? request.body : '';
      let event: GatewayEvent;
      try {
        event = verifier.verify(raw, request.headers as Record<string, string>) as GatewayEvent;
      } catch (error) {
        deps.metrics?.commands.inc({ command: 'ReceiveCallback', outcome: 'unverified' });
        const detail = error instanceof WebhookVerificationError ? error.message : 'the callback could not be verified';
        throw new HttpProblem(401, ERR_CALLBACK_SIGNATURE, 'Invalid signature', detail, 'webhook-signature');
      }
      const requestId = event?.data?.requestId;
      if (typeof event?.type !== 'string' || typeof requestId !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(requestId))
        throw new HttpProblem(
          400,
          'SETTLE_ERR_HTTP_VALIDATION',
          'Invalid callback',
          'data.requestId and type are required',
          'data.requestId',
        );
      const webhookId = request.headers['webhook-id'] as string;
      const result = await handleCommand(
        deps.eventStore,
        requestStreamId(requestId),
        paymentRequestDecider,
        (state: PaymentRequestState) => {
          if (!state.exists)
            throw new HttpProblem(
              404,
              ERR_NOT_FOUND,
              'Not found',
              `payment request ${requestId} was not found`,
              'data.requestId',
            );
          return {
            type: 'ReceiveCallback' as const,
            data: {
              provider,
              providerEventId: webhookId,
              eventType: event.type,
              ...(event.data.paymentId ? { providerPaymentId: event.data.paymentId } : {}),
              now: now().toISOString(),
            },
          };
        },
        {
          causationEventId: deterministicId(`callback/${provider}/${webhookId}`),
          metadata: { actor: `gateway:${provider}` },
        },
      );
      deps.metrics?.commands.inc({
        command: 'ReceiveCallback',
        outcome: result.appended.length > 0 ? 'accepted' : 'duplicate',
      });
      return reply.code(200).send({ received: true, duplicate: result.appended.length === 0 });
    },
  );
}
