import type { IResolvers } from 'mercurius';
import type { QueryContext, QueryDeps } from '../context.js';
import { DateTime } from '../scalars.js';
import { deadLetterMutations, deadLetterQueries } from './deadLetters.js';
import { merchantStatsQueries } from './merchantStats.js';
import { operationsMutations, operationsQueries } from './operations.js';
import { preferencesMutations, preferencesQueries } from './preferences.js';
import { requestQueries } from './requests.js';
import { subscriptionResolvers } from './subscriptions.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- each root type has its own source type
export function createResolvers(deps: QueryDeps): IResolvers<any, QueryContext> {
  return {
    DateTime,
    Query: {
      ...requestQueries(deps),
      ...merchantStatsQueries(deps),
      ...preferencesQueries(deps),
      ...operationsQueries(deps),
      ...deadLetterQueries(deps),
    },
    Mutation: {
      ...preferencesMutations(deps),
      ...operationsMutations(deps),
      ...deadLetterMutations(deps),
    },
    Subscription: subscriptionResolvers(),
  };
}
