import { randomUUID } from 'node:crypto';
import type { StoredEvent } from '@settle/domain';
import { Partitioners } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StoreUnavailableError } from '../errors.js';
import { createPgliteClient } from '../eventStore/pgliteClient.js';
import type { EventStore } from '../eventStore/port.js';
import { SqlEventStore } from '../eventStore/sqlEventStore.js';
import { createLogger, silentLogger } from '../logger.js';
import { deleteKafkaRun } from '../testing/kafkaRun.js';
import { describeBusContract } from '../testing/busContract.js';
import { createKafkaClient } from './kafkaClient.js';
import type { KafkaConsumerSettings } from './kafkaConsumer.js';
import { readDeadLetters } from './kafkaDlq.js';
import { KafkaBus } from './kafkaBus.js';
import { parseKafkaBrokers } from './kafkaTopics.js';

/** Kafka from `infra/local/services up kafka` (or SETTLE_TEST_KAFKA=kafka://host:port). */
const brokers = parseKafkaBrokers(process.env.SETTLE_TEST_KAFKA ?? 'kafka://127.0.0.1:9092');
/** Every topic and group of this run carries a unique prefix, deleted afterwards. */
const runPrefix = `settle-test-${randomUUID().slice(0, 8)}.`;
/** SETTLE_TEST_LOG=warn (or info, debug) shows the bus's logs while debugging. */
const logger = process.env.SETTLE_TEST_LOG ? createLogger({ level: process.env.SETTLE_TEST_LOG }) : silentLogger();

/** Group timings tuned for tests (the broker runs with group.initial.rebalance.delay.ms=0). */
const fast: Partial<KafkaConsumerSettings> = {
  sessionTimeoutMs: 6000,
  heartbeatIntervalMs: 250,
  rebalanceTimeoutMs: 10_000,
  maxWaitTimeMs: 100,
  maxAttempts: 3,
  retryInitialDelayMs: 20,
  retryMaxDelayMs: 200,
};

const meta = { correlationId: 'kafka-int', causationId: 'kafka-int', actor: 'test' };

async function newStore(): Promise<EventStore> {
  return SqlEventStore.create(await createPgliteClient(undefined));
}

afterAll(() => deleteKafkaRun(brokers, logger, runPrefix));

describeBusContract(
  `Kafka (${brokers.join(',')}), forwarded from PGlite`,
  async () => {
    const eventStore = await newStore();
    const bus = await KafkaBus.create({ brokers, logger, topicPrefix: `${runPrefix}c.`, eventStore, consumer: fast });
    return {
      bus,
      eventStore,
      readDeadLetters: (streamPrefix) => bus.readDeadLetters(streamPrefix),
      async close() {
        await bus.close();
        await eventStore.close();
      },
    };
  },
  { replicas: true, dlq: { attempts: 3 } },
);

describe('Kafka forwarder and consumer details', () => {
  const topicPrefix = `${runPrefix}f.`;
  const kafka = createKafkaClient({ brokers, logger });
  const admin = kafka.admin();
  let store: EventStore;
  let bus: KafkaBus;

  beforeAll(async () => {
    await admin.connect();
    store = await newStore();
    bus = await KafkaBus.create({ brokers, logger, topicPrefix, eventStore: store, consumer: fast });
  });
  afterAll(async () => {
    await bus?.close();
    await store?.close();
    await admin.disconnect();
  });

  const readTopic = (topic: string) =>
    readDeadLetters(kafka, admin, topic, { groupId: `${runPrefix}reader-${randomUUID()}` });

  it('publishes each event to its category topic: key = stream id, envelope as value, CloudEvents binary headers and traceparent', async () => {
    const category = `fw${randomUUID().slice(0, 6)}`;
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const r = await store.append(
      `${category}-1`,
      [
        {
          id: randomUUID(),
          type: 'ThingHappened',
          data: { amount: 1250 },
          metadata: { ...meta, traceparent, tracestate: 'settle=1' },
        },
      ],
      { expectedRevision: 'no_stream' },
    );
    await expect.poll(() => bus.forwarderPosition ?? 0, { timeout: 20_000 }).toBeGreaterThanOrEqual(r.position);
    // Recorded once acknowledged, just behind the sends.
    await expect
      .poll(() => store.getCheckpoint('forwarder:kafka'), { timeout: 5_000 })
      .toBeGreaterThanOrEqual(r.position);
    const [stored] = await store.readStream(`${category}-1`);
    const messages = await readTopic(`${topicPrefix}${category}`);
    expect(messages).toHaveLength(1);
    const m = messages[0]!;
    expect(m.key).toBe(`${category}-1`);
    expect(m.event).toEqual(stored);
    expect(m.headers).toMatchObject({
      ce_specversion: '1.0',
      ce_id: stored!.id,
      ce_source: 'settle',
      ce_type: 'ThingHappened',
      ce_time: stored!.occurredAt,
      ce_subject: `${category}-1`,
      'content-type': 'application/json',
      traceparent,
      tracestate: 'settle=1',
    });
    const metadata = await admin.fetchTopicMetadata({
      topics: [`${topicPrefix}${category}`, `${topicPrefix}${category}.dlq`],
    });
    expect(metadata.topics.map((t) => t.partitions.length)).toEqual([3, 3]);
  });

  it('resumes from its checkpoint after a restart: every event on the topic once, each stream in order', async () => {
    const category = `rs${randomUUID().slice(0, 6)}`;
    const append = async (n: number) => {
      for (let i = 0; i < n; i++)
        await Promise.all(
          [0, 1, 2, 3].map((s) =>
            store.append(`${category}-${s}`, [{ id: randomUUID(), type: 'T', data: { i }, metadata: meta }], {
              expectedRevision: 'any',
            }),
          ),
        );
    };
    await append(3);
    const head1 = await store.headPosition();
    await expect.poll(() => bus.forwarderPosition ?? 0, { timeout: 20_000 }).toBeGreaterThanOrEqual(head1);
    await bus.close();
    await append(3); // written while no forwarder runs
    bus = await KafkaBus.create({ brokers, logger, topicPrefix, eventStore: store, consumer: fast });
    const head2 = await store.headPosition();
    await expect.poll(() => bus.forwarderPosition ?? 0, { timeout: 20_000 }).toBeGreaterThanOrEqual(head2);
    const messages = await readTopic(`${topicPrefix}${category}`);
    expect(messages).toHaveLength(24);
    expect(new Set(messages.map((m) => m.event!.id)).size).toBe(24);
    for (let s = 0; s < 4; s++) {
      const ofStream = messages
        .filter((m) => m.key === `${category}-${s}`)
        .sort((a, b) => Number(a.offset) - Number(b.offset));
      expect(ofStream.map((m) => m.event!.streamPosition)).toEqual([0, 1, 2, 3, 4, 5]);
      expect(new Set(ofStream.map((m) => m.partition)).size).toBe(1);
    }
  });

  it('runs one forwarder among replicas; a standby takes over when the leader stops, losing and repeating nothing', async () => {
    const prefix = `${runPrefix}e.`;
    const category = `ha${randomUUID().slice(0, 6)}`;
    const shared = store; // a second checkpoint on the same store (creating a PGlite costs seconds)
    const forwarder = { checkpointName: 'forwarder:kafka:replicas' };
    const replicas = [
      await KafkaBus.create({ brokers, logger, topicPrefix: prefix, eventStore: shared, consumer: fast, forwarder }),
      await KafkaBus.create({ brokers, logger, topicPrefix: prefix, eventStore: shared, consumer: fast, forwarder }),
    ];
    try {
      const append = async (from: number, rounds: number) => {
        for (let i = from; i < from + rounds; i++)
          await Promise.all(
            [0, 1, 2].map((s) =>
              shared.append(`${category}-${s}`, [{ id: randomUUID(), type: 'T', data: { i }, metadata: meta }], {
                expectedRevision: 'any',
              }),
            ),
          );
        return shared.headPosition();
      };
      await expect.poll(() => replicas.filter((r) => r.forwarding).length, { timeout: 20_000 }).toBe(1);
      const head1 = await append(0, 3);
      const leader = replicas.find((r) => r.forwarding)!;
      const standby = replicas.find((r) => r !== leader)!;
      await expect.poll(() => leader.forwarderPosition ?? 0, { timeout: 20_000 }).toBeGreaterThanOrEqual(head1);
      expect(standby.forwarding).toBe(false);
      await leader.close();
      const head2 = await append(3, 3);
      await expect.poll(() => standby.forwarding, { timeout: 20_000 }).toBe(true);
      await expect.poll(() => standby.forwarderPosition ?? 0, { timeout: 20_000 }).toBeGreaterThanOrEqual(head2);
      const messages = await readTopic(`${prefix}${category}`);
      expect(messages.map((m) => m.event!.globalPosition).sort((a, b) => a - b)).toEqual(
        (await shared.readAll({ after: 0, limit: 100, streamPrefixes: [`${category}-`] })).map((e) => e.globalPosition),
      );
    } finally {
      await Promise.all(replicas.map((r) => r.close()));
    }
  });

  it('dead-letters a malformed message at once (no retries) and keeps consuming', async () => {
    const category = `mf${randomUUID().slice(0, 6)}`;
    const topic = bus.topicOf(category);
    const seen: StoredEvent[] = [];
    const consumer = await bus.consume({ group: `g-${category}`, streamPrefixes: [`${category}-`] }, async (e) => {
      seen.push(e);
    });
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    await producer.send({ topic, messages: [{ key: `${category}-1`, value: 'not json {' }] });
    await producer.disconnect();
    const r = await store.append(
      `${category}-1`,
      [{ id: randomUUID(), type: 'AfterGarbage', data: {}, metadata: meta }],
      { expectedRevision: 'any' },
    );
    await expect.poll(() => seen.map((e) => e.globalPosition), { timeout: 20_000 }).toEqual([r.position]);
    const letters = await bus.readDeadLetters(category);
    expect(letters).toHaveLength(1);
    expect(letters[0]).toMatchObject({
      errorCode: 'SETTLE_ERR_BUS_MALFORMED_MESSAGE',
      attempts: 1,
      originalTopic: topic,
      value: 'not json {',
    });
    expect(letters[0]!.event).toBeUndefined();
    await consumer.stop();
  });

  it('replays a dead letter to the group that failed it, and only to that group', async () => {
    const category = `rp${randomUUID().slice(0, 6)}`;
    let healed = false;
    let failures = 0;
    const a: string[] = [];
    const b: string[] = [];
    const ca = await bus.consume({ group: `a-${category}`, streamPrefixes: [`${category}-`] }, async (e) => {
      if (!healed) {
        failures++;
        throw new Error('not yet');
      }
      a.push(e.id);
    });
    const cb = await bus.consume({ group: `b-${category}`, streamPrefixes: [`${category}-`] }, async (e) => {
      b.push(e.id);
    });
    const id = randomUUID();
    await store.append(`${category}-1`, [{ id, type: 'T', data: {}, metadata: meta }], {
      expectedRevision: 'no_stream',
    });
    await expect.poll(() => b, { timeout: 20_000 }).toEqual([id]);
    await expect.poll(() => failures, { timeout: 20_000 }).toBe(3);
    let letters: Awaited<ReturnType<KafkaBus['readDeadLetters']>> = [];
    await expect
      .poll(async () => (letters = await bus.readDeadLetters(category)).length, { timeout: 20_000, interval: 300 })
      .toBe(1);
    expect(letters[0]).toMatchObject({ group: `a-${category}`, attempts: 3, error: 'not yet' });
    healed = true;
    await bus.replayDeadLetter(letters[0]!);
    await expect.poll(() => a, { timeout: 20_000 }).toEqual([id]);
    await new Promise((r) => setTimeout(r, 500));
    expect(b).toEqual([id]);
    await Promise.all([ca.stop(), cb.stop()]);
  });

  it('keeps retrying while a part of Settle is down (503-class errors) instead of dead-lettering', async () => {
    const category = `out${randomUUID().slice(0, 6)}`;
    let failures = 0;
    const handled: string[] = [];
    const consumer = await bus.consume({ group: `g-${category}`, streamPrefixes: [`${category}-`] }, async (e) => {
      if (failures < 6) {
        failures++;
        throw new StoreUnavailableError('read store');
      }
      handled.push(e.id);
    });
    const id = randomUUID();
    await store.append(`${category}-1`, [{ id, type: 'T', data: {}, metadata: meta }], {
      expectedRevision: 'no_stream',
    });
    await expect.poll(() => handled, { timeout: 20_000 }).toEqual([id]);
    expect(failures).toBe(6); // twice the DLQ threshold of 3
    expect(await bus.readDeadLetters(category)).toEqual([]);
    await consumer.stop();
  });
});
