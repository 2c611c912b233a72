import cors from '@fastify/cors';
import helmet from '@fastify/helmet';
import type { FastifyInstance } from 'fastify';

export interface HygieneOptions {
  /** Origins a browser may call the API from; empty: no CORS headers, so browsers refuse cross-origin calls. */
  corsOrigins?: string[];
}

/**
 * Security headers on every response (helmet's defaults: a strict CSP, HSTS, nosniff,
 * frame-ancestors none, no referrer across origins, …) and opt-in CORS. The Swagger UI at /docs
 * sends its own, hash-based CSP (`staticCSP` in app.ts); GraphiQL loads its bundle from a CDN, so
 * CSP is off on /graphiql only, in development only (it is not served in production).
 */
export async function registerHygiene(app: FastifyInstance, opts: HygieneOptions): Promise<void> {
  app.addHook('onRoute', (route) => {
    if (route.url.startsWith('/graphiql'))
      route.config = { ...(route.config ?? {}), helmet: { contentSecurityPolicy: false } } as typeof route.config;
  });
  await app.register(helmet, { global: true });
  const origins = opts.corsOrigins?.filter(Boolean) ?? [];
  if (origins.length > 0)
    await app.register(cors, {
      origin: origins,
      methods: ['GET', 'POST', 'OPTIONS'],
      allowedHeaders: [
        'authorization',
        'content-type',
        'idempotency-key',
        'if-match',
        'if-none-match',
        'x-request-id',
        'traceparent',
        'x-settle-min-position',
      ],
      exposedHeaders: ['etag', 'location', 'retry-after', 'x-request-id', 'idempotent-replayed'],
      maxAge: 600,
    });
}

export const parseCorsOrigins = (raw: string): string[] =>
  raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
