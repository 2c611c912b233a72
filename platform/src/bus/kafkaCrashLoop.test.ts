import { EventEmitter } from 'node:events';
import type { StoredEvent } from '@settle/domain';
import type { EachBatchPayload, Kafka, KafkaMessage, Message } from 'kafkajs';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeMarker, encodeMarker, nextAttempt } from '../attempts.js';
import { silentLogger } from '../logger.js';
import { ERR_BUS_CRASH_LOOP } from './kafkaClient.js';
import { DLQ_HEADERS, encodeEvent } from './kafkaCodec.js';
import {
  attemptCheckpointName,
  defaultConsumerSettings,
  KafkaGroupConsumer,
  type AttemptStore,
} from './kafkaConsumer.js';

describe('nextAttempt', () => {
  it('counts one more only when the last run died on that very event or message', () => {
    expect(nextAttempt(undefined, 7)).toBe(1);
    expect(nextAttempt({ kind: 'batch', position: 7, attempts: 1 }, 7)).toBe(1);
    expect(nextAttempt({ kind: 'event', position: 6, attempts: 2 }, 7)).toBe(1);
    expect(nextAttempt({ kind: 'event', position: 7, attempts: 2 }, 7)).toBe(3);
  });

  it('a Kafka offset round-trips through the marker encoding', () => {
    const marker = { kind: 'event', position: 123_456_789, attempts: 3 } as const;
    expect(decodeMarker(encodeMarker(marker))).toEqual(marker);
  });
});

/**
 * The consumer's crash-loop counting against a stand-in for kafkajs (batches are handed to it by
 * the test) and an in-memory attempt store. A "process death" is a handler that never returns:
 * that consumer is abandoned without `stop()`, as a killed process would be, and a new one starts
 * on the same store with the same uncommitted messages. Against real Kafka, with a handler that
 * really exits the process: kafkaCrashLoop.int.test.ts.
 */
const TOPIC = 'test.request';
const GROUP_ID = 'test.g';
const MARKER = attemptCheckpointName(GROUP_ID, TOPIC, 0);

class FakeConsumer extends EventEmitter {
  readonly events = { GROUP_JOIN: 'group_join', CRASH: 'crash' };
  eachBatch?: (payload: EachBatchPayload) => Promise<void>;
  async connect() {}
  async subscribe() {}
  async run(opts: { eachBatch: (payload: EachBatchPayload) => Promise<void> }) {
    this.eachBatch = opts.eachBatch;
    setImmediate(() => this.emit('group_join', { payload: { memberAssignment: { [TOPIC]: [0] } } }));
  }
  async disconnect() {}
}

const message = (offset: number, streamId: string, type: string): KafkaMessage => {
  const event = {
    id: `e${offset}`,
    streamId,
    type,
    version: 1,
    data: {},
    metadata: { correlationId: 'c', causationId: 'c', actor: 't' },
    streamPosition: 1,
    globalPosition: offset + 1,
    occurredAt: new Date(0).toISOString(),
  } as StoredEvent;
  const m = encodeEvent(event);
  return {
    key: Buffer.from(String(m.key)),
    value: Buffer.from(String(m.value)),
    timestamp: '0',
    attributes: 0,
    offset: String(offset),
    headers: m.headers as KafkaMessage['headers'],
  } as KafkaMessage;
};

const MESSAGES = [
  message(0, 'request-a', 'A'),
  message(1, 'request-b', 'A'),
  message(2, 'request-bad', 'B'),
  message(3, 'request-a', 'B'),
  message(4, 'request-bad', 'C'),
];

describe('Kafka group consumer: crash loops', () => {
  const hung: (() => void)[] = [];
  afterEach(() => {
    for (const release of hung.splice(0)) release();
  });

  /** A fresh attempt store and DLQ for one test, and "processes" consuming with them. */
  function world() {
    const checkpoints = new Map<string, number>();
    const writes: number[] = [];
    const dead: Message[] = [];
    const store: AttemptStore = {
      getCheckpoint: async (name) => checkpoints.get(name) ?? 0,
      saveCheckpoint: async (name, value) => {
        if (name === MARKER) writes.push(value);
        checkpoints.set(name, value);
      },
    };
    const marker = () => decodeMarker(checkpoints.get(MARKER) ?? 0);

    /** One "process": a consumer whose handler hangs (dies) on request-bad/B when `dies`. */
    async function run(dies: boolean) {
      const fake = new FakeConsumer();
      const handled: string[] = [];
      const commits: string[] = [];
      const consumer = new KafkaGroupConsumer({
        kafka: { consumer: () => fake } as unknown as Kafka,
        groupId: GROUP_ID,
        group: 'g',
        topics: [TOPIC],
        streamPrefixes: ['request-'],
        concurrency: 4,
        handler: async (e) => {
          const what = `${e.streamId}/${e.type}`;
          if (dies && what === 'request-bad/B') {
            handled.push(`started ${what}`);
            await new Promise<void>((r) => hung.push(r));
          }
          handled.push(what);
        },
        logger: silentLogger(),
        settings: { ...defaultConsumerSettings, joinTimeoutMs: 5000 },
        sendToDlq: async (_topic, m) => void dead.push(m),
        attempts: store,
      });
      await consumer.start();
      /** kafkajs hands the partition's uncommitted messages over (again). */
      const deliver = () =>
        fake.eachBatch!({
          batch: { topic: TOPIC, partition: 0, messages: MESSAGES },
          resolveOffset: () => undefined,
          heartbeat: async () => undefined,
          commitOffsetsIfNecessary: async (offsets?: { topics: { partitions: { offset: string }[] }[] }) => {
            if (offsets) commits.push(offsets.topics[0]!.partitions[0]!.offset);
          },
          isRunning: () => true,
          isStale: () => false,
        } as unknown as EachBatchPayload);
      const batch = deliver();
      return { consumer, fake, handled, commits, batch, deliver };
    }
    return { checkpoints, writes, dead, marker, run };
  }
  const until = async (check: () => boolean) => {
    await expect.poll(check, { timeout: 2000, interval: 5 }).toBe(true);
  };

  it('counts each death on a message after an unclean stop and dead-letters it unhandled past the limit', async () => {
    const { writes, dead, marker, run } = world();
    // Run 1, normal running: one marker for the whole batch, written before any handler runs.
    const first = await run(true);
    await until(() => first.handled.includes('started request-bad/B'));
    expect(writes.map(decodeMarker)).toEqual([{ kind: 'batch', position: 0, attempts: 1 }]);

    // Runs 2-4: one at a time, each counted before handling; the offsets before it are committed.
    for (const attempts of [1, 2, 3]) {
      const again = await run(true);
      await until(() => again.handled.includes('started request-bad/B'));
      expect(marker()).toEqual({ kind: 'event', position: 2, attempts });
      expect(again.handled).toEqual(['request-a/A', 'request-b/A', 'started request-bad/B']);
      expect(again.commits).toEqual(['1', '2']);
    }

    // Run 5: past the limit, to the DLQ unhandled with the crash-loop error; the rest goes on.
    const last = await run(true);
    await last.batch;
    expect(last.handled).toEqual(['request-a/A', 'request-b/A', 'request-a/B', 'request-bad/C']);
    expect(dead).toHaveLength(1);
    expect(dead[0]!.headers).toMatchObject({
      [DLQ_HEADERS.errorCode]: ERR_BUS_CRASH_LOOP,
      [DLQ_HEADERS.attempts]: '3',
      [DLQ_HEADERS.originalOffset]: '2',
      [DLQ_HEADERS.group]: 'g',
    });
    expect(String(dead[0]!.headers![DLQ_HEADERS.error])).toMatch(/stopped 3 times/);
    expect(last.commits).toEqual(['1', '2', '3', '4', '5']);
    // A clean stop leaves nothing in hand.
    await last.consumer.stop();
    expect(marker()).toBeUndefined();
  });

  it('in normal running writes the marker once per busy period and clears it when idle', async () => {
    const { writes, marker, run } = world();
    const ok = await run(false);
    await ok.batch;
    expect(ok.handled).toHaveLength(MESSAGES.length);
    await until(() => marker() === undefined);
    expect(writes.map(decodeMarker)).toEqual([{ kind: 'batch', position: 0, attempts: 1 }, undefined]);
    await ok.consumer.stop();
  });

  it('reads the marker again when a partition comes back after a rebalance (another member may have died on it)', async () => {
    const { checkpoints, dead, run } = world();
    const member = await run(false);
    await member.batch;
    expect(member.handled).toHaveLength(MESSAGES.length);
    // The partition goes to another member, which dies on offset 2 three times; then it comes back.
    member.fake.emit('group_join', { payload: { memberAssignment: { [TOPIC]: [] } } });
    checkpoints.set(MARKER, encodeMarker({ kind: 'event', position: 2, attempts: 3 }));
    member.fake.emit('group_join', { payload: { memberAssignment: { [TOPIC]: [0] } } });
    member.handled.length = 0;
    await member.deliver();
    expect(member.handled).toEqual(['request-a/A', 'request-b/A', 'request-a/B', 'request-bad/C']);
    expect(dead.map((m) => m.headers![DLQ_HEADERS.errorCode])).toEqual([ERR_BUS_CRASH_LOOP]);
    await member.consumer.stop();
  });
});
