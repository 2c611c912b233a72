import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { StoredEvent } from '@settle/domain';
import { Partitioners } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { createPgliteClient } from '../eventStore/pgliteClient.js';
import { SqlEventStore } from '../eventStore/sqlEventStore.js';
import { silentLogger } from '../logger.js';
import { deleteKafkaRun } from '../testing/kafkaRun.js';
import { createKafkaClient, ERR_BUS_CRASH_LOOP } from './kafkaClient.js';
import { encodeEvent } from './kafkaCodec.js';
import { attemptCheckpointName, type KafkaConsumerSettings } from './kafkaConsumer.js';
import { readDeadLetters } from './kafkaDlq.js';
import { dlqTopicFor, ensureTopics, parseKafkaBrokers, topicFor } from './kafkaTopics.js';

/** Kafka from `infra/local/services up kafka` (or SETTLE_TEST_KAFKA=kafka://host:port). */
const brokersUrl = process.env.SETTLE_TEST_KAFKA ?? 'kafka://127.0.0.1:9092';
const brokers = parseKafkaBrokers(brokersUrl);
/** Every topic and group of this run carries a unique prefix, deleted afterwards. */
const runPrefix = `settle-test-${randomUUID().slice(0, 8)}.`;
const logger = silentLogger();
const PARTITIONS = 2;

/** Group timings tuned for tests (the broker's minimum session is 6 s: each restart waits that long for the dead member). */
const fast: Partial<KafkaConsumerSettings> = {
  sessionTimeoutMs: 6000,
  heartbeatIntervalMs: 250,
  rebalanceTimeoutMs: 6000,
  maxWaitTimeMs: 100,
  maxAttempts: 3,
  retryInitialDelayMs: 20,
  retryMaxDelayMs: 200,
};

afterAll(() => deleteKafkaRun(brokers, logger, runPrefix));

describe('Kafka consumers count crash loops', () => {
  it('a handler that kills the process: after 3 counted deaths the message is dead-lettered unhandled (CRASH_LOOP) and everything else is handled', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'settle-kafka-crashloop-'));
    const kafka = createKafkaClient({ brokers, logger });
    const admin = kafka.admin();
    await admin.connect();
    try {
      const topic = topicFor(runPrefix, 'request');
      await ensureTopics(admin, [topic, dlqTopicFor(topic)], { partitions: PARTITIONS, replicationFactor: 1 }, logger);
      // Three streams with the poison in the middle of one of them, plus a few more streams.
      const streams: Record<string, string[]> = {
        'request-bad': ['A', 'B', 'C'],
        'request-good1': ['A', 'B'],
        'request-good2': ['A', 'B', 'C'],
        'request-good3': ['A'],
        'request-good4': ['A', 'B'],
      };
      const events: StoredEvent[] = [];
      const cursor = Object.fromEntries(Object.keys(streams).map((s) => [s, 0]));
      for (let round = 0; round < 3; round++)
        for (const [streamId, types] of Object.entries(streams)) {
          const type = types[round];
          if (!type) continue;
          events.push({
            id: randomUUID(),
            streamId,
            type,
            version: 1,
            data: {},
            metadata: { correlationId: 'c', causationId: 'c', actor: 'test' },
            streamPosition: ++cursor[streamId]!,
            globalPosition: events.length + 1,
            occurredAt: new Date().toISOString(),
          } as StoredEvent);
        }
      const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
      await producer.connect();
      await producer.send({ topic, acks: -1, messages: events.map(encodeEvent) });
      await producer.disconnect();

      // A consumer process (the compiled platform) whose handler kills the process on request-bad/B.
      // Its attempt markers live in an event store on disk (PGlite), as in a deployment.
      const platform = fileURLToPath(new URL('../../dist/index.js', import.meta.url));
      const script = `
        const { appendFileSync } = await import('node:fs');
        const p = await import(${JSON.stringify(platform)});
        const [dir, prefix, brokers] = process.argv.slice(1);
        const store = await p.SqlEventStore.create(await p.createPgliteClient(dir + '/events'));
        const bus = await p.KafkaBus.create({
          brokers: p.parseKafkaBrokers(brokers), logger: p.silentLogger(), topicPrefix: prefix,
          attemptStore: store, partitions: ${PARTITIONS}, consumer: ${JSON.stringify(fast)},
        });
        await bus.consume({ group: 'g', streamPrefixes: ['request-'], concurrency: 8 }, async (e) => {
          const what = e.streamId + '/' + e.type;
          if (what === 'request-bad/B') {
            appendFileSync(dir + '/started', what + '\\n');
            process.exit(9);
          }
          appendFileSync(dir + '/handled', what + '\\n');
        });
        // Done once the group's committed offsets reach the end of every partition.
        const kafka = p.createKafkaClient({ brokers: p.parseKafkaBrokers(brokers), logger: p.silentLogger() });
        const admin = kafka.admin();
        await admin.connect();
        const topic = prefix + 'request';
        for (;;) {
          const high = await admin.fetchTopicOffsets(topic);
          const [committed] = await admin.fetchOffsets({ groupId: prefix + 'g', topics: [topic] });
          const at = new Map(committed.partitions.map((c) => [c.partition, BigInt(c.offset)]));
          if (high.every((h) => (at.get(h.partition) ?? -1n) >= BigInt(h.high))) break;
          await new Promise((r) => setTimeout(r, 200));
        }
        await admin.disconnect();
        await bus.close();
        await store.close();`;
      const exits: number[] = [];
      for (let run = 0; run < 8 && exits.at(-1) !== 0; run++)
        exits.push(
          await new Promise<number>((resolve) =>
            execFile(
              process.execPath,
              ['--input-type=module', '-e', script, dir, runPrefix, brokersUrl],
              { timeout: 90_000 },
              (error) => resolve(error ? Number((error as { code?: number }).code ?? 1) : 0),
            ),
          ),
        );
      // Died once in normal running (marker of a batch in hand), then three times on B, each death
      // counted before handling (careful mode), then dead-lettered it unhandled and finished.
      expect(exits).toEqual([9, 9, 9, 9, 0]);
      const lines = async (name: string) => (await readFile(join(dir, name), 'utf8')).trim().split('\n');
      // The handler saw B once per death and never after it was dead-lettered.
      expect(await lines('started')).toEqual(['request-bad/B', 'request-bad/B', 'request-bad/B', 'request-bad/B']);
      const handled = await lines('handled');
      // At least once: every other message was handled (some more than once, after the kills).
      const expected = events.map((e) => `${e.streamId}/${e.type}`).filter((w) => w !== 'request-bad/B');
      expect(new Set(handled)).toEqual(new Set(expected));

      const letters = await readDeadLetters(kafka, admin, dlqTopicFor(topic), { groupId: `${runPrefix}reader` });
      expect(letters).toHaveLength(1);
      expect(letters[0]).toMatchObject({
        errorCode: ERR_BUS_CRASH_LOOP,
        error: expect.stringMatching(/stopped 3 times/),
        attempts: 3,
        group: 'g',
        originalTopic: topic,
        event: { streamId: 'request-bad', type: 'B' },
      });

      // The last run stopped cleanly: the partition it worked on has no marker of work in hand left.
      // (A partition it received nothing from keeps what the killed run left until its next message.)
      const store = await SqlEventStore.create(await createPgliteClient(join(dir, 'events')));
      try {
        const name = attemptCheckpointName(`${runPrefix}g`, topic, letters[0]!.originalPartition);
        expect(await store.getCheckpoint(name)).toBe(0);
      } finally {
        await store.close();
      }
    } finally {
      await admin.disconnect();
      await rm(dir, { recursive: true, force: true });
    }
  }, 300_000);
});
