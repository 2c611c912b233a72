import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Admin, Kafka } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../logger.js';
import { electLeader } from './forwarderLeader.js';
import { defaultConsumerSettings, KafkaGroupConsumer } from './kafkaConsumer.js';

/**
 * What the forwarder election and the group consumers do when kafkajs reports a crash, with a
 * stand-in for kafkajs's consumer (a real broker cannot be made to crash a consumer with a
 * non-retriable error on demand; the Kafka outage in cli/src/outages.int.test.ts is where it was
 * seen against a real one: "Failed to find group coordinator" while Kafka was stopped).
 */
const LEASE = 'test.forwarder-lease';
const EVENTS = { GROUP_JOIN: 'group_join', REBALANCING: 'rebalancing', CRASH: 'crash', STOP: 'stop' };

class FakeConsumer extends EventEmitter {
  readonly events = EVENTS;
  connected = false;
  override on(event: string, listener: (e: { payload: unknown }) => void): this {
    return super.on(event, listener);
  }
  async connect() {
    this.connected = true;
  }
  async subscribe() {}
  async run() {
    // The group forms after run() returns.
    setImmediate(() => this.emit(EVENTS.GROUP_JOIN, { payload: { memberAssignment: { [LEASE]: [0] } } }));
  }
  async disconnect() {
    if (!this.connected) return;
    this.connected = false;
    this.emit(EVENTS.STOP, { payload: {} });
  }
  crash(restart: boolean) {
    // kafkajs disconnects a crashed consumer, then reports the crash.
    this.connected = false;
    this.emit(EVENTS.CRASH, { payload: { error: new Error('Failed to find group coordinator'), restart } });
  }
}

function fakeKafka() {
  const consumers: FakeConsumer[] = [];
  const kafka = {
    consumer: () => {
      const c = new FakeConsumer();
      consumers.push(c);
      return c;
    },
  } as unknown as Kafka;
  return { consumers, kafka };
}

function setUp() {
  const { consumers, kafka } = fakeKafka();
  const admin = {
    listTopics: async () => [LEASE],
    fetchTopicMetadata: async () => ({ topics: [{ name: LEASE, partitions: [{ partitionId: 0, leader: 0 }] }] }),
  } as unknown as Admin;
  const changes: boolean[] = [];
  const election = electLeader({
    kafka,
    admin,
    logger: silentLogger(),
    groupId: 'test.forwarder-election',
    leaseTopic: LEASE,
    replicationFactor: 1,
    sessionTimeoutMs: 10_000,
    heartbeatIntervalMs: 1000,
    rebalanceTimeoutMs: 30_000,
    onChange: async (leader) => {
      changes.push(leader);
    },
  });
  return { consumers, changes, election };
}

describe('forwarder leader election', () => {
  it('starts a new consumer after a crash kafkajs does not restart, and leads again once it joins', async () => {
    const { consumers, changes, election } = setUp();
    const leading = await election;
    expect(leading.leader).toBe(true);

    consumers[0]!.crash(false);
    await sleep(10);
    expect(leading.leader).toBe(false);
    // After the first backoff (1 s), a new consumer joins the group.
    await sleep(1300);
    expect(consumers).toHaveLength(2);
    expect(leading.leader).toBe(true);
    expect(changes).toEqual([true, false, true]);
    await leading.stop();
  });

  it('leaves a crash kafkajs restarts to kafkajs', async () => {
    const { consumers, election } = setUp();
    const leading = await election;
    consumers[0]!.crash(true);
    await sleep(1300);
    expect(consumers).toHaveLength(1);
    await leading.stop();
  });

  it('starts nothing more once stopped', async () => {
    const { consumers, election } = setUp();
    const leading = await election;
    consumers[0]!.crash(false);
    await leading.stop();
    await sleep(1300);
    expect(consumers).toHaveLength(1);
    expect(leading.leader).toBe(false);
  });
});

describe('Kafka group consumer', () => {
  const start = async () => {
    const { consumers, kafka } = fakeKafka();
    const consumer = new KafkaGroupConsumer({
      kafka,
      groupId: 'test.dispatcher',
      group: 'dispatcher',
      topics: ['test.request'],
      streamPrefixes: ['request-'],
      concurrency: 4,
      handler: async () => undefined,
      logger: silentLogger(),
      settings: { ...defaultConsumerSettings, joinTimeoutMs: 5000 },
      sendToDlq: async () => undefined,
    });
    await consumer.start();
    return { consumers, consumer };
  };

  it('starts a new kafkajs consumer in the group after a crash kafkajs does not restart', async () => {
    const { consumers, consumer } = await start();
    consumers[0]!.crash(false);
    await sleep(1300);
    expect(consumers).toHaveLength(2);
    expect(consumers[1]!.connected).toBe(true);
    await consumer.stop();
    expect(consumers[1]!.connected).toBe(false);
  });

  it('leaves a crash kafkajs restarts to kafkajs, and starts nothing more once stopped', async () => {
    const { consumers, consumer } = await start();
    consumers[0]!.crash(true);
    await sleep(1300);
    expect(consumers).toHaveLength(1);
    consumers[0]!.crash(false);
    await consumer.stop();
    await sleep(1300);
    expect(consumers).toHaveLength(1);
  });
});
