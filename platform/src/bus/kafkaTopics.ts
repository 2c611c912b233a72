import type { Admin } from 'kafkajs';
import { ERR_CONFIG_INVALID, SettleError } from '../errors.js';
import type { Logger } from '../logger.js';

/** The category of a stream: its id up to the first '-' (`request-42` → `request`). */
export function categoryOf(streamIdOrPrefix: string): string {
  const dash = streamIdOrPrefix.indexOf('-');
  return dash < 0 ? streamIdOrPrefix : streamIdOrPrefix.slice(0, dash);
}

/** The topic a category is published to (`settle.` + `request`). Kafka allows only [a-zA-Z0-9._-] in names. */
export function topicFor(topicPrefix: string, category: string): string {
  const name = `${topicPrefix}${category.replace(/[^a-zA-Z0-9._-]/g, '_')}`;
  if (name.length > 240) throw new SettleError(ERR_CONFIG_INVALID, `Kafka topic name too long: ${name.slice(0, 60)}…`);
  return name;
}

export const dlqTopicFor = (topic: string): string => `${topic}.dlq`;

/**
 * `kafka://host:port,host2:port` (the SETTLE_BUS form; `kafka://` may be left out) → broker list.
 * Written by hand because WHATWG URL parsing rejects a comma-separated host list.
 */
export function parseKafkaBrokers(url: string): string[] {
  const rest = url.replace(/^kafka:\/\//i, '').replace(/\/.*$/, '');
  const brokers = rest
    .split(',')
    .map((b) => b.trim())
    .filter(Boolean);
  const bad = brokers.filter((b) => !/^[a-zA-Z0-9.-]+:\d{1,5}$/.test(b) && !/^\[[0-9a-fA-F:]+\]:\d{1,5}$/.test(b));
  if (brokers.length === 0 || bad.length > 0)
    throw new SettleError(
      ERR_CONFIG_INVALID,
      `SETTLE_BUS=${url}: expected kafka://host:port[,host:port…] (bad: ${bad.join(', ') || 'no broker'})`,
    );
  return brokers;
}

export interface TopicSettings {
  partitions: number;
  replicationFactor: number;
  /** Longest wait for every partition to have a leader. */
  timeoutMs?: number;
}

/**
 * Creates the topics that do not exist yet (auto-creation is off on Settle's brokers) and waits
 * until every partition of every one has a leader, so the first produce or subscribe succeeds.
 * Safe to race with another process creating the same topics.
 */
export async function ensureTopics(
  admin: Admin,
  topics: string[],
  settings: TopicSettings,
  logger?: Logger,
): Promise<void> {
  const wanted = [...new Set(topics)];
  if (wanted.length === 0) return;
  const existing = new Set(await admin.listTopics());
  const missing = wanted.filter((t) => !existing.has(t));
  if (missing.length > 0) {
    try {
      await admin.createTopics({
        waitForLeaders: false,
        topics: missing.map((topic) => ({
          topic,
          numPartitions: settings.partitions,
          replicationFactor: settings.replicationFactor,
        })),
      });
      logger?.info({ topics: missing, partitions: settings.partitions }, 'Kafka topics created');
    } catch (error) {
      // Another process may have created them in the meantime (createTopics reports that as an error on some paths).
      const now = new Set(await admin.listTopics());
      if (missing.some((t) => !now.has(t))) throw error;
    }
  }
  const deadline = Date.now() + (settings.timeoutMs ?? 30_000);
  for (let delay = 50; ; delay = Math.min(delay * 2, 1000)) {
    try {
      const { topics: metadata } = await admin.fetchTopicMetadata({ topics: wanted });
      const leaderless = metadata.filter((t) => t.partitions.length === 0 || t.partitions.some((p) => p.leader < 0));
      if (leaderless.length === 0) return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
    }
    if (Date.now() > deadline)
      throw new Error(
        `Kafka topics ${wanted.join(', ')} have partitions without a leader after ${settings.timeoutMs ?? 30_000} ms`,
      );
    await new Promise((r) => setTimeout(r, delay));
  }
}
