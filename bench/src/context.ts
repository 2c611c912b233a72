import { kafkaProblem, mongoProblem, postgresProblem } from './services.js';

/** Sizes and durations of one run; --quick shrinks them all. */
export interface Sizes {
  /** B1: events (cap) and seconds (cap) per measurement. */
  b1Events: number;
  b1Seconds: number;
  /** B2: seconds of autocannon per connection count. */
  b2Seconds: number;
  /** B3: arrival rates (req/s) and seconds per rate. */
  b3Rates: number[];
  /** Rates for Settle on Kafka + MongoDB (slower to drain; fewer in --quick). */
  b3KafkaRates: number[];
  b3Seconds: number;
  /** How long a request may take to become visible before it counts as failed. */
  b3GiveUpMs: number;
  /** Longest wait for Settle to drain its backlog between measurements. */
  drainMaxMs: number;
  /** B4: log sizes, and the longest a single rebuild may take before it is cut short. */
  b4Embedded: number[];
  b4Mongo: number[];
  b4CapSeconds: number;
  /** B5: events forwarded. */
  b5Events: number;
}

export const FULL: Sizes = {
  b1Events: 20_000,
  b1Seconds: 8,
  b2Seconds: 10,
  b3Rates: [50, 200],
  b3KafkaRates: [50, 200],
  b3Seconds: 10,
  b3GiveUpMs: 10_000,
  drainMaxMs: 30_000,
  b4Embedded: [10_000, 100_000, 1_000_000],
  b4Mongo: [10_000, 100_000, 1_000_000],
  b4CapSeconds: 90,
  b5Events: 50_000,
};

export const QUICK: Sizes = {
  b1Events: 2_000,
  b1Seconds: 1.5,
  b2Seconds: 2,
  b3Rates: [200],
  b3KafkaRates: [50],
  b3Seconds: 2,
  b3GiveUpMs: 3_000,
  drainMaxMs: 3_000,
  b4Embedded: [2_000, 5_000],
  b4Mongo: [200],
  b4CapSeconds: 15,
  b5Events: 3_000,
};

/** `BENCH_B4_EMBEDDED` / `BENCH_B4_MONGO` (comma-separated log sizes) replace B4's sizes, e.g. to look at one size. */
function withOverrides(sizes: Sizes): Sizes {
  const list = (v: string | undefined) =>
    v
      ?.split(',')
      .map((x) => Number(x.replaceAll('_', '')))
      .filter((x) => Number.isInteger(x) && x > 0);
  const embedded = list(process.env.BENCH_B4_EMBEDDED);
  const mongo = list(process.env.BENCH_B4_MONGO);
  return {
    ...sizes,
    ...(embedded?.length ? { b4Embedded: embedded } : {}),
    ...(mongo?.length ? { b4Mongo: mongo } : {}),
  };
}

export interface Ctx {
  quick: boolean;
  sizes: Sizes;
  /** Short, lower-case, unique per run: names throwaway databases and topics. */
  runId: string;
  /** Where child processes write CPU profiles (--profile), if anywhere. */
  profileDir?: string;
  log(message: string): void;
  /** Why PostgreSQL / Kafka / MongoDB cannot be used, or undefined (asked once per run). */
  problem(service: 'postgres' | 'kafka' | 'mongo'): Promise<string | undefined>;
}

export function createContext(opts: { quick: boolean; profileDir?: string }): Ctx {
  const runId = `${Date.now().toString(36)}${Math.floor(Math.random() * 1296).toString(36)}`;
  const cache = new Map<string, { value: Promise<string | undefined>; at: number }>();
  const probes = { postgres: postgresProblem, kafka: kafkaProblem, mongo: mongoProblem };
  return {
    quick: opts.quick,
    sizes: withOverrides(opts.quick ? QUICK : FULL),
    runId,
    ...(opts.profileDir ? { profileDir: opts.profileDir } : {}),
    log: (message) => console.log(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}`),
    async problem(service) {
      // Shared services get restarted (and FerretDB stalls) while a run goes on: an answer is
      // trusted for 30 s, then asked again.
      const cached = cache.get(service);
      if (cached && Date.now() - cached.at < 30_000) return cached.value;
      const value = probes[service]();
      cache.set(service, { value, at: Date.now() });
      return value;
    },
  };
}

/** A target is judged only in full runs: --quick checks the harness, not the timings. */
export const judge = (ctx: Ctx, ok: boolean): boolean | undefined => (ctx.quick ? undefined : ok);
