import type { Principal } from '@settle/platform';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyPluginAsync,
  type FastifyRequest,
} from 'fastify';
import mercurius, { type IResolvers } from 'mercurius';
import { authenticate } from './auth.js';
import { parsePosition, waitForPosition } from './consistency.js';
import type { QueryContext, QueryDeps } from './context.js';
import { createErrorFormatter } from './errorFormatter.js';
import { GQL_BAD_USER_INPUT, QueryError } from './errors.js';
import {
  installGraphQLLimits,
  mercuriusLimitOptions,
  resolveGraphQLLimits,
  type GraphQLLimits,
} from './limitsPlugin.js';
import { createResolvers } from './resolvers/index.js';
import { schema } from './schema.js';

export const MIN_POSITION_HEADER = 'x-settle-min-position';

interface RequestState {
  principal: Principal;
  stale: boolean;
}

function minPositionHeader(request: FastifyRequest): number | undefined {
  const raw = request.headers[MIN_POSITION_HEADER];
  if (raw === undefined) return undefined;
  try {
    return parsePosition(Array.isArray(raw) ? (raw[0] ?? '') : raw, MIN_POSITION_HEADER);
  } catch (error) {
    throw new QueryError(GQL_BAD_USER_INPUT, (error as Error).message, { field: MIN_POSITION_HEADER }, 400);
  }
}

/**
 * GraphQL at `/graphql` (queries, mutations, and `graphql-transport-ws` subscriptions on the same
 * path), GraphiQL at `/graphiql` when enabled. Encapsulated: its hooks and error handling apply to
 * its own routes only, so it can share a server with the REST API.
 *
 * HTTP requests authenticate with `Authorization: Bearer <jwt>` before anything is parsed (401
 * with `extensions.code: UNAUTHENTICATED` otherwise); websocket clients authenticate with the
 * `connection_init` payload `{ authorization: "Bearer …" }`, and a refused one is closed.
 */
export const queryPlugin: FastifyPluginAsync<QueryDeps & { limits?: Partial<GraphQLLimits> }> = async (app, deps) => {
  const state = new WeakMap<FastifyRequest, RequestState>();
  // Depth, cost, alias and batch limits; introspection follows GraphiQL unless configured (SETTLE_GRAPHQL_INTROSPECTION).
  const limits = resolveGraphQLLimits({
    introspection: deps.limits?.introspection ?? deps.graphiql,
    overrides: deps.limits ?? {},
  });

  await app.register(mercurius, {
    schema,
    // Resolvers read `principal` from the context that `context` and `onConnect` below provide.
    resolvers: createResolvers(deps) as unknown as IResolvers,
    path: '/graphql',
    graphiql: deps.graphiql,
    errorFormatter: createErrorFormatter(deps.logger),
    ...mercuriusLimitOptions(limits),
    // Never throws: mercurius calls it again from its error handler.
    context: (request) => ({ principal: state.get(request)?.principal, stale: state.get(request)?.stale ?? false }),
    additionalRouteOptions: {
      preValidation: installGraphQLLimits.refuseBatches,
      async preHandler(request, reply) {
        // The websocket upgrade shares the GET route; its credentials arrive in connection_init.
        if ((request as { ws?: boolean }).ws) return;
        let principal: Principal;
        try {
          principal = await authenticate(deps.tokens, request.headers.authorization, deps.clients);
        } catch (error) {
          reply.header('www-authenticate', 'Bearer');
          throw error;
        }
        const minPosition = minPositionHeader(request);
        const stale = minPosition !== undefined && !(await waitForPosition(deps, minPosition));
        state.set(request, { principal, stale });
      },
    },
    subscription: {
      emitter: deps.pubsub,
      async onConnect({ payload }) {
        const authorization = payload?.authorization ?? payload?.Authorization;
        try {
          return { principal: await authenticate(deps.tokens, authorization, deps.clients) };
        } catch (error) {
          deps.logger.info({ reason: (error as Error).message }, 'GraphQL websocket connection refused');
          return false;
        }
      },
    },
  });

  installGraphQLLimits(app, limits);

  app.graphql.addHook<Record<string, unknown>, QueryContext>('onResolution', async (execution, ctx) => {
    if (ctx.stale) execution.extensions = { ...execution.extensions, stale: true };
    if (ctx.rebuilds) execution.extensions = { ...execution.extensions, rebuilds: ctx.rebuilds };
  });
};

/** A bare fastify app serving only the query side (tests, or a `query`-only process). Not listening. */
export async function buildQueryApp(deps: QueryDeps): Promise<FastifyInstance> {
  const app = Fastify({ loggerInstance: deps.logger as FastifyBaseLogger });
  await app.register(queryPlugin, deps);
  return app;
}
