import { demoToken, startBareChild, startSettleChild, StartError, type Child } from './children.js';
import { judge, type Ctx } from './context.js';
import { HttpClient } from './httpClient.js';
import { Latencies, now, round, RssSampler, sleep, type Figures } from './measure.js';
import type { Row } from './report.js';
import { SERVICES, tempDir } from './services.js';
import { benchSettleEnv, hasConfigKey } from './settleEnv.js';

const QUERY = 'query ($id: ID!, $p: String) { request(id: $id, minPosition: $p) { id status } }';

interface Outcome {
  figures: Figures;
  failed: number;
  lateStarts: number;
}

/**
 * Open model: sends are scheduled on a clock at `rate` per second whatever the answers, and each
 * latency runs from the *scheduled* send time (no coordinated omission) until GraphQL shows the
 * request: POST /v1/requests → 202 {id, position} → query request(id, minPosition: position),
 * asked again while it answers null or stale.
 */
async function openLoad(
  server: Child,
  opts: { token?: string; rate: number; seconds: number; tag: string; giveUpMs: number },
): Promise<Outcome> {
  const http = new HttpClient(server.url, 1024);
  const headers: Record<string, string> = opts.token ? { authorization: `Bearer ${opts.token}` } : {};
  const latencies = new Latencies();
  const total = Math.round(opts.rate * opts.seconds);
  const interval = 1000 / opts.rate;
  let failed = 0;
  let lateStarts = 0;
  const inFlight = new Set<Promise<void>>();
  const rss = new RssSampler(server.pid);
  const cpu0 = server.cpuSeconds();

  const one = async (i: number, scheduled: number) => {
    try {
      const accepted = await http.request(
        'POST',
        '/v1/requests',
        { amount: 1001 + (i % 97) * 10, currency: 'EUR', reference: `${opts.tag}-${i}` },
        headers,
      );
      const body = accepted.json as { id?: string; position?: string } | undefined;
      if (accepted.status !== 202 || !body?.id) throw new Error(`POST answered ${accepted.status}`);
      while (now() - scheduled < opts.giveUpMs) {
        const res = await http.request(
          'POST',
          '/graphql',
          { query: QUERY, variables: { id: body.id, p: body.position } },
          headers,
        );
        const json = res.json as
          { data?: { request?: { id?: string } | null }; extensions?: { stale?: boolean } } | undefined;
        if (res.status === 200 && json?.data?.request?.id === body.id && !json.extensions?.stale) {
          latencies.add(now() - scheduled);
          return;
        }
        await sleep(2);
      }
      throw new Error('not visible in time');
    } catch {
      // Counted at the give-up time, not left out: a percentile that ignores the failures flatters.
      failed++;
      latencies.add(opts.giveUpMs);
    }
  };

  const start = now();
  let sent = 0;
  while (sent < total) {
    const due = Math.min(total, Math.floor((now() - start) / interval) + 1);
    if (due - sent > 1) lateStarts += due - sent - 1;
    while (sent < due) {
      const scheduled = start + sent * interval;
      const p = one(sent, scheduled).finally(() => inFlight.delete(p));
      inFlight.add(p);
      sent++;
    }
    const next = start + sent * interval;
    await sleep(Math.max(0, next - now() - 0.5));
  }
  const sendSeconds = (now() - start) / 1000;
  await Promise.all(inFlight);
  http.close();
  return {
    failed,
    lateStarts,
    figures: {
      throughput: round((latencies.count - failed) / sendSeconds, 1),
      unit: 'req/s',
      count: latencies.count - failed,
      seconds: round(sendSeconds, 2),
      ...latencies.summary(),
      latencyOf: 'POST sent (scheduled) → visible in GraphQL',
      ...(failed > 0 ? { censoredAtMs: opts.giveUpMs } : {}),
      cpuSeconds: round(server.cpuSeconds() - cpu0),
      cpuOf: 'server process',
      peakRssMb: rss.stop(),
      rssOf: 'server process, sampled',
      extra: { offeredRate: opts.rate, failed },
    },
  };
}

/**
 * B3: end to end at fixed arrival rates, embedded and (when wired) Kafka + MongoDB. Its reference
 * beside it is the bare fastify process answering the same two round trips at the same rates:
 * the floor of the client, loopback HTTP and JSON on this machine at that moment.
 */
export async function runB3(ctx: Ctx): Promise<Row[]> {
  const rows: Row[] = [];
  const { b3Rates, b3KafkaRates, b3Seconds: seconds } = ctx.sizes;
  const rates = [...new Set([...b3Rates, ...b3KafkaRates])].sort((a, b) => a - b);
  const logDir = await tempDir('b3-bare');
  const bare = await startBareChild(logDir.path);
  try {
    // The floors first, with no Settle running beside them to take CPU.
    const floors = new Map<number, Outcome>();
    await openLoad(bare, {
      rate: rates[0]!,
      seconds: 1,
      tag: `${ctx.runId}-b3bare-warm`,
      giveUpMs: ctx.sizes.b3GiveUpMs,
    });
    for (const rate of rates) {
      ctx.log(`B3: bare fastify at ${rate} req/s`);
      floors.set(
        rate,
        await openLoad(bare, { rate, seconds, tag: `${ctx.runId}-b3bare-${rate}`, giveUpMs: ctx.sizes.b3GiveUpMs }),
      );
    }
    const variants: {
      name: string;
      target: number;
      rates: number[];
      /** Runs on servers other people use too. */
      shared?: boolean;
      env?: () => Promise<{ env: Record<string, string>; cleanup(): Promise<void> } | string>;
    }[] = [
      { name: 'embedded', target: 50, rates: b3Rates },
      { name: 'Kafka + MongoDB', target: 250, rates: b3KafkaRates, shared: true, env: () => kafkaMongoEnv(ctx) },
    ];
    for (const variant of variants) {
      const rates = variant.rates;
      const workloadOf = (rate: number) => `end to end at ${rate} req/s, ${variant.name}`;
      const targetText = `p99 ≤ ${variant.target} ms`;
      const judgedRate = Math.max(...rates);
      const setup = variant.env ? await variant.env() : { env: {}, cleanup: async () => undefined };
      if (typeof setup === 'string') {
        for (const rate of rates)
          rows.push({
            id: 'B3',
            workload: workloadOf(rate),
            skipped: setup,
            ...(rate === judgedRate ? { target: targetText } : {}),
          });
        continue;
      }
      const dir = await tempDir('b3');
      let child: Child | undefined;
      try {
        ctx.log(`B3: starting Settle (${variant.name})`);
        try {
          child = await startSettleChild({ dataDir: dir.path, env: { ...benchSettleEnv(), ...setup.env } });
        } catch (error) {
          const reason =
            error instanceof StartError
              ? `Settle did not start with this configuration: ${error.message}`
              : (error as Error).message;
          for (const rate of rates)
            rows.push({
              id: 'B3',
              workload: workloadOf(rate),
              skipped: reason,
              ...(rate === judgedRate ? { target: targetText } : {}),
            });
          continue;
        }
        const token = await demoToken(child.url);
        await openLoad(child, {
          token,
          rate: Math.min(...rates),
          seconds: Math.max(1, seconds / 3),
          tag: `${ctx.runId}-b3warm`,
          giveUpMs: ctx.sizes.b3GiveUpMs,
        });
        let overwhelmed: string | undefined;
        for (const rate of rates) {
          if (overwhelmed) {
            rows.push({
              id: 'B3',
              workload: workloadOf(rate),
              skipped: overwhelmed,
              ...(rate === judgedRate ? { target: targetText } : {}),
            });
            continue;
          }
          await child.quiesce({ maxMs: ctx.sizes.drainMaxMs });
          ctx.log(`B3: Settle ${variant.name} at ${rate} req/s`);
          const s = await openLoad(child, {
            token,
            rate,
            seconds,
            tag: `${ctx.runId}-b3-${variant.name.replace(/\W+/g, '')}-${rate}`,
            giveUpMs: ctx.sizes.b3GiveUpMs,
          });
          // Far past the target already at a lower rate: on shared servers (FerretDB stalls for
          // minutes under such load, for everyone) a higher rate is not tried.
          if (variant.shared && (s.figures.p99 ?? 0) > variant.target * 4)
            overwhelmed = `not run: at ${rate} req/s p99 was already ${Math.round(s.figures.p99 ?? 0).toLocaleString('en-US')} ms (${s.failed} of ${Math.round(rate * seconds)} not visible within ${ctx.sizes.b3GiveUpMs / 1000} s), over 4× the target; a higher rate would only stall the shared FerretDB for everyone`;
          else if (s.failed > rate * seconds * 0.5)
            overwhelmed = `not run: at ${rate} req/s, ${s.failed} of ${Math.round(rate * seconds)} requests were not visible within ${ctx.sizes.b3GiveUpMs / 1000} s`;
          const floor = floors.get(rate)!;
          const judged = rate === judgedRate;
          const notes: string[] = [];
          if (s.failed > 0)
            notes.push(
              `${s.failed} of ${Math.round(rate * seconds)} requests failed or were not visible within ${ctx.sizes.b3GiveUpMs / 1000} s (counted at ${ctx.sizes.b3GiveUpMs / 1000} s in the percentiles, so a percentile at that value means “at least”)`,
            );
          if (s.lateStarts > rate * seconds * 0.01)
            notes.push(`the client sent ${s.lateStarts} requests late (client starved of CPU)`);
          rows.push({
            id: 'B3',
            workload: workloadOf(rate),
            settle: s.figures,
            limitName: 'bare fastify, same two round trips',
            limit: floor.figures,
            ...(floor.figures.p99 && s.figures.p99
              ? {
                  ratio: round(s.figures.p99 / floor.figures.p99, 2),
                  ratioFormat: 'times',
                  ratioMeaning: '(p99 Settle ÷ p99 bare; the target is absolute)',
                }
              : {}),
            ...(judged
              ? { target: targetText, met: judge(ctx, s.failed === 0 && (s.figures.p99 ?? Infinity) <= variant.target) }
              : {}),
            ...(notes.length > 0 ? { note: notes.join('; ') } : {}),
          });
        }
      } finally {
        await child?.stop();
        await setup.cleanup().catch((error: unknown) => ctx.log(`B3 cleanup: ${(error as Error).message}`));
        await dir.remove();
      }
    }
  } finally {
    await bare.stop();
    await logDir.remove();
  }
  return rows;
}

/** Settings for Settle on Kafka + MongoDB with throwaway topics and database, or why not. */
async function kafkaMongoEnv(ctx: Ctx): Promise<{ env: Record<string, string>; cleanup(): Promise<void> } | string> {
  const problems = [await ctx.problem('kafka'), await ctx.problem('mongo')].filter(Boolean);
  if (problems.length > 0) return problems.join('; ');
  // Without a topic prefix, this run would publish into the topics other people's Settle uses.
  if (!hasConfigKey('SETTLE_KAFKA_TOPIC_PREFIX'))
    return 'this build has no SETTLE_KAFKA_TOPIC_PREFIX to keep the run on its own topics';
  const prefix = `bench${ctx.runId}.`;
  const mongoDb = `settle_bench_${ctx.runId}_b3`;
  const mongoUrl = new URL(SERVICES.mongo);
  mongoUrl.pathname = `/${mongoDb}`;
  return {
    env: {
      SETTLE_BUS: `kafka://${SERVICES.kafka.join(',')}`,
      SETTLE_READ_STORE: mongoUrl.toString(),
      SETTLE_KAFKA_TOPIC_PREFIX: prefix,
    },
    async cleanup() {
      const { cleanupKafkaTopics, dropMongoDatabase } = await import('./cleanup.js');
      await cleanupKafkaTopics(prefix).catch((error: unknown) =>
        ctx.log(`B3: topics ${prefix}* not deleted: ${(error as Error).message}`),
      );
      await dropMongoDatabase(mongoDb).catch((error: unknown) =>
        ctx.log(`B3: MongoDB database ${mongoDb} left behind: ${(error as Error).message}`),
      );
    },
  };
}
