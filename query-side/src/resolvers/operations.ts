import type { StoredEvent } from '@settle/domain';
import {
  recordOperatorAction,
  versionedCheckpoint,
  type BuildingVersion,
  type ProjectionPointer,
} from '@settle/platform';
import {
  ParkedActionPendingError,
  ProjectionStateError,
  ProjectorParking,
  UnknownProjectionError,
  type ParkedAction,
  type ParkedStreamsPort,
  type ParkedStreamView,
  type ProjectorStatus,
} from '@settle/projections';
import { requireOperator } from '../auth.js';
import type { QueryContext, QueryDeps } from '../context.js';
import { badUserInput, GQL_CONFLICT, GQL_NOT_FOUND, notImplemented, QueryError } from '../errors.js';

/** An operator asked for something the projector or consumer has not carried out in time. */
export const ERR_PARKED_ACTION_PENDING = 'SETTLE_ERR_PARKED_ACTION_PENDING';

/** The projector's parked records (read store) plus whatever else the composition root gives (reactor groups). */
export function parkingPorts(deps: QueryDeps): ParkedStreamsPort[] {
  return deps.parking ?? [new ProjectorParking(deps.readStore)];
}

async function listParked(ports: ParkedStreamsPort[]): Promise<ParkedStreamView[]> {
  return (await Promise.all(ports.map((p) => p.list()))).flat();
}

/** One `ProjectionStatus` as GraphQL serves it (positions are strings: they may exceed 2^31). */
interface ProjectionRow {
  name: string;
  version: number;
  state: string;
  position: string;
  headPosition: string;
  lagEvents: number;
  lagSeconds: number;
  parkedStreams: string[];
}

/** Rebuild progress the schema has no field for, served in `extensions.rebuilds` of the response. */
export interface RebuildProgressExtension {
  name: string;
  version: number;
  state: string;
  dryRun: boolean;
  position: string;
  headPosition: string;
  eventsPerSecond: number;
  etaSeconds: number | null;
  startedAt: string;
  error?: string;
}

const liveRow = (s: ProjectorStatus, parked: ParkedStreamView[]): ProjectionRow => ({
  name: s.name,
  version: s.version,
  state: s.state,
  position: String(s.position),
  headPosition: String(s.headPosition),
  lagEvents: s.lagEvents,
  // The projector's own figure: the age of the oldest event it has not applied (0 when caught up).
  lagSeconds: s.lagSeconds,
  // From the persisted records: right even when the projector runs in another process.
  parkedStreams: parked.filter((p) => p.owner === s.name).map((p) => p.streamId),
});

/** `rebuilding` while a runner writes the version, `rebuild_failed` once it stopped (resumable). */
const buildingState = (b: BuildingVersion): string =>
  b.state === 'failed' ? 'rebuild_failed' : b.dryRun ? 'rebuilding_dry_run' : 'rebuilding';

/** How far a version at `position` is behind `head`, in events and in seconds (age of its next event). */
async function lagOf(deps: QueryDeps, name: string, position: number, head: number) {
  const now = deps.now ?? (() => new Date());
  const prefixes = deps.operations?.prefixes(name) ?? [];
  const [next] = await deps.eventStore.readAll({ after: position, limit: 1, streamPrefixes: prefixes });
  if (!next || next.globalPosition > head) return { lagEvents: 0, lagSeconds: 0 };
  return { lagEvents: Math.max(0, head - position), lagSeconds: ageSeconds(next, now()) };
}

async function buildingRow(deps: QueryDeps, name: string, b: BuildingVersion, head: number): Promise<ProjectionRow> {
  return {
    name,
    version: b.version,
    state: buildingState(b),
    position: String(b.position),
    headPosition: String(head),
    ...(await lagOf(deps, name, b.position, head)),
    parkedStreams: [],
  };
}

export function operationsQueries(deps: QueryDeps) {
  return {
    async projections(_: unknown, _args: unknown, ctx: QueryContext) {
      requireOperator(ctx.principal);
      const statuses = await deps.projector.status();
      const parked = await listParked(parkingPorts(deps));
      const rows = statuses.map((s) => liveRow(s, parked));
      const ops = deps.operations;
      if (!ops) return rows;
      const pointers = await ops.pointers();
      const rebuilds: RebuildProgressExtension[] = [];
      for (const s of statuses) {
        const stored = pointers.get(s.name)?.building;
        if (!stored) continue;
        // This process's own runner knows more than the pointer (written once a second).
        const local = ops.localProgress(s.name);
        const b = local?.version === stored.version ? { ...stored, ...local } : stored;
        rows.push(await buildingRow(deps, s.name, b, s.headPosition));
        rebuilds.push({
          name: s.name,
          version: b.version,
          state: buildingState(b),
          dryRun: b.dryRun,
          position: String(b.position),
          headPosition: String(Math.max(s.headPosition, b.headPosition)),
          eventsPerSecond: b.eventsPerSecond,
          etaSeconds: b.etaSeconds,
          startedAt: b.startedAt,
          ...(b.error ? { error: b.error } : {}),
        });
      }
      if (rebuilds.length > 0) ctx.rebuilds = rebuilds;
      return rows;
    },
    /** Every parked stream, of projections and reactor groups, with the failing event and its error. */
    async parkedStreams(_: unknown, _args: unknown, ctx: QueryContext) {
      requireOperator(ctx.principal);
      const parked = await listParked(parkingPorts(deps));
      return parked.map((p) => ({ ...p, position: String(p.position) }));
    },
  };
}

function ageSeconds(event: StoredEvent, now: Date): number {
  return Math.max(0, (now.getTime() - Date.parse(event.occurredAt)) / 1000);
}

function operationError(error: unknown): unknown {
  if (error instanceof UnknownProjectionError) return badUserInput('name', error.message);
  if (error instanceof ProjectionStateError) return new QueryError(GQL_CONFLICT, error.message);
  return error;
}

/** Operator mutations: the role is checked before anything else, so a merchant learns nothing more. */
export function operationsMutations(deps: QueryDeps) {
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
  /** The row of a version the pointer names, from its own checkpoint. */
  const versionRow = async (name: string, pointer: ProjectionPointer, state: string): Promise<ProjectionRow> => {
    const position = await deps.readStore.getCheckpoint(versionedCheckpoint(name, pointer.live));
    const head = await deps.eventStore.headPosition();
    const lag = await lagOf(deps, name, position, head);
    return {
      name,
      version: pointer.live,
      state: lag.lagEvents > 0 ? 'catching_up' : state,
      position: String(position),
      headPosition: String(head),
      ...lag,
      parkedStreams: [],
    };
  };
  return {
    async rebuildProjection(_: unknown, args: { name: string }, ctx: QueryContext): Promise<ProjectionRow> {
      requireOperator(ctx.principal);
      const ops = deps.operations;
      if (!ops) throw notImplemented('rebuildProjection');
      try {
        await ops.rebuild(args.name, { actor: ctx.principal.clientId });
        const b = ops.localProgress(args.name) ?? (await ops.pointer(args.name)).building!;
        return await buildingRow(deps, args.name, b, await deps.eventStore.headPosition());
      } catch (error) {
        throw operationError(error);
      }
    },
    async rollbackProjection(_: unknown, args: { name: string }, ctx: QueryContext): Promise<ProjectionRow> {
      requireOperator(ctx.principal);
      const ops = deps.operations;
      if (!ops) throw notImplemented('rollbackProjection');
      try {
        const pointer = await ops.rollback(args.name, { actor: ctx.principal.clientId });
        return await versionRow(args.name, pointer, 'live');
      } catch (error) {
        throw operationError(error);
      }
    },
    retryParked: parkedAction('retry'),
    skipParked: parkedAction('skip'),
  };
}
