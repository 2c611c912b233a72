import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** What one side of a row (Settle or its limit) measured. Latencies in milliseconds. */
export interface Figures {
  /** Operations per second of the row's unit (events/s, req/s). */
  throughput?: number;
  unit: string;
  /** Operations completed, and the wall-clock seconds they took. */
  count: number;
  seconds: number;
  p50?: number;
  p95?: number;
  p99?: number;
  /** What the latencies are of (one append, one HTTP request, one projector batch…). */
  latencyOf?: string;
  /** Failures were counted at this latency: a percentile equal to it means "at least". */
  censoredAtMs?: number;
  /** CPU seconds (user + system) of the process(es) named in `cpuOf`. */
  cpuSeconds?: number;
  cpuOf?: string;
  /** CPU seconds of the servers behind it (PostgreSQL backends, …), when they could be read. */
  serverCpuSeconds?: number;
  peakRssMb?: number;
  rssOf?: string;
  /** Anything else worth keeping in the JSON (errors, non-2xx answers, sizes). */
  extra?: Record<string, number | string | boolean>;
}

/** A growable list of latencies (ms) with exact percentiles (nearest rank). */
export class Latencies {
  private values = new Float64Array(1024);
  private n = 0;

  add(ms: number): void {
    if (this.n === this.values.length) {
      const bigger = new Float64Array(this.values.length * 2);
      bigger.set(this.values);
      this.values = bigger;
    }
    this.values[this.n++] = ms;
  }

  get count(): number {
    return this.n;
  }

  summary(): { p50?: number; p95?: number; p99?: number } {
    if (this.n === 0) return {};
    const sorted = this.values.slice(0, this.n).sort();
    const at = (p: number) => sorted[Math.min(this.n - 1, Math.max(0, Math.ceil((p / 100) * this.n) - 1))]!;
    return { p50: round(at(50)), p95: round(at(95)), p99: round(at(99)) };
  }
}

export const round = (x: number, digits = 2): number => Math.round(x * 10 ** digits) / 10 ** digits;
export const now = (): number => performance.now();
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let clockTicks: number | undefined;
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** User + system CPU seconds a process has used so far (Linux /proc), or undefined if it is gone. */
export function procCpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may contain spaces: fields start after the closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of the full line, i.e. 11 and 12 after the name.
    return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond();
  } catch {
    return undefined;
  }
}

/** Sum of CPU seconds over several processes (those that vanished count as 0). */
export const procsCpuSeconds = (pids: number[]): number => pids.reduce((s, p) => s + (procCpuSeconds(p) ?? 0), 0);

/** Resident set size now and its high-water mark, in MB (Linux /proc). */
export function procMemoryMb(pid: number): { rss: number; hwm: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
    return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
  } catch {
    return undefined;
  }
}

/**
 * Samples a process's RSS every `intervalMs` and keeps the peak: the high-water mark (VmHWM)
 * covers a process's whole life, so a window inside it (one workload) needs sampling.
 */
export class RssSampler {
  private peak = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly pid: number = process.pid,
    intervalMs = 50,
  ) {
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
  }

  private sample(): void {
    const rss = this.pid === process.pid ? process.memoryUsage.rss() / 1048576 : procMemoryMb(this.pid)?.rss;
    if (rss !== undefined && rss > this.peak) this.peak = rss;
  }

  /** Stops sampling; returns the peak RSS in MB. */
  stop(): number {
    this.sample();
    clearInterval(this.timer);
    return round(this.peak, 1);
  }
}

/** CPU seconds this process used since `start` (process.cpuUsage: every thread, user + system). */
export const cpuSince = (start: NodeJS.CpuUsage): number => {
  const d = process.cpuUsage(start);
  return round((d.user + d.system) / 1e6);
};

/**
 * Runs `fn` in this process and measures wall time, CPU seconds and peak RSS around it.
 */
export async function measured<T>(
  fn: () => Promise<T>,
): Promise<{ value: T; seconds: number; cpuSeconds: number; peakRssMb: number }> {
  const rss = new RssSampler();
  const cpu = process.cpuUsage();
  const t0 = now();
  try {
    const value = await fn();
    const seconds = (now() - t0) / 1000;
    return { value, seconds, cpuSeconds: cpuSince(cpu), peakRssMb: rss.stop() };
  } finally {
    rss.stop();
  }
}

/** A deterministic PRNG (mulberry32): the same seed gives the same workload in every run. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Runs `tasks` workers at once over a shared queue of items; resolves when all are done. */
export async function pool<T>(
  items: readonly T[],
  concurrency: number,
  fn: (item: T, worker: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, async (_, worker) => {
      while (next < items.length) await fn(items[next++]!, worker);
    }),
  );
}
