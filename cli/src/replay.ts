import { Command, Option } from 'commander';
import { loadConfig, SettleError, type Config } from '@settle/platform';
import { parseReplayTo, replayStream } from '@settle/projections';
import { openEventStore } from './openEventStore.js';

export interface StreamReplayOptions {
  streamId: string;
  /** A global position (digits) or an ISO time; the replay stops after the last event at or before it. */
  to?: string;
  config?: Config;
  /** Receives each JSON line (stdout by default). */
  write?: (line: string) => void;
}

/**
 * `settle replay --stream ID [--to POSITION|ISO_TIME]`, offline: opens only the event store and
 * prints the stream's state after each event as JSON lines. Returns the number of lines printed.
 */
export async function runStreamReplay(opts: StreamReplayOptions): Promise<number> {
  const range = parseReplayTo(opts.to);
  const config = opts.config ?? loadConfig();
  const write = opts.write ?? ((line: string) => void process.stdout.write(`${line}\n`));
  const store = await openEventStore(config);
  try {
    let lines = 0;
    for await (const line of replayStream(store, opts.streamId, range)) {
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
        '(the embedded store must not be in use by a running Settle). Rebuilds (--projection) are not built yet.',
    )
    .addOption(
      new Option('--stream <streamId>', 'stream to replay, e.g. request-<id>, preferences-<userId>, client-<clientId>'),
    )
    .addOption(new Option('--to <positionOrTime>', 'stop after this global position (digits) or ISO 8601 time'))
    .addOption(new Option('--projection <name>', 'blue-green rebuild of a projection (not built yet)').hideHelp())
    .action(async (opts: { stream?: string; to?: string; projection?: string }, command: Command) => {
      if (opts.projection !== undefined)
        command.error(
          'settle replay --projection: blue-green rebuilds are not built yet (issue 5); only --stream works',
          { exitCode: 2 },
        );
      if (opts.stream === undefined) command.error('settle replay: --stream <streamId> is required', { exitCode: 2 });
      try {
        const lines = await runStreamReplay({
          streamId: opts.stream,
          ...(opts.to !== undefined ? { to: opts.to } : {}),
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
    });
}
