import { REQUEST_UPDATED_TOPIC } from '@settle/platform';
import type { RequestDoc } from '@settle/projections';
import type { GraphQLResolveInfo } from 'graphql';
import mercurius from 'mercurius';
import { canSee, merchantScope } from '../auth.js';
import type { QueryContext } from '../context.js';
import { unauthenticated } from '../errors.js';
import { toRequestView } from './requestView.js';

interface RequestUpdatedArgs {
  id?: string | null;
  merchantId?: string | null;
}

/**
 * `requestUpdated`: the projector publishes every request document it changes; each subscriber
 * gets only those it may see (a merchant: its own) and that match its arguments.
 */
export function subscriptionResolvers() {
  const filtered = mercurius.withFilter<RequestDoc, unknown, QueryContext, RequestUpdatedArgs>(
    (_root, _args, ctx) => ctx.pubsub.subscribe(REQUEST_UPDATED_TOPIC),
    (doc, args, ctx) =>
      canSee(ctx.principal, doc) &&
      (args.id == null || doc.id === args.id) &&
      (args.merchantId == null || doc.merchantId === args.merchantId),
  );
  return {
    requestUpdated: {
      // Checked before subscribing, so the client gets its error at once rather than on the first event.
      subscribe: (root: unknown, args: RequestUpdatedArgs, ctx: QueryContext, info: GraphQLResolveInfo) => {
        if (!ctx.principal) throw unauthenticated('a bearer token is required');
        merchantScope(ctx.principal, args.merchantId);
        return filtered(root, args, ctx, info);
      },
      resolve: (doc: RequestDoc) => toRequestView(doc),
    },
  };
}
