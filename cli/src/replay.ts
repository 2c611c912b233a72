import { Command, Option } from 'commander';
import type { StoredEvent } from '@settle/domain';
import { isTruncated, loadConfig, readStreamWithArchive, SettleError, type Config } from '@settle/platform';
import { checkReplayable, foldStreamEvents, parseReplayTo, withinReplayRange } from '@settle/projections';
import { isOperatorError, runProjectionRebuild } from './rebuild.js';
import { openEventStore } from './openEventStore.js';

export interface StreamReplayOptions {
  streamId: string;
  /** A global position (digits) or an ISO time; the replay stops after the last event at or before it. */
  to?: string;
  config?: Config;
  /** Receives each JSON line (stdout by default). */
  write?: (line: string) => void;
  /** Read an archived stream's truncated events from the archive table or file (SETTLE_ARCHIVE_DIR). */
  includeArchived?: boolean;
  /** Overrides SETTLE_ARCHIVE_DIR for --include-archived. */
  archiveDir?: string;
  /** Receives remarks for the operator (stderr by default). */
  note?: (message: string) => void;
}

export const ERR_REPLAY_STREAM_ARCHIVED = 'SETTLE_ERR_REPLAY_STREAM_ARCHIVED';

/**
 * `settle replay --stream ID [--to POSITION|ISO_TIME]`, offline: opens only the event store and
 * prints the stream's state after each event as JSON lines. Returns the number of lines printed.
 */
export async function runStreamReplay(opts: StreamReplayOptions): Promise<number> {
  const range = parseReplayTo(opts.to);
  const config = opts.config ?? loadConfig();
  const write = opts.write ?? ((line: string) => void process.stdout.write(`${line}\n`));
  const note = opts.note ?? ((message: string) => console.error(message));
  checkReplayable(opts.streamId);
  const store = await openEventStore(config);
  try {
    let events: StoredEvent[];
    if (opts.includeArchived) {
      const whole = await readStreamWithArchive(store, opts.streamId, opts.archiveDir ?? config.archiveDir);
      if (whole.archivedFrom)
        note(`${opts.streamId} is archived; its archived events come from the ${whole.archivedFrom}`);
      events = whole.events;
    } else {
      events = await store.readStream(opts.streamId);
      if (isTruncated(events))
        throw new SettleError(
          ERR_REPLAY_STREAM_ARCHIVED,
          `${opts.streamId} is archived: its events before stream position ${events[0]!.streamPosition} were moved out of ` +
            'the event store. Pass --include-archived to read them from the archive (table, or SETTLE_ARCHIVE_DIR), ' +
            'or `settle archive import <file>` to put them back.',
          409,
        );
    }
    let lines = 0;
    for (const line of foldStreamEvents(opts.streamId, withinReplayRange(events, range))) {
      write(JSON.stringify(line));
      lines++;
    }
    return lines;
  } finally {
    await store.close();
  }
}

export function replayCommand(): Command {
  return new Command('replay')
    .description(
      'time travel, offline: --stream ID prints the stream state after each event as JSON lines, up to --to ' +
        '(the embedded store must not be in use by a running Settle). --projection NAME: blue-green rebuild of a ' +
        'read model through the operator API of a running Settle (SETTLE_URL, SETTLE_CLIENT_ID, SETTLE_CLIENT_SECRET), ' +
        'or offline from the configured stores (--offline, or when no Settle answers); exits 0 once the new version is live.',
    )
    .addOption(
      new Option('--stream <streamId>', 'stream to replay, e.g. request-<id>, preferences-<userId>, client-<clientId>'),
    )
    .addOption(new Option('--to <positionOrTime>', 'stop after this global position (digits) or ISO 8601 time'))
    .addOption(
      new Option(
        '--include-archived',
        'read archived events too: --stream from the archive table or the file in SETTLE_ARCHIVE_DIR; ' +
          '--projection rebuilds offline with the archive table merged into the log (PostgreSQL/PGlite)',
      ),
    )
    .addOption(new Option('--archive-dir <dir>', 'with --include-archived: where the archive files are'))
    .addOption(
      new Option('--projection <name>', 'blue-green rebuild of a projection: requests, merchantStats or preferences'),
    )
    .addOption(
      new Option(
        '--dry-run',
        'with --projection: rebuild into a scratch version in this process (configured stores), print a diff against the live version, drop it',
      ),
    )
    .addOption(new Option('--offline', 'with --projection: do not ask a running Settle; use the configured stores'))
    .action(
      async (
        opts: {
          stream?: string;
          to?: string;
          projection?: string;
          includeArchived?: boolean;
          archiveDir?: string;
          dryRun?: boolean;
          offline?: boolean;
        },
        command: Command,
      ) => {
        if (opts.projection !== undefined) {
          if (opts.stream !== undefined)
            command.error('settle replay: give --stream or --projection, not both', { exitCode: 2 });
          try {
            await runProjectionRebuild({
              projection: opts.projection,
              dryRun: opts.dryRun ?? false,
              offline: opts.offline ?? false,
              includeArchived: opts.includeArchived ?? false,
            });
          } catch (error) {
            // Expected failures read as a sentence; anything else (a store that stopped answering) names its kind.
            const kind = isOperatorError(error) ? '' : `${(error as Error).name}: `;
            console.error(`settle replay --projection: ${kind}${(error as Error).message}`);
            process.exitCode = 1;
          }
          return;
        }
        if (opts.dryRun || opts.offline)
          command.error('settle replay: --dry-run and --offline go with --projection', { exitCode: 2 });
        if (opts.stream === undefined)
          command.error('settle replay: --stream <streamId> or --projection <name> is required', { exitCode: 2 });
        try {
          const lines = await runStreamReplay({
            streamId: opts.stream,
            ...(opts.to !== undefined ? { to: opts.to } : {}),
            includeArchived: opts.includeArchived ?? false,
            ...(opts.archiveDir !== undefined ? { archiveDir: opts.archiveDir } : {}),
          });
          if (lines === 0) {
            console.error(
              `settle replay: stream ${opts.stream} has no events${opts.to !== undefined ? ` at or before ${opts.to}` : ''}`,
            );
            process.exitCode = 1;
          }
        } catch (error) {
          if (!(error instanceof SettleError)) throw error;
          console.error(`settle replay: ${error.message}`);
          process.exitCode = 1;
        }
      },
    );
}
