import type { Logger } from '../logger.js';
import { createKafkaClient } from '../bus/kafkaClient.js';

/** Deletes the topics and consumer groups a test run made under `prefix` on the shared broker. */
export async function deleteKafkaRun(brokers: string[], logger: Logger, prefix: string): Promise<void> {
  const admin = createKafkaClient({ brokers, logger }).admin();
  await admin.connect();
  try {
    const topics = (await admin.listTopics()).filter((t) => t.startsWith(prefix));
    if (topics.length > 0) await admin.deleteTopics({ topics });
    const groups = (await admin.listGroups()).groups.map((g) => g.groupId).filter((g) => g.startsWith(prefix));
    if (groups.length > 0) await admin.deleteGroups(groups).catch(() => undefined);
  } finally {
    await admin.disconnect();
  }
}
