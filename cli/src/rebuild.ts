import cliProgress from 'cli-progress';
import {
  createLogger,
  loadConfig,
  MongoReadStore,
  SettleError,
  withArchivedEvents,
  type Config,
  type ReadStore,
} from '@settle/platform';
import {
  ALL_PROJECTIONS,
  ProjectionOperations,
  ProjectionStateError,
  UnknownProjectionError,
  type CollectionDiff,
  type RebuildResult,
} from '@settle/projections';
import { clientsEnv, type ClientsCommandEnv } from './clients.js';
import { openEventStore } from './openEventStore.js';
import { operatorGraphQL, OperatorApiError, PROJECTIONS_QUERY, type ProjectionStatusRow } from './projections.js';

/** Rebuild progress the GraphQL schema has no fields for: `extensions.rebuilds` of `projections`. */
interface RebuildExtension {
  name: string;
  version: number;
  state: string;
  position: string;
  headPosition: string;
  eventsPerSecond: number;
  etaSeconds: number | null;
  error?: string;
}

/** The operator API cannot be reached at all (as opposed to answering with an error). */
export const isUnreachable = (error: unknown): boolean => error instanceof OperatorApiError && error.unreachable;

/** How long the projector answering `projections` may take to switch to a version that was cut over. */
const SWITCH_GRACE_MS = 60_000;

export interface ProgressView {
  update(p: { position: number; head: number; eventsPerSecond: number; etaSeconds: number | null }): void;
  stop(): void;
}

/** A `cli-progress` bar on stderr (lines every 2 s when stderr is not a terminal). */
export function progressBar(projection: string, version: number): ProgressView {
  const bar = new cliProgress.SingleBar(
    {
      format: `${projection} v${version} [{bar}] {percentage}% | position {value}/{total} | {rate} events/s | ETA {etaText}`,
      stream: process.stderr,
      noTTYOutput: true,
      notTTYSchedule: 2000,
      hideCursor: true,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update({ position, head, eventsPerSecond, etaSeconds }) {
      const payload = {
        rate: eventsPerSecond.toLocaleString('en-US'),
        etaText: etaSeconds === null ? '?' : `${Math.ceil(etaSeconds)} s`,
      };
      const total = Math.max(1, head);
      if (!started) {
        bar.start(total, position, payload);
        started = true;
      } else {
        bar.setTotal(total);
        bar.update(position, payload);
      }
    },
    stop() {
      if (started) bar.stop();
    },
  };
}

export interface RebuildCommandOptions {
  projection: string;
  dryRun?: boolean;
  /** Skip the operator API: open the configured stores in this process. */
  offline?: boolean;
  /** Rebuild from the log with the archived events put back (PostgreSQL/PGlite archive table); implies offline. */
  includeArchived?: boolean;
  env?: ClientsCommandEnv;
  config?: Config;
  /** Progress display (a cli-progress bar by default). */
  progress?: (projection: string, version: number) => ProgressView;
  /** Lines for the operator (stdout by default). */
  write?: (line: string) => void;
  /** Notes (stderr by default). */
  note?: (line: string) => void;
  pollMs?: number;
}

/**
 * `settle replay --projection NAME`: through the operator API of a running Settle (the rebuild
 * runs there), or offline from the configured stores when asked (`--offline`), when no Settle
 * answers, or for `--dry-run` (the diff needs both versions in this process). Resolves once the
 * new version is live (or, for a dry run, once the diff is printed); throws with a message.
 */
export async function runProjectionRebuild(opts: RebuildCommandOptions): Promise<void> {
  const note = opts.note ?? ((line: string) => void process.stderr.write(`${line}\n`));
  if (opts.dryRun || opts.offline || opts.includeArchived) return runOffline(opts);
  try {
    await runOnline(opts);
  } catch (error) {
    if (!isUnreachable(error)) throw error;
    note(`${(error as Error).message}; rebuilding offline from the configured stores`);
    await runOffline(opts);
  }
}

async function runOnline(opts: RebuildCommandOptions): Promise<void> {
  const env = opts.env ?? clientsEnv();
  const write = opts.write ?? ((line: string) => void process.stdout.write(`${line}\n`));
  const started = await operatorGraphQL<{ rebuildProjection: ProjectionStatusRow }>(
    env,
    'mutation ($name: String!) { rebuildProjection(name: $name) { name version state position headPosition } }',
    { name: opts.projection },
  );
  const version = started.data.rebuildProjection.version;
  const view = (opts.progress ?? progressBar)(opts.projection, version);
  const t0 = Date.now();
  let gone: number | undefined;
  try {
    for (;;) {
      await new Promise((r) => setTimeout(r, opts.pollMs ?? 500));
      const res = await operatorGraphQL<{ projections: ProjectionStatusRow[] }>(env, PROJECTIONS_QUERY);
      const rows = res.data.projections.filter((r) => r.name === opts.projection);
      const live = rows.find((r) => !r.state.startsWith('rebuild'));
      const building = rows.find((r) => r.version === version && r.state.startsWith('rebuild'));
      const progress = ((res.extensions?.rebuilds ?? []) as RebuildExtension[]).find(
        (r) => r.name === opts.projection && r.version === version,
      );
      if (building && progress) {
        if (building.state === 'rebuild_failed')
          throw new OperatorApiError(
            `the rebuild of ${opts.projection} v${version} failed: ${progress.error ?? 'no error recorded'} (run the command again to resume it)`,
          );
        view.update({
          position: Number(progress.position),
          head: Number(progress.headPosition),
          eventsPerSecond: progress.eventsPerSecond,
          etaSeconds: progress.etaSeconds,
        });
        continue;
      }
      if (live?.version === version) {
        view.update({
          position: Number(live.position),
          head: Number(live.headPosition),
          eventsPerSecond: 0,
          etaSeconds: 0,
        });
        view.stop();
        write(
          `${opts.projection}: v${version} is live (cut over in ${((Date.now() - t0) / 1000).toFixed(1)} s); ` +
            `the previous version is kept: settle projections rollback ${opts.projection}`,
        );
        return;
      }
      // Cut over, but the projector that answers has not switched yet (it finishes its batch
      // first): its row names the old version for a moment. Only a lasting absence is a failure.
      if (!building) {
        gone ??= Date.now();
        if (Date.now() - gone > SWITCH_GRACE_MS)
          throw new OperatorApiError(
            `the rebuild of ${opts.projection} v${version} is gone without a cutover (live is v${live?.version ?? '?'}): another operator discarded, replaced or rolled it back`,
          );
      } else gone = undefined;
    }
  } finally {
    view.stop();
  }
}

const closing =
  (store: { close(): Promise<void> }) =>
  async (error: unknown): Promise<never> => {
    await store.close();
    throw error;
  };

/** Opens the configured stores for an offline rebuild or rollback; the embedded read store has nothing to work on. */
async function openStores(
  config: Config,
  what: string,
  onProgress?: ConstructorParameters<typeof ProjectionOperations>[0]['onProgress'],
  includeArchived = false,
) {
  if (config.readStore === 'embedded')
    throw new SettleError(
      'SETTLE_ERR_OFFLINE_EMBEDDED_READ_STORE',
      `${what} offline: the embedded read store lives in the memory of a running Settle and is rebuilt from the log at ` +
        'every start, so there is nothing here to work on. Start Settle and run this again (it goes through the operator ' +
        'API: SETTLE_URL, SETTLE_CLIENT_ID, SETTLE_CLIENT_SECRET), or configure SETTLE_READ_STORE=mongodb://…',
      409,
    );
  const eventStore = await openEventStore(config);
  // The rebuild reads the log through readAll: with --include-archived, archived events are merged back in.
  const source = includeArchived ? await withArchivedEvents(eventStore).catch(closing(eventStore)) : eventStore;
  let readStore: ReadStore;
  try {
    readStore = await MongoReadStore.create(config.readStore);
  } catch (error) {
    await eventStore.close();
    throw error;
  }
  const operations = new ProjectionOperations({
    eventStore: source,
    readStore,
    projections: ALL_PROJECTIONS,
    logger: createLogger({ level: process.env.SETTLE_LOG_LEVEL ?? 'warn' }),
    ...(onProgress ? { onProgress } : {}),
  });
  return {
    eventStore,
    readStore,
    operations,
    async close() {
      await operations.stop();
      await readStore.close();
      await eventStore.close();
    },
  };
}

async function runOffline(opts: RebuildCommandOptions): Promise<void> {
  const write = opts.write ?? ((line: string) => void process.stdout.write(`${line}\n`));
  const config = opts.config ?? loadConfig();
  let view: ProgressView | undefined;
  const stores = await openStores(
    config,
    opts.dryRun ? 'settle replay --projection --dry-run' : 'settle replay --projection',
    (p) =>
      view?.update({
        position: p.position,
        head: p.headPosition,
        eventsPerSecond: p.eventsPerSecond,
        etaSeconds: p.etaSeconds,
      }),
    opts.includeArchived ?? false,
  );
  try {
    const handle = await stores.operations.rebuild(opts.projection, { dryRun: opts.dryRun ?? false, actor: 'cli' });
    view = (opts.progress ?? progressBar)(opts.projection, handle.version);
    let result: RebuildResult;
    try {
      result = await handle.done;
    } finally {
      view.stop();
    }
    const rate = `${result.events} events in ${result.seconds.toFixed(1)} s, ${result.eventsPerSecond} events/s`;
    if (result.diff) {
      write(
        `${opts.projection}: dry run rebuilt scratch v${result.version} up to position ${result.position} (${rate}); dropped again`,
      );
      for (const line of formatDiff(result.diff)) write(line);
    } else
      write(
        `${opts.projection}: v${result.version} is live (was v${result.previous}; ${rate}); ` +
          `the previous version is kept: settle projections rollback ${opts.projection}`,
      );
  } finally {
    await stores.close();
  }
}

/** The dry run's summary: one block per collection, "no differences" when there are none. */
export function formatDiff(diff: CollectionDiff[]): string[] {
  const lines: string[] = [];
  for (const d of diff) {
    const same = d.onlyLiveCount === 0 && d.onlyRebuiltCount === 0 && d.differingCount === 0;
    lines.push(`  ${d.collection}: live ${d.liveCount}, rebuilt ${d.rebuiltCount}${same ? ': no differences' : ''}`);
    const list = (ids: string[], n: number) =>
      `${ids.join(', ')}${n > ids.length ? `, … (${n - ids.length} more)` : ''}`;
    if (d.onlyLiveCount > 0) lines.push(`    only in live (${d.onlyLiveCount}): ${list(d.onlyLive, d.onlyLiveCount)}`);
    if (d.onlyRebuiltCount > 0)
      lines.push(`    only in rebuilt (${d.onlyRebuiltCount}): ${list(d.onlyRebuilt, d.onlyRebuiltCount)}`);
    if (d.differingCount > 0) lines.push(`    different (${d.differingCount}): ${list(d.differing, d.differingCount)}`);
  }
  return lines;
}

export interface RollbackCommandOptions {
  projection: string;
  offline?: boolean;
  env?: ClientsCommandEnv;
  config?: Config;
  write?: (line: string) => void;
  note?: (line: string) => void;
}

/** `settle projections rollback NAME`: through the operator API, or offline from the configured stores. */
export async function runProjectionRollback(opts: RollbackCommandOptions): Promise<void> {
  const write = opts.write ?? ((line: string) => void process.stdout.write(`${line}\n`));
  const note = opts.note ?? ((line: string) => void process.stderr.write(`${line}\n`));
  if (!opts.offline)
    try {
      const res = await operatorGraphQL<{ rollbackProjection: ProjectionStatusRow }>(
        opts.env ?? clientsEnv(),
        'mutation ($name: String!) { rollbackProjection(name: $name) { name version state position headPosition lagEvents } }',
        { name: opts.projection },
      );
      const row = res.data.rollbackProjection;
      write(
        `${row.name}: rolled back, v${row.version} is live (${row.state}, position ${row.position} of ${row.headPosition})`,
      );
      return;
    } catch (error) {
      if (!isUnreachable(error)) throw error;
      note(`${(error as Error).message}; rolling back offline in the configured stores`);
    }
  const stores = await openStores(opts.config ?? loadConfig(), 'settle projections rollback');
  try {
    const pointer = await stores.operations.rollback(opts.projection, { actor: 'cli' });
    write(
      `${opts.projection}: rolled back, v${pointer.live} is live (v${pointer.previous} kept); ` +
        'it catches up from its checkpoint when Settle runs',
    );
  } finally {
    await stores.close();
  }
}

/** Errors an operator can act on: printed as a message, exit code 1. */
export const isOperatorError = (error: unknown): boolean =>
  error instanceof OperatorApiError ||
  error instanceof SettleError ||
  error instanceof UnknownProjectionError ||
  error instanceof ProjectionStateError;
