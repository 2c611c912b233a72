import type { FastifyInstance } from 'fastify';
import type { Metrics } from '@settle/platform';

export interface ReadinessCheck {
  name: string;
  check(): Promise<void>;
}

export interface OpsDeps {
  metrics: Metrics;
  readiness: ReadinessCheck[];
}

/** Liveness (the process answers), readiness (every part it needs answers), Prometheus metrics. */
export async function opsRoutes(app: FastifyInstance, deps: OpsDeps): Promise<void> {
  // Liveness is the process alone: an outage of a part turns readiness red, never liveness (a restart would not help).
  app.get('/health/live', { schema: { tags: ['ops'], summary: 'Liveness' } }, async () => ({ status: 'ok' }));

  app.get(
    '/health/ready',
    { schema: { tags: ['ops'], summary: 'Readiness: every part this process needs answers' } },
    async (_request, reply) => {
      const results = await Promise.all(
        deps.readiness.map(async (r) => {
          try {
            await withTimeout(r.check(), 2000);
            return { name: r.name, status: 'up' as const };
          } catch (error) {
            return { name: r.name, status: 'down' as const, error: (error as Error).message };
          }
        }),
      );
      const down = results.filter((r) => r.status === 'down').map((r) => r.name);
      return reply.code(down.length === 0 ? 200 : 503).send({
        status: down.length === 0 ? 'ready' : 'not_ready',
        ...(down.length > 0 ? { down } : {}),
        checks: results,
      });
    },
  );

  app.get(
    '/metrics',
    { schema: { tags: ['ops'], summary: 'Prometheus metrics', hide: false } },
    async (_request, reply) => {
      reply.type(deps.metrics.registry.contentType);
      return deps.metrics.registry.metrics();
    },
  );
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    p.then(
      (v) => (clearTimeout(t), resolve(v)),
      (e: unknown) => (clearTimeout(t), reject(e)),
    );
  });
}
