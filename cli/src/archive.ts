import { resolve } from 'node:path';
import { Command, Option } from 'commander';
import { loadConfig, parseDuration, SettleError, streamArchiveOf, type Config, type Logger } from '@settle/platform';
import {
  importArchive,
  runArchive,
  type ArchiveImportResult,
  type ArchiveRunResult,
  type StreamOutcome,
} from '@settle/reactors';
import { openEventStore } from './openEventStore.js';

export const ERR_ARCHIVE_ARGUMENT = 'SETTLE_ERR_ARCHIVE_ARGUMENT';

const IN_USE_HINT =
  'Archiving needs the event store to itself on the embedded parts: stop Settle (Ctrl-C / SIGTERM), run `settle archive`, ' +
  'start Settle again. (On PostgreSQL or EventStoreDB it runs next to a live Settle.)';

export interface ArchiveCommandOptions {
  /** A duration such as 30d, 12h, 90m. */
  olderThan: string;
  /** Overrides SETTLE_ARCHIVE_DIR. */
  dir?: string;
  dryRun?: boolean;
  config?: Config;
  logger?: Logger;
  onStream?(outcome: StreamOutcome): void;
}

export function parseRetention(raw: string): number {
  try {
    return parseDuration(raw);
  } catch {
    throw new SettleError(
      ERR_ARCHIVE_ARGUMENT,
      `--older-than ${JSON.stringify(raw)}: expected a duration such as 30d, 12h or 90m`,
      400,
    );
  }
}

/** `settle archive --older-than D`: opens only the event store (offline, or next to a live PostgreSQL deployment). */
export async function runArchiveCommand(opts: ArchiveCommandOptions): Promise<ArchiveRunResult> {
  const olderThanMs = parseRetention(opts.olderThan);
  // The retention counts back from when the command was given, not from when the store opened.
  const now = new Date();
  const config = opts.config ?? loadConfig();
  const dir = resolve(opts.dir ?? config.archiveDir);
  const store = await openEventStore(config, IN_USE_HINT);
  try {
    return await runArchive({
      eventStore: store,
      archive: await streamArchiveOf(store),
      dir,
      olderThanMs,
      now: () => now,
      dryRun: opts.dryRun ?? false,
      ...(opts.logger ? { logger: opts.logger } : {}),
      ...(opts.onStream ? { onStream: opts.onStream } : {}),
    });
  } finally {
    await store.close();
  }
}

/** `settle archive import FILE`. */
export async function runArchiveImport(opts: { file: string; config?: Config }): Promise<ArchiveImportResult> {
  const config = opts.config ?? loadConfig();
  const store = await openEventStore(config, IN_USE_HINT);
  try {
    return await importArchive({ eventStore: store, archive: await streamArchiveOf(store), file: resolve(opts.file) });
  } finally {
    await store.close();
  }
}

function describeOutcome(o: StreamOutcome): string {
  switch (o.outcome) {
    case 'archived':
      return `archived  ${o.streamId}  ${o.file}`;
    case 'would_archive':
      return `would archive  ${o.streamId}  ${o.status}, last event ${o.lastEventAt}`;
    case 'skipped':
      return `skipped  ${o.streamId}  ${o.reason}`;
    case 'failed':
      return `FAILED  ${o.streamId}  ${o.error}`;
  }
}

export function archiveCommand(): Command {
  const archive = new Command('archive')
    .description(
      'archive terminal requests whose last event is older than --older-than: append RequestArchived, export each ' +
        'stream to <dir>/<streamId>.jsonl.gz, truncate it in the event store (the read models drop it). ' +
        'The embedded store must not be in use by a running Settle.',
    )
    .addOption(new Option('--older-than <duration>', 'retention, e.g. 30d, 12h, 90m'))
    .addOption(new Option('--dir <dir>', 'archive directory (default SETTLE_ARCHIVE_DIR, <SETTLE_DATA_DIR>/archive)'))
    .addOption(new Option('--dry-run', 'list what would be archived; change nothing'))
    .addOption(new Option('--verbose', 'print every stream archived or skipped'))
    .action(
      async (opts: { olderThan?: string; dir?: string; dryRun?: boolean; verbose?: boolean }, command: Command) => {
        if (opts.olderThan === undefined)
          command.error('settle archive: --older-than <duration> is required (e.g. 30d)', { exitCode: 2 });
        let seen = 0;
        try {
          const result = await runArchiveCommand({
            olderThan: opts.olderThan,
            ...(opts.dir !== undefined ? { dir: opts.dir } : {}),
            dryRun: opts.dryRun ?? false,
            onStream: (o) => {
              seen++;
              if (opts.dryRun || opts.verbose || o.outcome === 'failed') console.log(describeOutcome(o));
              else if (seen % 1000 === 0) console.error(`settle archive: ${seen} streams examined…`);
            },
          });
          const verb = result.dryRun ? 'would archive' : 'archived';
          console.log(
            `settle archive: ${verb} ${result.archived} request stream(s) last changed before ${result.cutoff} ` +
              `into ${result.dir}; ${result.skipped} skipped, ${result.failed} failed` +
              (result.auditPosition !== undefined ? ` (audit event at position ${result.auditPosition})` : ''),
          );
          if (result.failed > 0) process.exitCode = 1;
        } catch (error) {
          if (!(error instanceof SettleError)) throw error;
          console.error(`settle archive: ${error.message}`);
          process.exitCode = error.code === ERR_ARCHIVE_ARGUMENT ? 2 : 1;
        }
      },
    );
  archive
    .command('import')
    .description('put an exported stream (FILE, from settle archive) back into the event store; idempotent')
    .argument('<file>', 'an archive file, <streamId>.jsonl.gz')
    .action(async (file: string) => {
      try {
        const r = await runArchiveImport({ file });
        console.log(
          `settle archive import: ${r.streamId}: ${r.restored} event(s) restored, ${r.present} already in the event store ` +
            `(audit event at position ${r.auditPosition})`,
        );
      } catch (error) {
        if (!(error instanceof SettleError)) throw error;
        console.error(`settle archive import: ${error.message}`);
        process.exitCode = 1;
      }
    });
  return archive;
}
