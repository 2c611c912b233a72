import { Kafka, logLevel, Partitioners, type Message } from 'kafkajs';
import type { StoredEvent } from '@settle/domain';
import { createPgClient, createPgliteClient, silentLogger, SqlEventStore, type SqlClient } from '@settle/platform';
import { cleanupKafkaTopics } from './cleanup.js';
import { judge, type Ctx } from './context.js';
import { LogGenerator } from './events.js';
import { cpuSince, Latencies, now, round, RssSampler, sleep, type Figures } from './measure.js';
import { loadPlatformModule, type ForwarderModule, type KafkaCodecModule } from './optional.js';
import type { Row } from './report.js';
import { SERVICES, seedEvents, tempDir, throwawayPostgres } from './services.js';
import { timedStore } from './timedStore.js';

const BATCH = 500;
const PARTITIONS = 3;
const TARGET = 0.7;

/** The raw limit: one idempotent producer configured as the forwarder's, the same messages in the same batches. */
async function rawProducer(kafka: Kafka, topic: string, batches: Message[][]): Promise<Figures> {
  const producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  const latencies = new Latencies();
  const rss = new RssSampler();
  const cpu = process.cpuUsage();
  const t0 = now();
  await producer.connect();
  let n = 0;
  for (const messages of batches) {
    const t = now();
    await producer.sendBatch({ acks: -1, topicMessages: [{ topic, messages }] });
    latencies.add(now() - t);
    n += messages.length;
  }
  const seconds = (now() - t0) / 1000;
  await producer.disconnect();
  return {
    throughput: round(n / seconds, 1),
    unit: 'events/s',
    count: n,
    seconds: round(seconds, 2),
    ...latencies.summary(),
    latencyOf: `one sendBatch of ${BATCH}`,
    cpuSeconds: cpuSince(cpu),
    cpuOf: 'bench process',
    peakRssMb: rss.stop(),
    rssOf: 'bench process',
  };
}

/** B5: the Kafka forwarder draining a seeded log vs a raw producer sending the same messages. */
export async function runB5(ctx: Ctx): Promise<Row[]> {
  const workload = `Kafka forwarder, ${ctx.sizes.b5Events.toLocaleString('en-US')} events`;
  const target = `≥ ${TARGET * 100}% of the raw producer`;
  const forwarderModule = await loadPlatformModule<ForwarderModule>(
    'bus/forwarder.js',
    'platform/src/bus/forwarder.ts',
  );
  const codec = await loadPlatformModule<KafkaCodecModule>('bus/kafkaCodec.js', 'platform/src/bus/kafkaCodec.ts');
  const problem =
    typeof forwarderModule === 'string'
      ? forwarderModule
      : typeof codec === 'string'
        ? codec
        : await ctx.problem('kafka');
  if (problem) return [{ id: 'B5', workload, skipped: problem, target }];
  const { createForwarder } = forwarderModule as ForwarderModule;
  const { encodeEvent } = codec as KafkaCodecModule;

  const prefix = `bench${ctx.runId}b5.`;
  const cleanups: (() => Promise<void>)[] = [() => cleanupKafkaTopics(prefix)];
  try {
    // The source log: PostgreSQL when there is one (the production pairing with Kafka), else PGlite.
    let client: SqlClient;
    let sourceName: string;
    if (!(await ctx.problem('postgres'))) {
      const db = await throwawayPostgres(`settle_bench_${ctx.runId}_b5`);
      cleanups.push(() => db.drop());
      client = await createPgClient(db.url);
      sourceName = 'PostgreSQL';
    } else {
      const dir = await tempDir('b5-pglite');
      cleanups.push(() => dir.remove());
      client = await createPgliteClient(dir.path);
      sourceName = 'PGlite';
    }
    const store = await SqlEventStore.create(client);
    cleanups.unshift(() => store.close());
    const generator = new LogGenerator({ expected: ctx.sizes.b5Events, seed: 5 });
    ctx.log(`B5: seeding ${ctx.sizes.b5Events} events into ${sourceName}`);
    while (generator.count < ctx.sizes.b5Events)
      await seedEvents(client, generator.next(Math.min(10_000, ctx.sizes.b5Events - generator.count)));
    await client.exec('ANALYZE settle_events');
    const head = await store.headPosition();

    // The same messages the forwarder will send, in its batches (read and encoded before timing).
    const events: StoredEvent[] = [];
    for (let after = 0; ;) {
      const batch = await store.readAll({ after, limit: BATCH, streamPrefixes: ['request-'] });
      if (batch.length === 0) break;
      events.push(...batch);
      after = batch[batch.length - 1]!.globalPosition;
    }
    const batches: Message[][] = [];
    for (let i = 0; i < events.length; i += BATCH) batches.push(events.slice(i, i + BATCH).map(encodeEvent));

    const kafka = new Kafka({ clientId: 'settle-bench', brokers: SERVICES.kafka, logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    const forwarderTopic = `${prefix}request`;
    const rawTopic = `${prefix}raw.request`;
    const warmTopic = `${prefix}warm.request`;
    await admin.createTopics({
      waitForLeaders: true,
      topics: [forwarderTopic, `${forwarderTopic}.dlq`, rawTopic, warmTopic].map((topic) => ({
        topic,
        numPartitions: PARTITIONS,
        replicationFactor: 1,
      })),
    });
    await admin.disconnect();

    // Warm-up (JIT, broker): a tenth of the messages to a topic of their own, not measured.
    await rawProducer(kafka, warmTopic, batches.slice(0, Math.max(1, Math.ceil(batches.length / 10))));

    ctx.log(`B5: forwarder`);
    const latencies = new Latencies();
    const forwarder = createForwarder({
      eventStore: timedStore(store, latencies),
      kafka,
      logger: silentLogger(),
      topicPrefix: prefix,
      streamPrefixes: ['request-'],
      partitions: PARTITIONS,
      replicationFactor: 1,
      batchSize: BATCH,
      checkpointName: `bench-${ctx.runId}`,
    });
    const rss = new RssSampler();
    const cpu = process.cpuUsage();
    const t0 = now();
    await forwarder.start();
    const deadline = t0 + 300_000;
    while (forwarder.position < head && now() < deadline) await sleep(2);
    const seconds = (now() - t0) / 1000;
    const forwarded =
      forwarder.position >= head ? events.length : events.filter((e) => e.globalPosition <= forwarder.position).length;
    const settle: Figures = {
      throughput: round(forwarded / seconds, 1),
      unit: 'events/s',
      count: forwarded,
      seconds: round(seconds, 2),
      ...latencies.summary(),
      latencyOf: `one batch of ${BATCH}: publish + checkpoint`,
      cpuSeconds: cpuSince(cpu),
      cpuOf: 'bench process (forwarder + store client)',
      peakRssMb: rss.stop(),
      rssOf: 'bench process',
    };
    await forwarder.stop();

    ctx.log(`B5: raw producer`);
    const limit = await rawProducer(kafka, rawTopic, batches);
    const ratio = settle.throughput! / limit.throughput!;
    return [
      {
        id: 'B5',
        workload,
        settle,
        limitName: `raw kafkajs idempotent producer, same messages, sendBatch of ${BATCH}, acks -1`,
        limit,
        ratio: round(ratio, 3),
        target,
        met: judge(ctx, forwarded === events.length && ratio >= TARGET),
        note: `${PARTITIONS} partitions; source log in ${sourceName}; both include connecting the producer${forwarded < events.length ? `; the forwarder published only ${forwarded} of ${events.length} in 300 s` : ''}`,
      },
    ];
  } finally {
    for (const c of cleanups) await c().catch((error: unknown) => ctx.log(`B5 cleanup: ${(error as Error).message}`));
  }
}
