import { upcast, type StoredEvent } from '@settle/domain';
import type { IHeaders, Message } from 'kafkajs';

/**
 * How a stored event travels on Kafka: key = stream id (one stream → one partition → in order),
 * value = the StoredEvent envelope as JSON (data and metadata, positions included), and
 * CloudEvents 1.0 Kafka protocol binding headers in binary mode (`ce_*` attributes, `content-type`)
 * plus W3C `traceparent`/`tracestate` so traces continue across the bus.
 */
export const CE_SOURCE = 'settle';

/** Headers a dead-lettered message carries, beside its original ones. */
export const DLQ_HEADERS = {
  error: 'x-settle-error',
  errorCode: 'x-settle-error-code',
  attempts: 'x-settle-attempts',
  originalTopic: 'x-settle-original-topic',
  originalPartition: 'x-settle-original-partition',
  originalOffset: 'x-settle-original-offset',
  group: 'x-settle-group',
  failedAt: 'x-settle-failed-at',
} as const;

/** Headers of a dead letter replayed to its topic: only `forGroup` handles it, the other groups skip it. */
export const REPLAY_HEADERS = {
  forGroup: 'x-settle-replay-for-group',
  from: 'x-settle-replayed-from',
} as const;

export function encodeEvent(event: StoredEvent): Message {
  const headers: IHeaders = {
    ce_specversion: '1.0',
    ce_id: event.id,
    ce_source: CE_SOURCE,
    ce_type: event.type,
    ce_time: event.occurredAt,
    ce_subject: event.streamId,
    'content-type': 'application/json',
  };
  if (typeof event.metadata?.traceparent === 'string') headers.traceparent = event.metadata.traceparent;
  if (typeof event.metadata?.tracestate === 'string') headers.tracestate = event.metadata.tracestate;
  const time = Date.parse(event.occurredAt);
  return {
    key: event.streamId,
    value: JSON.stringify(event),
    headers,
    // CreateTime = when it happened, so offsets can be looked up by time for replays.
    ...(Number.isFinite(time) ? { timestamp: String(time) } : {}),
  };
}

export class MalformedMessageError extends Error {
  readonly code = 'SETTLE_ERR_BUS_MALFORMED_MESSAGE';
  constructor(message: string) {
    super(message);
    this.name = 'MalformedMessageError';
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Parses and upcasts the envelope; a message that is not one throws MalformedMessageError (never retried). */
export function decodeEvent(value: Buffer | string | null): StoredEvent {
  if (value === null) throw new MalformedMessageError('message has no value (tombstone)');
  let parsed: unknown;
  try {
    parsed = JSON.parse(typeof value === 'string' ? value : value.toString('utf8'));
  } catch (error) {
    throw new MalformedMessageError(`message value is not JSON: ${(error as Error).message}`);
  }
  if (
    !isObject(parsed) ||
    typeof parsed.id !== 'string' ||
    typeof parsed.type !== 'string' ||
    typeof parsed.streamId !== 'string' ||
    typeof parsed.globalPosition !== 'number' ||
    typeof parsed.streamPosition !== 'number' ||
    typeof parsed.occurredAt !== 'string' ||
    !('data' in parsed) ||
    !isObject(parsed.metadata)
  )
    throw new MalformedMessageError('message value is not a stored event envelope');
  const event = { version: 1, ...parsed } as unknown as StoredEvent;
  try {
    return upcast(event);
  } catch (error) {
    throw new MalformedMessageError(`cannot upcast ${event.type} v${event.version}: ${(error as Error).message}`);
  }
}

/** Header values as strings (kafkajs hands them over as Buffers). */
export function headersToStrings(headers: IHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (value === undefined) continue;
    const one = Array.isArray(value) ? value[value.length - 1] : value;
    out[name] = Buffer.isBuffer(one) ? one.toString('utf8') : String(one);
  }
  return out;
}
