import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Admin, Kafka } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../logger.js';
import { electLeader } from './forwarderLeader.js';

/**
 * The election's reaction to what kafkajs reports, with a stand-in for kafkajs's consumer (a real
 * broker cannot be made to crash a consumer with a non-retriable error on demand; the Kafka outage
 * in cli/src/outages.int.test.ts is where it was seen against a real one).
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

function setUp() {
  const consumers: FakeConsumer[] = [];
  const kafka = {
    consumer: () => {
      const c = new FakeConsumer();
      consumers.push(c);
      return c;
    },
  } as unknown as Kafka;
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
