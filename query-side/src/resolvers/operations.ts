import { requireOperator } from '../auth.js';
import type { QueryContext, QueryDeps } from '../context.js';
import { notImplemented } from '../errors.js';

/**
 * Version of the read models' shape. Projections carry no version of their own yet; it becomes
 * per projection with blue-green rebuilds.
 */
const READ_MODEL_VERSION = 1;

export function operationsQueries(deps: QueryDeps) {
  const now = deps.now ?? (() => new Date());
  return {
    async projections(_: unknown, _args: unknown, ctx: QueryContext) {
      requireOperator(ctx.principal);
      const statuses = await deps.projector.status();
      return Promise.all(
        statuses.map(async (s) => ({
          name: s.name,
          version: READ_MODEL_VERSION,
          state: s.state,
          position: String(s.position),
          headPosition: String(s.headPosition),
          lagEvents: s.lagEvents,
          lagSeconds: s.lagEvents > 0 ? await ageOfNextEvent(deps, s.position, now()) : 0,
          // The projector parks nothing yet: a failing batch stops it and it retries.
          parkedStreams: [] as string[],
        })),
      );
    },
  };
}

/** Lag in time: how long the oldest event the projection has not applied has been waiting. */
async function ageOfNextEvent(deps: QueryDeps, position: number, now: Date): Promise<number> {
  const [next] = await deps.eventStore.readAll({ after: position, limit: 1 });
  return next ? Math.max(0, (now.getTime() - Date.parse(next.occurredAt)) / 1000) : 0;
}

/** Operator mutations: the role is checked before anything else, so a merchant learns nothing more. */
export function operationsMutations() {
  const operatorOnly =
    (what: string) =>
    async (_: unknown, _args: unknown, ctx: QueryContext): Promise<never> => {
      requireOperator(ctx.principal);
      throw notImplemented(what);
    };
  return {
    rebuildProjection: operatorOnly('rebuildProjection'),
    rollbackProjection: operatorOnly('rollbackProjection'),
    retryParked: operatorOnly('retryParked'),
    skipParked: operatorOnly('skipParked'),
  };
}
