import type { StoredEvent } from '@settle/domain';

export interface SharedTailOptions {
  /** Reads the visible global log after a position, unfiltered (the store's readAll). */
  read(after: number, limit: number): Promise<StoredEvent[]>;
  /** Events kept for subscribers that are a little behind; older ones are read from the store again. */
  maxEvents?: number;
  /** Events one read of the tail asks for. */
  batchSize?: number;
  /**
   * A reader that saw no wake-up since the last refresh began, this recently, and found nothing
   * new is answered "nothing" without another read (a subscriber asking again after its batch).
   * Writers that do not wake subscribers are then seen up to this much later (the idle poll).
   */
  freshMs?: number;
}

const matches = (event: StoredEvent, prefixes: readonly string[] | undefined) =>
  !prefixes || prefixes.length === 0 || prefixes.some((p) => event.streamId.startsWith(p));

/**
 * The head of the global log, read once for every live subscription of a store: after an append,
 * N subscribers (projector, reactors, client registry, …) would otherwise each run the same query
 * with their own prefix filter. Subscriptions that caught up serve their reads from here; one read
 * of the store refreshes it for all of them. It holds a contiguous run of the visible log,
 * (`start`, `head`], so filtering it gives exactly what a filtered read of the store would.
 *
 * A refresh that began before a reader's wake-up may miss the event that woke it: readers say
 * which wake-up they saw, and join only a refresh that began after it.
 */
export class SharedTail {
  private events: StoredEvent[] = [];
  /** The buffer holds the log after `start` up to `head`; -1 until a subscriber caught up. */
  private start = -1;
  private head = -1;
  private reading?: { done: Promise<void>; wake: number };
  /** Wake-ups seen (appends here or, through NOTIFY, elsewhere). */
  private wakes = 0;
  private readonly maxEvents: number;
  private readonly batchSize: number;
  private readonly freshMs: number;
  /** The last refresh: the wake-ups it covers, when it began, and whether it stopped at its limit. */
  private last?: { wake: number; at: number; full: boolean };

  constructor(private readonly opts: SharedTailOptions) {
    this.maxEvents = opts.maxEvents ?? 4096;
    this.batchSize = opts.batchSize ?? 1000;
    this.freshMs = opts.freshMs ?? 250;
  }

  /** Call on every wake-up signal, before the subscribers hear it. */
  woke(): void {
    this.wakes++;
  }

  get wake(): number {
    return this.wakes;
  }

  /** A subscriber caught up at `position`: the tail covers what comes after it from now on. */
  caughtUpAt(position: number): void {
    if (this.start < 0) {
      this.start = position;
      this.head = position;
    }
  }

  /** Whether reads after `after` can be served here (else the caller reads the store). */
  covers(after: number): boolean {
    return this.start >= 0 && after >= this.start;
  }

  /**
   * Up to `limit` events after `after` matching `prefixes`, refreshed from the store (once for all
   * readers) when the buffer has none; undefined when the buffer does not reach back to `after`.
   * `scannedTo`: no other matching event is at or before it. `sawWake` is `wake` when the
   * reader's read began.
   */
  async read(
    after: number,
    limit: number,
    prefixes: readonly string[] | undefined,
    sawWake: number,
  ): Promise<{ events: StoredEvent[]; scannedTo: number } | undefined> {
    for (;;) {
      if (!this.covers(after)) return undefined;
      const found = this.serve(after, limit, prefixes);
      if (found.events.length > 0) return found;
      const last = this.last;
      if (!this.reading && last && !last.full && last.wake >= sawWake && performance.now() - last.at < this.freshMs)
        return found;
      const before = this.head;
      await this.refresh(sawWake);
      // Nothing new: the reader sleeps until its next wake-up.
      if (this.head === before) return this.covers(after) ? this.serve(after, limit, prefixes) : undefined;
    }
  }

  private serve(after: number, limit: number, prefixes: readonly string[] | undefined) {
    // First buffered event past `after` (positions are increasing).
    let lo = 0;
    let hi = this.events.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.events[mid]!.globalPosition <= after) lo = mid + 1;
      else hi = mid;
    }
    const events: StoredEvent[] = [];
    for (let i = lo; i < this.events.length; i++) {
      const e = this.events[i]!;
      if (!matches(e, prefixes)) continue;
      events.push(e);
      if (events.length === limit) return { events, scannedTo: e.globalPosition };
    }
    return { events, scannedTo: Math.max(after, this.head) };
  }

  private async refresh(sawWake: number): Promise<void> {
    while (this.reading && this.reading.wake < sawWake) await this.reading.done;
    if (this.reading) return this.reading.done;
    const wake = this.wakes;
    const at = performance.now();
    const done = (async () => {
      try {
        const batch = await this.opts.read(this.head, this.batchSize);
        this.last = { wake, at, full: batch.length >= this.batchSize };
        if (batch.length === 0) return;
        this.events.push(...batch);
        this.head = batch[batch.length - 1]!.globalPosition;
        if (this.events.length > this.maxEvents) {
          const dropped = this.events.splice(0, this.events.length - this.maxEvents);
          this.start = dropped[dropped.length - 1]!.globalPosition;
        }
      } finally {
        this.reading = undefined;
      }
    })();
    this.reading = { done, wake };
    return done;
  }
}
