import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import mercurius from 'mercurius';
import { QueryError } from './errors.js';
import { GQL_BATCH_LIMIT, validateWithLimits, type GraphQLLimits } from './limits.js';

export { mercuriusLimitOptions, resolveGraphQLLimits, type GraphQLLimits } from './limits.js';

/**
 * Applies the limits where mercurius' `validationRules` do not reach: subscriptions over
 * websockets are parsed but never validated by mercurius, so they are validated (standard rules
 * plus the limits) before they start.
 */
export function installGraphQLLimits(app: FastifyInstance, limits: GraphQLLimits): void {
  app.graphql.addHook('preSubscriptionExecution', async (schema, document) => {
    const errors = validateWithLimits(schema, document, limits);
    if (errors.length === 0) return;
    const first = errors[0]!;
    const code = typeof first.extensions.code === 'string' ? first.extensions.code : 'GRAPHQL_VALIDATION_FAILED';
    throw new mercurius.ErrorWithProps(errors.map((e) => e.message).join('; '), { code }, 400);
  });
}

/** A JSON array of operations is one request doing many: refused (batching is off). */
installGraphQLLimits.refuseBatches = async function refuseBatches(
  request: FastifyRequest,
  _reply: FastifyReply,
): Promise<void> {
  if (Array.isArray(request.body))
    throw new QueryError(GQL_BATCH_LIMIT, 'batched queries are not accepted: send one operation per request', {}, 400);
};
