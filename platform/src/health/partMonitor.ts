import { Gauge, type Registry } from 'prom-client';
import type { Logger } from '../logger.js';

/** A part Settle runs on (event store, read store, bus, Redis) and a cheap way to ask if it answers. */
export interface PartProbe {
  /** Short stable name: `eventStore`, `readStore`, `bus`, `redis`. */
  name: string;
  /** What it is, for people: `PostgreSQL at postgres://settle:***@db/settle`. */
  description: string;
  /** Resolves when the part answers; rejects (or hangs past the timeout) when it does not. */
  probe(): Promise<void>;
}

export interface PartStatus {
  name: string;
  description: string;
  up: boolean;
  /** When the part last changed state (ISO time). */
  since: string;
  /** Why it is down (the probe's error), when down. */
  error?: string;
}

export interface PartMonitorOptions {
  parts: PartProbe[];
  logger: Logger;
  /** Time between probes of one part (default 1000 ms). */
  intervalMs?: number;
  /** A probe not answered within this counts as down (default 1000 ms). */
  timeoutMs?: number;
  /** Exposes `settle_part_up{part}` (1 up, 0 down). */
  registry?: Registry;
}

/**
 * Knows, at any moment and without asking, which parts answer: each part is probed every
 * `intervalMs` with a `timeoutMs` bound (one probe in flight per part), so an outage is known
 * within about interval + timeout. Readiness reads it (`/health/ready` costs nothing), commands
 * are refused at once while a part they need is down, and `settle_part_up{part}` exports it.
 * Parts start as up: start-up has just connected to each of them.
 */
export class PartMonitor {
  private readonly states = new Map<string, PartStatus>();
  private readonly probes = new Map<string, PartProbe>();
  private readonly inFlight = new Set<string>();
  private readonly gauge?: Gauge<'part'>;
  private readonly listeners = new Set<(status: PartStatus) => void>();
  private timer?: NodeJS.Timeout;
  private readonly intervalMs: number;
  private readonly timeoutMs: number;

  constructor(private readonly opts: PartMonitorOptions) {
    this.intervalMs = opts.intervalMs ?? 1000;
    this.timeoutMs = opts.timeoutMs ?? 1000;
    if (opts.registry)
      this.gauge =
        (opts.registry.getSingleMetric('settle_part_up') as Gauge<'part'> | undefined) ??
        new Gauge({
          name: 'settle_part_up',
          help: 'Whether a part this process uses answers its health probe (1) or not (0)',
          labelNames: ['part'],
          registers: [opts.registry],
        });
    const now = new Date().toISOString();
    for (const p of opts.parts) {
      this.probes.set(p.name, p);
      this.states.set(p.name, { name: p.name, description: p.description, up: true, since: now });
      this.gauge?.set({ part: p.name }, 1);
    }
  }

  /** Probes every part now and then every `intervalMs`, until `stop()`. */
  start(): void {
    if (this.timer) return;
    const tick = () => {
      for (const name of this.probes.keys()) void this.check(name);
    };
    tick();
    this.timer = setInterval(tick, this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Probes one part now (unless a probe of it is already running) and records the outcome. */
  async check(name: string): Promise<PartStatus | undefined> {
    const part = this.probes.get(name);
    if (!part || this.inFlight.has(name)) return this.states.get(name);
    this.inFlight.add(name);
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        part.probe(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${this.timeoutMs} ms`)), this.timeoutMs);
        }),
      ]);
      this.record(name, true);
    } catch (error) {
      this.record(name, false, (error as Error)?.message ?? String(error));
    } finally {
      clearTimeout(timer);
      this.inFlight.delete(name);
    }
    return this.states.get(name);
  }

  /** A driver said the part is gone (connection closed): down now, until a probe answers again. */
  markDown(name: string, reason: string): void {
    // Not while stopped: closing the connections at shutdown is no outage.
    if (this.timer && this.probes.has(name)) this.record(name, false, reason);
  }

  private record(name: string, up: boolean, error?: string): void {
    const previous = this.states.get(name)!;
    if (previous.up === up) {
      if (!up && error) previous.error = error;
      return;
    }
    const status: PartStatus = {
      name,
      description: previous.description,
      up,
      since: new Date().toISOString(),
      ...(error ? { error } : {}),
    };
    this.states.set(name, status);
    this.gauge?.set({ part: name }, up ? 1 : 0);
    if (up) this.opts.logger.info({ part: name, what: status.description }, `${name} is back up`);
    else this.opts.logger.warn({ part: name, what: status.description, reason: error }, `${name} is down`);
    for (const listener of this.listeners) listener(status);
  }

  /** Called on every change of a part's state. Returns a function that unsubscribes. */
  onChange(listener: (status: PartStatus) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  has(name: string): boolean {
    return this.probes.has(name);
  }

  status(name: string): PartStatus | undefined {
    return this.states.get(name);
  }

  /** Every part, or the named ones that are monitored. */
  statuses(names?: readonly string[]): PartStatus[] {
    const wanted = names ? names.filter((n) => this.states.has(n)) : [...this.states.keys()];
    return wanted.map((n) => ({ ...this.states.get(n)! }));
  }

  /** Of the named parts (default all), those known to be down. */
  down(names?: readonly string[]): PartStatus[] {
    return this.statuses(names).filter((s) => !s.up);
  }
}
