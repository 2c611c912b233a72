import type { Admin, Consumer, Kafka } from 'kafkajs';
import type { Logger } from '../logger.js';
import { ensureTopics } from './kafkaTopics.js';

export interface LeaderElectionOptions {
  kafka: Kafka;
  admin: Admin;
  logger: Logger;
  /** Consumer group of the candidates. */
  groupId: string;
  /** A one-partition topic: the member assigned partition 0 leads. Nothing is ever written to it. */
  leaseTopic: string;
  replicationFactor: number;
  sessionTimeoutMs: number;
  heartbeatIntervalMs: number;
  rebalanceTimeoutMs: number;
  /** Called (serially) when leadership is gained or lost. */
  onChange(leader: boolean): Promise<void>;
}

export interface LeaderElection {
  readonly leader: boolean;
  stop(): Promise<void>;
}

/**
 * Leader election on Kafka's own group membership, so replicas need nothing else (no Redis): every
 * candidate joins one group on a one-partition topic; whoever is assigned the partition leads.
 * Leadership is dropped as soon as a rebalance starts and taken only after it completes, but a
 * stalled leader may act for a moment after losing its session: a failover can publish a batch
 * twice (never skip one), which consumers tolerate (at least once).
 */
export async function electLeader(opts: LeaderElectionOptions): Promise<LeaderElection> {
  await ensureTopics(
    opts.admin,
    [opts.leaseTopic],
    { partitions: 1, replicationFactor: opts.replicationFactor },
    opts.logger,
  );
  const consumer: Consumer = opts.kafka.consumer({
    groupId: opts.groupId,
    sessionTimeout: opts.sessionTimeoutMs,
    heartbeatInterval: opts.heartbeatIntervalMs,
    rebalanceTimeout: opts.rebalanceTimeoutMs,
    maxWaitTimeInMs: Math.min(1000, opts.heartbeatIntervalMs),
    allowAutoTopicCreation: false,
  });
  let leader = false;
  let chain = Promise.resolve();
  const set = (next: boolean, why: string) => {
    chain = chain.then(async () => {
      if (leader === next) return;
      leader = next;
      opts.logger.info(
        { group: opts.groupId, leader, why },
        leader ? 'elected forwarder leader' : 'no longer forwarder leader',
      );
      try {
        await opts.onChange(next);
      } catch (error) {
        opts.logger.error({ err: error }, 'leadership change handler failed');
      }
    });
    return chain;
  };
  let onFirstJoin!: () => void;
  const joined = new Promise<void>((resolve) => (onFirstJoin = resolve));
  consumer.on(consumer.events.GROUP_JOIN, (e) => {
    const partitions = e.payload.memberAssignment[opts.leaseTopic] ?? [];
    void set(partitions.includes(0), 'group joined').then(onFirstJoin);
  });
  consumer.on(consumer.events.REBALANCING, () => void set(false, 'rebalancing'));
  consumer.on(consumer.events.CRASH, () => void set(false, 'crashed'));
  consumer.on(consumer.events.STOP, () => void set(false, 'stopped'));
  await consumer.connect();
  await consumer.subscribe({ topics: [opts.leaseTopic], fromBeginning: false });
  await consumer.run({ eachMessage: async () => undefined });
  await joined;
  return {
    get leader() {
      return leader;
    },
    async stop() {
      await consumer.disconnect();
      await set(false, 'stopped');
    },
  };
}
