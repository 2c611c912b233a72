import { Command, Option } from 'commander';
import { CONFIG_KEYS, createLogger, SettleError } from '@settle/platform';
import { archiveCommand } from './archive.js';
import { clientsCommand } from './clients.js';
import { dlqCommand } from './dlq.js';
import { projectionsCommand } from './projections.js';
import { replayCommand } from './replay.js';
import { ROLES, startSettle, type RoleName } from './start.js';

export function buildCli(): Command {
  const program = new Command('settle')
    .description('Settle: event-sourced outbound payment requests')
    .showHelpAfterError()
    .version('0.1.0');

  program
    .command('start')
    .description('run Settle; every role in one process unless --roles narrows it')
    .addOption(new Option('--roles <roles>', `comma-separated roles: ${ROLES.join(', ')}`).default(ROLES.join(',')))
    .action(async (opts: { roles: string }) => {
      const roles = opts.roles
        .split(',')
        .map((r) => r.trim())
        .filter(Boolean);
      const unknown = roles.filter((r) => !(ROLES as readonly string[]).includes(r));
      if (unknown.length > 0) program.error(`unknown role(s): ${unknown.join(', ')} (known: ${ROLES.join(', ')})`);
      await runUntilSignalled(roles as RoleName[]);
    });

  program.addCommand(clientsCommand());
  program.addCommand(replayCommand());
  program.addCommand(projectionsCommand());
  program.addCommand(archiveCommand());
  program.addCommand(dlqCommand());

  program
    .command('config')
    .description('list every configuration variable with its default')
    .action(() => {
      for (const k of CONFIG_KEYS)
        console.log(
          `${k.env.padEnd(32)} ${String(Array.isArray(k.default) ? k.default.join(',') : (k.default ?? '')).padEnd(24)} ${k.doc}`,
        );
    });

  return program;
}

/** Signals this soon after the first one are the same request to stop (see `shutdown`). */
const DUPLICATE_SIGNAL_MS = 1000;

async function runUntilSignalled(roles: RoleName[]): Promise<void> {
  // People watching a terminal get readable lines; pipes and log collectors get JSON.
  const pretty = process.stdout.isTTY && process.env.SETTLE_LOG_FORMAT !== 'json';
  const logger = createLogger({ level: process.env.SETTLE_LOG_LEVEL ?? 'info', pretty });
  let running;
  try {
    running = await startSettle({ roles, logger });
  } catch (error) {
    const message = error instanceof SettleError ? error.message : (error as Error).stack;
    logger.fatal({ code: (error as SettleError).code }, `Settle could not start: ${message}`);
    process.exitCode = 1;
    return;
  }
  let stoppingSince = 0;
  const shutdown = (signal: string) => {
    if (stoppingSince > 0) {
      // `npm start` forwards the terminal's Ctrl-C to us while the terminal sends it too: the same
      // key press arrives twice. Only a signal well after the first one means "stop now".
      if (Date.now() - stoppingSince < DUPLICATE_SIGNAL_MS) return;
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(130);
    }
    stoppingSince = Date.now();
    logger.info({ signal }, 'shutting down: finishing requests in flight, flushing checkpoints');
    running
      .stop()
      .then(() => {
        logger.info('stopped cleanly');
        process.exit(0);
      })
      .catch((error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      });
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
}
