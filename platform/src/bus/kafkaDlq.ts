import { randomUUID } from 'node:crypto';
import type { StoredEvent } from '@settle/domain';
import type { Admin, Kafka } from 'kafkajs';
import { DLQ_HEADERS, decodeEvent, headersToStrings } from './kafkaCodec.js';

/** A message in a `<topic>.dlq`, with the failure its headers record. */
export interface DeadLetter {
  topic: string;
  partition: number;
  offset: string;
  key: string | null;
  /** The event, when the value is a readable envelope (a malformed message has none). */
  event?: StoredEvent;
  value: string | null;
  headers: Record<string, string>;
  error: string;
  errorCode: string;
  attempts: number;
  group: string;
  originalTopic: string;
  originalPartition: number;
  originalOffset: string;
  failedAt: string;
}

export interface ReadDeadLettersOptions {
  /** A throwaway consumer group reads the topic (deleted afterwards); default `<prefix>dlq-reader-<uuid>`. */
  groupId: string;
  timeoutMs?: number;
}

/** A partition of a topic created a moment ago may answer "not the leader" briefly: retry that. */
async function highWatermarks(admin: Admin, topic: string): Promise<Awaited<ReturnType<Admin['fetchTopicOffsets']>>> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await admin.fetchTopicOffsets(topic);
    } catch (error) {
      if ((error as { retriable?: boolean }).retriable !== true || attempt >= 20) throw error;
      await new Promise((r) => setTimeout(r, 100 * Math.min(attempt, 5)));
    }
  }
}

/**
 * Reads everything currently in a DLQ topic (up to the high watermark at the time of the call).
 * kafkajs can only fetch through a consumer group, so this joins a throwaway one.
 */
export async function readDeadLetters(
  kafka: Kafka,
  admin: Admin,
  topic: string,
  opts: ReadDeadLettersOptions,
): Promise<DeadLetter[]> {
  const offsets = await highWatermarks(admin, topic);
  const remaining = new Map<number, bigint>();
  for (const p of offsets) if (BigInt(p.high) > BigInt(p.low)) remaining.set(p.partition, BigInt(p.high) - 1n);
  if (remaining.size === 0) return [];
  const letters: DeadLetter[] = [];
  const groupId = opts.groupId || `dlq-reader-${randomUUID()}`;
  const consumer = kafka.consumer({
    groupId,
    sessionTimeout: 10_000,
    heartbeatInterval: 500,
    maxWaitTimeInMs: 200,
    allowAutoTopicCreation: false,
  });
  let done!: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));
  try {
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        const last = remaining.get(partition);
        if (last === undefined || BigInt(message.offset) > last) return;
        const headers = headersToStrings(message.headers);
        let event: StoredEvent | undefined;
        try {
          event = decodeEvent(message.value);
        } catch {
          event = undefined;
        }
        letters.push({
          topic,
          partition,
          offset: message.offset,
          key: message.key?.toString('utf8') ?? null,
          ...(event ? { event } : {}),
          value: message.value?.toString('utf8') ?? null,
          headers,
          error: headers[DLQ_HEADERS.error] ?? '',
          errorCode: headers[DLQ_HEADERS.errorCode] ?? '',
          attempts: Number(headers[DLQ_HEADERS.attempts] ?? 0),
          group: headers[DLQ_HEADERS.group] ?? '',
          originalTopic: headers[DLQ_HEADERS.originalTopic] ?? '',
          originalPartition: Number(headers[DLQ_HEADERS.originalPartition] ?? -1),
          originalOffset: headers[DLQ_HEADERS.originalOffset] ?? '',
          failedAt: headers[DLQ_HEADERS.failedAt] ?? '',
        });
        if (BigInt(message.offset) >= last) {
          remaining.delete(partition);
          if (remaining.size === 0) done();
        }
      },
    });
    const timeoutMs = opts.timeoutMs ?? 30_000;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs)));
    const outcome = await Promise.race([finished, timedOut]);
    clearTimeout(timer);
    if (outcome === 'timeout') throw new Error(`reading ${topic} timed out after ${timeoutMs} ms`);
  } finally {
    await consumer.disconnect().catch(() => undefined);
    await admin.deleteGroups([groupId]).catch(() => undefined);
  }
  return letters.sort(
    (a, b) =>
      a.failedAt.localeCompare(b.failedAt) || a.partition - b.partition || Number(BigInt(a.offset) - BigInt(b.offset)),
  );
}
