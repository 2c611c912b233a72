import { MemoryLockManager, MemoryReadStore, silentLogger, type EventStore, type ReadDoc } from '@settle/platform';
import { describe, expect, it } from 'vitest';
import type { Notifier } from './notifier.js';
import { createScheduler } from './scheduler.js';

describe('scheduler: merchant webhook retries', () => {
  it('delivers the notifications that are pending and due, and no other', async () => {
    const readStore = new MemoryReadStore();
    const now = new Date('2026-01-10T12:00:00Z');
    const base = { status: 'SETTLED', attemptInFlight: false, nextAttemptAt: null, attempts: 1 };
    await readStore.collection<ReadDoc & Record<string, unknown>>('requests').putMany([
      { _id: 'due', _position: 1, ...base, notifyPending: true, notifyNextAttemptAt: '2026-01-10T11:59:59.000Z' },
      { _id: 'later', _position: 2, ...base, notifyPending: true, notifyNextAttemptAt: '2026-01-10T12:00:05.000Z' },
      { _id: 'notified', _position: 3, ...base, notifyPending: false, notifyNextAttemptAt: null },
    ]);
    const delivered: string[] = [];
    let ticked!: () => void;
    const once = new Promise<void>((r) => (ticked = r));
    const notifier = {
      deliver: async (id: string) => {
        delivered.push(id);
        ticked();
      },
    } as unknown as Notifier;
    const scheduler = createScheduler({
      eventStore: {} as EventStore,
      readStore,
      locks: new MemoryLockManager(),
      notifier,
      logger: silentLogger(),
      intervalMs: 60_000,
      now: () => now,
    });
    scheduler.start();
    await once;
    await scheduler.stop();
    expect(delivered).toEqual(['due']);
  });
});
