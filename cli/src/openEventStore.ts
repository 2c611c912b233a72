import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  createPgClient,
  createPgliteClient,
  EsdbEventStore,
  redactUrl,
  SettleError,
  SqlEventStore,
  type Config,
  type EventStore,
} from '@settle/platform';

export const ERR_EVENT_STORE_IN_USE = 'SETTLE_ERR_EVENT_STORE_IN_USE';
export const ERR_NO_EVENT_STORE = 'SETTLE_ERR_NO_EVENT_STORE';

/**
 * Opens only the configured event store, for offline tools (`settle replay --stream`). The
 * embedded store (PGlite) is one process per data dir and has no lock of its own: a second
 * process would happily open it and corrupt it, or delete the running one's postmaster.pid on
 * close. PGlite writes that file while the store is open and removes it on a clean close, so
 * its presence means a Settle is using the data dir (or one was not stopped cleanly).
 */
export async function openEventStore(
  config: Config,
  /** What to do instead while a Settle runs on the embedded store (replay's default: ask GraphQL). */
  inUseHint = 'Ask the running Settle instead: GraphQL `request(id: "…", asOf: "<position or ISO time>")` as an operator; ' +
    'or stop Settle (Ctrl-C / SIGTERM) and run this again.',
): Promise<EventStore> {
  const fail = (part: string, url: string, error: unknown): never => {
    throw new SettleError(
      'SETTLE_ERR_STARTUP_CONNECT',
      `could not open the ${part} at ${redactUrl(url)}: ${(error as Error).message}`,
      500,
      {
        cause: error,
      },
    );
  };
  if (config.eventStore === 'embedded') {
    const dir = join(config.dataDir, 'events');
    if (!existsSync(join(dir, 'PG_VERSION')))
      throw new SettleError(
        ERR_NO_EVENT_STORE,
        `no embedded event store at ${dir} (SETTLE_DATA_DIR=${config.dataDir}): run this where Settle keeps its data, or set SETTLE_DATA_DIR`,
        404,
      );
    if (existsSync(join(dir, 'postmaster.pid')))
      throw new SettleError(
        ERR_EVENT_STORE_IN_USE,
        `the embedded event store at ${dir} is in use by a running Settle (PGlite allows one process per data dir). ` +
          `${inUseHint} If no Settle is running, the last one did not stop cleanly: ` +
          'start and stop it once to recover the store.',
        409,
      );
    try {
      return await SqlEventStore.create(await createPgliteClient(dir));
    } catch (error) {
      return fail('embedded event store', dir, error);
    }
  }
  try {
    if (config.eventStore.startsWith('postgres'))
      return await SqlEventStore.create(
        await createPgClient(config.eventStore, {
          statementTimeoutMs: config.pgStatementTimeoutMs,
          longStatementTimeoutMs: config.pgLongStatementTimeoutMs,
        }),
      );
    return await EsdbEventStore.create(config.eventStore);
  } catch (error) {
    return fail('event store', config.eventStore, error);
  }
}
