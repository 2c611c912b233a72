import autocannon from 'autocannon';
import pg from 'pg';
import { demoToken, startBareChild, startSettleChild, type Child } from './children.js';
import { judge, type Ctx } from './context.js';
import { cpuSince, Latencies, procMemoryMb, procsCpuSeconds, round, RssSampler, type Figures } from './measure.js';
import type { Row } from './report.js';
import { SERVICES, tempDir, throwawayPostgres } from './services.js';
import { benchSettleEnv } from './settleEnv.js';

const CONNECTIONS = [16, 64];
const RSS_TARGET_MB = 300;

interface LoadResult {
  figures: Figures;
  /** Peak RSS of the server during the load, sampled. */
  serverPeakRssMb: number;
}

/**
 * autocannon against POST /v1/requests: `connections` keep-alive connections, one request in
 * flight on each, every body with a unique reference (no idempotency replays), for `seconds`.
 * Counts only 202s as throughput; latencies are every response's.
 */
async function load(
  server: Child,
  opts: { token?: string; connections: number; seconds: number; tag: string; serverPids?: () => Promise<number[]> },
): Promise<LoadResult> {
  const latencies = new Latencies();
  let accepted = 0;
  const statuses = new Map<number, number>();
  let n = 0;
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  const rss = new RssSampler(server.pid);
  const serverPids = (await opts.serverPids?.()) ?? [];
  const serverCpu0 = procsCpuSeconds(serverPids);
  const cpu0 = server.cpuSeconds();
  const benchCpu = process.cpuUsage();
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url: server.url,
        connections: opts.connections,
        duration: opts.seconds,
        timeout: 30,
        requests: [
          {
            method: 'POST',
            path: '/v1/requests',
            headers,
            // Amounts end in 1: the sandbox treats endings 402/408/500/503 specially.
            setupRequest: (req) => ({
              ...req,
              body: JSON.stringify({ amount: 1001 + (n % 97) * 10, currency: 'EUR', reference: `${opts.tag}-${n++}` }),
            }),
          },
        ],
      },
      (err, res) => (err ? reject(err) : resolve(res)),
    );
    instance.on('response', (_client: unknown, status: number, _bytes: number, ms: number) => {
      latencies.add(ms);
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
      if (status === 202) accepted++;
    });
  });
  const cpu = server.cpuSeconds() - cpu0;
  const serverPeakRssMb = rss.stop();
  const other = [...statuses].filter(([s]) => s !== 202);
  return {
    serverPeakRssMb,
    figures: {
      throughput: round(accepted / result.duration, 1),
      unit: 'req/s',
      count: accepted,
      seconds: round(result.duration, 2),
      ...latencies.summary(),
      latencyOf: 'one request',
      cpuSeconds: round(cpu),
      cpuOf: 'server process',
      ...(serverPids.length > 0 ? { serverCpuSeconds: round(procsCpuSeconds(serverPids) - serverCpu0) } : {}),
      peakRssMb: serverPeakRssMb,
      rssOf: 'server process, sampled',
      extra: {
        connections: opts.connections,
        benchCpuSeconds: cpuSince(benchCpu),
        errors: result.errors,
        timeouts: result.timeouts,
        ...(other.length > 0 ? { otherStatuses: other.map(([s, c]) => `${s}×${c}`).join(' ') } : {}),
      },
    },
  };
}

interface DbStats {
  transactions: number;
  rowsRead: number;
  rowsWritten: number;
  /** Per table (sequential scans) and per index (index scans): scans and the rows or entries they read. */
  scans: Record<string, { scans: number; rows: number }>;
}

interface Variant {
  name: 'embedded' | 'PostgreSQL';
  child: Child;
  token: string;
  /** Memory right after start-up (before any load). */
  afterStart?: { rss: number; hwm: number };
  serverPids?: () => Promise<number[]>;
  /** PostgreSQL's own counters for the throwaway database (pg_stat_database). */
  dbStats?: () => Promise<DbStats>;
  loads: Map<number, LoadResult>;
  cleanup(): Promise<void>;
}

/** Which tables (sequential scans) and indexes (index scans) a database reads, and how much. */
async function tableScans(url: string): Promise<DbStats['scans']> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const rows = (
      await c.query<{ name: string; scans: string; rows: string }>(
        `SELECT relname || ' (seq scan)' AS name, seq_scan AS scans, seq_tup_read AS rows FROM pg_stat_user_tables
         UNION ALL
         SELECT indexrelname || ' (index)', idx_scan, idx_tup_read FROM pg_stat_user_indexes`,
      )
    ).rows;
    return Object.fromEntries(rows.map((r) => [r.name, { scans: Number(r.scans), rows: Number(r.rows) }]));
  } finally {
    await c.end();
  }
}

async function startVariant(ctx: Ctx, name: Variant['name']): Promise<Variant> {
  const dir = await tempDir(`b2-${name === 'embedded' ? 'embedded' : 'pg'}`);
  const cleanups: (() => Promise<void>)[] = [() => dir.remove()];
  const env = benchSettleEnv();
  let serverPids: (() => Promise<number[]>) | undefined;
  let dbStats: (() => Promise<DbStats>) | undefined;
  try {
    if (name === 'PostgreSQL') {
      const dbName = `settle_bench_${ctx.runId}_b2`;
      const db = await throwawayPostgres(dbName);
      cleanups.unshift(() => db.drop());
      env.SETTLE_EVENT_STORE = db.url;
      serverPids = async () => {
        const c = new pg.Client({ connectionString: SERVICES.postgres });
        await c.connect();
        try {
          return (
            await c.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = $1', [dbName])
          ).rows.map((r) => r.pid);
        } finally {
          await c.end();
        }
      };
      dbStats = async () => {
        const c = new pg.Client({ connectionString: SERVICES.postgres });
        await c.connect();
        try {
          // Counters reach the shared statistics within about a second of a transaction's end.
          await c.query('SELECT pg_sleep(1.1)');
          const r = (
            await c.query<{ x: string; r: string; w: string }>(
              `SELECT xact_commit + xact_rollback AS x, tup_returned + tup_fetched AS r, tup_inserted + tup_updated + tup_deleted AS w
               FROM pg_stat_database WHERE datname = $1`,
              [dbName],
            )
          ).rows[0];
          return {
            transactions: Number(r?.x ?? 0),
            rowsRead: Number(r?.r ?? 0),
            rowsWritten: Number(r?.w ?? 0),
            scans: await tableScans(db.url),
          };
        } finally {
          await c.end();
        }
      };
    }
    const profile = ctx.profileDir
      ? {
          cpuProfile: {
            dir: ctx.profileDir,
            name: `b2-${name === 'embedded' ? 'embedded' : 'postgres'}-${ctx.runId}.cpuprofile`,
          },
        }
      : {};
    const child = await startSettleChild({ dataDir: dir.path, env, ...profile });
    cleanups.unshift(() => child.stop());
    const token = await demoToken(child.url);
    const afterStart = procMemoryMb(child.pid);
    return {
      name,
      child,
      token,
      ...(afterStart ? { afterStart } : {}),
      ...(serverPids ? { serverPids } : {}),
      ...(dbStats ? { dbStats } : {}),
      loads: new Map(),
      cleanup: async () => {
        for (const c of cleanups) await c().catch(() => undefined);
      },
    };
  } catch (error) {
    for (const c of cleanups) await c().catch(() => undefined);
    throw error;
  }
}

/**
 * B2 (and B6): Settle's POST /v1/requests (all-in-one process, embedded and PostgreSQL) vs a bare
 * fastify route with the same schema, at 16 and 64 connections, interleaved per connection count
 * so drift on the shared machine hits both alike. B6 is the all-in-one process's peak RSS.
 */
export async function runB2(ctx: Ctx): Promise<Row[]> {
  const seconds = ctx.sizes.b2Seconds;
  const logDir = await tempDir('b2-bare');
  const bare = await startBareChild(logDir.path);
  const bareLoads = new Map<number, LoadResult>();
  const variants: Variant[] = [];
  const skipped = new Map<Variant['name'], string>();
  try {
    // Both start at once: start-up is mostly waiting (PGlite's initdb, connections).
    await Promise.all(
      (['embedded', 'PostgreSQL'] as const).map(async (name) => {
        const problem = name === 'PostgreSQL' ? await ctx.problem('postgres') : undefined;
        if (problem) return void skipped.set(name, problem);
        try {
          ctx.log(`B2: starting Settle (${name})`);
          variants.push(await startVariant(ctx, name));
        } catch (error) {
          skipped.set(name, `Settle (${name}) did not start: ${(error as Error).message}`);
        }
      }),
    );
    variants.sort((a, b) => a.name.localeCompare(b.name));
    // Warm-up: JIT, connection pools, first stream writes; not measured.
    const warm = Math.max(1, Math.round(seconds / 3));
    await load(bare, { connections: 16, seconds: warm, tag: `${ctx.runId}-warm-bare` });
    for (const v of variants) {
      await load(v.child, { token: v.token, connections: 16, seconds: warm, tag: `${ctx.runId}-warm-${v.name}` });
      await v.child.quiesce({ maxMs: ctx.sizes.drainMaxMs });
    }
    for (const c of CONNECTIONS) {
      ctx.log(`B2: bare fastify, ${c} connections`);
      bareLoads.set(c, await load(bare, { connections: c, seconds, tag: `${ctx.runId}-bare-${c}` }));
      for (const v of variants) {
        // Settle keeps working after the 202s (dispatch, callbacks, projections): let it drain first.
        await v.child.quiesce({ maxMs: ctx.sizes.drainMaxMs });
        ctx.log(`B2: Settle ${v.name}, ${c} connections`);
        const before = await v.dbStats?.();
        const cpuStart = v.child.cpuSeconds();
        const dbPids = (await v.serverPids?.()) ?? [];
        const dbCpuStart = procsCpuSeconds(dbPids);
        const result = await load(v.child, {
          token: v.token,
          connections: c,
          seconds,
          tag: `${ctx.runId}-${v.name}-${c}`,
          ...(v.serverPids ? { serverPids: v.serverPids } : {}),
        });
        // How long the accepted work takes to drain after the load stops, and what it cost the database.
        const drainStart = Date.now();
        const drained = await v.child.quiesce({ maxMs: ctx.sizes.drainMaxMs });
        const extra = (result.figures.extra ??= {});
        extra.drainSecondsAfterLoad = round((Date.now() - drainStart) / 1000, 1);
        extra.drained = drained;
        // CPU per accepted request, counting the work it set off (drained after the load).
        if (result.figures.count > 0) {
          extra.cpuMsPerRequest = round(((v.child.cpuSeconds() - cpuStart) * 1000) / result.figures.count, 2);
          if (dbPids.length > 0)
            extra.dbCpuMsPerRequest = round(((procsCpuSeconds(dbPids) - dbCpuStart) * 1000) / result.figures.count, 2);
        }
        const after = await v.dbStats?.();
        if (before && after && result.figures.count > 0) {
          const per = (k: 'transactions' | 'rowsRead' | 'rowsWritten') =>
            round((after[k] - before[k]) / result.figures.count, 1);
          extra.pgTransactionsPerRequest = per('transactions');
          extra.pgRowsReadPerRequest = per('rowsRead');
          extra.pgRowsWrittenPerRequest = per('rowsWritten');
          const scans = Object.entries(after.scans)
            .map(([name, a]) => ({
              name,
              scans: a.scans - (before.scans[name]?.scans ?? 0),
              rows: a.rows - (before.scans[name]?.rows ?? 0),
            }))
            .filter((t) => t.rows > 0)
            .sort((x, y) => y.rows - x.rows)
            .slice(0, 3);
          if (scans.length > 0)
            extra.pgReadsPerRequest = scans
              .map(
                (t) =>
                  `${t.name}: ${round(t.scans / result.figures.count, 1)} scans reading ${round(t.rows / result.figures.count, 0)} rows`,
              )
              .join(', ');
        }
        v.loads.set(c, result);
      }
    }
    const bareHwm = procMemoryMb(bare.pid)?.hwm;

    const rows: Row[] = [];
    for (const name of ['embedded', 'PostgreSQL'] as const) {
      const v = variants.find((x) => x.name === name);
      for (const c of CONNECTIONS) {
        const workload = `POST /v1/requests, ${name}, ${c} connections`;
        if (!v) {
          rows.push({
            id: 'B2',
            workload,
            skipped: skipped.get(name) ?? 'not started',
            target: '≥ 50% of the bare route',
          });
          continue;
        }
        const s = v.loads.get(c)!.figures;
        const l = bareLoads.get(c)!.figures;
        const bareCpuMs =
          l.count > 0 && l.cpuSeconds !== undefined ? round((l.cpuSeconds * 1000) / l.count, 3) : undefined;
        const ratio = s.throughput! / l.throughput!;
        const extra = s.extra ?? {};
        rows.push({
          id: 'B2',
          workload,
          settle: s,
          limitName: 'bare fastify route, same schema, 202 without storing',
          limit: l,
          ratio: round(ratio, 3),
          target: '≥ 50% of the bare route',
          met: judge(ctx, ratio >= 0.5),
          note: [
            `CPU per accepted request, including the work it set off: ${extra.cpuMsPerRequest ?? '?'} ms in the Settle process${extra.dbCpuMsPerRequest !== undefined ? ` + ${extra.dbCpuMsPerRequest} ms in PostgreSQL` : ''} (bare route: ${bareCpuMs ?? '?'} ms)`,
            extra.drained === false
              ? `after the load, the accepted work was still draining (dispatch, callbacks, projections) when the ${ctx.sizes.drainMaxMs / 1000} s wait ended`
              : `after the load, the accepted work took ${extra.drainSecondsAfterLoad ?? '?'} s more to drain (dispatch, callbacks, projections)`,
            ...(extra.pgTransactionsPerRequest !== undefined
              ? [
                  `PostgreSQL per accepted request, including that work: ${extra.pgTransactionsPerRequest} transactions, ${extra.pgRowsReadPerRequest} rows read, ${extra.pgRowsWrittenPerRequest} rows written` +
                    (extra.pgReadsPerRequest ? `; most read per request: ${extra.pgReadsPerRequest}` : ''),
                ]
              : []),
            ...(extra.otherStatuses || extra.errors
              ? [`non-202 answers: ${extra.otherStatuses ?? 'none'}; socket errors ${extra.errors}`]
              : []),
          ].join('; '),
        });
      }
    }
    for (const name of ['embedded', 'PostgreSQL'] as const) {
      const v = variants.find((x) => x.name === name);
      const workload = `peak RSS of the all-in-one process during B2, ${name}`;
      if (!v) {
        rows.push({ id: 'B6', workload, skipped: skipped.get(name) ?? 'not started', target: `≤ ${RSS_TARGET_MB} MB` });
        continue;
      }
      const mem = procMemoryMb(v.child.pid);
      const sampled = Math.max(...[...v.loads.values()].map((x) => x.serverPeakRssMb));
      // VmHWM covers start-up and warm-up too: the process's true peak so far.
      const peak = round(Math.max(mem?.hwm ?? 0, sampled), 1);
      rows.push({
        id: 'B6',
        workload,
        settle: {
          unit: 'MB',
          count: 1,
          seconds: 0,
          peakRssMb: peak,
          rssOf: 'VmHWM of the Settle process',
          extra: {
            sampledPeakDuringLoadMb: sampled,
            ...(v.afterStart
              ? { rssAfterStartMb: round(v.afterStart.rss, 1), hwmAfterStartMb: round(v.afterStart.hwm, 1) }
              : {}),
          },
        },
        limitName: 'bare fastify process under the same load',
        ...(bareHwm !== undefined
          ? {
              limit: {
                unit: 'MB',
                count: 1,
                seconds: 0,
                peakRssMb: round(bareHwm, 1),
                rssOf: 'VmHWM of the bare process',
              },
            }
          : {}),
        ...(bareHwm !== undefined
          ? {
              ratio: round(peak / bareHwm, 2),
              ratioFormat: 'times' as const,
              ratioMeaning: '(Settle ÷ bare; the target is absolute)',
            }
          : {}),
        target: `≤ ${RSS_TARGET_MB} MB`,
        met: judge(ctx, peak <= RSS_TARGET_MB),
        note: `VmHWM ${peak} MB (after start-up, before any load: RSS ${v.afterStart ? round(v.afterStart.rss, 0) : '?'} MB, VmHWM ${v.afterStart ? round(v.afterStart.hwm, 0) : '?'} MB); highest RSS sampled during the loads ${sampled} MB`,
      });
    }
    return rows;
  } finally {
    await bare.stop();
    for (const v of variants) await v.cleanup();
    await logDir.remove();
  }
}
