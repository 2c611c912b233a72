import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import {
  currentContext,
  runWithContext,
  newId,
  type ClientAdmin,
  type EventStore,
  type IdempotencyStore,
  type Logger,
  type Metrics,
  type TokenService,
} from '@settle/platform';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { registerHygiene } from './auth/hygiene.js';
import { LoginThrottle, RedisCounterStore, type RedisLike } from './auth/loginThrottle.js';
import authPlugin from './auth/plugin.js';
import rateLimitPlugin from './auth/rateLimit.js';
import { clientRoutes } from './clients/routes.js';
import { callbackRoutes } from './callbacks/routes.js';
import { opsRoutes, type ReadinessCheck } from './ops/routes.js';
import { ERR_UNAVAILABLE } from './errors.js';
import { installProblemHandler, RETRY_AFTER_S, sendProblem } from './problem.js';
import type { CallbackUrlPolicy } from './requests/callbackUrl.js';
import { requestRoutes } from './requests/routes.js';

export interface HttpAppOptions {
  logger: Logger;
  metrics: Metrics;
  bodyLimit: number;
  readiness: ReadinessCheck[];
  /** Serve HTTPS with this PEM certificate and key (SETTLE_TLS_CERT / SETTLE_TLS_KEY). */
  https?: { cert: string | Buffer; key: string | Buffer };
  /** Origins allowed by CORS (SETTLE_CORS_ORIGINS); none by default. */
  corsOrigins?: string[];
  /** Proxies whose X-Forwarded-For is believed (per-IP rate limits); none by default. */
  trustProxy?: boolean | string | string[];
}

const TRACEPARENT = /^[\da-f]{2}-[\da-f]{32}-[\da-f]{16}-[\da-f]{2}$/;

/**
 * The HTTP edge shared by REST and GraphQL: problem+json errors, OpenAPI, health, metrics and
 * a work context (correlation id, trace parent, actor) that logs and appended events inherit.
 * Returns an app that is not listening.
 */
export async function createHttpApp(opts: HttpAppOptions): Promise<FastifyInstance> {
  const app = await createEdge(opts);
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Settle API',
        version: '1',
        description:
          'Outbound payment requests: register, follow, cancel. Errors are application/problem+json (RFC 9457).',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
    },
  });
  // staticCSP: Swagger UI sends a CSP naming its own inline code by hash, instead of helmet's stricter default.
  await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: true });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  await app.register(opsRoutes, { metrics: opts.metrics, readiness: opts.readiness });
  return app;
}

/**
 * The HTTP server of a process without an API (projector, reactor, scheduler, payments roles):
 * `/health/live`, `/health/ready` and `/metrics` only, with the same edge (problem+json, request
 * ids, HTTP metrics) so an orchestrator can probe it and Prometheus can scrape it. Not listening.
 */
export async function createOpsApp(opts: HttpAppOptions): Promise<FastifyInstance> {
  const app = await createEdge(opts);
  await app.register(opsRoutes, { metrics: opts.metrics, readiness: opts.readiness });
  return app;
}

async function createEdge(opts: HttpAppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: opts.logger as FastifyBaseLogger,
    // Long ids reach the route and its schema names them; past this the router answers itself.
    routerOptions: { maxParamLength: 512 },
    // Errors raised before routing (bad URL encoding, say) are problems too.
    frameworkErrors: (error, _request, reply) =>
      void sendProblem(reply, {
        title: 'Bad request',
        status: 400,
        code: 'SETTLE_ERR_HTTP_BAD_URL',
        detail: 'the request URL could not be read',
        field: 'url',
        reason: error.code,
      }),
    bodyLimit: opts.bodyLimit,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && /^[\w.-]{1,128}$/.test(given) ? given : newId();
    },
    requestIdHeader: false,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: true, useDefaults: true } },
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    ...(opts.https ? { https: { cert: opts.https.cert, key: opts.https.key, minVersion: 'TLSv1.2' as const } } : {}),
    ...(opts.trustProxy !== undefined ? { trustProxy: opts.trustProxy } : {}),
  }) as unknown as FastifyInstance;
  installProblemHandler(app);
  await registerHygiene(app, { corsOrigins: opts.corsOrigins ?? [] });

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
  return app;
}

export interface CommandDeps {
  eventStore: EventStore;
  idempotency: IdempotencyStore;
  tokens: TokenService;
  clients: ClientAdmin;
  metrics: Metrics;
  callbackUrls: CallbackUrlPolicy;
  gatewayProviders: Record<string, string>;
  now?: () => Date;
  /** Requests per minute per client and per IP (0 = off); failed token requests per minute per client_id and IP. */
  rateLimits?: { perClient: number; perIp: number; loginFailures?: number; windowMs?: number };
  /** Shares rate-limit and login-throttle counters across replicas (an ioredis instance). */
  redis?: RedisLike;
  /** Prefix of every Redis key (SETTLE_REDIS_PREFIX). */
  redisPrefix?: string;
  loginThrottle?: LoginThrottle;
  /**
   * The parts commands need that are known to be down right now (see PartMonitor): while any is,
   * POST/PUT/PATCH/DELETE are refused at once with 503 and Retry-After instead of waiting on them.
   */
  unavailable?: () => { name: string; description: string }[];
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** The REST command API: auth, payment requests, gateway callbacks. */
export async function commandPlugin(app: FastifyInstance, deps: CommandDeps): Promise<void> {
  const limits = deps.rateLimits ?? { perClient: 600, perIp: 3000 };
  const unavailable = deps.unavailable;
  if (unavailable)
    // First of the hooks (before rate limits and auth, which may need the same parts).
    app.addHook('onRequest', async (request, reply) => {
      if (SAFE_METHODS.has(request.method)) return;
      const down = unavailable();
      if (down.length === 0) return;
      return sendProblem(reply.header('retry-after', String(RETRY_AFTER_S)), {
        title: 'Service unavailable',
        status: 503,
        code: ERR_UNAVAILABLE,
        detail: `${down.map((d) => d.name).join(' and ')} ${down.length > 1 ? 'are' : 'is'} unavailable; nothing was recorded, retry later`,
        parts: down.map((d) => d.name),
      });
    });
  await app.register(rateLimitPlugin, {
    perClient: limits.perClient,
    perIp: limits.perIp,
    ...(limits.windowMs ? { windowMs: limits.windowMs } : {}),
    ...(deps.redis ? { redis: deps.redis } : {}),
    ...(deps.redisPrefix ? { keyPrefix: deps.redisPrefix } : {}),
  });
  await app.register(authPlugin, {
    tokens: deps.tokens,
    clients: deps.clients,
    loginThrottle:
      deps.loginThrottle ??
      new LoginThrottle({
        maxFailures: limits.loginFailures ?? 10,
        ...(limits.windowMs ? { windowMs: limits.windowMs } : {}),
        ...(deps.redis ? { store: new RedisCounterStore(deps.redis, `${deps.redisPrefix ?? 'settle:'}login:`) } : {}),
      }),
  });
  await app.register(clientRoutes, { clients: deps.clients });
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
