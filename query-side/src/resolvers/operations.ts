import { recordOperatorAction } from '@settle/platform';
import {
  ParkedActionPendingError,
  ProjectorParking,
  type ParkedAction,
  type ParkedStreamsPort,
  type ParkedStreamView,
} from '@settle/projections';
import { requireOperator } from '../auth.js';
import type { QueryContext, QueryDeps } from '../context.js';
import { badUserInput, GQL_NOT_FOUND, notImplemented, QueryError } from '../errors.js';

/** An operator asked for something the projector or consumer has not carried out in time. */
export const ERR_PARKED_ACTION_PENDING = 'SETTLE_ERR_PARKED_ACTION_PENDING';

/** The projector's parked records (read store) plus whatever else the composition root gives (reactor groups). */
export function parkingPorts(deps: QueryDeps): ParkedStreamsPort[] {
  return deps.parking ?? [new ProjectorParking(deps.readStore)];
}

async function listParked(ports: ParkedStreamsPort[]): Promise<ParkedStreamView[]> {
  return (await Promise.all(ports.map((p) => p.list()))).flat();
}

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
      const parked = await listParked(parkingPorts(deps));
      return Promise.all(
        statuses.map(async (s) => ({
          name: s.name,
          version: READ_MODEL_VERSION,
          state: s.state,
          position: String(s.position),
          headPosition: String(s.headPosition),
          lagEvents: s.lagEvents,
          lagSeconds: s.lagEvents > 0 ? await ageOfNextEvent(deps, s.position, now()) : 0,
          // From the persisted records: right even when the projector runs in another process.
          parkedStreams: parked.filter((p) => p.owner === s.name).map((p) => p.streamId),
        })),
      );
    },
    /** Every parked stream, of projections and reactor groups, with the failing event and its error. */
    async parkedStreams(_: unknown, _args: unknown, ctx: QueryContext) {
      requireOperator(ctx.principal);
      const parked = await listParked(parkingPorts(deps));
      return parked.map((p) => ({ ...p, position: String(p.position) }));
    },
  };
}

/** Lag in time: how long the oldest event the projection has not applied has been waiting. */
async function ageOfNextEvent(deps: QueryDeps, position: number, now: Date): Promise<number> {
  const [next] = await deps.eventStore.readAll({ after: position, limit: 1 });
  return next ? Math.max(0, (now.getTime() - Date.parse(next.occurredAt)) / 1000) : 0;
}

/** Operator mutations: the role is checked before anything else, so a merchant learns nothing more. */
export function operationsMutations(deps: QueryDeps) {
  const operatorOnly =
    (what: string) =>
    async (_: unknown, _args: unknown, ctx: QueryContext): Promise<never> => {
      requireOperator(ctx.principal);
      throw notImplemented(what);
    };
  const parkedAction =
    (action: ParkedAction) =>
    async (_: unknown, args: { streamId?: unknown }, ctx: QueryContext): Promise<boolean> => {
      requireOperator(ctx.principal);
      const streamId = typeof args.streamId === 'string' ? args.streamId.trim() : '';
      if (streamId.length === 0 || streamId.length > 200)
        throw badUserInput('streamId', 'streamId must be a stream id of 1 to 200 characters, e.g. request-<id>');
      const ports = parkingPorts(deps);
      const parked = (await listParked(ports)).filter((p) => p.streamId === streamId);
      if (parked.length === 0)
        throw new QueryError(GQL_NOT_FOUND, `stream ${streamId} is not parked`, { field: 'streamId' });
      // Recorded first: the audit trail is also how a projector rebuilding from the log knows what was skipped.
      await recordOperatorAction(deps.eventStore, {
        action: action === 'retry' ? 'ParkedStreamRetried' : 'ParkedStreamSkipped',
        target: streamId,
        actor: ctx.principal.clientId,
        detail: {
          parked: parked.map((p) => ({
            owner: p.owner,
            eventId: p.eventId,
            eventType: p.eventType,
            position: p.position,
            error: p.error,
            attempts: p.attempts,
          })),
        },
      });
      try {
        const outcomes = await Promise.all(
          ports.map((p) => p.act(streamId, action, ctx.principal.clientId, deps.parkedActionWaitMs ?? 10_000)),
        );
        return outcomes.every((o) => o !== false);
      } catch (error) {
        if (error instanceof ParkedActionPendingError) throw new QueryError(ERR_PARKED_ACTION_PENDING, error.message);
        throw error;
      }
    };
  return {
    rebuildProjection: operatorOnly('rebuildProjection'),
    rollbackProjection: operatorOnly('rollbackProjection'),
    retryParked: parkedAction('retry'),
    skipParked: parkedAction('skip'),
  };
}
