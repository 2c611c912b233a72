import { isTerminal, paymentRequestDecider, type PaymentRequestState } from '@settle/domain';
import {
  deterministicId,
  handleCommand,
  isTruncated,
  loadAggregate,
  recordOperatorAction,
  runWithContext,
  readArchiveFile,
  writeArchiveFile,
  type EventStore,
  type Logger,
  type StreamArchive,
} from '@settle/platform';

export const REQUEST_STREAM_PREFIX = 'request-';

export type StreamOutcome =
  | { streamId: string; outcome: 'archived'; file: string; truncated: number }
  | { streamId: string; outcome: 'would_archive'; status: string; lastEventAt: string }
  | { streamId: string; outcome: 'skipped'; reason: string }
  | { streamId: string; outcome: 'failed'; error: string };

export interface ArchiveRunOptions {
  eventStore: EventStore;
  archive: StreamArchive;
  /** Where export files go. */
  dir: string;
  /** Retention: terminal requests whose last event is older than this are archived. */
  olderThanMs: number;
  dryRun?: boolean;
  /** Who runs it (the audit event's actor): `cli` offline, the operator's client id otherwise. */
  actor?: string;
  /** The retention is measured from this instant (tests). */
  now?: () => Date;
  /** Streams handled at once. */
  concurrency?: number;
  logger?: Logger;
  onStream?(outcome: StreamOutcome): void;
}

export interface ArchiveRunResult {
  cutoff: string;
  dir: string;
  dryRun: boolean;
  archived: number;
  skipped: number;
  failed: number;
  outcomes: StreamOutcome[];
  /** Global position of the `ArchiveRun` audit event (not for dry runs). */
  auditPosition?: number;
}

/**
 * `settle archive`: for each terminal request whose last event is older than the retention —
 *
 * 1. append `RequestArchived` through the decider (an id derived from the stream, so two runs at
 *    once append it once; a stream already ARCHIVED appends nothing);
 * 2. export the whole stream, as stored, to `<dir>/<streamId>.jsonl.gz` and read it back;
 * 3. truncate the stream before the tombstone (`RequestArchived` stays in the log: every
 *    projection, reactor or rebuild meets it, however far behind it is), atomically and only if
 *    the events removed are exactly the exported ones.
 *
 * A crash anywhere leaves a stream whole (steps 1–2 are repeated by the next run: streams holding
 * `RequestArchived` are always candidates) or archived with its file complete. The read models
 * drop the request when their projector applies `RequestArchived`.
 */
export async function runArchive(opts: ArchiveRunOptions): Promise<ArchiveRunResult> {
  const now = opts.now?.() ?? new Date();
  const cutoff = new Date(now.getTime() - opts.olderThanMs);
  const dryRun = opts.dryRun ?? false;
  const actor = opts.actor ?? 'cli';
  const outcomes: StreamOutcome[] = [];
  const record = (o: StreamOutcome) => {
    outcomes.push(o);
    opts.onStream?.(o);
  };

  const one = async (streamId: string): Promise<void> => {
    try {
      record(await archiveStream(opts, streamId, { now, cutoff, dryRun, actor }));
    } catch (error) {
      opts.logger?.error({ err: error, streamId }, 'archiving a stream failed; it is left as it was');
      record({ streamId, outcome: 'failed', error: (error as Error).message });
    }
  };

  // A small pool over the streamed candidates: never more than `concurrency` in flight.
  const running = new Set<Promise<void>>();
  for await (const streamId of opts.archive.candidates({
    prefix: REQUEST_STREAM_PREFIX,
    lastEventBefore: cutoff,
    orHolding: 'RequestArchived',
  })) {
    const p = one(streamId).finally(() => running.delete(p));
    running.add(p);
    if (running.size >= Math.max(1, opts.concurrency ?? 4)) await Promise.race(running);
  }
  await Promise.all(running);

  const count = (o: StreamOutcome['outcome']) => outcomes.filter((x) => x.outcome === o).length;
  const result: ArchiveRunResult = {
    cutoff: cutoff.toISOString(),
    dir: opts.dir,
    dryRun,
    archived: count(dryRun ? 'would_archive' : 'archived'),
    skipped: count('skipped'),
    failed: count('failed'),
    outcomes,
  };
  if (!dryRun)
    result.auditPosition = await recordOperatorAction(opts.eventStore, {
      action: 'ArchiveRun',
      target: opts.dir,
      actor,
      detail: {
        olderThanMs: opts.olderThanMs,
        cutoff: result.cutoff,
        archived: result.archived,
        skipped: result.skipped,
        failed: result.failed,
        // Each archived stream also keeps its own RequestArchived event (with this actor) in the log.
        failedStreams: outcomes.filter((o) => o.outcome === 'failed').map((o) => o.streamId),
      },
    });
  return result;
}

async function archiveStream(
  opts: ArchiveRunOptions,
  streamId: string,
  run: { now: Date; cutoff: Date; dryRun: boolean; actor: string },
): Promise<StreamOutcome> {
  const { eventStore, archive } = opts;
  const loaded = await loadAggregate(eventStore, streamId, paymentRequestDecider);
  if (isTruncated(loaded.events)) return { streamId, outcome: 'skipped', reason: 'already archived' };
  const state: PaymentRequestState = loaded.state;
  const last = loaded.events[loaded.events.length - 1];
  if (!last) return { streamId, outcome: 'skipped', reason: 'no events' };
  if (state.status !== 'ARCHIVED') {
    if (!isTerminal(state.status)) return { streamId, outcome: 'skipped', reason: `status ${state.status}` };
    if (Date.parse(last.occurredAt) >= run.cutoff.getTime())
      return { streamId, outcome: 'skipped', reason: 'within retention' };
  }
  if (run.dryRun) return { streamId, outcome: 'would_archive', status: state.status, lastEventAt: last.occurredAt };

  await runWithContext({ correlationId: deterministicId(`archive/${streamId}`), actor: run.actor }, () =>
    handleCommand(
      eventStore,
      streamId,
      paymentRequestDecider,
      { type: 'ArchiveRequest', data: { now: run.now.toISOString() } },
      // The truncation below changes what the stream folds to without a new revision.
      { causationEventId: deterministicId(`archive/${streamId}`), remember: false },
    ),
  );
  const events = await archive.readRaw(streamId);
  if (isTruncated(events)) return { streamId, outcome: 'skipped', reason: 'already archived' };
  const tombstone = events.findLast((e) => e.type === 'RequestArchived');
  if (!tombstone) throw new Error(`${streamId} has no RequestArchived event after archiving it`);
  const file = await writeArchiveFile(opts.dir, events);
  let truncated: number;
  try {
    truncated = await archive.truncate(
      streamId,
      tombstone.streamPosition,
      events.filter((e) => e.streamPosition < tombstone.streamPosition).map((e) => e.id),
    );
  } catch (error) {
    // Another run (a second CronJob, an operator) got there first with the same file: done.
    if (isTruncated(await eventStore.readStream(streamId)))
      return { streamId, outcome: 'skipped', reason: 'archived by another run' };
    throw error;
  }
  opts.logger?.info({ streamId, file, truncated }, 'stream archived');
  return { streamId, outcome: 'archived', file, truncated };
}

export interface ArchiveImportResult {
  streamId: string;
  file: string;
  restored: number;
  present: number;
  auditPosition: number;
}

/**
 * `settle archive import FILE`: puts an exported stream back into the event store with its
 * original ids and positions (events already there are left alone, so importing twice restores
 * nothing the second time). The request stays ARCHIVED: its history is readable again (replays,
 * time travel), and the read models, which dropped it, are not touched.
 */
export async function importArchive(opts: {
  eventStore: EventStore;
  archive: StreamArchive;
  file: string;
  actor?: string;
}): Promise<ArchiveImportResult> {
  const events = await readArchiveFile(opts.file);
  const streamId = events[0]!.streamId;
  const { restored, present } = await opts.archive.restore(events);
  const auditPosition = await recordOperatorAction(opts.eventStore, {
    action: 'ArchiveImported',
    target: opts.file,
    actor: opts.actor ?? 'cli',
    detail: { streamId, events: events.length, restored, present },
  });
  return { streamId, file: opts.file, restored, present, auditPosition };
}
