import {
  preferencesDecider,
  preferencesStreamId,
  type PreferencesInput,
  type PreferencesState,
  type RequestStatus,
} from '@settle/domain';
import { handleCommand } from '@settle/platform';
import { PREFERENCES, type PreferencesDoc } from '@settle/projections';
import type { QueryContext, QueryDeps } from '../context.js';

interface PreferencesView {
  userId: string;
  defaultCurrency: string | null;
  locale: string | null;
  timezone: string | null;
  notifyOn: string[];
  updatedAt: string | null;
}

type PreferencesArg = { [K in keyof PreferencesInput]?: PreferencesInput[K] | null };

const toView = (p: PreferencesDoc | PreferencesState): PreferencesView => ({
  userId: p.userId,
  defaultCurrency: p.defaultCurrency ?? null,
  locale: p.locale ?? null,
  timezone: p.timezone ?? null,
  notifyOn: p.notifyOn,
  updatedAt: p.updatedAt ?? null,
});

/** GraphQL null means "not set", as an absent field does: the decider only knows absent. */
function withoutNulls(input: PreferencesArg): PreferencesInput {
  const out: PreferencesInput = {};
  if (input.defaultCurrency != null) out.defaultCurrency = input.defaultCurrency;
  if (input.locale != null) out.locale = input.locale;
  if (input.timezone != null) out.timezone = input.timezone;
  if (input.notifyOn != null) out.notifyOn = input.notifyOn as RequestStatus[];
  return out;
}

/** A user's preferences are keyed by the API client id of the token. */
export function preferencesQueries(deps: QueryDeps) {
  return {
    async preferences(_: unknown, _args: unknown, ctx: QueryContext): Promise<PreferencesView | null> {
      const doc = await deps.readStore.collection<PreferencesDoc>(PREFERENCES).get(ctx.principal.clientId);
      return doc ? toView(doc) : null;
    },
  };
}

export function preferencesMutations(deps: QueryDeps) {
  const now = deps.now ?? (() => new Date());
  return {
    /** Answers the decided state without waiting for the projection. */
    async registerPreferences(
      _: unknown,
      args: { input: PreferencesArg },
      ctx: QueryContext,
    ): Promise<PreferencesView> {
      const userId = ctx.principal.clientId;
      const { state } = await handleCommand(
        deps.eventStore,
        preferencesStreamId(userId),
        preferencesDecider,
        { type: 'RegisterPreferences', data: { ...withoutNulls(args.input), userId, now: now().toISOString() } },
        { metadata: { actor: userId } },
      );
      return toView({ ...state, userId });
    },
  };
}
