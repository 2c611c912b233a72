import { paymentRequestDecider, requestStreamId } from '@settle/domain';
import {
  deterministicId,
  handleCommand,
  runWithContext,
  type EventStore,
  type LockManager,
  type Logger,
  type ReadStore,
} from '@settle/platform';
import type { Notifier } from './notifier.js';

export interface SchedulerDeps {
  eventStore: EventStore;
  readStore: ReadStore;
  locks: LockManager;
  notifier: Notifier;
  logger: Logger;
  intervalMs: number;
  now?: () => Date;
}

interface DueDoc {
  _id: string;
  attempts: number;
}

/**
 * The retry scheduler: finds requests whose next authorisation attempt (or merchant webhook)
 * is due in the read model, and starts it under a per-request lock. Starting an attempt is an
 * event with an id derived from (request, attempt), so two replicas — or a stale read model —
 * can never start the same attempt twice.
 */
export function createScheduler(deps: SchedulerDeps) {
  const now = deps.now ?? (() => new Date());
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let stopped = false;

  async function tick(): Promise<void> {
    const at = now().toISOString();
    const requests = deps.readStore.collection<DueDoc & { _position: number }>('requests');
    const dueAttempts = await requests.find({
      filter: { status: 'AUTHORIZING', attemptInFlight: false, nextAttemptAt: { $lte: at } },
      sort: [['nextAttemptAt', 1]],
      limit: 200,
    });
    await Promise.all(
      dueAttempts.map((doc) =>
        deps.locks.tryWithLock(`retry:${doc._id}`, 30_000, () => {
          const attempt = doc.attempts + 1;
          return runWithContext({ correlationId: doc._id, actor: 'scheduler' }, () =>
            handleCommand(
              deps.eventStore,
              requestStreamId(doc._id),
              paymentRequestDecider,
              { type: 'StartAuthorization', data: { attempt, now: at } },
              { causationEventId: deterministicId(`retry/${doc._id}/${attempt}`) },
            ),
          );
        }),
      ),
    );
    // `notifyPending` first: an equality FerretDB can leave to PostgreSQL (see RequestDoc).
    const dueNotifications = await requests.find({
      filter: { notifyPending: true, notifyNextAttemptAt: { $lte: at } },
      limit: 100,
    });
    await Promise.all(dueNotifications.map((doc) => deps.notifier.deliver(doc._id)));
  }

  return {
    start() {
      const loop = () => {
        if (stopped) return;
        running = tick()
          .catch((error: unknown) => deps.logger.warn({ err: error }, 'scheduler tick failed'))
          .finally(() => {
            if (!stopped) timer = setTimeout(loop, deps.intervalMs);
          });
      };
      loop();
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
