import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import {
  currentContext,
  runWithContext,
  newId,
  type ClientRegistry,
  type EventStore,
  type IdempotencyStore,
  type Logger,
  type Metrics,
  type TokenService,
} from '@settle/platform';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import authPlugin from './auth/plugin.js';
import { callbackRoutes } from './callbacks/routes.js';
import { opsRoutes, type ReadinessCheck } from './ops/routes.js';
import { installProblemHandler } from './problem.js';
import type { CallbackUrlPolicy } from './requests/callbackUrl.js';
import { requestRoutes } from './requests/routes.js';

export interface HttpAppOptions {
  logger: Logger;
  metrics: Metrics;
  bodyLimit: number;
  readiness: ReadinessCheck[];
}

const TRACEPARENT = /^[\da-f]{2}-[\da-f]{32}-[\da-f]{16}-[\da-f]{2}$/;

/**
 * The HTTP edge shared by REST and GraphQL: problem+json errors, OpenAPI, health, metrics and
 * a work context (correlation id, trace parent, actor) that logs and appended events inherit.
 * Returns an app that is not listening.
 */
export async function createHttpApp(opts: HttpAppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: opts.logger as FastifyBaseLogger,
    bodyLimit: opts.bodyLimit,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && /^[\w.-]{1,128}$/.test(given) ? given : newId();
    },
    requestIdHeader: false,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: true, useDefaults: true } },
    return503OnClosing: true,
    forceCloseConnections: 'idle',
  });
  installProblemHandler(app);

  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id);
    const traceparent = request.headers.traceparent;
    runWithContext(
      {
        correlationId: request.id,
        ...(typeof traceparent === 'string' && TRACEPARENT.test(traceparent) ? { traceparent } : {}),
      },
      done,
    );
  });
  app.addHook('preHandler', (request, _reply, done) => {
    const ctx = currentContext();
    if (ctx && request.principal) ctx.actor = request.principal.clientId;
    done();
  });
  app.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.url ?? 'unmatched';
    opts.metrics.httpRequests.inc({ method: request.method, route, status_code: String(reply.statusCode) });
    opts.metrics.httpDuration.observe({ method: request.method, route }, reply.elapsedTime / 1000);
    done();
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Settle API', version: '1', description: 'Outbound payment requests: register, follow, cancel. Errors are application/problem+json (RFC 9457).' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  await app.register(opsRoutes, { metrics: opts.metrics, readiness: opts.readiness });
  return app as unknown as FastifyInstance;
}

export interface CommandDeps {
  eventStore: EventStore;
  idempotency: IdempotencyStore;
  tokens: TokenService;
  clients: ClientRegistry;
  metrics: Metrics;
  callbackUrls: CallbackUrlPolicy;
  gatewayProviders: Record<string, string>;
  now?: () => Date;
}

/** The REST command API: auth, payment requests, gateway callbacks. */
export async function commandPlugin(app: FastifyInstance, deps: CommandDeps): Promise<void> {
  await app.register(authPlugin, { tokens: deps.tokens, clients: deps.clients });
  await app.register(requestRoutes, {
    eventStore: deps.eventStore,
    idempotency: deps.idempotency,
    metrics: deps.metrics,
    callbackUrls: deps.callbackUrls,
    ...(deps.now ? { now: deps.now } : {}),
  });
  await app.register(callbackRoutes, {
    eventStore: deps.eventStore,
    providers: deps.gatewayProviders,
    metrics: deps.metrics,
    ...(deps.now ? { now: deps.now } : {}),
  });
}
