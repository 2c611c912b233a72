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
  let stopped = false;
  let consumer: Consumer | undefined;
  let restartTimer: NodeJS.Timeout | undefined;
  let restarts = 0;

  const start = async (): Promise<void> => {
    const c: Consumer = opts.kafka.consumer({
      groupId: opts.groupId,
      sessionTimeout: opts.sessionTimeoutMs,
      heartbeatInterval: opts.heartbeatIntervalMs,
      rebalanceTimeout: opts.rebalanceTimeoutMs,
      maxWaitTimeInMs: Math.min(1000, opts.heartbeatIntervalMs),
      allowAutoTopicCreation: false,
    });
    consumer = c;
    c.on(c.events.GROUP_JOIN, (e) => {
      restarts = 0;
      const partitions = e.payload.memberAssignment[opts.leaseTopic] ?? [];
      void set(partitions.includes(0), 'group joined').then(onFirstJoin);
    });
    c.on(c.events.REBALANCING, () => void set(false, 'rebalancing'));
    c.on(c.events.CRASH, (e) => {
      void set(false, 'crashed');
      // kafkajs restarts a crashed consumer only after a retriable error. After another one (seen:
      // "Failed to find group coordinator" while Kafka was stopped) it stays stopped, and this
      // process would never lead again: no event would reach Kafka until a restart.
      if (!e.payload.restart) restartLater(e.payload.error);
    });
    c.on(c.events.STOP, () => void set(false, 'stopped'));
    await c.connect();
    await c.subscribe({ topics: [opts.leaseTopic], fromBeginning: false });
    await c.run({ eachMessage: async () => undefined });
  };

  /** A new consumer after a backoff (1 s doubling up to 30 s), until one starts or `stop()`. */
  const restartLater = (error: unknown): void => {
    if (stopped || restartTimer) return;
    const delay = Math.min(30_000, 1000 * 2 ** restarts++);
    opts.logger.warn(
      { err: error, group: opts.groupId, retryInMs: delay },
      'forwarder election consumer stopped after a crash kafkajs does not restart; starting a new one',
    );
    restartTimer = setTimeout(() => {
      restartTimer = undefined;
      if (stopped) return;
      void (async () => {
        await consumer?.disconnect().catch(() => undefined);
        if (!stopped) await start();
      })().catch((failure: unknown) => restartLater(failure));
    }, delay);
    restartTimer.unref();
  };

  await start();
  await joined;
  return {
    get leader() {
      return leader;
    },
    async stop() {
      stopped = true;
      clearTimeout(restartTimer);
      await consumer?.disconnect();
      await set(false, 'stopped');
    },
  };
}
