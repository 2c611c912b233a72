import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { tooManyRequests } from './plugin.js';
import type { RedisLike } from './loginThrottle.js';

export interface RateLimitOptions {
  /** Requests per window per API client (the token's `sub`); 0 turns it off. */
  perClient: number;
  /** Requests per window per client IP (IPv6 grouped by /64); 0 turns it off. */
  perIp: number;
  windowMs?: number;
  /** Shared counters across replicas (an ioredis instance); in process otherwise. */
  redis?: RedisLike;
  /** Prefix of the Redis keys (deployments sharing a Redis keep apart). */
  keyPrefix?: string;
  /** Paths never limited (probes and scrapes). */
  exempt?: (url: string) => boolean;
}

type Limiter = ReturnType<FastifyInstance['createRateLimit']>;

const defaultExempt = (url: string) => url.startsWith('/health/') || url === '/metrics';

/**
 * Per-IP limits before anything else runs (so unauthenticated floods are cut first) and per-client
 * limits once the bearer token is verified (so one merchant cannot starve the others). Over the
 * limit: 429 problem+json with `Retry-After`. Register it before the routes it guards.
 */
async function rateLimitPlugin(app: FastifyInstance, opts: RateLimitOptions): Promise<void> {
  await app.register(rateLimit, {
    global: false,
    timeWindow: opts.windowMs ?? 60_000,
    nameSpace: `${opts.keyPrefix ?? 'settle:'}rl-`,
    ...(opts.redis ? { redis: opts.redis } : {}),
  });
  const exempt = opts.exempt ?? defaultExempt;
  const perIp = opts.perIp > 0 ? app.createRateLimit({ max: opts.perIp }) : undefined;
  const perClient =
    opts.perClient > 0
      ? app.createRateLimit({ max: opts.perClient, keyGenerator: (req) => `client:${req.principal?.clientId ?? ''}` })
      : undefined;

  async function enforce(limiter: Limiter, request: FastifyRequest, reply: FastifyReply, what: string) {
    const r = await limiter(request);
    if (r.isAllowed) return;
    reply
      .header('x-ratelimit-limit', r.max)
      .header('x-ratelimit-remaining', r.remaining)
      .header('x-ratelimit-reset', r.ttlInSeconds);
    if (!r.isExceeded) return;
    const retryAfter = Math.max(1, r.ttlInSeconds);
    reply.header('retry-after', String(retryAfter));
    request.log.warn({ key: r.key }, `rate limit exceeded (${what})`);
    throw tooManyRequests(
      `more than ${r.max} requests per ${Math.round(r.timeWindow / 1000)} s ${what}; retry in ${retryAfter} s`,
    );
  }

  if (perIp)
    app.addHook('onRequest', async (request, reply) => {
      if (!exempt(request.url)) await enforce(perIp, request, reply, 'from this address');
    });
  if (perClient)
    // preHandler: route-level `authenticate` (onRequest) has run, so the client is known and verified.
    app.addHook('preHandler', async (request, reply) => {
      if (request.principal) await enforce(perClient, request, reply, 'for this client');
    });
}

export default fp(rateLimitPlugin, { name: 'settle-rate-limit' });
