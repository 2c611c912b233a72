import type { StoredEvent } from '@settle/domain';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../logger.js';
import { ERR_BUS_UNAVAILABLE } from './kafkaClient.js';
import { decodeEvent, encodeEvent, headersToStrings, MalformedMessageError } from './kafkaCodec.js';
import { KafkaBus } from './kafkaBus.js';
import { categoryOf, dlqTopicFor, parseKafkaBrokers, topicFor } from './kafkaTopics.js';

const event: StoredEvent = {
  id: '6f1c2b4e-0000-4000-8000-000000000001',
  type: 'RequestRegistered',
  version: 1,
  streamId: 'request-42',
  streamPosition: 0,
  globalPosition: 17,
  occurredAt: '2026-05-01T10:00:00.000Z',
  data: { amount: 1250, currency: 'EUR' },
  metadata: {
    correlationId: 'c1',
    causationId: 'c1',
    actor: 'merchant:demo',
    traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
  },
};

describe('Kafka message codec', () => {
  it('encodes an event as key = stream id, the envelope as JSON value and CloudEvents binary-mode headers', () => {
    const message = encodeEvent(event);
    expect(message.key).toBe('request-42');
    expect(JSON.parse(String(message.value))).toEqual(event);
    expect(message.timestamp).toBe(String(Date.parse(event.occurredAt)));
    expect(message.headers).toEqual({
      ce_specversion: '1.0',
      ce_id: event.id,
      ce_source: 'settle',
      ce_type: 'RequestRegistered',
      ce_time: event.occurredAt,
      ce_subject: 'request-42',
      'content-type': 'application/json',
      traceparent: event.metadata.traceparent,
    });
  });

  it('leaves traceparent out when the event has none', () => {
    const { traceparent: _, ...metadata } = event.metadata;
    expect(encodeEvent({ ...event, metadata }).headers).not.toHaveProperty('traceparent');
  });

  it('decodes what it encodes, from a Buffer as kafkajs delivers it', () => {
    expect(decodeEvent(Buffer.from(String(encodeEvent(event).value)))).toEqual(event);
  });

  it.each([
    ['null (a tombstone)', null],
    ['not JSON', 'not json {'],
    ['JSON that is not an envelope', '{"hello":"world"}'],
    ['an envelope without positions', JSON.stringify({ ...event, globalPosition: undefined })],
  ])('rejects a value that is %s as malformed', (_, value) => {
    expect(() => decodeEvent(value)).toThrow(MalformedMessageError);
  });

  it('reads headers as strings', () => {
    expect(
      headersToStrings({ a: Buffer.from('x'), b: 'y', c: [Buffer.from('1'), Buffer.from('2')], d: undefined }),
    ).toEqual({ a: 'x', b: 'y', c: '2' });
  });
});

describe('Kafka topics', () => {
  it('maps a stream or a stream prefix to the topic of its category', () => {
    expect(categoryOf('request-42')).toBe('request');
    expect(categoryOf('request-')).toBe('request');
    expect(categoryOf('client-a-b')).toBe('client');
    expect(categoryOf('orphan')).toBe('orphan');
    expect(topicFor('settle.', 'request')).toBe('settle.request');
    expect(topicFor('settle.', 'we!rd cat')).toBe('settle.we_rd_cat');
    expect(dlqTopicFor('settle.request')).toBe('settle.request.dlq');
  });

  it('parses SETTLE_BUS broker lists', () => {
    expect(parseKafkaBrokers('kafka://127.0.0.1:9092')).toEqual(['127.0.0.1:9092']);
    expect(parseKafkaBrokers('kafka://k1.example:9092,k2.example:9093/')).toEqual([
      'k1.example:9092',
      'k2.example:9093',
    ]);
    expect(() => parseKafkaBrokers('kafka://')).toThrow(/SETTLE_BUS/);
    expect(() => parseKafkaBrokers('kafka://host-without-port')).toThrow(/host-without-port/);
  });
});

describe('KafkaBus start-up', () => {
  it('fails fast with an error naming Kafka and the brokers when nothing listens there', async () => {
    const started = Date.now();
    const error = await KafkaBus.create({
      brokers: ['127.0.0.1:1'],
      logger: silentLogger(),
      connectionTimeoutMs: 1000,
    }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: ERR_BUS_UNAVAILABLE, statusCode: 503 });
    expect((error as Error).message).toMatch(/^could not connect to Kafka at 127\.0\.0\.1:1: /);
    expect(Date.now() - started).toBeLessThan(15_000);
  });
});
